"""A holder's server-side session: created on first need, kept alive, finished on close.

``create`` sends ``POST /api/v1/create_session`` (logging the server's info/warning/error
messages) and starts the heartbeat thread: ``POST /api/v1/session_heartbeat`` every
``settings.heartbeat_interval`` seconds (10 s, as the official SDK), which also refreshes the
dynamic config when it is due. A 410 answer means the session has finished: the heartbeat
stops. Other failures are logged as a WARNING once no beat has succeeded for
``settings.heartbeat_warning_after`` seconds (120 s). ``finish`` sends
``sessions/{id}/finish`` (docs/protocol.md, "Life cycle").
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinkex._exceptions import APIStatusError
from tinkex._transport import NO_RETRY
from tinkex.types import _session as ses
from tinkex.types._converter import from_wire, to_wire

if TYPE_CHECKING:
    from tinkex._config import ClientSettings
    from tinkex._transport import RetryPolicy, Transport

__all__ = ["FINISH_TIMEOUT", "HolderSession"]

logger = logging.getLogger("tinkex")

#: Read timeout of ``sessions/{id}/finish``, as in the official SDK (its default).
FINISH_TIMEOUT = 60.0


class HolderSession:
    """The session of one holder, its heartbeat thread and its counters.

    Not thread-safe on its own: the holder calls ``create`` under its lock.

    Args:
        settings: the holder's settings (the heartbeat's interval and warning threshold).
        transport: the holder's transport.
        stop: the holder's stop event; set, it ends the heartbeat.
        on_beat: run before each heartbeat (the holder refreshes a stale dynamic config).
    """

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport,
        stop: threading.Event,
        on_beat: Callable[[], None],
    ) -> None:
        self._interval = settings.heartbeat_interval
        self._warn_after = settings.heartbeat_warning_after
        self._transport = transport
        self._stop = stop
        self._on_beat = on_beat
        self.id: str | None = None
        self._heartbeat: threading.Thread | None = None
        self._model_seq = itertools.count()
        self._sampling_seq = itertools.count()

    def __repr__(self) -> str:
        return f"HolderSession(id={self.id!r})"

    def create(self, request: ses.CreateSessionRequest) -> str:
        """Create the session on the server and start its heartbeat; returns its id."""
        response = self._transport.request(
            "POST", "/api/v1/create_session", json=to_wire(request), stop=self._stop
        )
        created = from_wire(
            response.json(), ses.CreateSessionResponse, request="POST /api/v1/create_session"
        )
        for level, message in (
            (logging.INFO, created.info_message),
            (logging.WARNING, created.warning_message),
            (logging.ERROR, created.error_message),
        ):
            if message:
                logger.log(level, "Tinker session %s: %s", created.session_id, message)
        self.id = created.session_id
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop,
            args=(created.session_id,),
            name="tinkex-heartbeat",
            daemon=True,
        )
        self._heartbeat.start()
        return created.session_id

    def finish(self, status: str, detail: str | None, retry: RetryPolicy) -> None:
        """``POST sessions/{id}/finish`` with ``status`` and ``detail`` (when a session exists)."""
        if self.id is None:
            return
        # ``detail`` is always present (null when None), as the official SDK sends it.
        body: dict[str, Any] = {"reason": {"type": status}, "detail": detail}
        self._transport.request(
            "POST",
            f"/api/v1/sessions/{self.id}/finish",
            json=body,
            timeout=FINISH_TIMEOUT,
            retry=retry,
        )

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for the heartbeat thread, once the stop event is set."""
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=timeout)

    def next_model_seq_id(self) -> int:
        """Reserve the next ``model_seq_id`` of this session."""
        return next(self._model_seq)

    def next_sampling_session_seq_id(self) -> int:
        """Reserve the next ``sampling_session_seq_id`` of this session."""
        return next(self._sampling_seq)

    def _heartbeat_loop(self, session_id: str) -> None:
        last_ok = time.monotonic()
        body = to_wire(ses.SessionHeartbeatRequest(session_id=session_id))
        while not self._stop.wait(self._interval):
            self._on_beat()
            try:
                self._transport.request(
                    "POST", "/api/v1/session_heartbeat", json=body, timeout=10.0, retry=NO_RETRY
                )
                last_ok = time.monotonic()
            except APIStatusError as exc:
                if exc.status_code == 410:
                    logger.info("Tinker session %s has finished; heartbeat stopped", session_id)
                    return
                self._warn(session_id, last_ok, exc)
            except Exception as exc:
                self._warn(session_id, last_ok, exc)

    def _warn(self, session_id: str, last_ok: float, exc: Exception) -> None:
        silent_for = time.monotonic() - last_ok
        if silent_for > self._warn_after:
            logger.warning(
                "Tinker session %s: no successful heartbeat for %.0f s (%s); the server may "
                "end the session",
                session_id,
                silent_for,
                exc,
            )
