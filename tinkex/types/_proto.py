"""Protobuf codec of the Tinker wire messages (``package tinker_public``, proto3), pure Python.

The schema is written out in ``tinker_public.proto`` next to this module; field numbers follow
the Tinker wire protocol (forward_backward request/output, sample response).  The byte layer is
:mod:`tinkex.types._proto_wire`; this module maps the messages to and from the attrs types.

Arrays travel as raw little-endian bytes, so encoding and decoding are numpy calls
(``astype(..., copy=False)`` + buffer views on the way out, ``np.frombuffer`` on the way in) and
never loop over elements in Python.  numpy is imported on first use.

Malformed input raises ``ValueError`` naming the message path and field, e.g.
``ForwardBackwardRequest.data[2].loss_fn_inputs['weights'].shape: expected wire type LEN ...``.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

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
from tinkex.types._proto_wire import (
    Buffer,
    ProtoWriter,
    as_bool,
    as_bytes,
    as_double,
    as_enum,
    as_int32,
    as_int64,
    as_message,
    as_packed_int64,
    as_string,
    as_uint32,
    iter_fields,
    map_entry,
)
from tinkex.types._sampling import (
    PromptAltTokens,
    SampledSequence,
    SampleResponse,
    TopkLogprobs,
    decoded,
)
from tinkex.types._tensor import TensorData
from tinkex.types._training import (
    ForwardBackwardInput,
    ForwardBackwardOutput,
    ForwardBackwardRequest,
    ForwardRequest,
)

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

__all__ = [
    "ArrayDatum",
    "ArrayForwardBackward",
    "decode_forward_backward_arrays",
    "decode_forward_backward_output",
    "decode_forward_backward_request",
    "decode_sample_response",
    "encode_forward_backward_output",
    "encode_forward_backward_request",
    "encode_sample_response",
]

# -- enums --------------------------------------------------------------------------------------
DTYPE_UNSPECIFIED: Final = 0
DTYPE_FLOAT32: Final = 1
DTYPE_INT64: Final = 2
DTYPE_INT32: Final = 3
DTYPE_BFLOAT16: Final = 4

_D = TypeVar("_D")

_DTYPE_TO_WIRE: Final[dict[str, int]] = {"float32": DTYPE_FLOAT32, "int64": DTYPE_INT64}
_WIRE_NUMPY: Final[dict[int, str]] = {
    DTYPE_FLOAT32: "<f4",
    DTYPE_INT64: "<i8",
    DTYPE_INT32: "<i4",
    DTYPE_BFLOAT16: "<u2",
}
# Integer widths collapse to "int64" and bfloat16 to "float32" (TensorData's two dtypes).
_WIRE_LABEL: Final[dict[int, str]] = {
    DTYPE_FLOAT32: "float32",
    DTYPE_INT64: "int64",
    DTYPE_INT32: "int64",
    DTYPE_BFLOAT16: "float32",
}
_LABEL_NUMPY: Final[dict[str, str]] = {"float32": "<f4", "int64": "<i8"}
#: numpy dtype strings (native little-endian) of the two TensorData dtypes -> their label
_NUMPY_LABEL: Final[dict[str, str]] = {"<f4": "float32", "<i8": "int64"}

STOP_REASON_STOP: Final = 0
STOP_REASON_LENGTH: Final = 1
_STOP_TO_WIRE: Final[dict[str, int]] = {"stop": STOP_REASON_STOP, "length": STOP_REASON_LENGTH}
_WIRE_TO_STOP: Final[dict[int, str]] = {v: k for k, v in _STOP_TO_WIRE.items()}

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
_TENSOR_FIELDS: Final = {1: "dense", 2: "sparse_csr", 3: "dtype", 4: "shape"}
_CSR_FIELDS: Final = {1: "values", 2: "crow_indices", 3: "col_indices"}
_CONFIG_VALUE_FIELDS: Final = {1: "number", 2: "text"}
_OUTPUT_FIELDS: Final = {1: "loss_fn_output_type", 2: "loss_fn_outputs", 3: "metrics"}
_RECORD_FIELDS: Final = {1: "type_tag", 2: "fields", 3: "num_datums"}
_BATCHED_FIELDS: Final = {1: "data", 2: "offsets", 3: "dtype", 4: "trailing_shape"}
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


def _np() -> Any:
    import numpy

    return numpy


def _raw(arr: NDArray, wire: str) -> Buffer:
    """A zero-copy byte view of ``arr`` in the little-endian dtype ``wire`` (copies only when
    the dtype or layout differs)."""
    if arr.dtype.str != wire:
        arr = arr.astype(wire)
    if not arr.flags.c_contiguous:
        arr = _np().ascontiguousarray(arr)
    return arr.data.cast("B") if arr.size else b""


def _from_wire(where: str, raw: Buffer, wire_dtype: int) -> NDArray:
    """Copy a raw little-endian array into a fresh native array, widening int32 -> int64 and
    bfloat16 -> float32."""
    np = _np()
    code = _WIRE_NUMPY.get(wire_dtype)
    if code is None:
        raise ValueError(f"{where}: unsupported DType {wire_dtype}")
    itemsize = np.dtype(code).itemsize
    n = raw.nbytes if isinstance(raw, memoryview) else len(raw)
    if n % itemsize:
        raise ValueError(
            f"{where}: {n} bytes is not a multiple of the {code[1:]} item size {itemsize}"
        )
    arr = np.frombuffer(raw, dtype=code)
    out: NDArray
    if wire_dtype == DTYPE_BFLOAT16:
        out = (arr.astype(np.uint32) << 16).view(np.float32)
    elif wire_dtype == DTYPE_INT32:
        out = arr.astype(np.int64)
    else:
        out = arr.astype(_native(code))
    return out


def _native(code: str) -> Any:
    return _np().dtype(code).newbyteorder("=")


def _wrap(where: str, exc: Exception) -> ValueError:
    return ValueError(f"{where}: {exc}")


# =============================================================================================
# Tensor


def _write_tensor(td: TensorData, where: str) -> ProtoWriter:
    wire = _DTYPE_TO_WIRE.get(td.dtype)
    if wire is None:
        raise ValueError(f"{where}.dtype: cannot encode TensorData dtype {td.dtype!r}")
    values = _raw(td.values_array(), _LABEL_NUMPY[td.dtype])
    w = ProtoWriter()
    if td.sparse_crow_indices is not None:
        np = _np()
        csr = ProtoWriter()
        csr.bytes_field(1, values)
        csr.bytes_field(2, _raw(np.asarray(td.sparse_crow_indices), "<i8"))
        csr.bytes_field(3, _raw(np.asarray(td.sparse_col_indices, dtype=np.int64), "<i8"))
        w.message(2, csr)
    else:
        w.bytes_field(1, values, always=True)  # oneof member: present even when empty
    w.enum(3, wire)
    if td.shape is not None:
        w.packed_int64(4, td.shape)
    return w


def _read_tensor(data: memoryview, where: str) -> TensorData:
    label, values, shape, crow, col = _read_tensor_parts(data, where)
    try:
        if crow is not None:
            return TensorData(values, label, shape, crow, col)  # type: ignore[arg-type]
        # An empty shape is a scalar only when there is exactly one value.
        return TensorData(
            values,
            label,  # type: ignore[arg-type]
            shape if shape or values.size == 1 else None,
        )
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise _wrap(where, exc) from exc


def _read_tensor_array(data: memoryview, where: str) -> NDArray:
    """A ``Tensor`` message as one dense numpy array (CSR densified with zeros)."""
    _label, values, shape, crow, col = _read_tensor_parts(data, where)
    np = _np()
    if crow is None or col is None:
        if not shape:
            return values
        if math.prod(shape) != values.size:
            raise ValueError(f"{where}: shape {shape} does not match {values.size} values")
        reshaped: NDArray = values.reshape(shape)
        return reshaped
    if len(shape) != 2 or crow.size != shape[0] + 1 or col.size != values.size:
        raise ValueError(f"{where}: inconsistent sparse_csr indices for shape {shape}")
    if crow.size and (crow[0] != 0 or crow[-1] != values.size or np.any(np.diff(crow) < 0)):
        raise ValueError(f"{where}: sparse_csr crow_indices are not a valid CSR row index")
    if col.size and (col.min() < 0 or col.max() >= shape[1]):
        raise ValueError(f"{where}: sparse_csr col_indices out of range for shape {shape}")
    dense: NDArray = np.zeros(shape, dtype=values.dtype)
    dense[np.repeat(np.arange(shape[0]), np.diff(crow)), col] = values
    return dense


def _read_tensor_parts(
    data: memoryview, where: str
) -> tuple[str, NDArray, list[int], NDArray | None, NDArray | None]:
    """``(dtype label, values, shape, crow, col)`` of a ``Tensor``; crow/col None when dense."""
    dense: memoryview | None = None
    csr: memoryview | None = None
    dtype = DTYPE_UNSPECIFIED
    shape: list[int] = []
    for fn, wt, v in iter_fields(data, where, _TENSOR_FIELDS):
        if fn == 1:
            dense, csr = as_bytes(f"{where}.dense", wt, v), None
        elif fn == 2:
            csr, dense = as_message(f"{where}.sparse_csr", wt, v), None
        elif fn == 3:
            dtype = as_enum(f"{where}.dtype", wt, v)
        elif fn == 4:
            shape.extend(as_packed_int64(f"{where}.shape", wt, v))
    label = _WIRE_LABEL.get(dtype)
    if label is None:
        raise ValueError(f"{where}.dtype: unsupported DType {dtype}")
    try:
        if csr is not None:
            values_raw: Buffer = b""
            crow_raw: Buffer = b""
            col_raw: Buffer = b""
            for fn, wt, v in iter_fields(csr, f"{where}.sparse_csr", _CSR_FIELDS):
                if fn == 1:
                    values_raw = as_bytes(f"{where}.sparse_csr.values", wt, v)
                elif fn == 2:
                    crow_raw = as_bytes(f"{where}.sparse_csr.crow_indices", wt, v)
                elif fn == 3:
                    col_raw = as_bytes(f"{where}.sparse_csr.col_indices", wt, v)
            values = _from_wire(f"{where}.sparse_csr.values", values_raw, dtype)
            crow = _from_wire(f"{where}.sparse_csr.crow_indices", crow_raw, DTYPE_INT64)
            col = _from_wire(f"{where}.sparse_csr.col_indices", col_raw, DTYPE_INT64)
            return label, values, shape, crow, col
        values = _from_wire(f"{where}.dense", dense if dense is not None else b"", dtype)
        return label, values, shape, None, None
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise _wrap(where, exc) from exc


# =============================================================================================
# ForwardBackwardRequest


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
        entry.message(2, _write_tensor(td, f"{where}.loss_fn_inputs[{name!r}]"))
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
        raise _wrap(path, exc) from exc


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
    return _from_wire(f"{path}.tokens", raw, DTYPE_INT32)


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
        raise _wrap(path, exc) from exc


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
            inputs[key] = _read_tensor(body, path)
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
        raise _wrap(where, exc) from exc


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
        raise _wrap("ForwardBackwardRequest", exc) from exc
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
    np = _np()
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
            inputs[key] = _read_tensor_array(body, path)
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


# =============================================================================================
# ForwardBackwardOutput


def _output_signature(
    datum: dict[str, TensorData], names: Sequence[str], where: str
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    if len(datum) != len(names) or any(n not in datum for n in names):
        raise ValueError(
            f"{where}: every datum must have the same output fields; expected {sorted(names)}, "
            f"got {sorted(datum)}"
        )
    sig = []
    for name in names:
        td = datum[name]
        if td.dtype not in _DTYPE_TO_WIRE:
            raise ValueError(f"{where}[{name!r}].dtype: cannot encode {td.dtype!r}")
        shape = td.shape or []
        sig.append((td.dtype, tuple(shape[1:])))
    return tuple(sig)


def _write_batched(
    rec: ProtoWriter,
    name: str,
    parts: list[Buffer],
    offsets: NDArray,
    label: str,
    trailing: Sequence[int],
) -> None:
    """One ``fields`` entry of an ``ArrayRecord``: field ``name``, a ``BatchedTensor`` of the
    datums' values ``parts`` (joined) starting at byte ``offsets``."""
    bt = ProtoWriter()
    bt.bytes_parts(1, parts)
    bt.bytes_field(2, offsets.data.cast("B"))
    bt.enum(3, _DTYPE_TO_WIRE[label])
    bt.packed_int64(4, trailing)
    entry = ProtoWriter()
    entry.string(1, name, always=True)
    entry.message(2, bt)
    rec.message(2, entry)


