"""A forward/backward output given as columns (the local server's null model) is written as
the very bytes of the per-datum ``TensorData`` output of the same values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinkex.types import ForwardBackwardOutput, TensorData
from tinkex.types._proto import (
    decode_forward_backward_output,
    encode_forward_backward_columns,
    encode_forward_backward_output,
)


def _per_datum(lengths: list[int], columns: dict[str, np.ndarray]) -> list[dict[str, TensorData]]:
    bounds = [0, *itertools.accumulate(lengths)]
    return [
        {name: TensorData.from_numpy(values[a:b]) for name, values in columns.items()}
        for a, b in itertools.pairwise(bounds)
    ]


@pytest.mark.parametrize("lengths", [[3, 0, 1024, 1], [7], [0, 0], [], [2, 5]])
def test_columns_are_written_as_the_per_datum_output(lengths: list[int]) -> None:
    rng = np.random.default_rng(len(lengths))
    total = sum(lengths)
    columns = {
        "logprobs": rng.random(total, dtype=np.float32),
        "elementwise_loss": -rng.random(total, dtype=np.float32),
        "ids": rng.integers(-(2**62), 2**62, total),
    }
    metrics = {"loss:sum": 1.25, "tokens:sum": float(total)}
    body = encode_forward_backward_columns(
        "ArrayRecord", np.array(lengths, dtype=np.int64), columns, metrics
    )

    per_datum = ForwardBackwardOutput("ArrayRecord", _per_datum(lengths, columns), metrics)
    assert body == encode_forward_backward_output(per_datum)
    decoded = decode_forward_backward_output(body)
    assert [d["ids"].to_numpy().size for d in decoded.loss_fn_outputs] == lengths


def test_datums_without_fields_keep_their_count() -> None:
    body = encode_forward_backward_columns("R", np.array([2, 1]), {}, {})
    assert body == encode_forward_backward_output(ForwardBackwardOutput("R", [{}, {}], {}))


@pytest.mark.parametrize(
    "values",
    [np.zeros(3, dtype=np.float64), np.zeros((3, 1), dtype=np.float32), np.zeros(4, np.float32)],
)
def test_a_column_that_is_not_one_value_per_position_is_refused(values: np.ndarray) -> None:
    with pytest.raises(ValueError, match="column 'x' must be 1-D float32/int64 with 3 values"):
        encode_forward_backward_columns("R", np.array([1, 2]), {"x": values}, {})
