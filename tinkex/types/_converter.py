"""The one converter between tinkex types and the JSON wire format.

* ``to_wire(obj)``: attrs instances (and lists/dicts of them) to JSON-able values. Fields that
  are None are omitted; non-None defaults (e.g. ``type`` discriminators) are always sent; bytes
  become base64; datetimes ISO 8601; ``TensorData`` ``{"data", "dtype", "shape", ...}``.
* ``from_wire(data, cls, request=...)``: JSON values to ``cls``. Unknown fields are ignored; a
  missing required field or a wrong type raises ``APIResponseValidationError`` naming the class,
  the field path and the request.

Unions (chunks, optimizer configs, session statuses, ...) are resolved by their discriminator in
hooks registered here, never by per-class ``to_dict`` methods. cattrs is imported on first use.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import threading
import typing
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import APIResponseValidationError
from tinkex.types import _model_input as mi
from tinkex.types import _sampling as smp
from tinkex.types import _training as tr
from tinkex.types._datum import Datum, PromptProvenanceSpan, SampledProvenanceSpan
from tinkex.types._tensor import TensorData

if TYPE_CHECKING:
    import cattrs

__all__ = ["to_wire", "from_wire", "converter", "parse_datetime"]

T = TypeVar("T")
_lock = threading.Lock()
_converter: cattrs.Converter | None = None


def parse_datetime(value: Any) -> dt.datetime:
    """ISO 8601 (``Z`` accepted) or epoch seconds to an aware datetime."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO 8601 datetime string, got {value!r}")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _format_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


# -- fast paths for the hot types -------------------------------------------------------------
def tensor_to_wire(t: TensorData) -> dict[str, Any]:
    """``TensorData`` as JSON."""
    out: dict[str, Any] = {"data": t.values_array().tolist(), "dtype": t.dtype}
    if t.shape is not None:
        out["shape"] = t.shape
    if t.sparse_crow_indices is not None:
        out["sparse_crow_indices"] = list(t.sparse_crow_indices)
        out["sparse_col_indices"] = list(t.sparse_col_indices or [])
    return out


