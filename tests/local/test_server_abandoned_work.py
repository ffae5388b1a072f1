"""Work nobody waits for any more is cancelled, not computed, and idle memory goes back down
(issue 12.12): a sample cancelled with cancel_future stops at its next decoding step; the
samples of a session that expired or finished are cancelled and its samplers' memory is given
back; an idle server returns freed memory to the OS."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tinkex.local import LocalServer

from .conftest import Api

PROMPT = {"chunks": [{"tokens": [256, 72, 101], "type": "encoded_text"}]}
#: ~5 s of decoding on the tiny model: long enough to be cancelled while it runs
LONG = {"num_samples": 256, "sampling_params": {"max_tokens": 400, "stop": [], "seed": 1}}


def _long_sample(api: Api, sampler_id: str, seq_id: int = 0) -> str:
    body: dict[str, Any] = {"prompt": PROMPT, "sampling_session_id": sampler_id, "seq_id": seq_id}
    return str(api.ok("asample", {**body, **LONG})["request_id"])


def _samples_failed(server: LocalServer) -> int:
    counts = server.finished_requests()
    return sum(
        n for (kind, _, outcome), n in counts.items() if (kind, outcome) == ("Sample", "failed")
    )


def test_a_running_sample_stops_when_its_future_is_cancelled() -> None:
    with LocalServer(long_poll_seconds=0.3) as server:
        api = Api(server)
        request_id = _long_sample(api, api.sampler())
        time.sleep(0.5)  # it is decoding now
        cancelled_at = time.monotonic()
        assert api.ok("cancel_future", {"request_id": request_id}) == {}
        result = api.result(request_id, timeout=30)
        stopped_after = time.monotonic() - cancelled_at
        assert result == {"error": "request was cancelled", "category": "user"}
        assert stopped_after < 2, stopped_after  # not the seconds the rest of it takes
        assert server.memory.held("jobs") == 0 and _samples_failed(server) == 1


def test_the_samples_of_an_expired_session_are_cancelled() -> None:
    with LocalServer(heartbeat_timeout=0.5, long_poll_seconds=0.3) as server:
        api = Api(server)
        session = api.session()  # no heartbeats follow
        sampler_id = api.sampler(session)
        running, queued, waiting = (_long_sample(api, sampler_id, i) for i in range(3))
        for request_id in (running, queued, waiting):
            result = api.result(request_id, timeout=30)
            assert result["category"] == "user"
            assert f"the sample was cancelled: session {session} expired" in result["error"]
        assert server.memory.held("jobs") == 0
        again = api.post(
            "asample",
            {
                "prompt": PROMPT,
                "sampling_session_id": sampler_id,
                "seq_id": 9,
                "num_samples": 1,
                "sampling_params": {},
            },
        )
        assert again.status_code == 400 and "which has ended (cancelled)" in again.text


def test_finishing_a_session_gives_its_sampler_snapshots_memory_back() -> None:
    with LocalServer(long_poll_seconds=0.3) as server:
        api = Api(server)
        session = api.session()
        model_id = api.model(session=session)
        body = {"model_id": model_id, "seq_id": 1, "sampling_session_seq_id": 0}
        saved = api.result(api.ok("save_weights_for_sampler", body)["request_id"])
        assert saved["sampling_session_id"] == f"{session}:sample:0"
        assert server.memory.held("snapshots") > 0 and server.memory.held("runs") > 0
        assert api.post(f"sessions/{session}/finish", {}).status_code == 200
        assert server.memory.held("snapshots") == 0 and server.memory.held("runs") == 0


def test_an_idle_server_gives_freed_memory_back_and_heartbeats_do_not_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Measured with tinkex serve after 1500 samples and 20 steps: 211 MiB after the burst,
    90 MiB after 80 s idle (57 MiB at start); without giving memory back it stayed at ~181."""
    from tinkex.local.app import state as state_module

    calls: list[float] = []
    monkeypatch.setattr(state_module, "return_memory_to_the_os", lambda: calls.append(1.0))
    with LocalServer(idle_trim_seconds=0.3, heartbeat_timeout=1.0, long_poll_seconds=0.3) as server:
        api = Api(server)
        session = api.session()
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            assert api.post("session_heartbeat", {"session_id": session}).status_code == 200
            time.sleep(0.1)
        assert len(calls) == 1  # heartbeats alone leave the server idle
        api.model(session=session)
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(calls) == 2  # work, then idle again: once more