def _write_record(
    datums: Sequence[dict[str, TensorData]], names: Sequence[str], type_tag: str
) -> ProtoWriter:
    np = _np()
    rec = ProtoWriter()
    rec.string(1, type_tag)
    for name in names:
        first = datums[0][name]
        wire = _LABEL_NUMPY[first.dtype]
        parts: list[Buffer] = []
        sizes = np.zeros(len(datums) + 1, dtype="<i8")
        for i, d in enumerate(datums):
            td = d[name]
            arr = td.to_numpy() if td.sparse_crow_indices is not None else td.values_array()
            part = _raw(arr, wire)
            parts.append(part)
            sizes[i + 1] = len(part)
        offsets = np.cumsum(sizes, dtype="<i8")
        _write_batched(rec, name, parts, offsets, first.dtype, (first.shape or [])[1:])
    rec.int64(3, len(datums))
    return rec


def _write_metrics(w: ProtoWriter, metrics: Mapping[str, float]) -> None:
    for key, value in metrics.items():
        entry = ProtoWriter()
        entry.string(1, key, always=True)
        entry.double(2, float(value), always=True)
        w.message(3, entry)


def encode_forward_backward_columns(
    loss_fn_output_type: str,
    lengths: NDArray,
    columns: Mapping[str, NDArray],
    metrics: Mapping[str, float],
) -> bytes:
    """Encode a ``ForwardBackwardOutput`` given as columns: datum ``i`` has ``lengths[i]``
    values of each field, and ``columns[name]`` (1-D float32 or int64) holds every datum's
    values back to back. The bytes are those of :func:`encode_forward_backward_output` for the
    per-datum ``TensorData`` of the same values (one ``ArrayRecord``), written without them.

    Raises:
        ValueError: a column that is not 1-D float32/int64 or does not hold ``sum(lengths)``
            values.
    """
    np = _np()
    w = ProtoWriter()
    w.string(1, loss_fn_output_type)
    if len(lengths):
        ends = np.cumsum(lengths, dtype="<i8")
        rec = ProtoWriter()
        rec.string(1, loss_fn_output_type)
        for name, values in columns.items():
            label = _NUMPY_LABEL.get(values.dtype.str)
            if label is None or values.ndim != 1 or values.size != int(ends[-1]):
                raise ValueError(
                    f"ForwardBackwardOutput column {name!r} must be 1-D float32/int64 with "
                    f"{int(ends[-1])} values, got {values.dtype} of shape {values.shape}"
                )
            offsets = np.zeros(len(lengths) + 1, dtype="<i8")
            offsets[1:] = ends * values.dtype.itemsize
            _write_batched(rec, name, [_raw(values, _LABEL_NUMPY[label])], offsets, label, [])
        rec.int64(3, len(lengths))
        w.message(2, rec)
    _write_metrics(w, metrics)
    return w.getvalue()


