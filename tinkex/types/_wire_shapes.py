"""The JSON wire shapes of the dataclass types, in both directions: ``TensorData``, the
provenance spans, ``Datum``, forward/backward input, requests and output, and the sample
results (``SampleResponse``, ``SampledSequence``, top-k logprobs, ``PromptAltTokens``).

These are the bodies of tinkex's JSON wire mode (docs/internals.md, "JSON wire shapes"); the
official SDK sends the same messages as protobuf (``_proto.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinkex.types import _model_input as mi
from tinkex.types import _sampling as smp
from tinkex.types import _training as tr
from tinkex.types._datum import Datum, PromptProvenanceSpan, SampledProvenanceSpan
from tinkex.types._model_dump import WIRE, DumpOptions, Hook
from tinkex.types._tensor import TensorData

if TYPE_CHECKING:
    import cattrs


def tensor_to_wire(t: TensorData, options: DumpOptions = WIRE) -> dict[str, Any]:
    """``TensorData`` as the JSON object tinker's tensor model dumps (None fields kept unless
    ``exclude_none``)."""
    out: dict[str, Any] = {"data": t.values_array().tolist(), "dtype": t.dtype}
    keep_none = not (options.exclude_none or options.exclude_defaults)
    if t.shape is not None:
        out["shape"] = list(t.shape)
    elif keep_none:
        out["shape"] = None
    if t.sparse_crow_indices is not None:
        out["sparse_crow_indices"] = list(t.sparse_crow_indices)
        out["sparse_col_indices"] = list(t.sparse_col_indices or ())
    elif keep_none:
        out["sparse_crow_indices"] = out["sparse_col_indices"] = None
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


def _span_to_wire(span: PromptProvenanceSpan | SampledProvenanceSpan) -> dict[str, Any]:
    kind = "prompt_tokens" if isinstance(span, PromptProvenanceSpan) else "sampled_tokens"
    return {
        "sequence_id": span.sequence_id,
        "offset": span.offset,
        "length": span.length,
        "type": kind,
    }


def _span_from_wire(data: Any) -> PromptProvenanceSpan | SampledProvenanceSpan:
    cls = PromptProvenanceSpan if data.get("type") == "prompt_tokens" else SampledProvenanceSpan
    return cls(sequence_id=data["sequence_id"], offset=data.get("offset", 0), length=data["length"])


def datum_from_wire(data: Any, conv: cattrs.Converter) -> Datum:
    spans = data.get("model_input_spans")
    return Datum(
        model_input=conv.structure(data["model_input"], mi.ModelInput),
        loss_fn_inputs={
            k: tensor_from_wire(v) for k, v in (data.get("loss_fn_inputs") or {}).items()
        },
        model_input_spans=None if spans is None else [_span_from_wire(s) for s in spans],
        loss_fn_input_spans=None
        if spans is None
        else [_span_from_wire(s) for s in data.get("loss_fn_input_spans") or []],
    )


def fwdbwd_output_from_wire(data: Any) -> tr.ForwardBackwardOutput:
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


def _sequence_to_wire(s: smp.SampledSequence) -> dict[str, Any]:
    out: dict[str, Any] = {"stop_reason": s.stop_reason, "tokens": s.tokens, "logprobs": s.logprobs}
    if s.topk_logprobs_np is not None:
        out["topk_logprobs"] = _topk_to_wire(s.topk_logprobs_np)
    if s.sequence_id:
        out["sequence_id"] = s.sequence_id
    return out


def _alt_tokens_to_wire(alt: smp.PromptAltTokens) -> dict[str, Any]:
    return {"tokens": tensor_to_wire(alt.tokens), "logprobs": tensor_to_wire(alt.logprobs)}


def _sample_response_to_wire(resp: smp.SampleResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "sample",
        "sequences": [_sequence_to_wire(s) for s in resp.sequences],
        "prompt_logprobs": resp.prompt_logprobs,
        "topk_prompt_logprobs": _topk_to_wire(resp.topk_prompt_logprobs_np),
        "prompt_cache_hit_tokens": resp.prompt_cache_hit_tokens,
    }
    if resp.target_prompt_logprobs is not None:
        out["target_prompt_logprobs"] = tensor_to_wire(resp.target_prompt_logprobs)
    if resp.prompt_alt_tokens is not None:
        out["prompt_alt_tokens"] = _alt_tokens_to_wire(resp.prompt_alt_tokens)
    return out


def sample_response_from_wire(data: Any) -> smp.SampleResponse:
    import numpy as np

    sequences = []
    for s in data["sequences"]:
        stop_reason = s["stop_reason"]
        if stop_reason not in ("stop", "length"):
            raise ValueError(f"stop_reason must be 'stop' or 'length', got {stop_reason!r}")
        logprobs = s.get("logprobs")
        sequences.append(
            smp.decoded(
                smp.SampledSequence,
                stop_reason=stop_reason,
                tokens_np=np.asarray(s["tokens"], dtype=np.int32),
                logprobs_np=None if logprobs is None else np.asarray(logprobs, dtype=np.float32),
                topk_logprobs_np=_topk_from_wire(s.get("topk_logprobs")),
                sequence_id=s.get("sequence_id") or "",
            )
        )
    alt = data.get("prompt_alt_tokens")
    target = data.get("target_prompt_logprobs")
    return smp.decoded(
        smp.SampleResponse,
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


def _dataclass_to_wire(conv: cattrs.Converter) -> Callable[[Any], dict[str, Any]]:
    """Plain dataclasses (fwd/bwd input and requests): public fields in order, None omitted."""

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None and not f.name.startswith("_"):
                out[f.name] = conv.unstructure(value)
        return out

    return unstructure


def dataclass_hooks(conv: cattrs.Converter, options: DumpOptions) -> dict[type, Hook]:
    """Unstructure hooks of the dataclass types (their JSON wire shapes)."""
    return {
        TensorData: lambda t: tensor_to_wire(t, options),
        PromptProvenanceSpan: _span_to_wire,
        SampledProvenanceSpan: _span_to_wire,
        Datum: lambda d: _datum_to_wire(d, conv),
        tr.ForwardBackwardInput: _dataclass_to_wire(conv),
        tr.ForwardBackwardRequest: _dataclass_to_wire(conv),
        tr.ForwardRequest: _dataclass_to_wire(conv),
        tr.ForwardBackwardOutput: lambda out: {
            "loss_fn_output_type": out.loss_fn_output_type,
            "loss_fn_outputs": [
                {k: tensor_to_wire(v) for k, v in o.items()} for o in out.loss_fn_outputs
            ],
            "metrics": dict(out.metrics),
        },
        smp.TopkLogprobs: _topk_to_wire,
        smp.SampledSequence: _sequence_to_wire,
        smp.PromptAltTokens: _alt_tokens_to_wire,
        smp.SampleResponse: _sample_response_to_wire,
    }


def _datum_to_wire(datum: Datum, conv: cattrs.Converter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model_input": conv.unstructure(datum.model_input),
        "loss_fn_inputs": {k: tensor_to_wire(v) for k, v in datum.loss_fn_inputs.items()},
    }
    if datum.model_input_spans is not None:
        out["model_input_spans"] = [_span_to_wire(s) for s in datum.model_input_spans]
        out["loss_fn_input_spans"] = [_span_to_wire(s) for s in datum.loss_fn_input_spans or []]
    return out
