"""Sizes a request can set are bounded (issue 10.5): a 400 names the field, the value and the
limit, at once; the server admits work against its memory budget before allocating it (400
when it cannot fit, 429 while the budget is busy) and releases delivered results."""

from __future__ import annotations

import time
from typing import Any

import pytest
import tinker

from tinkex.local import LocalServer
from tinkex.local.engine.memory import MemoryBudget, MemoryBudgetError, format_bytes, parse_bytes

from .conftest import Api, create_model_body, datum, fwdbwd

PROMPT = {"chunks": [{"tokens": [256, 72, 101, 108], "type": "encoded_text"}]}


def test_lora_rank_a_million_is_refused_in_milliseconds(server: LocalServer) -> None:
    """Before: rank 10**6 grew the server to 4.7 GB in 40 s while the client waited."""
    with tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        started = time.monotonic()
        with pytest.raises(tinker.BadRequestError) as raised:
            service.create_lora_training_client(base_model="Qwen/Qwen3-8B", rank=10**6).result()
        elapsed = time.monotonic() - started
    assert "lora_config.rank = 1000000 exceeds this server's limit of 1024" in str(raised.value)
    assert "max_lora_rank" in str(raised.value)
    assert elapsed < 5, elapsed  # an answer, not a timeout (it takes milliseconds)


def _asample(sampler_id: str, *, num_samples: int = 1, **sampling_params: Any) -> dict[str, Any]:
    """An asample request (seq_id 0) of ``PROMPT`` in JSON wire shape."""
    return {
        "num_samples": num_samples,
        "prompt": PROMPT,
        "sampling_params": sampling_params,
        "sampling_session_id": sampler_id,
        "seq_id": 0,
    }


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"num_samples": 5000}, "num_samples = 5000 exceeds this server's limit of 1024"),
        (
            {"prompt_alt_tokens_k": 2000},
            "prompt_alt_tokens_k = 2000 exceeds this server's limit of 1024",
        ),
        ({"topk_prompt_logprobs": 300}, "topk_prompt_logprobs = 300 exceeds the vocabulary"),
        (
            {"sampling_params": {"max_tokens": 4, "stop": list(range(300))}},
            "number of sampling_params.stop entries = 300 exceeds this server's limit of 256",
        ),
        (
            {
                "target_prompt_logprobs": {
                    "data": [1] * 3 * 5000,
                    "dtype": "int64",
                    "shape": [3, 5000],
                }
            },
            "target_prompt_logprobs columns (K) = 5000 exceeds this server's limit of 1024",
        ),
        (
            {"sampling_params": {"max_tokens": 600}},
            "sampling_params.max_tokens (600) exceeds the context length 512",
        ),
    ],
)
def test_sample_sizes_are_bounded(api: Api, change: dict[str, Any], expected: str) -> None:
    body = {**_asample(api.sampler(), max_tokens=4), **change}
    answer = api.post("asample", body)
    assert answer.status_code == 400 and expected in answer.json()["detail"], answer.text


def test_training_sizes_are_bounded() -> None:
    with LocalServer(max_datums=4, max_batch_tokens=20, long_poll_seconds=0.3) as server:
        api = Api(server)
        model_id = api.model()
        many = api.post("forward_backward", fwdbwd(model_id, 1, [datum([72, 101])] * 5))
        assert many.status_code == 400
        assert "number of data = 5 exceeds this server's limit of 4" in many.text
        tokens = api.post("forward_backward", fwdbwd(model_id, 2, [datum([72] * 12)] * 2))
        assert tokens.status_code == 400
        assert "tokens of all data = 24 exceeds this server's limit of 20" in tokens.text
        # rejected requests consume their seq_ids: the next one runs
        ok = api.ok("forward_backward", fwdbwd(model_id, 3, [datum([72, 101])]))
        assert "metrics" in api.result(ok["request_id"])
    with LocalServer(long_poll_seconds=0.3) as server:
        api = Api(server)
        too_long = api.post("forward_backward", fwdbwd(api.model(), 1, [datum([72] * 600)]))
        assert too_long.status_code == 400
        assert "has 600 tokens, more than the context length 512" in too_long.text


def test_a_request_that_cannot_fit_the_budget_is_400_and_names_what_holds_it() -> None:
    with LocalServer(memory_budget=3 << 20, long_poll_seconds=0.3) as server:
        api = Api(server)
        session = api.session()
        api.model(rank=8, session=session)  # ~1.3 MiB
        second = api.post("create_model", create_model_body(session, {"rank": 64}, model_seq_id=1))
        assert second.status_code == 400
        detail = second.json()["detail"]
        assert "training run" in detail and "memory budget of 3.0 MiB" in detail
        assert "held now: runs" in detail and "--memory-budget" in detail
        model_id = api.model(rank=1, session=session, model_seq_id=2)
        big = api.post("forward_backward", fwdbwd(model_id, 1, [datum([72] * 400)] * 4))
        assert big.status_code == 400 and "ForwardBackward of 4 data (1600 tokens)" in big.text
        small = api.ok("forward_backward", fwdbwd(model_id, 2, [datum([72, 101])]))
        assert "metrics" in api.result(small["request_id"])