def tensor_from_wire(data: Any) -> TensorData:
    """JSON to ``TensorData`` (validating dtype and shape)."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a TensorData object, got {type(data).__name__}")
    return TensorData(
        data.get("data"),
        data.get("dtype"),
        data.get("shape"),
        data.get("sparse_crow_indices"),
        data.get("sparse_col_indices"),
    )


def _chunk_to_wire(chunk: Any) -> dict[str, Any]:
    if isinstance(chunk, mi.EncodedTextChunk):
        tokens = chunk.tokens
        return {"tokens": tokens if isinstance(tokens, list) else list(tokens), "type": chunk.type}
    return _generic_to_wire(chunk)


def _model_input_to_wire(model_input: mi.ModelInput) -> dict[str, Any]:
    return {"chunks": [_chunk_to_wire(c) for c in model_input.chunks]}


def _span_to_wire(span: Any) -> dict[str, Any]:
    kind = "prompt_tokens" if isinstance(span, PromptProvenanceSpan) else "sampled_tokens"
    return {
        "sequence_id": span.sequence_id,
        "offset": span.offset,
        "length": span.length,
        "type": kind,
    }


def _datum_to_wire(datum: Datum) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model_input": _model_input_to_wire(datum.model_input),
        "loss_fn_inputs": {k: tensor_to_wire(v) for k, v in datum.loss_fn_inputs.items()},
    }
    if datum.model_input_spans is not None:
        out["model_input_spans"] = [_span_to_wire(s) for s in datum.model_input_spans]
        out["loss_fn_input_spans"] = [_span_to_wire(s) for s in datum.loss_fn_input_spans or []]
    return out


def _span_from_wire(data: Any) -> PromptProvenanceSpan | SampledProvenanceSpan:
    cls = PromptProvenanceSpan if data.get("type") == "prompt_tokens" else SampledProvenanceSpan
    return cls(sequence_id=data["sequence_id"], offset=data.get("offset", 0), length=data["length"])


def _chunk_from_wire(data: Any) -> mi.ModelInputChunk:
    if not isinstance(data, dict):
        raise TypeError(f"expected a chunk object, got {type(data).__name__}")
    kind = data.get("type", "encoded_text")
    if kind == "encoded_text":
        return mi.EncodedTextChunk(tokens=data["tokens"])
    if kind == "image":
        return mi.ImageChunk(
            data=data["data"], format=data["format"], expected_tokens=data.get("expected_tokens")
        )
    if kind == "image_asset_pointer":
        return mi.ImageAssetPointerChunk(
            format=data["format"],
            location=data["location"],
            expected_tokens=data.get("expected_tokens"),
        )
    if kind == "dmel":
        return mi.DmelChunk(dmel=data["dmel"])
    raise ValueError(f"unknown chunk type {kind!r}")


def _datum_from_wire(data: Any) -> Datum:
    spans = data.get("model_input_spans")
    return Datum(
        model_input=mi.ModelInput(
            chunks=[_chunk_from_wire(c) for c in data["model_input"]["chunks"]]
        ),
        loss_fn_inputs={
            k: tensor_from_wire(v) for k, v in (data.get("loss_fn_inputs") or {}).items()
        },
        model_input_spans=None if spans is None else [_span_from_wire(s) for s in spans],
        loss_fn_input_spans=None
        if spans is None
        else [_span_from_wire(s) for s in data.get("loss_fn_input_spans") or []],
    )


def _fwdbwd_output_to_wire(out: tr.ForwardBackwardOutput) -> dict[str, Any]:
    return {
        "loss_fn_output_type": out.loss_fn_output_type,
        "loss_fn_outputs": [
            {k: tensor_to_wire(v) for k, v in o.items()} for o in out.loss_fn_outputs
        ],
        "metrics": dict(out.metrics),
    }


def _fwdbwd_output_from_wire(data: Any) -> tr.ForwardBackwardOutput:
    return tr.ForwardBackwardOutput(
        loss_fn_output_type=data.get("loss_fn_output_type") or "ArrayRecord",
        loss_fn_outputs=[
            {k: tensor_from_wire(v) for k, v in o.items()} for o in data["loss_fn_outputs"]
        ],
        metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
    )


def _topk_to_wire(topk: smp.TopkLogprobs | None) -> list[Any] | None:
    if topk is None:
        return None
    return [None if row is None else [list(p) for p in row] for row in topk.to_lists()]


def _topk_from_wire(rows: Any) -> smp.TopkLogprobs | None:
    if rows is None:
        return None
    import numpy as np

    k = max((len(r) for r in rows if r), default=0)
    ids = np.zeros((len(rows), k), dtype=np.int32)
    lps = np.full((len(rows), k), smp.TOPK_EMPTY_LOGPROB, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, (tok, lp) in enumerate(row or []):
            ids[i, j] = tok
            lps[i, j] = lp
    return smp.TopkLogprobs(ids, lps)


def _sample_response_to_wire(resp: smp.SampleResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "sample",
        "sequences": [
            {
                "stop_reason": s.stop_reason,
                "tokens": s.tokens,
                "logprobs": s.logprobs,
                **(
                    {"topk_logprobs": _topk_to_wire(s.topk_logprobs_np)}
                    if s.topk_logprobs_np is not None
                    else {}
                ),
                **({"sequence_id": s.sequence_id} if s.sequence_id else {}),
            }
            for s in resp.sequences
        ],
        "prompt_logprobs": resp.prompt_logprobs,
        "topk_prompt_logprobs": _topk_to_wire(resp.topk_prompt_logprobs_np),
        "prompt_cache_hit_tokens": resp.prompt_cache_hit_tokens,
    }
    if resp.target_prompt_logprobs is not None:
        out["target_prompt_logprobs"] = tensor_to_wire(resp.target_prompt_logprobs)
    if resp.prompt_alt_tokens is not None:
        out["prompt_alt_tokens"] = {
            "tokens": tensor_to_wire(resp.prompt_alt_tokens.tokens),
            "logprobs": tensor_to_wire(resp.prompt_alt_tokens.logprobs),
        }
    return out


def _sample_response_from_wire(data: Any) -> smp.SampleResponse:
    import numpy as np

    sequences = []
    for s in data["sequences"]:
        stop_reason = s["stop_reason"]
        if stop_reason not in ("stop", "length"):
            raise ValueError(f"stop_reason must be 'stop' or 'length', got {stop_reason!r}")
        logprobs = s.get("logprobs")
        sequences.append(
            smp.SampledSequence(
                stop_reason=stop_reason,
                tokens_np=np.asarray(s["tokens"], dtype=np.int32),
                logprobs_np=None if logprobs is None else np.asarray(logprobs, dtype=np.float32),
                topk_logprobs_np=_topk_from_wire(s.get("topk_logprobs")),
                sequence_id=s.get("sequence_id") or "",
            )
        )
    alt = data.get("prompt_alt_tokens")
    target = data.get("target_prompt_logprobs")
    return smp.SampleResponse(
        sequences=sequences,
        prompt_logprobs_np=smp.float_array(data.get("prompt_logprobs")),
        topk_prompt_logprobs_np=_topk_from_wire(data.get("topk_prompt_logprobs")),
        target_prompt_logprobs=None if target is None else tensor_from_wire(target),
        prompt_cache_hit_tokens=int(data.get("prompt_cache_hit_tokens") or 0),
        prompt_alt_tokens=None
        if alt is None
        else smp.PromptAltTokens(
            tensor_from_wire(alt["tokens"]), tensor_from_wire(alt["logprobs"])
        ),
    )


def _optim_step_to_wire(req: tr.OptimStepRequest) -> dict[str, Any]:
    key = "adam_params" if isinstance(req.optim_params, tr.AdamParams) else "optimizer_params"
    out: dict[str, Any] = {"model_id": req.model_id, key: _generic_to_wire(req.optim_params)}
    if req.seq_id is not None:
        out["seq_id"] = req.seq_id
    out["type"] = req.type
    return out


# -- generic attrs handling --------------------------------------------------------------------
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        fields = dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else attrs.fields(cls)
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields if not f.name.startswith("_"))
    return names


def _value_to_wire(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value.value if isinstance(value, enum.Enum) else value
    special = _SPECIAL_TO_WIRE.get(type(value))
    if special is not None:
        return special(value)
    if attrs.has(type(value)) or dataclasses.is_dataclass(value):
        return _generic_to_wire(value)
    if isinstance(value, (list, tuple)):
        return [_value_to_wire(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value_to_wire(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dt.datetime):
        return _format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot send a {type(value).__name__} over the wire")


def _generic_to_wire(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _field_names(type(obj)):
        value = getattr(obj, name)
        if value is not None:
            out[name] = _value_to_wire(value)
    return out


_SPECIAL_TO_WIRE: dict[type, Any] = {
    TensorData: tensor_to_wire,
    Datum: _datum_to_wire,
    mi.ModelInput: _model_input_to_wire,
    mi.EncodedTextChunk: _chunk_to_wire,
    PromptProvenanceSpan: _span_to_wire,
    SampledProvenanceSpan: _span_to_wire,
    tr.ForwardBackwardOutput: _fwdbwd_output_to_wire,
    tr.OptimStepRequest: _optim_step_to_wire,
    smp.SampleResponse: _sample_response_to_wire,
}


def to_wire(obj: Any) -> Any:
    """Convert a tinkex type (or a list/dict of them) to its JSON wire value."""
    return _value_to_wire(obj)


# -- structuring (cattrs) ----------------------------------------------------------------------
def _by_discriminator(key: str, table: dict[str, type], default: type | None = None) -> Any:
    def hook(data: Any, _type: Any) -> Any:
        if isinstance(data, tuple(table.values())):
            return data
        if not isinstance(data, dict):
            raise TypeError(f"expected an object with {key!r}, got {type(data).__name__}")
        cls = table.get(data.get(key, ""), default)
        if cls is None:
            raise ValueError(f"unknown {key} {data.get(key)!r}; expected one of {sorted(table)}")
        return converter().structure(data, cls)

    return hook


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r:.40}")
    return value


def _optional(hook: Any) -> Any:
    def structure(value: Any, type_: Any) -> Any:
        return None if value is None else hook(value, type_)

    return structure


def _build() -> cattrs.Converter:
    import cattrs

    # Imported here: the REST and session types are only needed once something is parsed.
    from tinkex.types import _rest as rest
    from tinkex.types import _session as ses

    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    conv.register_structure_hook(
        bytes, lambda v, _: base64.b64decode(v) if isinstance(v, str) else bytes(v)
    )
    conv.register_structure_hook(TensorData, lambda v, _: tensor_from_wire(v))
    conv.register_structure_hook(Datum, lambda v, _: _datum_from_wire(v))
    conv.register_structure_hook(tr.ForwardBackwardOutput, lambda v, _: _fwdbwd_output_from_wire(v))
    conv.register_structure_hook(smp.SampleResponse, lambda v, _: _sample_response_from_wire(v))
    conv.register_structure_hook(typing.Any, lambda v, _: v)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)

    unions: list[tuple[Any, Any]] = [
        (mi.ModelInputChunk, lambda v, _: _chunk_from_wire(v)),
        (
            tr.OptimizerConfig,
            _by_discriminator(
                "type",
                {"adamw": tr.AdamOptimizerConfig, "dimuon": tr.DimuonOptimizerConfig},
                tr.OptimizerConfigBase,
            ),
        ),
        (
            tr.OptimParams,
            _by_discriminator("type", {"dimuon": tr.DimuonParams}, tr.OptimParamsBase),
        ),
        (
            ses.ClientSessionFinishReason,
            _by_discriminator(
                "type",
                {
                    "success": ses.ClientSessionFinishSuccess,
                    "errored": ses.ClientSessionFinishErrored,
                    "interrupted": ses.ClientSessionFinishInterrupted,
                },
            ),
        ),
        (
            ses.SessionFailedReason,
            _by_discriminator(
                "type",
                {
                    "request": ses.SessionFailedRequestReason,
                    "training_run": ses.SessionFailedTrainingRunReason,
                    "sampling_session": ses.SessionFailedSamplingSessionReason,
                },
            ),
        ),
        (
            ses.SessionStatus,
            _by_discriminator(
                "type",
                {
                    "client_finished": ses.ClientSessionFinished,
                    "failed": ses.SessionFailed,
                    "cancelled": ses.SessionCancelled,
                    "active": ses.SessionActive,
                },
            ),
        ),
        (
            ses.SessionStatusQuery,
            _by_discriminator(
                "type",
                {
                    "active": ses.ActiveSessionStatusQuery,
                    "cancelled": ses.CancelledSessionStatusQuery,
                    "failed": ses.FailedSessionStatusQuery,
                    "client_finished": ses.ClientFinishedSessionStatusQuery,
                },
            ),
        ),
        (
            ses.SearchOwner,
            _by_discriminator(
                "type",
                {
                    "own": ses.OwnSearchOwner,
                    "accessible": ses.AccessibleSearchOwner,
                    "user": ses.UserSearchOwner,
                },
            ),
        ),
        (
            ses.FutureCompletion,
            _by_discriminator(
                "state", {"finished": ses.FutureFinished, "failed": ses.FutureFailed}
            ),
        ),
        (
            ses.TelemetryEvent,
            _by_discriminator(
                "event",
                {
                    "GENERIC_EVENT": ses.GenericEvent,
                    "SESSION_START": ses.SessionStartEvent,
                    "SESSION_END": ses.SessionEndEvent,
                    "UNHANDLED_EXCEPTION": ses.UnhandledExceptionEvent,
                },
            ),
        ),
        (
            rest.BillingEventInfo,
            _by_discriminator(
                "type",
                {
                    "training": rest.TrainingBillingEvent,
                    "sampling_prefill": rest.SamplingPrefillBillingEvent,
                    "sampling_sample": rest.SamplingSampleBillingEvent,
                    "checkpoint": rest.CheckpointBillingEvent,
                    "storage": rest.StorageBillingEvent,
                },
            ),
        ),
    ]
    for union, hook in unions:
        conv.register_structure_hook(union, hook)
        conv.register_structure_hook(union | None, _optional(hook))
    return conv


def converter() -> cattrs.Converter:
    """The process-wide converter (built on first use)."""
    global _converter
    if _converter is None:
        with _lock:
            if _converter is None:
                _converter = _build()
    return _converter


def from_wire(data: Any, cls: type[T], *, request: str | None = None) -> T:
    """Build ``cls`` from a JSON wire value; APIResponseValidationError names the bad field."""
    import cattrs

    try:
        return converter().structure(data, cls)
    except cattrs.BaseValidationError as exc:
        details = "; ".join(cattrs.transform_error(exc, path=cls.__name__))
        raise _validation_error(cls, details, data, request) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise _validation_error(cls, detail, data, request) from exc


def _validation_error(cls: type, details: str, data: Any, request: str | None) -> Exception:
    where = f" from {request}" if request else ""
    return APIResponseValidationError(
        message=f"invalid {cls.__name__}{where}: {details}", body=data, request=request
    )
