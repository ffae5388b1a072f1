"""How a forward/backward batch is cut into requests (tinkex.clients._fwdbwd.plan_chunks).

Only the server's limits (datums and bytes per request) cut, as in ``tinker``: a finer cut
costs more requests than its overlap saves (docs/protocol.md, "Forward/backward").
"""

from __future__ import annotations

import numpy as np
import pytest

from tinkex.clients._fwdbwd import plan_chunks
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


@pytest.mark.parametrize("parallel", [True, False])
def test_a_batch_within_the_server_limits_is_one_request(parallel: bool) -> None:
    data = [_datum(1024) for _ in range(300)]  # 16 KiB each, 4.9 MB in all
    assert _plan(data, parallel_fwdbwd_chunks=parallel) == [list(range(300))]


def test_the_server_limits_cut_and_are_never_exceeded() -> None:
    data = [_datum(1024) for _ in range(10)]
    plan = _plan(data, fwdbwd_max_chunk_len=3)
    assert [len(part) for part in plan] == [3, 3, 3, 1]
    plan = _plan(data, fwdbwd_max_chunk_bytes_count=4 * 16384)
    assert [len(part) for part in plan] == [4, 4, 2]


def test_a_datum_past_the_byte_limit_is_a_request_of_its_own() -> None:
    data = [_datum(1024), _datum(400_000), _datum(1024)]  # the middle one is 6.4 MB
    assert _plan(data) == [[0], [1], [2]]
