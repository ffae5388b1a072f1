"""How a forward/backward batch is cut into requests (tinkex.clients._fwdbwd.plan_chunks).

The server's limits (datums and bytes per request) cut first; with parallel chunks each part
is then cut into pieces of about ``PIPELINE_CHUNK_BYTES`` of equal size, so that no small
trailing request costs a round trip of its own (docs/protocol.md, "Forward/backward").
"""

from __future__ import annotations

import numpy as np
import pytest

from tinkex.clients._fwdbwd import PIPELINE_CHUNK_BYTES, plan_chunks
from tinkex.types import Datum, ModelInput, TensorData
from tinkex.types._session import ClientConfigResponse

#: 4 bytes per token + 8 per target + 4 per weight: 16 bytes per token.
BYTES_PER_TOKEN = 16


def _datum(tokens: int) -> Datum:
    return Datum(
        model_input=ModelInput.from_ints([1] * tokens),
        loss_fn_inputs={
            "target_tokens": TensorData.from_numpy(np.ones(tokens, dtype=np.int64)),
            "weights": TensorData.from_numpy(np.ones(tokens, dtype=np.float32)),
        },
    )


def _plan(data: list[Datum], **config: object) -> list[list[int]]:
    chunks = plan_chunks(ClientConfigResponse(**config), data)  # type: ignore[arg-type]
    index = {id(d): i for i, d in enumerate(data)}
    assert [c.nbytes for c in chunks] == [
        sum(BYTES_PER_TOKEN * d.model_input.length for d in c.data) for c in chunks
    ]
    return [[index[id(d)] for d in c.data] for c in chunks]


def test_a_2_mb_batch_is_two_equal_requests_not_a_third_small_one() -> None:
    data = [_datum(1024) for _ in range(128)]  # 16 KiB each, 2 MiB in all
    plan = _plan(data)
    assert [len(part) for part in plan] == [64, 64]
    assert [i for part in plan for i in part] == list(range(128))


@pytest.mark.parametrize(
    ("count", "parts"),
    [(1, 1), (40, 1), (100, 2), (200, 3), (300, 5)],
)
def test_parts_are_about_the_pipeline_size_and_equal(count: int, parts: int) -> None:
    data = [_datum(1024) for _ in range(count)]
    plan = _plan(data)
    assert len(plan) == parts
    sizes = [len(part) for part in plan]
    assert max(sizes) - min(sizes) <= 1
    assert [i for part in plan for i in part] == list(range(count))
    assert PIPELINE_CHUNK_BYTES == 1_000_000  # the sizes above are stated for it


def test_server_limits_cut_first_and_are_never_exceeded() -> None:
    data = [_datum(1024) for _ in range(10)]
    plan = _plan(data, fwdbwd_max_chunk_len=3)
    assert [len(part) for part in plan] == [3, 3, 3, 1]
    plan = _plan(data, fwdbwd_max_chunk_bytes_count=4 * 16384)
    assert [len(part) for part in plan] == [4, 4, 2]


def test_uneven_datums_are_balanced_by_bytes() -> None:
    sizes = [8192, 256, 256, 256, 8192, 8192, 256, 8192] * 3  # 1.6 MB
    data = [_datum(n) for n in sizes]
    plan = _plan(data)
    assert len(plan) == 2
    halves = [sum(sizes[i] for i in part) * BYTES_PER_TOKEN for part in plan]
    assert abs(halves[0] - halves[1]) <= 8192 * BYTES_PER_TOKEN


def test_without_parallel_chunks_only_the_server_limits_cut() -> None:
    data = [_datum(1024) for _ in range(128)]
    assert [len(p) for p in _plan(data, parallel_fwdbwd_chunks=False)] == [128]
    assert _plan([_datum(200_000)]) == [[0]]  # a datum past the pipeline size stays whole
