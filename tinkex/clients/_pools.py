"""The worker threads and the I/O loop of one :class:`~tinkex.clients._holder.ClientHolder`.

Three places run a holder's work, each created on first use and closed by ``close()``:

* the general pool (daemon threads; see ``tinkex._executor``): training sends and polls, REST
  calls, client creation;
* the sampling pool, used when samples hold a worker thread each
  (``settings.sampling_io == "threads"`` or a proxy): one thread per in-flight sample, so its
  size is the sampling concurrency; ``SAMPLE_PRESTART`` workers start when it is created;
* the I/O loop (``tinkex._ioloop.IOLoop``, one ``tinkex-io`` thread) on which in-flight samples
  wait as coroutines, with the ``AsyncTransport`` over it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from tinkex._executor import DaemonThreadPoolExecutor

if TYPE_CHECKING:
    from tinkex._config import ClientSettings
    from tinkex._ioloop import IOLoop
    from tinkex._transport import Transport
    from tinkex._transport.aio import AsyncTransport

__all__ = ["SAMPLE_PRESTART", "WorkerPools"]

logger = logging.getLogger("tinkex")

#: Sampling workers started up front when the sampling pool is created (the rest on demand).
SAMPLE_PRESTART = 128


class WorkerPools:
    """The general pool, the sampling pool and the I/O loop of a holder (all lazy).

    Args:
        settings: the holder's settings (``sampling_io``, ``max_connections``).
        transport: the holder's transport (the I/O loop's requests go over it).
        workers: size of the general pool.
        sample_workers: size of the sampling pool.
    """

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        *,
        workers: int,
        sample_workers: int,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._workers = workers
        self._sample_workers = sample_workers
        self._lock = threading.Lock()
        self._closed = False
        self._executor: DaemonThreadPoolExecutor | None = None
        self._sample_executor: DaemonThreadPoolExecutor | None = None
        self._io: tuple[IOLoop, AsyncTransport] | None = None
        self._io_checked = False

    def __repr__(self) -> str:
        return (
            f"WorkerPools(workers={self._workers}, sample_workers={self._sample_workers}, "
            f"io={'on' if self._io else 'off'}, closed={self._closed})"
        )

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this client was closed; create a new ServiceClient")

    def pool(self, sampling: bool) -> DaemonThreadPoolExecutor:
        """The sampling pool (``sampling``) or the general pool, created on first use.

        Raises:
            RuntimeError: the pools were closed.
        """
        with self._lock:
            self._check_open()
            if not sampling:
                if self._executor is None:
                    self._executor = DaemonThreadPoolExecutor(self._workers, "tinkex-worker")
                return self._executor
            if self._sample_executor is None:
                pool = DaemonThreadPoolExecutor(self._sample_workers, "tinkex-sample")
                self._sample_executor = pool
                # Sampling comes in bursts (fan-out): start the workers off the caller's
                # path instead of one per submission during the burst.
                threading.Thread(
                    target=pool.prestart,
                    args=(SAMPLE_PRESTART,),
                    name="tinkex-sample-prestart",
                    daemon=True,
                ).start()
            return self._sample_executor

    def io(self) -> tuple[IOLoop, AsyncTransport] | None:
        """The I/O loop and its transport; None when samples use worker threads.

        Raises:
            RuntimeError: the pools were closed.
        """
        with self._lock:
            self._check_open()
            if self._io is None and not self._io_checked:
                self._io_checked = True
                from tinkex._ioloop import IOLoop
                from tinkex._transport.aio import AsyncTransport, supports

                why = supports(self._transport)
                if self._settings.sampling_io != "asyncio" or why is not None:
                    logger.debug("samples use worker threads: %s", why or "sampling_io=threads")
                    return None
                loop = IOLoop("tinkex-io")
                aio = AsyncTransport(self._transport, self._settings.max_connections)
                loop.on_close(aio.close)
                self._io = (loop, aio)
            return self._io

    def close(self) -> None:
        """Close the I/O loop (cancelling what still runs on it), then both pools."""
        with self._lock:
            self._closed = True
            io, pools = self._io, (self._executor, self._sample_executor)
        if io is not None:
            io[0].close()
        for pool in pools:
            if pool is not None:
                pool.close()
