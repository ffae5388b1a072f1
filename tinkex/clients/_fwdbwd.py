"""Submitting forward/backward batches: chunk plan, chunk bodies, concurrent submission.

A ``forward``/``forward_backward`` call becomes one request per chunk (docs/protocol.md,
"Forward/backward"). This module builds those requests and sends them; the training client
decides *when* (in ``seq_id`` order) and combines the results. Bodies are protobuf by default
(optionally zstd-compressed), JSON when ``TINKEX_WIRE_FORMAT=json``; each submission holds its
estimated bytes on the holder's forward/backward budget while it is on the wire.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from tinkex._transport import PROTOBUF_CONTENT_TYPE, Response
from tinkex.clients._chunking import Chunk, chunk_datums
from tinkex.clients._ordered import is_clean_rejection
from tinkex.types import _training as tr
from tinkex.types._converter import from_wire, to_wire
from tinkex.types._datum import Datum

if TYPE_CHECKING:
    from tinkex.clients._holder import ClientHolder
    from tinkex.types._session import ClientConfigResponse

__all__ = ["ChunkResult", "decode_fwdbwd", "plan_chunks", "send_chunk", "submit_chunks"]


def decode_fwdbwd(response: Response) -> tr.ForwardBackwardOutput:
    """A forward/backward result from a protobuf or JSON answer."""
    if response.is_protobuf:
        from tinkex.types._proto import decode_forward_backward_output

        return decode_forward_backward_output(response.content)
    return from_wire(response.json(), tr.ForwardBackwardOutput, request="retrieve_future")


def plan_chunks(config: ClientConfigResponse, data: Sequence[Datum]) -> list[Chunk]:
    """Split a batch per the server's limits only (as ``tinker`` does).

    Cutting it finer, so that the client's encoding overlaps the server's work on earlier
    parts, does not pay: every extra request costs a POST and a poll on both sides, more than
    the overlap saves (128 x 1024 tokens as 2 x 1 MB instead of one request: ~25% more client
    CPU, ~20% more server CPU, and a longer step).
    """
    return chunk_datums(data, config.fwdbwd_max_chunk_len, config.fwdbwd_max_chunk_bytes_count)


def send_chunk(
    holder: ClientHolder,
    model_id: str,
    data: list[Datum],
    nbytes: int,
    fb_input: tr.ForwardBackwardInput,
    seq_id: int,
    forward_only: bool,
    sdk_method: str,
) -> Any:
    """Submit one chunk (``data``, ``nbytes`` estimated) as request ``seq_id`` of ``model_id``.

    Returns what ``holder.submit`` returns: the future handle and the round-trip time.
    """
    chunk_input = tr.ForwardBackwardInput(
        data=data, loss_fn=fb_input.loss_fn, loss_fn_config=fb_input.loss_fn_config
    )
    request: tr.ForwardRequest | tr.ForwardBackwardRequest
    if forward_only:
        request = tr.ForwardRequest(chunk_input, model_id, seq_id)
    else:
        request = tr.ForwardBackwardRequest(chunk_input, model_id, seq_id)
    with holder.fwdbwd_bytes().hold(nbytes):
        settings = holder.settings
        if settings.send_protobuf:
            from tinkex.types._proto import encode_forward_backward_request

            content = encode_forward_backward_request(request)
            encoding = None
            if settings.compress_fwdbwd or holder.client_config().proto_compress_fwdbwd:
                import zstandard

                content = zstandard.ZstdCompressor().compress(content)
                encoding = "zstd"
            return holder.submit(
                "/api/v1/forward_backward",
                None,
                sdk_method=sdk_method,
                content=content,
                content_type=PROTOBUF_CONTENT_TYPE,
                content_encoding=encoding,
            )
        path = "/api/v1/forward" if forward_only else "/api/v1/forward_backward"
        return holder.submit(path, to_wire(request), sdk_method=sdk_method)


#: How the result of one submitted chunk is obtained (blocking; on a worker thread).
ChunkResult = Callable[[], tr.ForwardBackwardOutput]


def submit_chunks(
    holder: ClientHolder,
    sends: list[Callable[[], Any]],
    poll: Callable[[Any], tr.ForwardBackwardOutput],
    poison: Callable[[BaseException], None],
) -> list[ChunkResult]:
    """Submit the chunks of one call; returns, per chunk, how to get its result.

    Returns once every chunk is *submitted* (so the next call's requests follow on the
    wire). A single chunk is polled by whoever asks for its result (the worker that combines
    the call's result: one job per call). Several chunks are polled on workers as soon as
    each is in. With ``parallel_fwdbwd_chunks`` they are submitted concurrently, overlapping
    the client's encoding, the transfer and the server's work on earlier chunks. Sent one by
    one, a failed chunk stops the call; the later chunks' ``seq_id``s then stay unsent, a hole
    the server waits for, so ``poison(failure)`` is called (the sender fails the client's later
    calls). Sent concurrently, every chunk is tried; ``poison`` is called when any failure
    left its outcome unknown (see :func:`~tinkex.clients._ordered.is_clean_rejection`).
    """
    if len(sends) == 1:
        return [functools.partial(poll, sends[0]())]
    if not holder.client_config().parallel_fwdbwd_chunks:
        results: list[ChunkResult] = []
        for index, send in enumerate(sends):
            try:
                sent = send()
            except BaseException as exc:
                if index + 1 < len(sends):
                    poison(exc)
                raise
            results.append(holder.run(poll, sent).result)
        return results

    def send_then_poll(send: Callable[[], Any], done: Future[None]) -> tr.ForwardBackwardOutput:
        try:
            sent = send()
        except BaseException as exc:
            done.set_exception(exc)
            raise
        done.set_result(None)
        return poll(sent)

    submitted: list[Future[None]] = []
    results = []
    for send in sends:
        done: Future[None] = Future()
        submitted.append(done)
        results.append(holder.run(send_then_poll, send, done).result)
    # Every chunk was tried: the first failure fails the call; one whose outcome is unknown
    # (not a clean rejection) may have left a hole, so it poisons too.
    failures = [exc for exc in (done.exception() for done in submitted) if exc is not None]
    unknown = [exc for exc in failures if not is_clean_rejection(exc)]
    if unknown:
        poison(unknown[0])
    if failures:
        raise failures[0]
    return results
