"""Request bodies -> the server's values: body encodings, JSON/protobuf forward_backward.

``forward_backward``/``forward`` bodies (JSON, or protobuf with optional zstd) become a
:class:`FwdBwdCall` of numpy arrays, straight from the bytes (the hot path: no SDK objects in
between). Sampling extras (``target_prompt_logprobs``, ``stop``) arrive as SDK types and are
turned into arrays here. Every error is a :class:`CodecError` (a ``ValueError``) naming the
field and the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinkex.local.codec.images import image_ids
from tinkex.local.model import DatumArrays, DatumColumns

if TYPE_CHECKING:
    from tinkex.types import ModelInput, PromptProvenanceSpan, SampledProvenanceSpan, TensorData

    Span = PromptProvenanceSpan | SampledProvenanceSpan

PROTOBUF = "application/x-protobuf"
MAX_DECOMPRESSED_BYTES = 1 << 31

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "PROTOBUF",
    "BodyTooLargeError",
    "CodecError",
    "FwdBwdCall",
    "Provenance",
    "TargetIds",
    "decode_body",
    "load_json",
    "model_input_tokens",
    "parse_forward_backward",
    "prompt_tokens",
    "stop_tokens",
    "target_ids",
    "tensor_from_json",
    "wants_protobuf",
]


class CodecError(ValueError):
    """A request body that cannot be decoded; the message names the field and the value."""


@dataclass
class Provenance:
    """A datum's provenance: the runs of spans tiling its model input and its loss rows."""

    model_input: list[Span]
    loss_fn_inputs: list[Span]


@dataclass
class FwdBwdCall:
    """A decoded forward / forward_backward request."""

    model_id: str
    seq_id: int | None
    data: list[DatumArrays]
    loss_fn: str
    loss_fn_config: dict[str, float]
    forward_only: bool
    #: per datum (aligned with ``data``), None for a datum without provenance spans
    provenance: list[Provenance | None] = field(default_factory=list)
    #: ``data`` as columns (its arrays are views of them) when the body was read so; None
    #: once a datum's inputs are changed
    columns: DatumColumns | None = None


@dataclass
class TargetIds:
    """``target_prompt_logprobs`` of a sample request: dense ids (-1 = none) + CSR layout."""

    dense: npt.NDArray[np.int64]
    crow: npt.NDArray[np.int64] | None = None
    col: npt.NDArray[np.int64] | None = None

    def answer(self, logprobs: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], bool]:
        """The answer's stored values (dense, or the CSR cells) and whether it is sparse."""
        if self.crow is None or self.col is None:
            return logprobs, False
        rows = np.repeat(np.arange(self.dense.shape[0]), np.diff(self.crow))
        return logprobs[rows, self.col], True


def wants_protobuf(accept: str) -> bool:
    """True when the ``Accept`` header asks for protobuf."""
    return PROTOBUF in accept.lower()


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BodyTooLargeError(CodecError):
    """A compressed body that decompresses beyond the size limit (answered with 413)."""