def test_while_the_budget_is_busy_work_gets_429_and_runs_once_it_is_free() -> None:
    with LocalServer(memory_budget=64 << 20, long_poll_seconds=0.3) as server:
        api = Api(server)
        body = _asample(api.sampler(), max_tokens=4, seed=1)
        # as if other requests were running and held all but 1 KiB
        busy = server.memory.hold("jobs", server.memory.limit - 1024)
        answer = api.post("asample", body)
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
        assert "a sample of 1 x 4 tokens needs an estimated" in answer.json()["detail"]
        assert "is busy (held now: jobs 64.0 MiB)" in answer.json()["detail"]
        busy.release()
        future = api.ok("asample", body)  # the same seq_id: the 429 did not consume it
        assert len(api.result(future["request_id"])["sequences"]) == 1
        assert server.memory.held("jobs") == 0


def test_delivered_results_are_released_and_a_late_poll_is_told(tmp_path: Any) -> None:
    with LocalServer(delivered_result_ttl=0.2, long_poll_seconds=0.3) as server:
        api = Api(server)
        body = _asample(api.sampler(), num_samples=8, max_tokens=16, seed=1)
        request_id = api.ok("asample", body)["request_id"]
        first = api.result(request_id)
        assert len(first["sequences"]) == 8
        assert api.result(request_id) == first  # a lost answer can be fetched again at once
        assert server.memory.held("results") > 0
        deadline = time.monotonic() + 10
        while server.memory.held("results") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.memory.held("results") == 0
        late = api.result(request_id)
        assert (
            late["category"] == "user"
            and "already delivered and has been released" in (late["error"])
        )


def test_the_budget_frees_delivered_results_before_refusing_work() -> None:
    freed: list[int] = []
    budget = MemoryBudget(100, reclaim=lambda n: (freed.append(n), results.release())[1] or 40)
    results = budget.hold("results", 40)
    budget.admit("jobs", 50, "a")  # fits: 60 free
    assert budget.admit("jobs", 30, "b").nbytes == 30  # needs 20 more: reclaimed
    assert freed == [20] and budget.held("results") == 0
    with pytest.raises(MemoryBudgetError) as busy:
        budget.admit("jobs", 30, "c")
    assert busy.value.busy
    budget.admit("runs", 10, "run")
    with pytest.raises(MemoryBudgetError) as never:
        budget.admit("jobs", 95, "d")
    assert not never.value.busy and "d needs an estimated 95 B" in str(never.value)


def test_sizes_parse_and_print() -> None:
    assert parse_bytes("2GiB") == 2 << 30 and parse_bytes("512m") == 512 << 20
    assert parse_bytes("1.5G") == 3 << 29 and parse_bytes("1000") == 1000
    with pytest.raises(ValueError, match="is not a size"):
        parse_bytes("lots")
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(3 << 30) == "3.0 GiB"


TEN_YEARS = 10 * 365 * 24 * 3600


def test_checkpoint_ttls_are_bounded_and_listing_keeps_working(api: Api) -> None:
    """Before: ttl_seconds 10**30 was accepted, and every later checkpoint listing was a 500
    (OverflowError: timestamp out of range)."""
    model_id = api.model()
    expected = f"ttl_seconds = {10**30} exceeds this server's limit of {TEN_YEARS}"
    for seq_id, endpoint in enumerate(("save_weights", "save_weights_for_sampler"), start=1):
        body = {"model_id": model_id, "seq_id": seq_id, "path": "x", "ttl_seconds": 10**30}
        answer = api.post(endpoint, body)
        assert answer.status_code == 400 and expected in answer.json()["detail"], answer.text
    saved = api.ok(
        "save_weights", {"model_id": model_id, "seq_id": 3, "path": "kept", "ttl_seconds": 7200}
    )
    path = api.result(saved["request_id"])["path"]
    ttl_url = api.base + f"training_runs/{model_id}/checkpoints/weights/kept/ttl"
    answer = api.http.put(ttl_url, json={"ttl_seconds": TEN_YEARS + 1})
    assert answer.status_code == 400 and "exceeds this server's limit" in answer.text
    assert api.http.put(ttl_url, json={"ttl_seconds": TEN_YEARS}).status_code == 200
    listed = api.get("checkpoints")
    assert listed.status_code == 200, listed.text
    assert [c["tinker_path"] for c in listed.json()["checkpoints"]] == [path]


def test_tags_and_user_metadata_are_bounded() -> None:
    """Before: 200,000 tags and 10 MB of session metadata went into the index unchecked."""
    with LocalServer(max_metadata_bytes=1000, long_poll_seconds=0.3) as server:
        api = Api(server)
        big = {"k": "v" * 2000}
        for body, field in (
            ({"tags": ["t" * 10] * 200, "user_metadata": {}}, "tags"),
            ({"tags": [], "user_metadata": big}, "user_metadata"),
        ):
            answer = api.post("create_session", body)
            assert answer.status_code == 400, answer.text
            assert f"JSON size in bytes of {field} = " in answer.text
            limit = "exceeds this server's limit of 1000 (LocalServer option max_metadata_bytes)"
            assert limit in answer.text
        session = api.session()
        model = api.post("create_model", create_model_body(session, {"rank": 4}, user_metadata=big))
        assert model.status_code == 400 and "JSON size in bytes of user_metadata" in model.text
        model_id = api.model(session=session, model_seq_id=1)
        save = api.post(
            "save_weights", {"model_id": model_id, "seq_id": 1, "path": "a", "user_metadata": big}
        )
        assert save.status_code == 400 and "JSON size in bytes of user_metadata" in save.text
