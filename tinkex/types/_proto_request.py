"""The ``ForwardBackwardRequest`` message of the protobuf codec, both ways.

Written from :class:`ForwardBackwardRequest`/:class:`ForwardRequest` (the client), read back to
them (:func:`decode_forward_backward_request`) or straight to numpy arrays
(:func:`decode_forward_backward_arrays`, the local server's reader).  Datums of the common
shape are written by :mod:`tinkex.types._batch_encode` and read by
:mod:`tinkex.types._batch_decode`; this module holds the general writer and reader.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from tinkex.types._batch_decode import Columns, plain_columns, plain_datum_arrays
from tinkex.types._batch_encode import write_data
from tinkex.types._datum import Datum, PromptProvenanceSpan, SampledProvenanceSpan
from tinkex.types._model_input import (
    DmelChunk,
    EncodedTextChunk,
    ImageAssetPointerChunk,
    ImageChunk,
    ModelInput,
    ModelInputChunk,
)
from tinkex.types._proto_tensor import (
    DTYPE_INT32,
    from_wire,
    lazy_numpy,
    read_tensor,
    read_tensor_array,
    wrap_error,
    write_tensor,
)
from tinkex.types._proto_wire import (
    Buffer,
    ProtoWriter,
    as_bool,
    as_bytes,
    as_double,
    as_int32,
    as_int64,
    as_message,
    as_string,
    iter_fields,
    map_entry,
)
from tinkex.types._tensor import TensorData
from tinkex.types._training import ForwardBackwardInput, ForwardBackwardRequest, ForwardRequest

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

_D = TypeVar("_D")

# Field names per message, for error messages of the wire layer.
_REQUEST_FIELDS: Final = {
    1: "model_id",
    2: "seq_id",
    3: "data",
    4: "loss_fn",
    5: "loss_fn_config",
    6: "forward_only",
    7: "loss_fn_config_v2",
}
_DATUM_FIELDS: Final = {
    1: "model_input",
    2: "loss_fn_inputs",
    3: "model_input_spans",
    4: "loss_fn_input_spans",
}
_CHUNK_FIELDS: Final = {1: "encoded_text", 2: "image", 3: "dmel"}
_IMAGE_FIELDS: Final = {1: "data", 2: "format", 3: "expected_tokens", 4: "override_dimensions"}
_SPAN_FIELDS: Final = {1: "prompt_tokens", 2: "sampled_tokens"}
_SPAN_ARM_FIELDS: Final = {1: "sequence_id", 2: "offset", 3: "length"}
_CONFIG_VALUE_FIELDS: Final = {1: "number", 2: "text"}


def _tokens_bytes(tokens: Sequence[int], where: str) -> Buffer:
    # struct.pack is ~4x faster than numpy for converting a list of Python ints.
    try:
        return struct.pack(f"<{len(tokens)}i", *tokens)
    except struct.error as exc:
        raise ValueError(f"{where}: tokens must be int32 token ids: {exc}") from None


def _write_chunk(chunk: ModelInputChunk, where: str) -> ProtoWriter:
    w = ProtoWriter()
    inner = ProtoWriter()
    if isinstance(chunk, EncodedTextChunk):
        inner.bytes_field(1, _tokens_bytes(chunk.tokens, f"{where}.tokens"))
        w.message(1, inner)
    elif isinstance(chunk, ImageChunk):
        inner.bytes_field(1, chunk.data)
        inner.string(2, chunk.format)
        if chunk.expected_tokens is not None:
            inner.int32(3, chunk.expected_tokens, always=True)
        w.message(2, inner)
    elif isinstance(chunk, DmelChunk):
        inner.bytes_field(1, chunk.dmel)
        w.message(3, inner)
    elif isinstance(chunk, ImageAssetPointerChunk):
        raise ValueError(
            f"{where}: ImageAssetPointerChunk cannot be encoded as protobuf (the wire format has "
            f"no asset pointer chunk); send the image bytes as an ImageChunk or use JSON"
        )
    else:
        raise ValueError(f"{where}: unsupported model input chunk {type(chunk).__name__}")
    return w


def _write_span(span: PromptProvenanceSpan | SampledProvenanceSpan) -> ProtoWriter:
    arm = ProtoWriter()
    arm.string(1, span.sequence_id)
    arm.int64(2, span.offset)
    arm.int64(3, span.length)
    w = ProtoWriter()
    w.message(2 if isinstance(span, SampledProvenanceSpan) else 1, arm)
    return w


def _write_datum(datum: Datum, where: str) -> ProtoWriter:
    w = ProtoWriter()
    for j, chunk in enumerate(datum.model_input.chunks):
        w.message(1, _write_chunk(chunk, f"{where}.model_input[{j}]"))
    for name, td in datum.loss_fn_inputs.items():
        entry = ProtoWriter()
        entry.string(1, name, always=True)
        entry.message(2, write_tensor(td, f"{where}.loss_fn_inputs[{name!r}]"))
        w.message(2, entry)
    for span in datum.model_input_spans or ():
        w.message(3, _write_span(span))
    for span in datum.loss_fn_input_spans or ():
        w.message(4, _write_span(span))
    return w


def encode_forward_backward_request(req: ForwardBackwardRequest | ForwardRequest) -> bytes:
    """Encode a forward_backward (or forward-only) request as ``ForwardBackwardRequest`` bytes.

    ``forward_only`` is set for a :class:`ForwardRequest`.  Numeric ``loss_fn_config`` values
    go to both the legacy ``loss_fn_config`` map and ``loss_fn_config_v2`` (``number``); string
    values only to ``loss_fn_config_v2`` (``text``).  ``seq_id=None`` is sent as 0.
    Raises ValueError for an :class:`ImageAssetPointerChunk` (not representable).
    """
    if isinstance(req, ForwardRequest):
        fwd_input, forward_only = req.forward_input, True
    else:
        fwd_input, forward_only = req.forward_backward_input, False
    w = ProtoWriter()
    w.string(1, req.model_id)
    w.int32(2, req.seq_id or 0)
    write_data(w, 3, fwd_input.data, _write_datum)
    w.string(4, fwd_input.loss_fn)
    config = fwd_input.loss_fn_config or {}
    for key, value in config.items():
        if isinstance(value, str):
            continue
        entry = ProtoWriter()
        entry.string(1, key, always=True)
        entry.double(2, float(value), always=True)
        w.message(5, entry)
    w.boolean(6, forward_only)
    for key, value in config.items():
        cv = ProtoWriter()
        if isinstance(value, str):
            cv.string(2, value, always=True)
        else:
            cv.double(1, float(value), always=True)
        entry = ProtoWriter()
        entry.string(1, key, always=True)
        entry.message(2, cv)
        w.message(7, entry)
    return w.getvalue()


def _read_span(data: memoryview, where: str) -> PromptProvenanceSpan | SampledProvenanceSpan:
    arm: tuple[int, memoryview] | None = None
    for fn, wt, v in iter_fields(data, where, _SPAN_FIELDS):
        if fn in (1, 2):
            arm = (fn, as_message(f"{where}.{_SPAN_FIELDS[fn]}", wt, v))
    if arm is None:
        raise ValueError(f"{where}: ProvenanceSpan has neither prompt_tokens nor sampled_tokens")
    kind, body = arm
    path = f"{where}.{_SPAN_FIELDS[kind]}"
    sequence_id, offset, length = "", 0, 0
    for fn, wt, v in iter_fields(body, path, _SPAN_ARM_FIELDS):
        if fn == 1:
            sequence_id = as_string(f"{path}.sequence_id", wt, v)
        elif fn == 2:
            offset = as_int64(f"{path}.offset", wt, v)
        elif fn == 3:
            length = as_int64(f"{path}.length", wt, v)
    cls = PromptProvenanceSpan if kind == 1 else SampledProvenanceSpan
    try:
        return cls(sequence_id=sequence_id, offset=offset, length=length)
    except (TypeError, ValueError) as exc:
        raise wrap_error(path, exc) from exc


def _chunk_members(data: memoryview, where: str) -> list[tuple[int, memoryview]]:
    """The set member of a ``Chunk`` oneof as ``[(field number, body)]`` (the last one wins)."""
    member: tuple[int, memoryview] | None = None
    for fn, wt, v in iter_fields(data, where, _CHUNK_FIELDS):
        if fn in (1, 2, 3):
            member = (fn, as_message(f"{where}.{_CHUNK_FIELDS[fn]}", wt, v))
    if member is None:
        raise ValueError(f"{where}: Chunk has none of encoded_text, image, dmel")
    return [member]


def _read_text_tokens(body: memoryview, path: str) -> NDArray:
    raw: Buffer = b""
    for fn, wt, v in iter_fields(body, path, {1: "tokens"}):
        if fn == 1:
            raw = as_bytes(f"{path}.tokens", wt, v)
    return from_wire(f"{path}.tokens", raw, DTYPE_INT32)


def _read_chunk(data: memoryview, where: str) -> ModelInputChunk:
    ((kind, body),) = _chunk_members(data, where)
    path = f"{where}.{_CHUNK_FIELDS[kind]}"
    try:
        if kind == 1:
            return EncodedTextChunk(tokens=_read_text_tokens(body, path).tolist())
        if kind == 2:
            image = b""
            fmt = ""
            expected: int | None = None
            for fn, wt, v in iter_fields(body, path, _IMAGE_FIELDS):
                if fn == 1:
                    image = bytes(as_bytes(f"{path}.data", wt, v))
                elif fn == 2:
                    fmt = as_string(f"{path}.format", wt, v)
                elif fn == 3:
                    expected = as_int32(f"{path}.expected_tokens", wt, v)
                elif fn == 4:  # override_dimensions: never set by the SDK, not modelled
                    as_message(f"{path}.override_dimensions", wt, v)
            return ImageChunk(data=image, format=fmt, expected_tokens=expected)  # type: ignore[arg-type]
        dmel = b""
        for fn, wt, v in iter_fields(body, path, {1: "dmel"}):
            if fn == 1:
                dmel = bytes(as_bytes(f"{path}.dmel", wt, v))
        return DmelChunk(dmel=dmel)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(path):
            raise
        raise wrap_error(path, exc) from exc


def _read_datum(data: memoryview, where: str) -> Datum:
    chunks: list[ModelInputChunk] = []
    inputs: dict[str, TensorData] = {}
    mi_spans: list[PromptProvenanceSpan | SampledProvenanceSpan] = []
    lf_spans: list[PromptProvenanceSpan | SampledProvenanceSpan] = []
    for fn, wt, v in iter_fields(data, where, _DATUM_FIELDS):
        if fn == 1:
            chunks.append(
                _read_chunk(
                    as_message(f"{where}.model_input", wt, v), f"{where}.model_input[{len(chunks)}]"
                )
            )
        elif fn == 2:
            key, val = map_entry(
                as_message(f"{where}.loss_fn_inputs", wt, v), f"{where}.loss_fn_inputs"
            )
            path = f"{where}.loss_fn_inputs[{key!r}]"
            body = as_message(path, *val) if val is not None else memoryview(b"")
            inputs[key] = read_tensor(body, path)
        elif fn == 3:
            mi_spans.append(
                _read_span(
                    as_message(f"{where}.model_input_spans", wt, v),
                    f"{where}.model_input_spans[{len(mi_spans)}]",
                )
            )
        elif fn == 4:
            lf_spans.append(
                _read_span(
                    as_message(f"{where}.loss_fn_input_spans", wt, v),
                    f"{where}.loss_fn_input_spans[{len(lf_spans)}]",
                )
            )
    has_spans = bool(mi_spans or lf_spans)
    try:
        return Datum(
            model_input=ModelInput(chunks=chunks),
            loss_fn_inputs=inputs,
            model_input_spans=mi_spans if has_spans else None,
            loss_fn_input_spans=lf_spans if has_spans else None,
        )
    except (TypeError, ValueError) as exc:
        raise wrap_error(where, exc) from exc


def _read_config_value(data: memoryview, where: str) -> float | str:
    value: float | str | None = None
    for fn, wt, v in iter_fields(data, where, _CONFIG_VALUE_FIELDS):
        if fn == 1:
            value = as_double(f"{where}.number", wt, v)
        elif fn == 2:
            value = as_string(f"{where}.text", wt, v)
    if value is None:
        raise ValueError(f"{where}: LossConfigValue has neither number nor text")
    return value


def _read_request(
    data: Buffer, read_datum: Callable[[memoryview, str], _D]
) -> tuple[str, int, list[_D], str, dict[str, float | str] | None, bool]:
    """The fields of a ``ForwardBackwardRequest``; datums are built by ``read_datum``."""
    where = "ForwardBackwardRequest"
    model_id = ""
    seq_id = 0
    datums: list[_D] = []
    loss_fn = ""
    legacy: dict[str, float | str] = {}
    v2: dict[str, float | str] = {}
    forward_only = False
    for fn, wt, v in iter_fields(data, where, _REQUEST_FIELDS):
        if fn == 1:
            model_id = as_string(f"{where}.model_id", wt, v)
        elif fn == 2:
            seq_id = as_int32(f"{where}.seq_id", wt, v)
        elif fn == 3:
            datums.append(
                read_datum(as_message(f"{where}.data", wt, v), f"{where}.data[{len(datums)}]")
            )
        elif fn == 4:
            loss_fn = as_string(f"{where}.loss_fn", wt, v)
        elif fn == 5:
            key, val = map_entry(
                as_message(f"{where}.loss_fn_config", wt, v), f"{where}.loss_fn_config"
            )
            legacy[key] = as_double(f"{where}.loss_fn_config[{key!r}]", *val) if val else 0.0
        elif fn == 6:
            forward_only = as_bool(f"{where}.forward_only", wt, v)
        elif fn == 7:
            key, val = map_entry(
                as_message(f"{where}.loss_fn_config_v2", wt, v), f"{where}.loss_fn_config_v2"
            )
            path = f"{where}.loss_fn_config_v2[{key!r}]"
            v2[key] = _read_config_value(
                as_message(path, *val) if val is not None else memoryview(b""), path
            )
    return model_id, seq_id, datums, loss_fn, v2 or legacy or None, forward_only


def decode_forward_backward_request(data: Buffer) -> ForwardBackwardRequest | ForwardRequest:
    """Decode ``ForwardBackwardRequest`` bytes; ``forward_only`` gives a :class:`ForwardRequest`.

    ``loss_fn_config_v2`` is preferred over the legacy map when present; with neither the
    config is ``None``.  Raises ValueError naming the field on malformed input.
    """
    model_id, seq_id, datums, loss_fn, config, forward_only = _read_request(data, _read_datum)
    try:
        fb_input = ForwardBackwardInput(datums, loss_fn, config)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise wrap_error("ForwardBackwardRequest", exc) from exc
    if forward_only:
        return ForwardRequest(fb_input, model_id, seq_id)
    return ForwardBackwardRequest(fb_input, model_id, seq_id)


@dataclass
class ArrayDatum:
    """A datum as plain arrays: its text tokens, dense loss inputs and provenance spans.

    ``non_text`` names the first chunk that is not encoded text (then ``tokens`` holds only
    the text before it): consumers that only handle text report it. The span lists are None
    when the datum has no provenance.
    """

    tokens: NDArray
    loss_fn_inputs: dict[str, NDArray]
    non_text: str | None = None
    model_input_spans: list[PromptProvenanceSpan | SampledProvenanceSpan] | None = None
    loss_fn_input_spans: list[PromptProvenanceSpan | SampledProvenanceSpan] | None = None


@dataclass
class ArrayForwardBackward:
    """A ``ForwardBackwardRequest`` decoded straight to numpy arrays (no attrs types)."""

    model_id: str
    seq_id: int
    loss_fn: str
    loss_fn_config: dict[str, float | str] | None
    forward_only: bool
    #: per datum; None when read as ``columns`` (then :attr:`data` makes views of them)
    datums: list[ArrayDatum] | None
    #: the data as columns, when every datum is of the common shape
    #: (``tinkex.types._batch_decode.plain_columns``); else None
    columns: Columns | None = None

    @property
    def data(self) -> list[ArrayDatum]:
        """The datums (views of :attr:`columns` when the request was read so)."""
        if self.datums is None:
            assert self.columns is not None
            self.datums = _column_datums(self.columns)
        return self.datums


def _read_datum_arrays(data: memoryview, where: str) -> ArrayDatum:
    np = lazy_numpy()
    plain = plain_datum_arrays(data)
    if plain is not None:
        return ArrayDatum(tokens=plain[0], loss_fn_inputs=plain[1])
    parts: list[NDArray] = []
    inputs: dict[str, NDArray] = {}
    non_text: str | None = None
    spans: dict[int, list[PromptProvenanceSpan | SampledProvenanceSpan]] = {3: [], 4: []}
    for fn, wt, v in iter_fields(data, where, _DATUM_FIELDS):
        if fn == 1:
            path = f"{where}.model_input[{len(parts)}]"
            for kind, body in _chunk_members(as_message(f"{where}.model_input", wt, v), path):
                if kind != 1:
                    non_text = non_text or _CHUNK_FIELDS[kind]
                elif non_text is None:
                    parts.append(_read_text_tokens(body, f"{path}.encoded_text"))
        elif fn == 2:
            key, val = map_entry(
                as_message(f"{where}.loss_fn_inputs", wt, v), f"{where}.loss_fn_inputs"
            )
            path = f"{where}.loss_fn_inputs[{key!r}]"
            body = as_message(path, *val) if val is not None else memoryview(b"")
            inputs[key] = read_tensor_array(body, path)
        elif fn in spans:
            field = f"{where}.{_DATUM_FIELDS[fn]}"
            spans[fn].append(_read_span(as_message(field, wt, v), f"{field}[{len(spans[fn])}]"))
    if len(parts) == 1:
        tokens = parts[0]
    else:
        tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    has_spans = bool(spans[3] or spans[4])
    return ArrayDatum(
        tokens=tokens,
        loss_fn_inputs=inputs,
        non_text=non_text,
        model_input_spans=spans[3] if has_spans else None,
        loss_fn_input_spans=spans[4] if has_spans else None,
    )


def decode_forward_backward_arrays(data: Buffer) -> ArrayForwardBackward:
    """Decode ``ForwardBackwardRequest`` bytes to numpy arrays (for servers; ~2x faster than
    :func:`decode_forward_backward_request`). Raises ValueError naming the field."""
    model_id, seq_id, views, loss_fn, config, forward_only = _read_request(
        data, lambda view, where: view
    )
    columns = plain_columns(views)
    datums = None
    if columns is None:
        datums = [
            _read_datum_arrays(view, f"ForwardBackwardRequest.data[{i}]")
            for i, view in enumerate(views)
        ]
    return ArrayForwardBackward(model_id, seq_id, loss_fn, config, forward_only, datums, columns)


def _column_datums(columns: Columns) -> list[ArrayDatum]:
    """Per-datum views of ``columns``."""
    bounds = [0, *itertools.accumulate(columns.lengths.tolist())]
    names = list(columns.loss_fn_inputs)
    values = list(columns.loss_fn_inputs.values())
    return [
        ArrayDatum(columns.tokens[a:b], dict(zip(names, [v[a:b] for v in values], strict=True)))
        for a, b in itertools.pairwise(bounds)
    ]
