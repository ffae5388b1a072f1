"""``LocalServer``: the local Tinker-compatible server running on a background thread.

>>> from tinkex.local import LocalServer
>>> with LocalServer() as server:           # doctest: +SKIP
...     print(server.base_url, server.api_key)
http://127.0.0.1:54321 tml-local

The server thread owns an asyncio loop serving HTTP/1.1; model compute runs in worker pools.
``close()`` stops the loop, closes every connection and joins every thread it started.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from tinkex.local.app import App, AppOptions, ServerState
from tinkex.local.engine.memory import MemoryBudget
from tinkex.local.faults import FaultInjector, FaultSpec, parse_faults
from tinkex.local.http import HTTPServer
from tinkex.local.storage import Store

#: The API key to use against a server started without ``api_key`` (the official SDK insists on
#: the ``tml-`` prefix; any such key is accepted).
DEFAULT_API_KEY = "tml-local"

__all__ = ["DEFAULT_API_KEY", "LocalServer"]

T = TypeVar("T")


class LocalServer:
    """A local Tinker-compatible server on ``host:port`` (port 0: a free port).

    Args:
        data_dir: where sessions, runs and checkpoints persist (None: a temporary directory,
            removed on close).
        api_key: accept only this ``X-API-Key`` (None: accept any key).
        faults: fault-injection spec (see :mod:`tinkex.local.faults`).
        host, port: bind address.
        **options: fields of :class:`~tinkex.local.app.AppOptions`, each documented there
            (``long_poll_seconds``, ``any_model``, ``sampling_seed``, ...).

    Raises:
        ValueError: a bad fault spec or an unknown option (named).
        OSError: the port cannot be bound.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        api_key: str | None = None,
        faults: str | FaultSpec | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        known = set(AppOptions.__dataclass_fields__) - {"api_key"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"LocalServer got unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        self._app_options = AppOptions(api_key=api_key, **options)
        self._faults = FaultInjector(parse_faults(faults))
        self._host = host
        self._requested_port = port
        self._temp_dir: str | None = None
        if data_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="tinkex-local-")
            data_dir = self._temp_dir
        self.data_dir = data_dir
        self._api_key = api_key
        self.store = Store(data_dir)  # first: it raises when another server uses data_dir
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.app: App | None = None
        self._http: HTTPServer | None = None
        self.port = 0
        self._start()

    # --- public ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        return f"http://{self._display_host}:{self.port}"

    @property
    def api_key(self) -> str:
        """The key clients should send (the configured key, else ``tml-local``)."""
        return self._api_key if self._api_key is not None else DEFAULT_API_KEY

    @property
    def tokenizer_id(self) -> str:
        """The tokenizer id the server answers clients on this machine: the path of its
        tokenizer folder (Hugging Face format, under the data dir), which
        ``AutoTokenizer.from_pretrained`` loads offline, unless ``tokenizer_id=`` set another."""
        app = self.app
        if app is None:
            raise RuntimeError("the server is not running")
        return app.state.tokenizer_for("127.0.0.1")

    @property
    def telemetry_events(self) -> list[dict[str, Any]]:
        """The last telemetry events received (newest last)."""
        app = self.app
        return list(app.telemetry) if app is not None else []

    def mark_run_corrupted(self, run_id: str) -> bool:
        """Mark a training run corrupted, as a failing accelerator would (for recovery tests).

        Its later requests fail with category ``server`` and ``GET /api/v1/training_runs/{id}``
        reports ``corrupted: true``. Returns False if the run is unknown.
        """
        app = self.app
        if app is None:
            raise RuntimeError("the server is not running")
        return app.mark_corrupted(run_id)

    @property
    def injected_faults(self) -> list[tuple[str, str]]:
        """``(endpoint, fault)`` for every fault injected so far."""
        return list(self._faults.injected)

    def finished_requests(self) -> dict[tuple[str, str | None, str], int]:
        """How many requests finished so far, by ``(kind, owner, outcome)`` (for tests).

        ``kind`` is the request type (``"ForwardBackward"``, ``"OptimStep"``, ``"SaveWeights"``,
        ``"SaveWeightsForSampler"``, ``"Sample"``, ...), ``owner`` the model or sampling session
        id, ``outcome`` ``"complete"`` or ``"failed"``. Each accepted request runs at most once
        and a resend the server recognises is not counted again, so the ``complete`` counts
        are executions: a test can check that every step, save and sample ran exactly once.
        """
        return self._on_loop(lambda app: app.futures.finished_counts())

    def pending_requests(self) -> int:
        """How many accepted requests have not finished yet (for tests)."""
        return self._on_loop(lambda app: app.futures.pending_count())

    @property
    def memory(self) -> MemoryBudget:
        """The server's memory budget: ``memory.held("results")``, ``memory.limit``, ...
        (see :mod:`tinkex.local.engine.memory`)."""
        app = self.app
        if app is None:
            raise RuntimeError("the server is not running")
        return app.state.memory

    def close(self) -> None:
        """Stop the server: close connections, stop the loop, join every thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join()
        if not self._loop.is_closed():
            self._loop.close()
        self.store.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.base_url
        return f"LocalServer({state}, data_dir={self.data_dir!r})"

    # --- internals -------------------------------------------------------------------------------

    def _on_loop(self, fn: Callable[[App], T], timeout: float = 30.0) -> T:
        """``fn(app)`` run on the server's loop thread, which owns the app's state."""
        app = self.app
        if app is None or self._closed:
            raise RuntimeError("the server is not running")

        async def call() -> T:
            return fn(app)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    @property
    def _display_host(self) -> str:
        if self._host in ("", "0.0.0.0"):
            return "127.0.0.1"
        if ":" in self._host and not self._host.startswith("["):
            return f"[{self._host}]"
        return self._host

    def _start(self) -> None:
        _raise_open_file_limit()
        self._thread = threading.Thread(target=self._run, name="tinkex-local-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._loop.close()
            self.store.close()
            self._closed = True
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
            raise self._startup_error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            try:
                pending = asyncio.all_tasks(self._loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app: App | None = None
        http: HTTPServer | None = None
        try:
            app = App(ServerState(loop, self.store, self._app_options, self._faults))
            http = HTTPServer(
                app.handle,
                self._host,
                self._requested_port,
                max_body_bytes=int(self._app_options.max_body_bytes),
            )
            await http.start()
            self.port = http.port
            app.base_url = self.base_url
            app.start()
            self.app = app
            self._http = http
        except BaseException as exc:
            self._startup_error = exc
            if app is not None:
                await app.stop()
                app.shutdown_pools()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await http.stop()
            await app.stop()
            # Worker threads finish their current job; queued work is cancelled.
            await loop.run_in_executor(None, app.shutdown_pools)
            await asyncio.sleep(0)  # let the last job callbacks record their outcome
            app.futures.flush()


def _raise_open_file_limit(wanted: int = 8192) -> None:
    """Raise the soft limit of open files towards ``wanted`` (1000+ client connections need it).

    Best effort and never lowers the limit; a no-op where ``resource`` is unavailable.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        pass
