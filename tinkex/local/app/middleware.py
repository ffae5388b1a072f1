"""Middleware: what happens to every request around its handler, one concern each.

A middleware is ``async (call, call_next) -> Response``. :func:`build_chain` composes them,
outermost first; the application uses::

    RequestIds -> authenticate -> inject_faults -> idempotency cache -> map_errors
        -> hold_body_memory -> handler

* :class:`RequestIds`: every answer carries ``x-request-id`` (kept if the handler set one).
* :func:`authenticate`: ``X-API-Key`` is required (and must match a configured key).
* :class:`FaultInjection`: delays, resets and injected statuses from the fault spec.
* :class:`IdempotencyCache`: a non-GET request resent with the same ``X-Idempotency-Key`` gets
  the first (2xx) answer again instead of being applied twice.
* :func:`map_errors`: exceptions -> HTTP answers (bad input 400, oversized body 413,
  :class:`~tinkex.local.http.HTTPError` its own status).
* :func:`hold_body_memory`: a large body is admitted against the memory budget for what
  decoding it will allocate, before it is decoded.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from tinkex.local.app.routing import Call, Handler
from tinkex.local.codec import BodyTooLargeError, CodecError
from tinkex.local.engine import UserError
from tinkex.local.faults import QUEUE_STATE_REASONS, FaultAction, request_key
from tinkex.local.http import HTTPError, Response, error_response, json_response
from tinkex.local.storage import CheckpointError

__all__ = [
    "FaultInjection",
    "RequestIds",
    "IdempotencyCache",
    "Middleware",
    "authenticate",
    "build_chain",
    "hold_body_memory",
    "map_errors",
]

Middleware = Callable[[Call, Handler], Awaitable[Response]]


def build_chain(middleware: Sequence[Middleware], handler: Handler) -> Handler:
    """``handler`` wrapped in ``middleware`` (the first one is the outermost)."""
    chained = handler
    for layer in reversed(middleware):
        chained = _wrap(layer, chained)
    return chained


def _wrap(layer: Middleware, inner: Handler) -> Handler:
    async def call_layer(call: Call) -> Response:
        return await layer(call, inner)

    return call_layer


class RequestIds:
    """Sets ``x-request-id`` on every answer: ``http-1``, ``http-2``, ... (unless the handler
    named the request itself, e.g. with a future's id)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, call: Call, call_next: Handler) -> Response:
        self.count += 1
        http_id = f"http-{self.count}"
        response = await call_next(call)
        response.headers.setdefault("x-request-id", http_id)
        return response


async def authenticate(call: Call, call_next: Handler) -> Response:
    """401 without ``X-API-Key`` (any ``tml-`` key works unless the server has one key)."""
    if not call.route.auth:
        return await call_next(call)
    key = call.request.header("x-api-key")
    if not key:
        return error_response(401, "missing X-API-Key header (any tml-... key works locally)")
    configured = call.state.options.api_key
    if configured is not None and not secrets.compare_digest(key.encode(), configured.encode()):
        return error_response(401, "invalid API key: this server accepts only its configured key")
    return await call_next(call)


class FaultInjection:
    """Applies the fault spec's decision for each request (see :mod:`tinkex.local.faults`)."""

    async def __call__(self, call: Call, call_next: Handler) -> Response:
        faults = call.state.faults
        if not faults.enabled:
            return await call_next(call)
        reset_after = False
        for action in self._decide(call):
            if action.kind == "delay":
                await asyncio.sleep(action.delay)
            elif action.kind == "reset_before":
                return Response(abort=True)
            elif action.kind == "reset_after":
                reset_after = True
            elif action.kind == "status":
                return error_response(action.status, _fault_detail(call, action), action.headers)
            elif action.kind == "paused":
                return _paused_answer(call, action.queue_state)
        response = await call_next(call)
        return Response(abort=True) if reset_after else response

    @staticmethod
    def _decide(call: Call) -> list[FaultAction]:
        name = call.route.name
        faults = call.state.faults
        if not faults.per_request:  # latency and counted rules: no body hash, no body parse
            return faults.decide(name, "", gone_allowed=False)
        gone_allowed = True
        if name == "retrieve_future":
            # Only samples are resubmitted by clients on 410; training futures would just fail.
            record = call.state.futures.get(_future_id_hint(call))
            gone_allowed = record is not None and record.kind == "Sample"
        key = request_key(call.request.path, call.request.body)
        return call.state.faults.decide(name, key, gone_allowed=gone_allowed)


def _paused_answer(call: Call, queue_state: str) -> Response:
    """A ``try_again`` poll answer in a paused queue state (the request itself goes on)."""
    request_id = _future_id_hint(call)
    body = {
        "type": "try_again",
        "request_id": request_id,
        "queue_state": queue_state,
        "queue_state_reason": QUEUE_STATE_REASONS[queue_state],
    }
    return json_response(body, headers={"x-request-id": request_id})


def _fault_detail(call: Call, action: FaultAction) -> str:
    if action.status == 410:
        return f"injected fault: future {_future_id_hint(call)} is gone; resubmit"
    return f"injected fault: HTTP {action.status} on {call.route.name}"


def _future_id_hint(call: Call) -> str:
    try:
        return str(json.loads(call.request.body).get("request_id", "?"))
    except Exception:
        return "?"


class IdempotencyCache:
    """Replays the answer of a request resent with the same ``X-Idempotency-Key``.

    Only 2xx answers under 1 MiB are kept (the newest ``max_entries``); GETs and the
    polling/heartbeat endpoints in ``exempt`` are never cached.
    """

    def __init__(self, exempt: frozenset[str], max_entries: int = 10_000) -> None:
        self.exempt = exempt
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[str, str], Response] = OrderedDict()

    async def __call__(self, call: Call, call_next: Handler) -> Response:
        key = call.request.header("x-idempotency-key")
        if not key or call.request.method == "GET" or call.route.name in self.exempt:
            return await call_next(call)
        cache_key = (call.request.path, key)
        cached = self._answers.get(cache_key)
        if cached is not None:
            return Response(cached.status, cached.body, cached.content_type, dict(cached.headers))
        response = await call_next(call)
        if 200 <= response.status < 300 and len(response.body) < 1 << 20:
            self._answers[cache_key] = response
            while len(self._answers) > self.max_entries:
                self._answers.popitem(last=False)
        return response


