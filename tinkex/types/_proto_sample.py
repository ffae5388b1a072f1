"""The ``SampleResponse`` message of the protobuf codec, both ways (the local server writes it,
the sampling client reads it)."""

from __future__ import annotations

from typing import Final

from tinkex.types._proto_tensor import (
    DTYPE_FLOAT32,
    DTYPE_INT32,
    from_wire,
    lazy_numpy,
    raw_view,
    read_tensor,
    write_tensor,
)
from tinkex.types._proto_wire import (
    Buffer,
    ProtoWriter,
    as_bytes,
    as_enum,
    as_int32,
    as_message,
    as_uint32,
    iter_fields,
)
from tinkex.types._sampling import (
    PromptAltTokens,
    SampledSequence,
    SampleResponse,
    TopkLogprobs,
    decoded,
)
from tinkex.types._tensor import TensorData

STOP_REASON_STOP: Final = 0
STOP_REASON_LENGTH: Final = 1
_STOP_TO_WIRE: Final[dict[str, int]] = {"stop": STOP_REASON_STOP, "length": STOP_REASON_LENGTH}
_WIRE_TO_STOP: Final[dict[int, str]] = {v: k for k, v in _STOP_TO_WIRE.items()}

# Field names per message, for error messages of the wire layer.
_SAMPLE_FIELDS: Final = {
    1: "sequences",
    2: "prompt_logprobs",
    3: "topk_prompt_logprobs",
    4: "prompt_cache_hit_tokens",
    5: "target_prompt_logprobs",
    6: "prompt_alt_tokens",
}
_SEQUENCE_FIELDS: Final = {
    1: "stop_reason",
    2: "tokens",
    3: "logprobs",
    4: "topk_sampled_logprobs",
}
_TOPK_FIELDS: Final = {1: "token_ids", 2: "logprobs", 3: "k", 4: "length"}
_ALT_FIELDS: Final = {1: "tokens", 2: "logprobs"}


def _write_topk(topk: TopkLogprobs, where: str) -> ProtoWriter:
    np = lazy_numpy()
    ids = np.asarray(topk.token_ids)
    lps = np.asarray(topk.logprobs)
    if ids.ndim != 2 or ids.shape != lps.shape:
        raise ValueError(
            f"{where}: token_ids and logprobs must both be (length, k), got {ids.shape} and "
            f"{lps.shape}"
        )
    w = ProtoWriter()
    w.bytes_field(1, raw_view(ids, "<i4"))
    w.bytes_field(2, raw_view(lps, "<f4"))
    w.uint32(3, int(ids.shape[1]))
    w.uint32(4, int(ids.shape[0]))
    return w


def _read_topk(data: memoryview, where: str) -> TopkLogprobs | None:
    ids_raw: Buffer = b""
    lps_raw: Buffer = b""
    k = length = 0
    for fn, wt, v in iter_fields(data, where, _TOPK_FIELDS):
        if fn == 1:
            ids_raw = as_bytes(f"{where}.token_ids", wt, v)
        elif fn == 2:
            lps_raw = as_bytes(f"{where}.logprobs", wt, v)
        elif fn == 3:
            k = as_uint32(f"{where}.k", wt, v)
        elif fn == 4:
            length = as_uint32(f"{where}.length", wt, v)
    if k == 0 or length == 0:
        return None
    ids = from_wire(f"{where}.token_ids", ids_raw, DTYPE_INT32)
    lps = from_wire(f"{where}.logprobs", lps_raw, DTYPE_FLOAT32)
    for name, arr in (("token_ids", ids), ("logprobs", lps)):
        if arr.size != length * k:
            raise ValueError(f"{where}.{name}: {arr.size} values, expected length*k = {length}*{k}")
    np = lazy_numpy()
    return TopkLogprobs(ids.reshape(length, k).astype(np.int32), lps.reshape(length, k))


def _write_sequence(seq: SampledSequence, where: str) -> ProtoWriter:
    stop = _STOP_TO_WIRE.get(seq.stop_reason)
    if stop is None:
        raise ValueError(
            f"{where}.stop_reason: must be 'stop' or 'length', got {seq.stop_reason!r}"
        )
    np = lazy_numpy()
    w = ProtoWriter()
    w.enum(1, stop)
    w.bytes_field(2, raw_view(np.asarray(seq.tokens_np).reshape(-1), "<i4"))
    if seq.logprobs_np is not None:
        w.bytes_field(3, raw_view(np.asarray(seq.logprobs_np).reshape(-1), "<f4"), always=True)
    if seq.topk_logprobs_np is not None:
        w.message(4, _write_topk(seq.topk_logprobs_np, f"{where}.topk_sampled_logprobs"))
    return w


