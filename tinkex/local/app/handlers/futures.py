"""Future endpoints: ``retrieve_future`` (long poll), ``retrieve_futures`` (one long poll per
sampling session, see :mod:`tinkex.local.engine.completions`) and ``cancel_future``.

``retrieve_future`` holds a pending request for up to ``long_poll_seconds``, then answers
``try_again``. Results are protobuf when the ``Accept`` header asks for it (forward/backward and
sample results), JSON otherwise; failures are ``{"error", "category"}``. A delivered result is
kept ``delivered_result_ttl`` seconds for a client that lost the answer, then released. A
request id of an earlier run of this server (found in the index, not in memory) fails with a
restart error.
"""

from __future__ import annotations

from tinkex import types
from tinkex.local.app.parsing import CancelFutureBody, parse
from tinkex.local.app.routing import Call, route
from tinkex.local.codec import (
    FwdBwdPayload,
    SamplePayload,
    encode_result,
    result_size,
    wants_protobuf,
)
from tinkex.local.http import HTTPError, Response, json_response

__all__ = ["ROUTES"]

#: Results smaller than this (in values) are encoded on the loop: a thread hop costs more.
_ENCODE_INLINE_BELOW = 4096


def _unknown_future(call: Call, request_id: str) -> Response:
    """Answer for a request id not in memory: a request of an earlier server run fails."""
    state = call.state
    row = None if state.futures.owns(request_id) else state.store.get_future(request_id)
    if row is None:
        raise HTTPError(404, f"future {request_id!r} is unknown (never created or expired)")
    headers = {"x-request-id": request_id}
    if row.state == "failed" and row.error is not None:
        return json_response(
            {"error": row.error, "category": row.category or "server"}, headers=headers
        )
    return json_response(
        {
            "error": "the local server restarted before this request's result was "
            "delivered; resubmit it",
            "category": "server",
        },
        headers=headers,
    )


async def _encoded(call: Call, result: FwdBwdPayload | SamplePayload, request_id: str) -> Response:
    headers = {"x-request-id": request_id}
    protobuf = wants_protobuf(call.request.header("accept"))
    try:
        # a protobuf answer written from columns is a few joins: no thread hop for it either
        columnar = protobuf and isinstance(result, FwdBwdPayload) and result.columns is not None
        if columnar or result_size(result) <= _ENCODE_INLINE_BELOW:
            payload, content_type = encode_result(result, protobuf)
        else:
            payload, content_type = await call.state.in_io(encode_result, result, protobuf)
    except ImportError as exc:
        return json_response(
            {"error": f"cannot encode the result as protobuf: {exc}", "category": "server"},
            headers=headers,
        )
    return Response(200, payload, content_type, headers)


async def retrieve_future(call: Call) -> Response:
    request_id = parse(call, types.FutureRetrieveRequest).request_id
    if not request_id:
        raise HTTPError(400, "field 'request_id' must be a non-empty string, got ''")
    record = call.state.futures.get(request_id)
    if record is None:
        return _unknown_future(call, request_id)
    headers = {"x-request-id": request_id}
    if not await record.wait(call.state.options.long_poll_seconds):
        return json_response(
            {"type": "try_again", "request_id": request_id, "queue_state": "active"},
            headers=headers,
        )
    if record.released:
        return json_response(
            {
                "error": f"the result of request {request_id} was already delivered and has "
                "been released; resubmit the request to compute it again",
                "category": "user",
            },
            headers=headers,
        )
    call.state.futures.delivered(record)
    if record.error is not None:
        message, category = record.error
        return json_response({"error": message, "category": category}, headers=headers)
    if isinstance(record.result, FwdBwdPayload | SamplePayload):
        return await _encoded(call, record.result, request_id)
    return json_response(record.result, headers=headers)


async def retrieve_futures(call: Call) -> Response:
    """The completions of a sampling session (clone) after ``prev_cursor``: held up to
    ``long_poll_seconds`` while there are none (``timeout: 0``: answered at once)."""
    state = call.state
    if not state.options.session_futures:
        raise HTTPError(
            404,
            "retrieve_futures is not served by this server (start it with --session-futures, "
            "LocalServer(session_futures=True)); poll each request with retrieve_future",
        )
    body = parse(call, types.FuturesRetrieveRequest)
    target = body.target
    if target.cloned_sampler_id < 0:
        raise HTTPError(
            400, f"field 'target.cloned_sampler_id' must be >= 0, got {target.cloned_sampler_id}"
        )
    if body.timeout is not None and body.timeout < 0:
        raise HTTPError(400, f"field 'timeout' must be >= 0 or null, got {body.timeout}")
    sampler = state.sampler(target.sampling_session_id)  # 400 naming it when unknown
    key = (sampler.sampler_id, target.cloned_sampler_id)
    state.completions.acknowledge(key, body.prev_cursor)
    for request_id in body.retrieved_request_ids:
        record = state.futures.get(request_id)
        if record is not None and record.feed == key:
            state.futures.release(record)
    hold = state.options.long_poll_seconds
    timeout = hold if body.timeout is None else min(body.timeout, hold)
    completions = await state.completions.wait(key, body.prev_cursor, timeout)
    cursor = completions[-1].cursor if completions else body.prev_cursor
    return json_response({"completions": [c.wire() for c in completions], "cursor": cursor})


async def cancel_future(call: Call) -> Response:
    request_id = parse(call, CancelFutureBody).request_id
    record = call.state.futures.get(request_id) if request_id else None
    if record is not None and not record.finished:
        record.cancelled = True
    return json_response({})


ROUTES = [
    route("POST", "retrieve_future", "retrieve_future", retrieve_future),
    route("POST", "retrieve_futures", "retrieve_futures", retrieve_futures),
    route("POST", "cancel_future", "cancel_future", cancel_future),
]