async def map_errors(call: Call, call_next: Handler) -> Response:
    """Exceptions of handlers -> answers: bad input 400, too large 413, HTTPError its status."""
    try:
        return await call_next(call)
    except HTTPError as exc:
        return error_response(exc.status, exc.detail, exc.headers)
    except BodyTooLargeError as exc:
        return error_response(413, str(exc))
    except (UserError, CheckpointError, CodecError) as exc:
        return error_response(400, str(exc))


#: Bodies smaller than this are decoded without asking the memory budget.
BODY_MEMORY_FROM = 1 << 20
#: Bytes decoding allocates per body byte: JSON numbers become Python objects, then arrays.
_DECODE_FACTOR = {"json": 10, "protobuf": 3}


async def hold_body_memory(call: Call, call_next: Handler) -> Response:
    """Admit what decoding a large body allocates (an estimate from its size) for as long as
    the handler runs; 400/429 from the budget when it does not fit."""
    size = len(call.request.body)
    if size < BODY_MEMORY_FROM:
        return await call_next(call)
    kind = "protobuf" if "protobuf" in call.request.header("content-type") else "json"
    holding = call.state.admit(
        "jobs", size * _DECODE_FACTOR[kind], f"decoding the {size}-byte body of {call.endpoint}"
    )
    try:
        return await call_next(call)
    finally:
        holding.release()
