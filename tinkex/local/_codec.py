"""The one adapter between wire bodies and the server's internal values.

Requests: ``forward_backward``/``forward`` bodies (JSON, or protobuf with optional zstd) become a
:class:`FwdBwdCall` of numpy arrays; JSON model inputs and tensors are parsed here too.
Results: :class:`FwdBwdPayload` and :class:`SamplePayload` are encoded as JSON, or as protobuf
when the ``Accept`` header asks for ``application/x-protobuf`` (wire doc §8.3, §9.3).
Every parse error is a :class:`CodecError` (a ``ValueError``) naming the field and the value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tinkex.local.model import DatumArrays, PromptScores, SampleOutput

PROTOBUF = "application/x-protobuf"
MAX_DECOMPRESSED_BYTES = 1 << 31

__all__ = [
    "PROTOBUF",
    "BodyTooLargeError",
    "CodecError",
    "FwdBwdCall",
    "FwdBwdPayload",
    "SamplePayload",
    "TargetIds",
    "decode_body",
    "encode_fwdbwd",
    "encode_result",
    "result_size",
    "encode_sample",
    "model_input_tokens",
    "parse_forward_backward",
    "target_ids_from_json",
    "tensor_from_json",
    "wants_protobuf",
]


class CodecError(ValueError):
    """A request body that cannot be decoded; the message names the field and the value."""


@dataclass
class FwdBwdCall:
    """A decoded forward / forward_backward request."""

    model_id: str
    seq_id: int | None
    data: list[DatumArrays]
    loss_fn: str
    loss_fn_config: dict[str, float]
    forward_only: bool


@dataclass
class FwdBwdPayload:
    """The result of a forward / forward_backward request."""

    outputs: list[dict[str, npt.NDArray[Any]]]
    metrics: dict[str, float]
    loss_fn_output_type: str = "ArrayRecord"


@dataclass
class SamplePayload:
    """The result of an asample request."""

    sequences: list[SampleOutput]
    sequence_ids: list[str]
    prompt_scores: PromptScores | None = None
    prompt_logprobs: bool = False
    topk_prompt_logprobs: int = 0
    #: the request's target_prompt_logprobs layout (the answer has the same), when asked for
    targets: TargetIds | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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
    shape = value.get("shape")
    crow = value.get("sparse_crow_indices")
    col = value.get("sparse_col_indices")
    if crow is not None or col is not None:
        crow_a, col_a = _csr_indices(value, flat.size, where)
        rows, cols = int(value["shape"][0]), int(value["shape"][1])
        if crow_a.shape != (rows + 1,) or (col_a.size and int(col_a.max()) >= cols):
            raise CodecError(
                f"{where} has sparse CSR indices inconsistent with its shape {shape} "
                f"(sparse_crow_indices needs {rows + 1} entries, sparse_col_indices < {cols})"
            )
        dense = np.full((rows, cols), sparse_fill, dtype=flat.dtype)
        dense[np.repeat(np.arange(rows), np.diff(crow_a)), col_a] = flat
        return dense
    if shape is not None:
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise CodecError(f"{where}.shape must be a list of non-negative ints, got {shape!r}")
        if math.prod(shape) != flat.size:
            raise CodecError(
                f"{where}.shape {shape} does not match the {flat.size} values of {where}.data"
            )
        flat = flat.reshape(shape)
    return flat


def _csr_indices(
    value: Mapping[str, Any], nnz: int, where: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    crow, col = value.get("sparse_crow_indices"), value.get("sparse_col_indices")
    shape = value.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise CodecError(f"{where}.shape must be [rows, cols] for a sparse tensor, got {shape!r}")
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
    return crow_a, col_a


def target_ids_from_json(value: Any, where: str) -> TargetIds:
    """``target_prompt_logprobs`` (int64 TensorData, dense or CSR; -1 = no target)."""
    if not isinstance(value, Mapping):
        raise CodecError(f"{where} must be a TensorData object, got {_short(value)}")
    if value.get("dtype", "int64") != "int64":
        raise CodecError(f"{where}.dtype must be int64 (token ids), got {value.get('dtype')!r}")
    dense = tensor_from_json({**value, "dtype": "int64"}, where, sparse_fill=-1)
    if dense.ndim != 2:
        raise CodecError(f"{where} must be 2-D [len(prompt) - 1, K], got shape {list(dense.shape)}")
    if value.get("sparse_crow_indices") is None:
        return TargetIds(dense.astype(np.int64))
    crow, col = _csr_indices(value, int(np.asarray(value.get("data")).size), where)
    return TargetIds(dense.astype(np.int64), crow, col)


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
        if kind != "encoded_text":
            raise CodecError(
                f"{here}.type {kind!r} is not supported by the local model (only encoded_text)"
            )
        tokens = chunk.get("tokens")
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            raise CodecError(f"{here}.tokens must be a list of ints, got {_short(tokens)}")
        parts.append(tokens)
    flat = [t for part in parts for t in part]
    return np.asarray(flat, dtype=np.int64)


def _datum_from_json(value: Any, where: str) -> DatumArrays:
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
    return DatumArrays(tokens=tokens, loss_inputs=arrays)


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
    return FwdBwdCall(
        model_id=model_id,
        seq_id=_seq_id(obj.get("seq_id"), "seq_id"),
        data=[_datum_from_json(d, f"{key}.data[{i}]") for i, d in enumerate(data)],
        loss_fn=loss_fn,
        loss_fn_config=_config(payload.get("loss_fn_config"), f"{key}.loss_fn_config"),
        forward_only=bool(payload.get("forward_only", forward_only)),
    )


# --- protobuf pieces ---------------------------------------------------------------------------


def _fwdbwd_from_proto(body: bytes) -> FwdBwdCall:
    from tinkex.types import _proto

    try:
        request = _proto.decode_forward_backward_arrays(body)
    except ValueError as exc:
        raise CodecError(f"malformed protobuf ForwardBackwardRequest: {exc}") from None
    data: list[DatumArrays] = []
    for i, datum in enumerate(request.data):
        if datum.non_text is not None:
            raise CodecError(
                f"data[{i}].model_input has a {datum.non_text} chunk; the local model supports "
                "only encoded_text chunks"
            )
        data.append(
            DatumArrays(
                tokens=datum.tokens.astype(np.int64, copy=False),
                loss_inputs=dict(datum.loss_fn_inputs),
            )
        )
    config: dict[str, float] = {}
    for key, value in dict(request.loss_fn_config or {}).items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            config[str(key)] = float(value)
        else:
            raise CodecError(f"loss_fn_config.{key} must be a number, got {_short(value)}")
    return FwdBwdCall(
        model_id=request.model_id,
        seq_id=request.seq_id,
        data=data,
        loss_fn=request.loss_fn,
        loss_fn_config=config,
        forward_only=request.forward_only,
    )


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


# --- results -----------------------------------------------------------------------------------


def _finite_or_none(values: npt.NDArray[Any]) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def _tensor_json(array: npt.NDArray[Any]) -> dict[str, Any]:
    if np.issubdtype(array.dtype, np.integer):
        return {
            "data": array.astype(np.int64).reshape(-1).tolist(),
            "dtype": "int64",
            "shape": list(array.shape),
        }
    return {
        "data": array.astype(np.float32).reshape(-1).tolist(),
        "dtype": "float32",
        "shape": list(array.shape),
    }


def encode_fwdbwd(payload: FwdBwdPayload, protobuf: bool) -> tuple[bytes, str]:
    """``(body, content_type)`` of a forward(_backward) result."""
    if protobuf:
        from tinkex.types import ForwardBackwardOutput, TensorData, _proto

        output = ForwardBackwardOutput(
            loss_fn_output_type=payload.loss_fn_output_type,
            loss_fn_outputs=[
                {name: TensorData.from_numpy(array) for name, array in out.items()}
                for out in payload.outputs
            ],
            metrics=dict(payload.metrics),
        )
        return bytes(_proto.encode_forward_backward_output(output)), PROTOBUF
    obj = {
        "loss_fn_output_type": payload.loss_fn_output_type,
        "loss_fn_outputs": [
            {name: _tensor_json(array) for name, array in out.items()} for out in payload.outputs
        ],
        "metrics": dict(payload.metrics),
    }
    return json.dumps(obj, separators=(",", ":")).encode(), "application/json"


def _topk_rows(scores: PromptScores, k: int) -> list[list[tuple[int, float]] | None] | None:
    if scores.topk_ids is None or scores.topk_logprobs is None or k <= 0:
        return None
    rows: list[list[tuple[int, float]] | None] = []
    for i in range(scores.topk_ids.shape[0]):
        if i == 0:
            rows.append(None)
            continue
        rows.append(
            [
                (int(t), float(lp))
                for t, lp in zip(scores.topk_ids[i], scores.topk_logprobs[i], strict=True)
                if int(t) >= 0
            ]
        )
    return rows


def _sequence_topk_rows(seq: SampleOutput) -> list[list[list[Any]]] | None:
    if seq.topk_ids is None or seq.topk_logprobs is None:
        return None
    return [
        [[t, lp] for t, lp in zip(ids, lps, strict=True)]
        for ids, lps in zip(seq.topk_ids.tolist(), seq.topk_logprobs.tolist(), strict=True)
    ]


def _target_answer(payload: SamplePayload) -> tuple[npt.NDArray[np.float32], bool] | None:
    scores = payload.prompt_scores
    if payload.targets is None or scores is None or scores.target_logprobs is None:
        return None
    return payload.targets.answer(scores.target_logprobs)


def encode_sample(payload: SamplePayload, protobuf: bool) -> tuple[bytes, str]:
    """``(body, content_type)`` of an asample result."""
    scores = payload.prompt_scores
    prompt_lps = scores.logprobs if (scores is not None and payload.prompt_logprobs) else None
    topk = _topk_rows(scores, payload.topk_prompt_logprobs) if scores is not None else None
    target = _target_answer(payload)
    targets = payload.targets
    alt = (
        (scores.alt_tokens, scores.alt_logprobs)
        if scores is not None and scores.alt_tokens is not None
        else None
    )
    if protobuf:
        from tinkex.types import (
            PromptAltTokens,
            SampledSequence,
            SampleResponse,
            TensorData,
            TopkLogprobs,
            _proto,
        )
        from tinkex.types._sampling import TOPK_EMPTY_LOGPROB

        target_tensor = None
        if target is not None and targets is not None:
            values, sparse = target
            target_tensor = TensorData(
                np.asarray(values, np.float32).reshape(-1),
                "float32",
                list(targets.dense.shape),
                targets.crow if sparse else None,
                targets.col if sparse else None,
            )
        alt_message = None
        if alt is not None and alt[1] is not None:
            alt_message = PromptAltTokens(
                TensorData.from_numpy(np.asarray(alt[0], np.int64)),
                TensorData.from_numpy(np.asarray(alt[1], np.float32)),
            )

        topk_message = None
        if scores is not None and topk is not None and scores.topk_ids is not None:
            ids = np.asarray(scores.topk_ids, dtype=np.int64).copy()
            lps = np.asarray(scores.topk_logprobs, dtype=np.float32).copy()
            empty = (ids < 0) | ~np.isfinite(lps)
            ids[empty] = 0
            lps[empty] = TOPK_EMPTY_LOGPROB
            topk_message = TopkLogprobs(ids.astype(np.int32), lps)
        response = SampleResponse(
            sequences=[
                SampledSequence(
                    stop_reason=seq.stop_reason,
                    tokens_np=np.asarray(seq.tokens, dtype=np.int32),
                    logprobs_np=np.asarray(seq.logprobs, dtype=np.float32),
                    topk_logprobs_np=TopkLogprobs(
                        np.asarray(seq.topk_ids, np.int32),
                        np.asarray(seq.topk_logprobs, np.float32),
                    )
                    if seq.topk_ids is not None and seq.topk_logprobs is not None
                    else None,
                )
                for seq in payload.sequences
            ],
            prompt_logprobs_np=np.asarray(prompt_lps, dtype=np.float32)
            if prompt_lps is not None
            else None,
            topk_prompt_logprobs_np=topk_message,
            target_prompt_logprobs=target_tensor,
            prompt_alt_tokens=alt_message,
        )
        return bytes(_proto.encode_sample_response(response)), PROTOBUF
    sequences: list[dict[str, Any]] = []
    for seq, seq_id in zip(payload.sequences, payload.sequence_ids, strict=False):
        item: dict[str, Any] = {
            "stop_reason": seq.stop_reason,
            "tokens": [int(t) for t in seq.tokens],
            "logprobs": _finite_or_none(np.asarray(seq.logprobs)),
            "sequence_id": seq_id,
        }
        rows = _sequence_topk_rows(seq)
        if rows is not None:
            item["topk_logprobs"] = rows
        sequences.append(item)
    obj: dict[str, Any] = {
        "type": "sample",
        "sequences": sequences,
        "prompt_logprobs": _finite_or_none(np.asarray(prompt_lps))
        if prompt_lps is not None
        else None,
        "topk_prompt_logprobs": [
            [[t, lp] for t, lp in row] if row is not None else None for row in topk
        ]
        if topk is not None
        else None,
        "prompt_cache_hit_tokens": 0,
    }
    if target is not None and targets is not None:
        values, sparse = target
        tensor = {
            "data": np.asarray(values, np.float32).reshape(-1).tolist(),
            "dtype": "float32",
            "shape": list(targets.dense.shape),
        }
        if sparse and targets.crow is not None and targets.col is not None:
            tensor["sparse_crow_indices"] = targets.crow.tolist()
            tensor["sparse_col_indices"] = targets.col.tolist()
        obj["target_prompt_logprobs"] = tensor
    if alt is not None and alt[1] is not None:
        obj["prompt_alt_tokens"] = {
            "tokens": _tensor_json(np.asarray(alt[0], np.int64)),
            "logprobs": _tensor_json(np.asarray(alt[1], np.float32)),
        }
    return json.dumps(obj, separators=(",", ":")).encode(), "application/json"


def result_size(payload: FwdBwdPayload | SamplePayload) -> int:
    """Rough number of values in a result (decides whether encoding is worth a thread)."""
    if isinstance(payload, FwdBwdPayload):
        return sum(int(a.size) for out in payload.outputs for a in out.values())
    size = sum(
        int(np.asarray(s.tokens).size) * (2 + (0 if s.topk_ids is None else s.topk_ids.shape[1]))
        for s in payload.sequences
    )
    scores = payload.prompt_scores
    if scores is not None:
        size += int(scores.logprobs.size) * (1 + payload.topk_prompt_logprobs)
        for extra in (scores.target_logprobs, scores.alt_tokens):
            size += 0 if extra is None else int(extra.size)
    return size


def encode_result(payload: FwdBwdPayload | SamplePayload, protobuf: bool) -> tuple[bytes, str]:
    """``(body, content_type)`` of a forward(_backward) or sample result."""
    if isinstance(payload, FwdBwdPayload):
        return encode_fwdbwd(payload, protobuf)
    return encode_sample(payload, protobuf)


def stop_from_json(value: Any, where: str) -> tuple[Sequence[int] | None, list[str]]:
    """``stop`` of SamplingParams -> ``(token_ids or None, strings)``.

    ``None``/omitted -> ``(None, [])`` (default EOS); ``[]`` -> ``([], [])`` (never stop early);
    a string or list of strings -> ``(None, strings)``; a list of ints -> ``(ids, [])``.
    """
    if value is None:
        return None, []
    if isinstance(value, str):
        if not value:
            raise CodecError(f"{where} must not be an empty string")
        return None, [value]
    if isinstance(value, list):
        if not value:
            return [], []
        if all(isinstance(v, str) for v in value):
            if any(not v for v in value):
                raise CodecError(f"{where} must not contain empty strings, got {_short(value)}")
            return None, list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return list(value), []
    raise CodecError(
        f"{where} must be a string, a list of strings or a list of token ids, got {_short(value)}"
    )
