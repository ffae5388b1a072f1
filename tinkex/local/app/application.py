"""``App``: the local server's request handler: route table + middleware + shared state.

``App.handle(request)`` is what the HTTP server calls for every request: files behind signed
URLs are served directly; API requests are matched in the route table and passed through the
middleware chain (:mod:`.middleware`) to their handler (:mod:`.handlers`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from tinkex.local.app.handlers import ALL_ROUTES
from tinkex.local.app.handlers.checkpoints import serve_file
from tinkex.local.app.middleware import (
    FaultInjection,
    IdempotencyCache,
    RequestIds,
    authenticate,
    build_chain,
    hold_body_memory,
    map_errors,
)
from tinkex.local.app.routing import Call, Handler, Route, RouteTable
from tinkex.local.app.state import ServerState
from tinkex.local.engine import FutureTable, TrainingModel
from tinkex.local.http import Request, Response, error_response
from tinkex.local.storage.checkpoints import checkpoint_tensors

__all__ = ["App"]

access_log = logging.getLogger("tinkex.local.access")

#: Polling, heartbeats and telemetry are never answered from the idempotency cache.
_NOT_CACHED = frozenset(
    {"retrieve_future", "retrieve_futures", "session_heartbeat", "telemetry", "cancel_future"}
)
_FILES = Route("GET", "files", "files", serve_file, auth=False)
#: Requests that keep a client's session alive without asking for work: the server counts as
#: idle (and gives memory back) while only these come.
_KEEPALIVES = frozenset({"session_heartbeat", "telemetry", "healthz"})


async def _dispatch(call: Call) -> Response:
    return await call.route.handler(call)


class App:
    """The request handler of one LocalServer (see the module docstring)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.routes = RouteTable(ALL_ROUTES)
        request_ids = RequestIds()
        self._api: Handler = build_chain(
            [
                request_ids,
                authenticate,
                FaultInjection(),
                IdempotencyCache(_NOT_CACHED),
                map_errors,
                hold_body_memory,
            ],
            _dispatch,
        )
        self._files: Handler = build_chain([request_ids, map_errors], _dispatch)

    async def handle(self, request: Request) -> Response:
        """Entry point for every HTTP request (logged on ``tinkex.local.access`` at info:
        method, path, status, milliseconds, request id; never a body)."""
        if not access_log.isEnabledFor(logging.INFO):
            return await self._route(request)
        started = time.perf_counter()
        response = await self._route(request)
        access_log.info(
            "%s %s %s %.1f ms %s",
            request.method,
            request.path,
            "reset" if response.abort else response.status,
            (time.perf_counter() - started) * 1000,
            response.headers.get("x-request-id", "-"),
        )
        return response

    async def _route(self, request: Request) -> Response:
        if request.path.startswith("/files/"):
            return await self._files(Call(self.state, request, _FILES))
        match = self.routes.match(request.method, request.path)
        if match.route is None:
            if match.path_known:
                return error_response(
                    405, f"method {request.method} is not allowed on {request.path}"
                )
            return error_response(404, f"no endpoint {request.method} {request.path}")
        if match.route.name not in _KEEPALIVES:
            self.state.last_request = time.monotonic()
        return await self._api(Call(self.state, request, match.route, match.params))

    # --- life cycle (LocalServer drives these) ---------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (used in signed file URLs)."""
        return self.state.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.state.base_url = value

    def start(self) -> None:
        """Start background maintenance."""
        self.state.start()

    async def stop(self) -> None:
        """Stop background maintenance and persist what is pending."""
        await self.state.stop()

    def shutdown_pools(self) -> None:
        """Stop the worker pools (running jobs finish, queued ones are cancelled)."""
        self.state.shutdown_pools()

    # --- what tests and tools look at ------------------------------------------------------------

    @property
    def futures(self) -> FutureTable:
        """The server's future records."""
        return self.state.futures

    @property
    def models(self) -> dict[str, TrainingModel]:
        """Loaded training runs by model id."""
        return self.state.models

    @property
    def telemetry(self) -> list[dict[str, Any]]:
        """The telemetry events received (newest last)."""
        return list(self.state.telemetry)

    def mark_corrupted(self, run_id: str) -> bool:
        """Mark training run ``run_id`` corrupted (thread-safe); False if it is unknown."""
        return self.state.mark_corrupted(run_id)

    def checkpoint_tensors(self, path: str, optimizer: bool = False) -> dict[str, np.ndarray]:
        """Tensors of a saved checkpoint (for tests and tools)."""
        return checkpoint_tensors(self.state.store, path, optimizer=optimizer)
