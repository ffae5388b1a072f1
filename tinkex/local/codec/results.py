"""Results -> response bodies, through the SDK's own types and encoders.

A job's result (:class:`FwdBwdPayload`, :class:`SamplePayload`: numpy arrays) is turned into the
SDK value it stands for (``ForwardBackwardOutput``, ``SampleResponse``) once; that value is then
written as protobuf (``tinkex.types._proto``, when the ``Accept`` header asks for
``application/x-protobuf``) or as JSON by the SDK converter's ``to_wire``. So the local server
has no JSON writer of its own: what it answers is what the SDK would send for the same value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinkex.local.codec.requests import PROTOBUF, TargetIds
from tinkex.local.model import PromptScores, SampleOutput

if TYPE_CHECKING:
    from tinkex.types import (
        ForwardBackwardOutput,
        PromptAltTokens,
        SampledSequence,
        SampleResponse,
        TensorData,
        TopkLogprobs,
    )

__all__ = [
    "FwdBwdPayload",
    "SamplePayload",
    "encode_result",
    "fwdbwd_output",
    "result_bytes",
    "result_size",
    "sample_response",
]


@dataclass
class FwdBwdPayload:
    """The result of a forward / forward_backward request."""

    outputs: list[dict[str, npt.NDArray[Any]]]
    metrics: dict[str, float]
    loss_fn_output_type: str = "ArrayRecord"
    #: ``(lengths, {name: values})``: the same outputs back to back per field (``outputs`` are
    #: views of them), when the model computed them so; written to protobuf without per-datum
    #: objects
    columns: tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[Any]]] | None = None


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


def fwdbwd_output(payload: FwdBwdPayload) -> ForwardBackwardOutput:
    """The SDK value of a forward(_backward) result."""
    from tinkex.types import ForwardBackwardOutput, TensorData

    return ForwardBackwardOutput(
        loss_fn_output_type=payload.loss_fn_output_type,
        loss_fn_outputs=[
            {name: TensorData.from_numpy(array) for name, array in out.items()}
            for out in payload.outputs
        ],
        metrics=dict(payload.metrics),
    )


def _topk(ids: npt.NDArray[Any], logprobs: npt.NDArray[Any]) -> TopkLogprobs:
    """``TopkLogprobs`` with cells the model left empty (id -1 or NaN) marked empty."""
    from tinkex.types import TopkLogprobs
    from tinkex.types._sampling import TOPK_EMPTY_LOGPROB

    ids = np.asarray(ids, dtype=np.int64).copy()
    lps = np.asarray(logprobs, dtype=np.float32).copy()
    empty = (ids < 0) | ~np.isfinite(lps)
    ids[empty] = 0
    lps[empty] = TOPK_EMPTY_LOGPROB
    return TopkLogprobs(ids.astype(np.int32), lps)


def _sequence(seq: SampleOutput, sequence_id: str) -> SampledSequence:
    from tinkex.types import SampledSequence

    topk = None
    if seq.topk_ids is not None and seq.topk_logprobs is not None:
        topk = _topk(seq.topk_ids, seq.topk_logprobs)
    return SampledSequence(
        stop_reason=seq.stop_reason,
        sequence_id=sequence_id,
        tokens_np=np.asarray(seq.tokens, dtype=np.int32),
        logprobs_np=np.asarray(seq.logprobs, dtype=np.float32),
        topk_logprobs_np=topk,
    )


def _target_tensor(targets: TargetIds, scores: PromptScores) -> TensorData | None:
    from tinkex.types import TensorData

    if scores.target_logprobs is None:
        return None
    values, sparse = targets.answer(scores.target_logprobs)
    return TensorData(
        np.asarray(values, np.float32).reshape(-1),
        "float32",
        list(targets.dense.shape),
        targets.crow if sparse else None,
        targets.col if sparse else None,
    )


def _alt_tokens(scores: PromptScores) -> PromptAltTokens | None:
    from tinkex.types import PromptAltTokens, TensorData

    if scores.alt_tokens is None or scores.alt_logprobs is None:
        return None
    return PromptAltTokens(
        TensorData.from_numpy(np.asarray(scores.alt_tokens, np.int64)),
        TensorData.from_numpy(np.asarray(scores.alt_logprobs, np.float32)),
    )


def sample_response(payload: SamplePayload) -> SampleResponse:
    """The SDK value of an asample result."""
    from tinkex.types import SampleResponse

    sequences = [
        _sequence(seq, sequence_id)
        for seq, sequence_id in zip(payload.sequences, payload.sequence_ids, strict=False)
    ]
    scores = payload.prompt_scores
    if scores is None:
        return SampleResponse(sequences=sequences)
    topk = None
    if (
        payload.topk_prompt_logprobs > 0
        and scores.topk_ids is not None
        and scores.topk_logprobs is not None
    ):
        topk = _topk(scores.topk_ids, scores.topk_logprobs)
    return SampleResponse(
        sequences=sequences,
        prompt_logprobs_np=np.asarray(scores.logprobs, np.float32)
        if payload.prompt_logprobs
        else None,
        topk_prompt_logprobs_np=topk,
        target_prompt_logprobs=None
        if payload.targets is None
        else _target_tensor(payload.targets, scores),
        prompt_alt_tokens=_alt_tokens(scores),
    )


def encode_result(payload: FwdBwdPayload | SamplePayload, protobuf: bool) -> tuple[bytes, str]:
    """``(body, content_type)`` of a forward(_backward) or sample result."""
    from tinkex.types import _proto
    from tinkex.types._converter import to_wire

    value: ForwardBackwardOutput | SampleResponse
    if isinstance(payload, FwdBwdPayload):
        if protobuf and payload.columns is not None:
            lengths, columns = payload.columns
            body = _proto.encode_forward_backward_columns(
                payload.loss_fn_output_type, lengths, columns, payload.metrics
            )
            return body, PROTOBUF
        value = fwdbwd_output(payload)
        if protobuf:
            return bytes(_proto.encode_forward_backward_output(value)), PROTOBUF
    else:
        value = sample_response(payload)
        if protobuf:
            return bytes(_proto.encode_sample_response(value)), PROTOBUF
    return json.dumps(to_wire(value), separators=(",", ":")).encode(), "application/json"


def result_size(payload: FwdBwdPayload | SamplePayload) -> int:
    """Rough number of values in a result (decides whether encoding is worth a thread)."""
    if isinstance(payload, FwdBwdPayload):
        if payload.columns is not None:
            return sum(int(a.size) for a in payload.columns[1].values())
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


def result_bytes(result: Any) -> int:
    """Bytes a finished result holds while the server keeps it (for the memory budget):
    its arrays, plus a small constant for the objects around them."""
    arrays: list[npt.NDArray[Any] | None]
    if isinstance(result, FwdBwdPayload):
        arrays = [a for out in result.outputs for a in out.values()]
    elif isinstance(result, SamplePayload):
        arrays = [
            a for s in result.sequences for a in (s.tokens, s.logprobs, s.topk_ids, s.topk_logprobs)
        ]
        scores = result.prompt_scores
        if scores is not None:
            arrays += [
                scores.logprobs,
                scores.topk_ids,
                scores.topk_logprobs,
                scores.target_logprobs,
                scores.alt_tokens,
                scores.alt_logprobs,
            ]
    else:
        return _OBJECT_BYTES
    return _OBJECT_BYTES + sum(
        int(np.asarray(a).nbytes) + _OBJECT_BYTES // 2 for a in arrays if a is not None
    )


#: what a result's Python objects (a dict, an array header) cost besides their values
_OBJECT_BYTES = 256