def _read_sequence(data: memoryview, where: str) -> SampledSequence:
    np = lazy_numpy()
    stop = STOP_REASON_STOP
    tokens_raw: Buffer = b""
    logprobs_raw: Buffer | None = None
    topk: TopkLogprobs | None = None
    for fn, wt, v in iter_fields(data, where, _SEQUENCE_FIELDS):
        if fn == 1:
            stop = as_enum(f"{where}.stop_reason", wt, v)
        elif fn == 2:
            tokens_raw = as_bytes(f"{where}.tokens", wt, v)
        elif fn == 3:
            logprobs_raw = as_bytes(f"{where}.logprobs", wt, v)
        elif fn == 4:
            topk = _read_topk(
                as_message(f"{where}.topk_sampled_logprobs", wt, v),
                f"{where}.topk_sampled_logprobs",
            )
    reason = _WIRE_TO_STOP.get(stop)
    if reason is None:
        raise ValueError(f"{where}.stop_reason: unknown StopReason {stop}")
    tokens = from_wire(f"{where}.tokens", tokens_raw, DTYPE_INT32).astype(np.int32)
    # Like the official client: an empty logprobs field reads as "no logprobs".
    logprobs = (
        from_wire(f"{where}.logprobs", logprobs_raw, DTYPE_FLOAT32)
        if logprobs_raw is not None and len(logprobs_raw)
        else None
    )
    return decoded(
        SampledSequence,
        stop_reason=reason,
        tokens_np=tokens,
        logprobs_np=logprobs,
        topk_logprobs_np=topk,
    )


def encode_sample_response(resp: SampleResponse) -> bytes:
    """Encode a :class:`SampleResponse` (``sequence_id`` of the sequences is not on the wire)."""
    np = lazy_numpy()
    w = ProtoWriter()
    for i, seq in enumerate(resp.sequences):
        w.message(1, _write_sequence(seq, f"SampleResponse.sequences[{i}]"))
    if resp.prompt_logprobs_np is not None:
        w.bytes_field(
            2, raw_view(np.asarray(resp.prompt_logprobs_np).reshape(-1), "<f4"), always=True
        )
    if resp.topk_prompt_logprobs_np is not None:
        w.message(
            3, _write_topk(resp.topk_prompt_logprobs_np, "SampleResponse.topk_prompt_logprobs")
        )
    w.int32(4, resp.prompt_cache_hit_tokens)
    if resp.target_prompt_logprobs is not None:
        w.message(
            5, write_tensor(resp.target_prompt_logprobs, "SampleResponse.target_prompt_logprobs")
        )
    if resp.prompt_alt_tokens is not None:
        alt = ProtoWriter()
        alt.message(
            1,
            write_tensor(resp.prompt_alt_tokens.tokens, "SampleResponse.prompt_alt_tokens.tokens"),
        )
        alt.message(
            2,
            write_tensor(
                resp.prompt_alt_tokens.logprobs, "SampleResponse.prompt_alt_tokens.logprobs"
            ),
        )
        w.message(6, alt)
    return w.getvalue()


def _read_alt(data: memoryview, where: str) -> PromptAltTokens:
    parts: dict[int, TensorData] = {}
    for fn, wt, v in iter_fields(data, where, _ALT_FIELDS):
        if fn in (1, 2):
            path = f"{where}.{_ALT_FIELDS[fn]}"
            parts[fn] = read_tensor(as_message(path, wt, v), path)
    for fn, name in _ALT_FIELDS.items():
        if fn not in parts:
            raise ValueError(f"{where}.{name}: missing")
    return PromptAltTokens(parts[1], parts[2])


def decode_sample_response(data: Buffer) -> SampleResponse:
    """Decode ``SampleResponse`` bytes (sequences get ``sequence_id=None``; the client fills it).

    Empty ``prompt_logprobs``/``logprobs`` read as ``None`` and a top-k block with ``k == 0`` or
    ``length == 0`` as ``None``, as in the official client.
    """
    where = "SampleResponse"
    sequences: list[SampledSequence] = []
    prompt_raw: Buffer | None = None
    topk: TopkLogprobs | None = None
    cache_hits = 0
    target: TensorData | None = None
    alt: PromptAltTokens | None = None
    for fn, wt, v in iter_fields(data, where, _SAMPLE_FIELDS):
        if fn == 1:
            path = f"{where}.sequences[{len(sequences)}]"
            sequences.append(_read_sequence(as_message(path, wt, v), path))
        elif fn == 2:
            prompt_raw = as_bytes(f"{where}.prompt_logprobs", wt, v)
        elif fn == 3:
            topk = _read_topk(
                as_message(f"{where}.topk_prompt_logprobs", wt, v), f"{where}.topk_prompt_logprobs"
            )
        elif fn == 4:
            cache_hits = as_int32(f"{where}.prompt_cache_hit_tokens", wt, v)
        elif fn == 5:
            path = f"{where}.target_prompt_logprobs"
            target = read_tensor(as_message(path, wt, v), path)
        elif fn == 6:
            path = f"{where}.prompt_alt_tokens"
            alt = _read_alt(as_message(path, wt, v), path)
    prompt = (
        from_wire(f"{where}.prompt_logprobs", prompt_raw, DTYPE_FLOAT32)
        if prompt_raw is not None and len(prompt_raw)
        else None
    )
    return decoded(
        SampleResponse,
        sequences=sequences,
        prompt_logprobs_np=prompt,
        topk_prompt_logprobs_np=topk,
        target_prompt_logprobs=target,
        prompt_cache_hit_tokens=cache_hits,
        prompt_alt_tokens=alt,
    )
