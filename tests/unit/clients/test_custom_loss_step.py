"""CustomLossStep alone: chunk plan, seq ids of both passes, the backward weights, metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinkex import types
from tinkex.clients._custom_loss_step import CustomLossStep
from tinkex.types import _training as tr


def loss(data: list[types.Datum], logprobs: list[Any]) -> Any:
    total = sum(float(np.sum(lp)) for lp in logprobs)
    return total, {"custom:sum": 1.5}, [np.full_like(lp, 0.5) for lp in logprobs]


loss.__tinkex_backend__ = "numpy"  # type: ignore[attr-defined]

DATA = [
    types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4]},
    ),
    types.Datum(
        model_input=types.ModelInput.from_ints([5, 6]),
        loss_fn_inputs={"target_tokens": [6, 7], "weights": [1.0, 0.0]},
    ),
]


def output(datums: list[types.Datum], loss_sum: float) -> tr.ForwardBackwardOutput:
    outs = [
        {"logprobs": types.TensorData.from_numpy(-np.ones(d.model_input.length, np.float32))}
        for d in datums
    ]
    return tr.ForwardBackwardOutput(
        loss_fn_output_type="scalar", loss_fn_outputs=outs, metrics={"loss:sum": loss_sum}
    )


def prepare(**kwargs: Any) -> CustomLossStep:
    options: dict[str, Any] = {"max_chunk_len": 1, "max_chunk_bytes": 10_000}
    options.update(kwargs)
    return CustomLossStep.prepare(DATA, loss, regularizers=None, track_grad_norms=False, **options)


def test_both_passes_use_the_same_chunks_and_consecutive_seq_ids() -> None:
    step = prepare()
    assert len(step.chunks) == 2 and step.seq_ids == 4
    sent: list[tuple[int, bool, list[types.Datum]]] = []

    def send(data: list[types.Datum], nbytes: int, loss_input: Any, seq: int, fwd: bool) -> Any:
        assert loss_input.loss_fn == "cross_entropy" and nbytes > 0
        sent.append((seq, fwd, data))
        return data

    def poll(handle: Any, request_type: str) -> tr.ForwardBackwardOutput:
        return output(handle, 1.0)

    backward = step.send(10, send, poll)
    assert [(seq, fwd) for seq, fwd, _ in sent] == [
        (10, True),
        (11, True),
        (12, False),
        (13, False),
    ]
    # forward weights: the caller's, zeros where there were none; backward: -gradient
    assert sent[0][2][0].loss_fn_inputs["weights"].to_numpy().tolist() == [0.0, 0.0, 0.0]
    assert sent[1][2][0].loss_fn_inputs["weights"].to_numpy().tolist() == [1.0, 0.0]
    assert sent[2][2][0].loss_fn_inputs["weights"].to_numpy().tolist() == [-0.5, -0.5, -0.5]
    result = step.finish(backward, poll)
    assert result.metrics["surrogate_loss:sum"] == 2.0  # the two backward chunks' sum
    assert result.metrics["loss:sum"] == -5.0  # the custom loss: sum of all logprobs
    assert result.metrics["custom:sum"] == 1.5
    # as tinker 0.38: the loss function's metrics, then loss:sum and surrogate_loss:sum
    assert list(result.metrics) == ["custom:sum", "loss:sum", "surrogate_loss:sum"]
    assert result.custom_loss_output is step.output


def test_prepare_rejects_empty_and_target_less_batches() -> None:
    with pytest.raises(ValueError, match="No data provided"):
        CustomLossStep.prepare(
            [], loss, regularizers=None, track_grad_norms=False, max_chunk_len=1, max_chunk_bytes=1
        )
    bad = [types.Datum(model_input=types.ModelInput.from_ints([1]), loss_fn_inputs={})]
    with pytest.raises(ValueError, match=r"data\[0\].loss_fn_inputs has no 'target_tokens'"):
        CustomLossStep.prepare(
            bad, loss, regularizers=None, track_grad_norms=False, max_chunk_len=1, max_chunk_bytes=1
        )


def test_finish_needs_the_servers_loss_sum() -> None:
    step = prepare(max_chunk_len=10)

    def send(data: list[types.Datum], *args: Any) -> Any:
        return data

    handles = step.send(0, send, lambda handle, kind: output(handle, 1.0))
    no_loss = tr.ForwardBackwardOutput(
        loss_fn_output_type="scalar", loss_fn_outputs=[], metrics={"other:sum": 1.0}
    )
    with pytest.raises(KeyError, match="loss:sum"):
        step.finish(handles, lambda handle, kind: no_loss)
