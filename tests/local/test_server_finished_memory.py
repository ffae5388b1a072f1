"""What a long-running server keeps of finished clients: their samples' records stay (small)
for ``future_ttl``, everything else per sample goes with the result or with the session."""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from tinkex.local import LocalServer

from .conftest import Api

PROMPT = {"chunks": [{"tokens": [256, 72, 101], "type": "encoded_text"}]}


def _asample(sampler_id: str, seq_id: int) -> dict[str, Any]:
    return {
        "num_samples": 1,
        "prompt": PROMPT,
        "sampling_params": {"max_tokens": 2, "seed": 1},
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
    }


def _client_run(api: Api, count: int) -> tuple[str, str]:
    """One client: a session, ``count`` samples fetched once each; returns the sampler id and
    the first sample's request id."""
    sampler_id = api.sampler(base_model="tinkex/null")
    ids = [api.ok("asample", _asample(sampler_id, i))["request_id"] for i in range(count)]
    for request_id in ids:
        assert "sequences" in api.result(request_id)
    return sampler_id, ids[0]


def _wait_until_gone(api: Api, server: LocalServer, sampler_id: str) -> None:
    """Until the client's session expired (no heartbeat: its sampler is dropped) and its
    results are released (any request of the session would count as a heartbeat)."""
    assert server.app is not None
    samplers = server.app.state.samplers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if sampler_id not in samplers and server.memory.held("results") == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"the session of {sampler_id} did not expire")


def test_an_ended_client_leaves_a_small_record_per_sample() -> None:
    count = 300
    with LocalServer(heartbeat_timeout=1.0, delivered_result_ttl=0.1) as server:
        api = Api(server)
        _wait_until_gone(api, server, _client_run(api, 20)[0])  # lazily built state exists
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            sampler_id, first = _client_run(api, count)
            _wait_until_gone(api, server, sampler_id)
            gc.collect()
            per_sample = (tracemalloc.get_traced_memory()[0] - before) / count
        finally:
            tracemalloc.stop()
        resend = api.post("asample", _asample(sampler_id, 0))
        assert resend.status_code == 400 and "has ended" in resend.json()["detail"]
        # the records stay (a late retrieve_future is told the result was released)
        late = api.post("retrieve_future", {"request_id": first})
        assert late.status_code == 200 and "released" in late.json()["error"]
    assert per_sample < 600, per_sample