def decode_body(body: bytes, content_encoding: str, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Undo ``Content-Encoding`` (``zstd``, ``gzip``, ``deflate`` or none).

    Decompression stops once the output exceeds ``limit`` bytes (never buffering much more).

    Raises:
        BodyTooLargeError: the decompressed body is larger than ``limit``.
        CodecError: an unknown encoding or corrupt data.
    """
    encoding = content_encoding.strip().lower()
    if not encoding or encoding == "identity":
        return body
    too_large = BodyTooLargeError(
        f"{encoding}-compressed request body decompresses beyond the limit of {limit} bytes"
    )
    try:
        if encoding == "zstd":
            import zstandard

            parts: list[bytes] = []
            size = 0
            with zstandard.ZstdDecompressor().stream_reader(
                body, read_across_frames=True
            ) as reader:
                while chunk := reader.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise too_large
                    parts.append(chunk)
            return b"".join(parts)
        if encoding in ("gzip", "deflate"):
            import zlib

            inflater = zlib.decompressobj(31 if encoding == "gzip" else 15)
            data = inflater.decompress(body, limit + 1)
            if len(data) > limit:
                raise too_large
            if not inflater.eof:
                raise CodecError(f"{encoding}-compressed request body is truncated")
            return data
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"cannot decode {encoding}-compressed body: {exc}") from None
    raise CodecError(f"unsupported Content-Encoding {content_encoding!r} (use zstd or none)")


def load_json(body: bytes) -> Any:
    """Parse a JSON body. Raises CodecError on malformed JSON."""
    try:
        return json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"request body is not valid JSON: {exc}") from None


# --- JSON pieces -------------------------------------------------------------------------------

_DTYPES = {"int64": np.int64, "float32": np.float32, "int32": np.int32, "float64": np.float64}


def tensor_from_json(value: Any, where: str, *, sparse_fill: float = 0) -> npt.NDArray[Any]:
    """A ``TensorData`` JSON object (dense or sparse CSR) or a plain list -> numpy array.

    Cells a sparse tensor does not list read as ``sparse_fill``.
    """
    if isinstance(value, list):
        array = np.asarray(value)
        if array.dtype == object:
            raise CodecError(f"{where} must be a list of numbers, got {_short(value)}")
        return array
    if not isinstance(value, Mapping):
        raise CodecError(f"{where} must be a TensorData object or a list, got {_short(value)}")
    data = value.get("data")
    if not isinstance(data, list):
        raise CodecError(f"{where}.data must be a list of numbers, got {_short(data)}")
    dtype_name = value.get("dtype", "float32")
    if dtype_name not in _DTYPES:
        raise CodecError(f"{where}.dtype must be int64 or float32, got {dtype_name!r}")
    try:
        flat = np.asarray(data, dtype=_DTYPES[dtype_name])
    except (TypeError, ValueError):
        raise CodecError(f"{where}.data must hold numbers of dtype {dtype_name}") from None
    shape: Any = value.get("shape")
    crow = value.get("sparse_crow_indices")
    col = value.get("sparse_col_indices")
    if crow is not None or col is not None:
        if not _is_shape(shape) or len(shape) != 2:
            raise CodecError(
                f"{where}.shape must be [rows, cols] for a sparse tensor, got {shape!r}"
            )
        crow_a, col_a = _csr_indices(crow, col, shape, flat.size, where)
        return _densify(flat, shape, crow_a, col_a, sparse_fill)
    if shape is not None:
        if not _is_shape(shape):
            raise CodecError(f"{where}.shape must be a list of non-negative ints, got {shape!r}")
        if math.prod(shape) != flat.size:
            raise CodecError(
                f"{where}.shape {shape} does not match the {flat.size} values of {where}.data"
            )
        flat = flat.reshape(shape)
    return flat


def _is_shape(shape: Any) -> bool:
    return isinstance(shape, list) and all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    )


def _densify(
    values: npt.NDArray[Any],
    shape: list[int],
    crow: npt.NDArray[np.int64],
    col: npt.NDArray[np.int64],
    fill: float,
) -> npt.NDArray[Any]:
    rows, cols = shape
    dense = np.full((rows, cols), fill, dtype=values.dtype)
    dense[np.repeat(np.arange(rows), np.diff(crow)), col] = values
    return dense


def _csr_indices(
    crow: Any, col: Any, shape: list[int], nnz: int, where: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Validated CSR index arrays of a sparse ``[rows, cols]`` tensor with ``nnz`` values."""
    try:
        crow_a = np.asarray(crow, dtype=np.int64).reshape(-1)
        col_a = np.asarray(col, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise CodecError(
            f"{where}.sparse_crow_indices/sparse_col_indices must be lists of ints"
        ) from None
    if (
        crow_a.size == 0
        or crow_a[0] != 0
        or crow_a[-1] != nnz
        or np.any(np.diff(crow_a) < 0)
        or col_a.size != nnz
        or (col_a.size and int(col_a.min()) < 0)
    ):
        raise CodecError(
            f"{where} has invalid sparse CSR indices: sparse_crow_indices must rise from 0 to "
            f"the {nnz} stored values and sparse_col_indices must hold {nnz} ids >= 0"
        )
    rows, cols = shape
    if crow_a.shape != (rows + 1,) or (col_a.size and int(col_a.max()) >= cols):
        raise CodecError(
            f"{where} has sparse CSR indices inconsistent with its shape {shape} "
            f"(sparse_crow_indices needs {rows + 1} entries, sparse_col_indices < {cols})"
        )
    return crow_a, col_a


def target_ids(tensor: TensorData, where: str) -> TargetIds:
    """``target_prompt_logprobs`` of a sample request (int64, dense or CSR; -1 = no target)."""
    if tensor.dtype != "int64":
        raise CodecError(f"{where}.dtype must be int64 (token ids), got {tensor.dtype!r}")
    shape = list(tensor.shape or [])
    if len(shape) != 2:
        raise CodecError(f"{where} must be 2-D [len(prompt) - 1, K], got shape {shape}")
    values = np.asarray(tensor.values_array(), dtype=np.int64)
    if not tensor.is_sparse:
        return TargetIds(values.reshape(shape))
    crow, col = _csr_indices(
        tensor.sparse_crow_indices, tensor.sparse_col_indices, shape, values.size, where
    )
    return TargetIds(_densify(values, shape, crow, col, -1), crow, col)


def prompt_tokens(prompt: ModelInput, where: str = "prompt") -> npt.NDArray[np.int64]:
    """Token ids of a ``ModelInput`` (text chunks, and images as :mod:`.images` reads them)."""
    from tinkex.types import EncodedTextChunk, ImageAssetPointerChunk, ImageChunk

    parts: list[npt.NDArray[np.int64]] = []
    for i, chunk in enumerate(prompt.chunks):
        here = f"{where}.chunks[{i}]"
        if isinstance(chunk, EncodedTextChunk):
            parts.append(np.asarray(chunk.tokens, dtype=np.int64))
        elif isinstance(chunk, ImageChunk):
            parts.append(_image(chunk.data, chunk.format, chunk.expected_tokens, here))
        elif isinstance(chunk, ImageAssetPointerChunk):
            location = chunk.location.encode()
            parts.append(_image(location, chunk.format, chunk.expected_tokens, here, inline=False))
        else:
            raise CodecError(f"{here}.type {chunk.type!r} is not supported by the local model")
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _image(
    content: bytes, fmt: str, expected: int | None, where: str, *, inline: bool = True
) -> npt.NDArray[np.int64]:
    try:
        return image_ids(content, fmt, expected, where, inline=inline)
    except ValueError as exc:
        raise CodecError(str(exc)) from None


def _json_image(chunk: Mapping[str, Any], kind: str, where: str) -> npt.NDArray[np.int64]:
    """The ids of an ``image`` / ``image_asset_pointer`` chunk in JSON."""
    expected = chunk.get("expected_tokens")
    if expected is not None and (not isinstance(expected, int) or isinstance(expected, bool)):
        raise CodecError(f"{where}.expected_tokens must be an int or null, got {_short(expected)}")
    fmt = str(chunk.get("format"))
    if kind == "image_asset_pointer":
        location = chunk.get("location")
        if not isinstance(location, str):
            raise CodecError(f"{where}.location must be a string, got {_short(location)}")
        return _image(location.encode(), fmt, expected, where, inline=False)
    data = chunk.get("data")
    try:
        content = base64.b64decode(data if isinstance(data, str) else b"?", validate=True)
    except (binascii.Error, ValueError):
        raise CodecError(f"{where}.data must be base64 text, got {_short(data)}") from None
    return _image(content, fmt, expected, where)


def stop_tokens(
    stop: str | Sequence[str] | Sequence[int] | None, where: str
) -> tuple[list[int] | None, list[str]]:
    """``SamplingParams.stop`` -> ``(token_ids or None, strings)``.

    ``None`` -> ``(None, [])`` (default EOS); ``[]`` -> ``([], [])`` (never stop early);
    a string or list of strings -> ``(None, strings)``; a list of ints -> ``(ids, [])``.
    """
    if stop is None:
        return None, []
    strings = [stop] if isinstance(stop, str) else stop
    if not strings:
        return [], []
    if all(isinstance(v, str) for v in strings):
        if any(not v for v in strings):
            raise CodecError(f"{where} must not contain empty strings, got {_short(stop)}")
        return None, [str(v) for v in strings]
    return [int(v) for v in strings], []


def model_input_tokens(value: Any, where: str) -> npt.NDArray[np.int64]:
    """Token ids of a ``ModelInput`` JSON object ``{"chunks": [...]}`` (text chunks only)."""
    if isinstance(value, Mapping):
        chunks = value.get("chunks")
    elif isinstance(value, list):
        chunks = value
    else:
        raise CodecError(f"{where} must be a ModelInput object with chunks, got {_short(value)}")
    if not isinstance(chunks, list):
        raise CodecError(f"{where}.chunks must be a list, got {_short(chunks)}")
    parts: list[Any] = []
    for i, chunk in enumerate(chunks):
        here = f"{where}.chunks[{i}]"
        if not isinstance(chunk, Mapping):
            raise CodecError(f"{here} must be an object, got {_short(chunk)}")
        kind = chunk.get("type", "encoded_text")
        if kind in ("image", "image_asset_pointer"):
            parts.append(_json_image(chunk, kind, here).tolist())
            continue
        if kind != "encoded_text":
            raise CodecError(
                f"{here}.type {kind!r} is not supported by the local model (encoded_text, "
                "image and image_asset_pointer are)"
            )
        tokens = chunk.get("tokens")
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise CodecError(f"{here}.tokens must be a list of ints, got {_short(tokens)}")
        parts.append(tokens)
    flat = [t for part in parts for t in part]
    return np.asarray(flat, dtype=np.int64)


def _datum_from_json(value: Any, where: str) -> tuple[DatumArrays, Provenance | None]:
    if not isinstance(value, Mapping):
        raise CodecError(f"{where} must be a Datum object, got {_short(value)}")
    tokens = model_input_tokens(value.get("model_input"), f"{where}.model_input")
    inputs = value.get("loss_fn_inputs", {})
    if not isinstance(inputs, Mapping):
        raise CodecError(f"{where}.loss_fn_inputs must be an object, got {_short(inputs)}")
    arrays = {
        str(name): tensor_from_json(tensor, f"{where}.loss_fn_inputs.{name}")
        for name, tensor in inputs.items()
    }
    provenance = None
    if value.get("model_input_spans") is not None or value.get("loss_fn_input_spans") is not None:
        provenance = Provenance(
            _spans_from_json(value.get("model_input_spans"), f"{where}.model_input_spans"),
            _spans_from_json(value.get("loss_fn_input_spans"), f"{where}.loss_fn_input_spans"),
        )
    return DatumArrays(tokens=tokens, loss_inputs=arrays), provenance


def _spans_from_json(value: Any, where: str) -> list[Span]:
    """Provenance spans ``[{"sequence_id", "offset", "length", "type"}, ...]``."""
    from tinkex.types import PromptProvenanceSpan, SampledProvenanceSpan

    if value is None:
        return []
    if not isinstance(value, list):
        raise CodecError(f"{where} must be a list of provenance spans, got {_short(value)}")
    spans: list[Span] = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind not in ("prompt_tokens", "sampled_tokens"):
            raise CodecError(
                f"{here} must be a span of type 'prompt_tokens' or 'sampled_tokens', "
                f"got {_short(item)}"
            )
        cls = PromptProvenanceSpan if kind == "prompt_tokens" else SampledProvenanceSpan
        try:
            spans.append(
                cls(
                    sequence_id=item.get("sequence_id"),
                    offset=item.get("offset", 0),
                    length=item.get("length"),
                )
            )
        except (TypeError, ValueError) as exc:
            raise CodecError(f"{here}: {exc}") from None
    return spans


def _config(value: Any, where: str) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise CodecError(f"{where} must be an object of numbers, got {_short(value)}")
    config: dict[str, float] = {}
    for key, item in value.items():
        if isinstance(item, Mapping) and "number" in item:  # v2 {"number": x}
            item = item["number"]
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise CodecError(f"{where}.{key} must be a number, got {_short(item)}")
        config[str(key)] = float(item)
    return config


def _seq_id(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CodecError(f"{where} must be a non-negative int, got {_short(value)}")
    return value


def _fwdbwd_from_json(obj: Any, forward_only_endpoint: bool) -> FwdBwdCall:
    if not isinstance(obj, Mapping):
        raise CodecError(f"request body must be a JSON object, got {_short(obj)}")
    key = "forward_input" if "forward_input" in obj else "forward_backward_input"
    forward_only = key == "forward_input" or forward_only_endpoint
    payload = obj.get(key)
    if not isinstance(payload, Mapping):
        expected = "forward_input" if forward_only_endpoint else "forward_backward_input"
        raise CodecError(f"{expected} must be an object, got {_short(payload)}")
    model_id = obj.get("model_id")
    if not isinstance(model_id, str) or not model_id:
        raise CodecError(f"model_id must be a non-empty string, got {_short(model_id)}")
    data = payload.get("data")
    if not isinstance(data, list):
        raise CodecError(f"{key}.data must be a list of Datum, got {_short(data)}")
    loss_fn = payload.get("loss_fn")
    if not isinstance(loss_fn, str):
        raise CodecError(f"{key}.loss_fn must be a string, got {_short(loss_fn)}")
    datums = [_datum_from_json(d, f"{key}.data[{i}]") for i, d in enumerate(data)]
    return FwdBwdCall(
        model_id=model_id,
        seq_id=_seq_id(obj.get("seq_id"), "seq_id"),
        data=[datum for datum, _ in datums],
        loss_fn=loss_fn,
        loss_fn_config=_config(payload.get("loss_fn_config"), f"{key}.loss_fn_config"),
        forward_only=bool(payload.get("forward_only", forward_only)),
        provenance=[provenance for _, provenance in datums],
    )


# --- protobuf pieces ---------------------------------------------------------------------------


def _fwdbwd_from_proto(body: bytes) -> FwdBwdCall:
    from tinkex.types import ForwardRequest, _proto

    try:
        request = _proto.decode_forward_backward_arrays(body)
    except ValueError as exc:
        raise CodecError(f"malformed protobuf ForwardBackwardRequest: {exc}") from None
    config = _proto_config(request.loss_fn_config)
    if request.columns is not None:  # plain datums: no per-datum step but views
        columns = DatumColumns(*request.columns)
        return FwdBwdCall(
            model_id=request.model_id,
            seq_id=request.seq_id,
            data=columns.datums(),
            loss_fn=request.loss_fn,
            loss_fn_config=config,
            forward_only=request.forward_only,
            provenance=[None] * len(columns.lengths),
            columns=columns,
        )
    data: list[DatumArrays] = []
    provenance: list[Provenance | None] = []
    typed = None  # the request as SDK types, decoded only when a datum has an image
    for i, datum in enumerate(request.data):
        tokens = datum.tokens.astype(np.int64, copy=False)
        if datum.non_text is not None:
            if typed is None:
                try:
                    typed = _proto.decode_forward_backward_request(body)
                except ValueError as exc:
                    raise CodecError(f"malformed protobuf ForwardBackwardRequest: {exc}") from None
            inputs = (
                typed.forward_input
                if isinstance(typed, ForwardRequest)
                else typed.forward_backward_input
            )
            model_input = inputs.data[i].model_input
            tokens = prompt_tokens(model_input, f"data[{i}].model_input")
        data.append(DatumArrays(tokens=tokens, loss_inputs=dict(datum.loss_fn_inputs)))
        spans = (datum.model_input_spans, datum.loss_fn_input_spans)
        provenance.append(
            None
            if spans == (None, None)
            else Provenance(list(spans[0] or []), list(spans[1] or []))
        )
    return FwdBwdCall(
        model_id=request.model_id,
        seq_id=request.seq_id,
        data=data,
        loss_fn=request.loss_fn,
        loss_fn_config=config,
        forward_only=request.forward_only,
        provenance=provenance,
    )


def _proto_config(value: Mapping[str, float | str] | None) -> dict[str, float]:
    config: dict[str, float] = {}
    for key, item in dict(value or {}).items():
        if isinstance(item, int | float) and not isinstance(item, bool):
            config[str(key)] = float(item)
        else:
            raise CodecError(f"loss_fn_config.{key} must be a number, got {_short(item)}")
    return config


def parse_forward_backward(
    body: bytes,
    content_type: str,
    content_encoding: str,
    *,
    forward_only_endpoint: bool,
    limit: int = MAX_DECOMPRESSED_BYTES,
) -> FwdBwdCall:
    """Decode a forward(_backward) request body (JSON or protobuf, maybe zstd-compressed).

    Raises:
        BodyTooLargeError: the body decompresses beyond ``limit`` bytes.
        CodecError: malformed body; the message names the field.
    """
    raw = decode_body(body, content_encoding, limit)
    if PROTOBUF in content_type.lower():
        call = _fwdbwd_from_proto(raw)
        if forward_only_endpoint:
            call.forward_only = True
        return call
    return _fwdbwd_from_json(load_json(raw), forward_only_endpoint)
