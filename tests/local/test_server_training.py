"""Training endpoints over HTTP: create_model, fwd/bwd, optim_step, sequencing, dedupe, errors."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import requests

from tinkex.local import LocalServer

from .conftest import Api, create_model_body, datum, fwdbwd, optim

TOKENS = [72, 101, 108, 108, 111]


def test_create_model_future_and_get_info(api: Api) -> None:
    session = api.session()
    future = api.ok(
        "create_model",
        create_model_body(session, {"rank": 8, "seed": 3}, base_model="Qwen/Qwen3-8B"),
    )
    assert future["model_id"] == f"{session}:train:0"
    assert isinstance(future["request_id"], str)
    assert api.result(future["request_id"]) == {
        "model_id": future["model_id"],
        "type": "create_model",
    }
    info = api.ok("get_info", {"model_id": future["model_id"], "type": "get_info"})
    assert info["model_data"] == {
        "arch": "tinkex-tiny-transformer",
        "model_name": "Qwen/Qwen3-8B",
        "tokenizer_id": api.server.tokenizer_id,
    }
    assert info["lora_rank"] == 8 and info["is_lora"] is True


def test_training_reduces_loss(api: Api) -> None:
    model_id = api.model()
    losses = []
    for step in range(6):
        seq = 2 * step + 1
        fb = api.ok("forward_backward", fwdbwd(model_id, seq, [datum(TOKENS)]))
        op = api.ok("optim_step", optim(model_id, seq + 1))
        result = api.result(fb["request_id"])
        assert set(result) >= {"loss_fn_outputs", "metrics", "loss_fn_output_type"}
        logprobs = result["loss_fn_outputs"][0]["logprobs"]
        assert logprobs["dtype"] == "float32" and logprobs["shape"] == [5]
        losses.append(result["metrics"]["loss:sum"])
        assert "metrics" in api.result(op["request_id"])
    assert losses[-1] < 0.5 * losses[0]


def test_forward_endpoint_does_not_train(api: Api) -> None:
    model_id = api.model()
    body = {
        "forward_input": {"data": [datum(TOKENS)], "loss_fn": "cross_entropy"},
        "model_id": model_id,
        "seq_id": 1,
    }
    first = api.result(api.ok("forward", body)["request_id"])
    api.result(api.ok("optim_step", optim(model_id, 2))["request_id"])
    body["seq_id"] = 3
    second = api.result(api.ok("forward", body)["request_id"])
    assert first["metrics"]["loss:sum"] == pytest.approx(second["metrics"]["loss:sum"])


def test_out_of_order_submission_runs_in_seq_order(api: Api) -> None:
    model_id = api.model()
    # seq 3 (forward) and 2 (optim) arrive before seq 1 (forward_backward): they must wait.
    late = api.ok(
        "forward",
        {
            "forward_input": {"data": [datum(TOKENS)], "loss_fn": "cross_entropy"},
            "model_id": model_id,
            "seq_id": 3,
        },
    )
    step = api.ok("optim_step", optim(model_id, 2, lr=0.05))
    pending = api.post("retrieve_future", {"request_id": late["request_id"]}).json()
    assert pending["type"] == "try_again" and pending["queue_state"] == "active"
    first = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))
    before = api.result(first["request_id"])["metrics"]["loss:sum"]
    api.result(step["request_id"])
    after = api.result(late["request_id"])["metrics"]["loss:sum"]
    assert after < before  # the optim step ran between them


def test_resend_returns_original_request_id_and_conflict_is_400(api: Api) -> None:
    model_id = api.model()
    body = fwdbwd(model_id, 1, [datum(TOKENS)])
    first = api.ok("forward_backward", body)
    again = api.ok("forward_backward", body)
    assert again["request_id"] == first["request_id"]
    other = api.post("forward_backward", fwdbwd(model_id, 1, [datum([1, 2, 3])]))
    assert other.status_code == 400
    assert "seq_id 1" in other.json()["detail"]
    api.result(first["request_id"])
    # one step only: a second fwd/bwd sees the same loss (no double gradient application)
    api.result(api.ok("optim_step", optim(model_id, 2))["request_id"])
    api.result(api.ok("optim_step", optim(model_id, 2))["request_id"])


def test_gap_that_never_fills_fails_waiting_requests() -> None:
    with LocalServer(long_poll_seconds=0.3, gap_timeout=0.4) as server:
        api = Api(server)
        model_id = api.model()
        waiting = api.ok("optim_step", optim(model_id, 2))
        result = api.result(waiting["request_id"], timeout=10)
        assert result["category"] == "user"
        assert "seq_id 1" in result["error"] and "never arrived" in result["error"]
        # the model keeps working after the gap
        ok = api.ok("forward_backward", fwdbwd(model_id, 3, [datum(TOKENS)]))
        assert "metrics" in api.result(ok["request_id"])


def test_rejected_request_consumes_its_seq_id(api: Api) -> None:
    model_id = api.model()
    bad = api.post("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)], loss_fn="nope"))
    assert bad.status_code == 400 and "'nope'" in bad.json()["detail"]
    vocab = api.post("forward_backward", fwdbwd(model_id, 2, [datum([72, 9999])]))
    assert vocab.status_code == 400 and "9999" in vocab.json()["detail"]
    good = api.ok("forward_backward", fwdbwd(model_id, 3, [datum(TOKENS)]))
    assert "metrics" in api.result(good["request_id"])


def test_shape_mismatch_is_400_and_user_errors_fail_futures(api: Api) -> None:
    model_id = api.model()
    mismatched = datum(TOKENS, targets=[1, 2])  # shape mismatch with the 5 input tokens
    response = api.post("forward_backward", fwdbwd(model_id, 1, [mismatched]))
    assert response.status_code == 400
    assert "loss_fn_inputs.target_tokens" in response.json()["detail"]
    ppo = api.ok("forward_backward", fwdbwd(model_id, 2, [datum(TOKENS)], loss_fn="ppo"))
    failed = api.result(ppo["request_id"])
    assert failed["category"] == "user" and "logprobs" in failed["error"]


def test_unknown_model_and_future_ids(api: Api) -> None:
    response = api.post("forward_backward", fwdbwd("nope:train:0", 1, [datum(TOKENS)]))
    assert response.status_code == 400 and "'nope:train:0'" in response.json()["detail"]
    assert api.post("retrieve_future", {"request_id": "req-unknown"}).status_code == 404
    assert api.post("get_info", {"model_id": "nope"}).status_code == 400


def test_importance_sampling_moves_rewarded_logprob_up(api: Api) -> None:
    model_id = api.model(rank=8)
    tokens = [256, 72, 105]
    base = {
        "model_input": {"chunks": [{"tokens": tokens, "type": "encoded_text"}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": [72, 105, 33], "dtype": "int64", "shape": [3]},
            "logprobs": {"data": [-5.0, -5.0, -5.0], "dtype": "float32", "shape": [3]},
            "advantages": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
        },
    }
    first = api.result(
        api.ok("forward_backward", fwdbwd(model_id, 1, [base], "importance_sampling"))["request_id"]
    )
    api.result(api.ok("optim_step", optim(model_id, 2, lr=0.02))["request_id"])
    second = api.result(
        api.ok("forward_backward", fwdbwd(model_id, 3, [base], "importance_sampling"))["request_id"]
    )

    def lp(result: dict[str, Any]) -> float:
        return float(np.sum(result["loss_fn_outputs"][0]["logprobs"]["data"]))

    assert lp(second) > lp(first)


def test_legacy_load_weights_only_as_first_request(api: Api) -> None:
    model_id = api.model()
    saved = api.result(
        api.ok("save_weights", {"model_id": model_id, "seq_id": 1, "path": "legacy"})["request_id"]
    )
    response = api.post(
        "load_weights",
        {"model_id": model_id, "seq_id": 2, "path": saved["path"], "optimizer": False},
    )
    assert response.status_code == 400 and "seq_id 2" in response.json()["detail"]
    # the rejected seq_id does not block the model
    later = api.ok("forward_backward", fwdbwd(model_id, 3, [datum(TOKENS)]))
    assert "metrics" in api.result(later["request_id"])
    fresh = api.model()
    loaded = api.ok(
        "load_weights", {"model_id": fresh, "seq_id": 1, "path": saved["path"], "optimizer": True}
    )
    assert api.result(loaded["request_id"])["type"] == "load_weights"


def test_unsupported_optimizer_is_rejected(api: Api) -> None:
    session = api.session()
    response = api.post(
        "create_model",
        {
            "session_id": session,
            "model_seq_id": 0,
            "base_model": "tinkex/tiny",
            "optimizer_config": {"type": "dimuon", "version": 1},
        },
    )
    assert response.status_code == 400 and "dimuon" in response.json()["detail"]


def test_cancel_future_of_queued_request(api: Api) -> None:
    model_id = api.model()
    queued = api.ok("optim_step", optim(model_id, 2))
    assert api.ok("cancel_future", {"request_id": queued["request_id"]}) == {}
    api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))
    result = api.result(queued["request_id"])
    assert result["category"] == "user" and "cancelled" in result["error"]


def test_long_poll_holds_then_try_again(api: Api) -> None:
    model_id = api.model()
    waiting = api.ok("optim_step", optim(model_id, 5))
    start = time.monotonic()
    response = api.post("retrieve_future", {"request_id": waiting["request_id"]})
    elapsed = time.monotonic() - start
    assert response.json() == {
        "type": "try_again",
        "request_id": waiting["request_id"],
        "queue_state": "active",
    }
    assert 0.4 <= elapsed < 5


def test_session_finish_unloads_models(api: Api) -> None:
    session = api.session()
    model_id = api.model(session=session)
    assert api.ok(f"sessions/{session}/finish", {"reason": {"type": "success"}}) == {}
    response = api.post("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))
    assert response.status_code == 400 and "no longer loaded" in response.json()["detail"]


def test_heartbeat_expiry_unloads_models() -> None:
    with LocalServer(heartbeat_timeout=0.3, long_poll_seconds=0.2) as server:
        api = Api(server)
        session = api.session()
        model_id = api.model(session=session)
        assert api.ok("session_heartbeat", {"session_id": session, "type": "session_heartbeat"})
        deadline = time.monotonic() + 5
        # no heartbeats (or other requests of the session) now: it expires after 0.3 s
        searched = {}
        while time.monotonic() < deadline:
            time.sleep(0.1)
            searched = api.ok("sessions/search", {"session_id": session})["sessions"][0]
            if searched["status"]["type"] != "active":
                break
        assert searched["status"]["type"] == "cancelled"
        assert "expired" in searched["status"]["detail"]
        response = api.post("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))
        assert response.status_code == 400 and "expired" in response.json()["detail"]
        assert api.post("session_heartbeat", {"session_id": session}).status_code == 410


def test_requests_module_against_fixture(tinker_server: LocalServer) -> None:
    response = requests.get(tinker_server.base_url + "/api/v1/healthz")
    assert response.json() == {"status": "ok"} and tinker_server.api_key == "tml-local"


def test_unload_model_fails_queued_work_and_later_requests(api: Api) -> None:
    model_id = api.model()
    queued = api.ok("optim_step", optim(model_id, 3))  # waits for seq_id 2
    unloaded = api.ok("unload_model", {"model_id": model_id, "type": "unload_model"})
    assert api.result(unloaded["request_id"]) == {"model_id": model_id, "type": "unload_model"}
    failed = api.result(queued["request_id"])
    assert failed["category"] == "user" and "unloaded by the client" in failed["error"]
    later = api.post("forward_backward", fwdbwd(model_id, 4, [datum(TOKENS)]))
    assert later.status_code == 400 and "no longer loaded" in later.json()["detail"]


def test_join_sampling_session_hands_out_client_counters(api: Api) -> None:
    session = api.session()
    sampler_id = api.ok(
        "create_sampling_session",
        {"session_id": session, "sampling_session_seq_id": 0, "base_model": "tinkex/null"},
    )["sampling_session_id"]
    first = api.ok("join_sampling_session", {"sampling_session_id": sampler_id})
    second = api.ok("join_sampling_session", {"sampling_session_id": sampler_id})
    assert first["type"] == "join_sampling_session"
    assert second["client_counter"] > first["client_counter"] >= 1
    unknown = api.post("join_sampling_session", {"sampling_session_id": "nope:sample:0"})
    assert unknown.status_code == 400 and "nope:sample:0" in unknown.json()["detail"]