def encode_forward_backward_output(out: ForwardBackwardOutput) -> bytes:
    """Encode a ``ForwardBackwardOutput``: all datums in one ``ArrayRecord`` per run of datums
    whose fields share dtype and trailing shape (normally exactly one record).

    Every datum must carry the same output field names (ValueError otherwise).
    """
    w = ProtoWriter()
    w.string(1, out.loss_fn_output_type)
    outputs = out.loss_fn_outputs
    if outputs:
        names = list(outputs[0])
        sigs = [
            _output_signature(d, names, f"ForwardBackwardOutput.loss_fn_outputs[{i}]")
            for i, d in enumerate(outputs)
        ]
        start = 0
        for i in range(1, len(outputs) + 1):
            if i == len(outputs) or sigs[i] != sigs[start]:
                w.message(2, _write_record(outputs[start:i], names, out.loss_fn_output_type))
                start = i
    _write_metrics(w, out.metrics)
    return w.getvalue()


class _Batched(NamedTuple):
    """One ``BatchedTensor``: per-datum flat arrays (views of one array) and their shapes."""

    label: str  # the TensorData dtype
    arrays: list[NDArray]
    trailing: list[int]
    leading: list[int]  # per datum: its size / prod(trailing)


def _read_batched(data: memoryview, where: str) -> _Batched:
    """A ``BatchedTensor``, its offsets and sizes checked with numpy (no loop per datum)."""
    np = _np()
    raw: Buffer = b""
    offsets_raw: Buffer = b""
    dtype = DTYPE_UNSPECIFIED
    trailing: list[int] = []
    for fn, wt, v in iter_fields(data, where, _BATCHED_FIELDS):
        if fn == 1:
            raw = as_bytes(f"{where}.data", wt, v)
        elif fn == 2:
            offsets_raw = as_bytes(f"{where}.offsets", wt, v)
        elif fn == 3:
            dtype = as_enum(f"{where}.dtype", wt, v)
        elif fn == 4:
            trailing.extend(as_packed_int64(f"{where}.trailing_shape", wt, v))
    label = _WIRE_LABEL.get(dtype)
    if label is None:
        raise ValueError(f"{where}.dtype: unsupported DType {dtype}")
    values = _from_wire(f"{where}.data", raw, dtype)
    itemsize = np.dtype(_WIRE_NUMPY[dtype]).itemsize
    offsets = _from_wire(f"{where}.offsets", offsets_raw, DTYPE_INT64)
    if offsets.size == 0:
        return _Batched(label, [], trailing, [])
    if (
        offsets[0] < 0
        or np.any(np.diff(offsets) < 0)
        or offsets[-1] > values.size * itemsize
        or np.any(offsets % itemsize)
    ):
        raise ValueError(
            f"{where}.offsets: not increasing item-aligned byte offsets within "
            f"{values.size * itemsize} data bytes: {offsets[:8].tolist()}"
        )
    bounds = offsets // itemsize
    sizes = np.diff(bounds)
    inner = math.prod(trailing)
    bad = np.flatnonzero(sizes % inner) if inner else np.arange(sizes.size)
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{where}: datum {i} has {int(sizes[i])} values, not a multiple of the trailing "
            f"shape {trailing}"
        )
    arrays = [values[a:b] for a, b in itertools.pairwise(bounds.tolist())]
    return _Batched(label, arrays, trailing, (sizes // inner).tolist() if inner else [])


def decode_forward_backward_output(data: Buffer) -> ForwardBackwardOutput:
    """Decode ``ForwardBackwardOutput`` bytes into per-datum ``TensorData`` dicts.

    Records are concatenated in order; ``num_datums`` is authoritative (0: inferred from the
    first field); INT32 is widened to int64 and BFLOAT16 to float32; the output type keeps the
    text after the last ``:`` (``"ArrayRecord"`` when empty and there are no outputs).
    """
    where = "ForwardBackwardOutput"
    out_type = ""
    metrics: dict[str, float] = {}
    outputs: list[dict[str, TensorData]] = []
    n_records = 0
    for fn, wt, v in iter_fields(data, where, _OUTPUT_FIELDS):
        if fn == 1:
            out_type = as_string(f"{where}.loss_fn_output_type", wt, v)
        elif fn == 2:
            path = f"{where}.loss_fn_outputs[{n_records}]"
            n_records += 1
            outputs.extend(_read_record(as_message(path, wt, v), path))
        elif fn == 3:
            key, val = map_entry(as_message(f"{where}.metrics", wt, v), f"{where}.metrics")
            metrics[key] = as_double(f"{where}.metrics[{key!r}]", *val) if val else 0.0
    # Keep the bare class name, as in the JSON responses.
    out_type = out_type.rsplit(":", 1)[-1] if n_records else out_type or "ArrayRecord"
    return ForwardBackwardOutput(out_type, outputs, metrics)


def _read_record(data: memoryview, where: str) -> list[dict[str, TensorData]]:
    fields: dict[str, _Batched] = {}
    num_datums = 0
    for fn, wt, v in iter_fields(data, where, _RECORD_FIELDS):
        if fn == 1:
            as_string(f"{where}.type_tag", wt, v)
        elif fn == 2:
            key, val = map_entry(as_message(f"{where}.fields", wt, v), f"{where}.fields")
            path = f"{where}.fields[{key!r}]"
            body = as_message(path, *val) if val is not None else memoryview(b"")
            fields[key] = _read_batched(body, path)
        elif fn == 3:
            num_datums = as_int64(f"{where}.num_datums", wt, v)
    if num_datums < 0:
        raise ValueError(f"{where}.num_datums: must be >= 0, got {num_datums}")
    if num_datums == 0 and fields:
        num_datums = len(next(iter(fields.values())).arrays)
    for name, batched in fields.items():
        if len(batched.arrays) != num_datums:
            raise ValueError(
                f"{where}.fields[{name!r}].offsets: {len(batched.arrays)} datums, "
                f"num_datums is {num_datums}"
            )
    outputs: list[dict[str, TensorData]] = [{} for _ in range(num_datums)]
    trusted = TensorData._trusted
    for name, (label, arrays, trailing, leading) in fields.items():
        # Flat native arrays of ``label``'s dtype whose sizes _read_batched checked.
        for output, arr, rows in zip(outputs, arrays, leading, strict=True):
            output[name] = trusted(arr, label, [rows, *trailing])  # type: ignore[arg-type]
    return outputs


# =============================================================================================
# SampleResponse


def _write_topk(topk: TopkLogprobs, where: str) -> ProtoWriter:
    np = _np()
    ids = np.asarray(topk.token_ids)
    lps = np.asarray(topk.logprobs)
    if ids.ndim != 2 or ids.shape != lps.shape:
        raise ValueError(
            f"{where}: token_ids and logprobs must both be (length, k), got {ids.shape} and "
            f"{lps.shape}"
        )
    w = ProtoWriter()
    w.bytes_field(1, _raw(ids, "<i4"))
    w.bytes_field(2, _raw(lps, "<f4"))
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
    ids = _from_wire(f"{where}.token_ids", ids_raw, DTYPE_INT32)
    lps = _from_wire(f"{where}.logprobs", lps_raw, DTYPE_FLOAT32)
    for name, arr in (("token_ids", ids), ("logprobs", lps)):
        if arr.size != length * k:
            raise ValueError(f"{where}.{name}: {arr.size} values, expected length*k = {length}*{k}")
    np = _np()
    return TopkLogprobs(ids.reshape(length, k).astype(np.int32), lps.reshape(length, k))


def _write_sequence(seq: SampledSequence, where: str) -> ProtoWriter:
    stop = _STOP_TO_WIRE.get(seq.stop_reason)
    if stop is None:
        raise ValueError(
            f"{where}.stop_reason: must be 'stop' or 'length', got {seq.stop_reason!r}"
        )
    np = _np()
    w = ProtoWriter()
    w.enum(1, stop)
    w.bytes_field(2, _raw(np.asarray(seq.tokens_np).reshape(-1), "<i4"))
    if seq.logprobs_np is not None:
        w.bytes_field(3, _raw(np.asarray(seq.logprobs_np).reshape(-1), "<f4"), always=True)
    if seq.topk_logprobs_np is not None:
        w.message(4, _write_topk(seq.topk_logprobs_np, f"{where}.topk_sampled_logprobs"))
    return w


def _read_sequence(data: memoryview, where: str) -> SampledSequence:
    np = _np()
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
    tokens = _from_wire(f"{where}.tokens", tokens_raw, DTYPE_INT32).astype(np.int32)
    # Like the official client: an empty logprobs field reads as "no logprobs".
    logprobs = (
        _from_wire(f"{where}.logprobs", logprobs_raw, DTYPE_FLOAT32)
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
    np = _np()
    w = ProtoWriter()
    for i, seq in enumerate(resp.sequences):
        w.message(1, _write_sequence(seq, f"SampleResponse.sequences[{i}]"))
    if resp.prompt_logprobs_np is not None:
        w.bytes_field(2, _raw(np.asarray(resp.prompt_logprobs_np).reshape(-1), "<f4"), always=True)
    if resp.topk_prompt_logprobs_np is not None:
        w.message(
            3, _write_topk(resp.topk_prompt_logprobs_np, "SampleResponse.topk_prompt_logprobs")
        )
    w.int32(4, resp.prompt_cache_hit_tokens)
    if resp.target_prompt_logprobs is not None:
        w.message(
            5, _write_tensor(resp.target_prompt_logprobs, "SampleResponse.target_prompt_logprobs")
        )
    if resp.prompt_alt_tokens is not None:
        alt = ProtoWriter()
        alt.message(
            1,
            _write_tensor(resp.prompt_alt_tokens.tokens, "SampleResponse.prompt_alt_tokens.tokens"),
        )
        alt.message(
            2,
            _write_tensor(
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
            parts[fn] = _read_tensor(as_message(path, wt, v), path)
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
            target = _read_tensor(as_message(path, wt, v), path)
        elif fn == 6:
            path = f"{where}.prompt_alt_tokens"
            alt = _read_alt(as_message(path, wt, v), path)
    prompt = (
        _from_wire(f"{where}.prompt_logprobs", prompt_raw, DTYPE_FLOAT32)
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
