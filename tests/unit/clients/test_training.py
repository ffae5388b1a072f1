"""TrainingClient wire behaviour: bodies, seq_id order, chunking, metric reduction, poisoning."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex._transport.estimates import estimate_datum_bytes
from tinkex.clients._chunking import hash_unordered

from .conftest import API_KEY, BASE_URL, MODEL_ID, SESSION_ID, FakeTinker, datum

SUBMIT_PATHS = {
    "/api/v1/forward_backward",
    "/api/v1/forward",
    "/api/v1/optim_step",
    "/api/v1/save_weights",
    "/api/v1/save_weights_for_sampler",
    "/api/v1/save_weights_external",
    "/api/v1/load_weights",
}


def submitted(fake: FakeTinker) -> list[tuple[str, int]]:
    """(path, seq_id) of every training submission, in the order the server saw them."""
    return [(c.path, c.json["seq_id"]) for c in fake.calls if c.path in SUBMIT_PATHS and c.json]


def test_forward_backward_json_body(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    out = training.forward_backward([datum([1, 2, 3])], "cross_entropy").result(timeout=10)
    assert out.metrics == {"loss:sum": 1.0}
    assert out.loss_fn_outputs[0]["logprobs"].tolist() == [-1.0, -1.0, -1.0]
    (call,) = fake.requests_to("/api/v1/forward_backward")
    assert call.json == {
        "forward_backward_input": {
            "data": [
                {
                    "model_input": {"chunks": [{"tokens": [1, 2, 3], "type": "encoded_text"}]},
                    "loss_fn_inputs": {
                        "target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]},
                        "weights": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
                    },
                }
            ],
            "loss_fn": "cross_entropy",
        },
        "model_id": MODEL_ID,
        "seq_id": 1,
    }
    assert call.headers["x-sdk-method"] == "TrainingClient.forward_backward"
    poll = fake.requests_to("/api/v1/retrieve_future")[-1]
    assert poll.headers["X-Tinker-Request-Type"] == "ForwardBackward"
    assert poll.headers["Accept"] == "application/x-protobuf"


def test_forward_and_loss_config(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    training.forward([datum([1, 2])], "ppo", {"clip_low_threshold": 0.8}).result(timeout=10)
    (call,) = fake.requests_to("/api/v1/forward")
    assert call.json["forward_input"]["loss_fn"] == "ppo"
    assert call.json["forward_input"]["loss_fn_config"] == {"clip_low_threshold": 0.8}
    assert call.json["seq_id"] == 1
    assert call.headers["x-sdk-method"] == "TrainingClient.forward"
    poll = fake.requests_to("/api/v1/retrieve_future")[-1]
    assert poll.headers["X-Tinker-Request-Type"] == "Forward"


def test_forward_backward_protobuf_body(fake: FakeTinker, monkeypatch: pytest.MonkeyPatch) -> None:
    from tinkex.types._proto import decode_forward_backward_request

    monkeypatch.setenv("TINKEX_WIRE_FORMAT", "protobuf")
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        training = service.create_lora_training_client("tiny-base").result(timeout=10)
        training.forward([datum([7])], "cross_entropy").result(timeout=10)
        training.forward_backward([datum([5, 6])], "cross_entropy").result(timeout=10)
    forward, fwdbwd = fake.requests_to("/api/v1/forward_backward")
    assert fwdbwd.headers["Content-Type"] == "application/x-protobuf"
    assert fwdbwd.headers["x-sdk-method"] == "TrainingClient.forward_backward"
    decoded = decode_forward_backward_request(fwdbwd.content)
    assert isinstance(decoded, types.ForwardBackwardRequest)
    assert decoded.model_id == MODEL_ID
    assert decoded.seq_id == 2
    assert decoded.forward_backward_input.data[0].model_input.to_ints() == [5, 6]
    assert isinstance(decode_forward_backward_request(forward.content), types.ForwardRequest)


def test_empty_data_rejected(training: tinkex.TrainingClient) -> None:
    with pytest.raises(ValueError, match="No data provided"):
        training.forward_backward([], "cross_entropy")
    with pytest.raises(ValueError, match="No data provided"):
        training.forward([], "cross_entropy")


def test_seq_ids_follow_call_order(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    futures: list[Any] = []
    for step in range(3):
        futures.append(training.forward_backward([datum([1, 2, step])], "cross_entropy"))
        futures.append(training.optim_step(types.AdamParams(learning_rate=1e-3)))
    futures.append(training.save_state("ckpt"))
    for future in futures:
        future.result(timeout=10)
    assert submitted(fake) == [
        ("/api/v1/forward_backward", 1),
        ("/api/v1/optim_step", 2),
        ("/api/v1/forward_backward", 3),
        ("/api/v1/optim_step", 4),
        ("/api/v1/forward_backward", 5),
        ("/api/v1/optim_step", 6),
        ("/api/v1/save_weights", 7),
    ]


def test_chunking_by_count(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    # Sequential chunks: the order on the wire is deterministic (see the parallel test below).
    fake.config = {"fwdbwd_max_chunk_len": 2, "parallel_fwdbwd_chunks": False}
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    data = [datum([i, i + 1]) for i in range(5)]
    out = training.forward_backward(data, "cross_entropy").result(timeout=10)
    opt = training.optim_step(types.AdamParams()).result(timeout=10)
    assert opt.metrics == {"grad_norm:mean": 0.5}
    calls = fake.requests_to("/api/v1/forward_backward")
    assert [len(c.json["forward_backward_input"]["data"]) for c in calls] == [2, 2, 1]
    assert submitted(fake) == [
        ("/api/v1/forward_backward", 1),
        ("/api/v1/forward_backward", 2),
        ("/api/v1/forward_backward", 3),
        ("/api/v1/optim_step", 4),
    ]
    # outputs concatenated in order; loss:sum summed over the chunks
    assert len(out.loss_fn_outputs) == 5
    assert out.metrics == {"loss:sum": 5.0}
    sent_tokens = [
        d["model_input"]["chunks"][0]["tokens"]
        for c in calls
        for d in c.json["forward_backward_input"]["data"]
    ]
    assert sent_tokens == [[i, i + 1] for i in range(5)]


def test_chunking_by_bytes(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    data = [datum([1, 2, 3]), datum([4, 5, 6]), datum([7, 8, 9])]
    size = estimate_datum_bytes(data[0])
    fake.config = {"fwdbwd_max_chunk_bytes_count": 2 * size + 1, "parallel_fwdbwd_chunks": False}
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    training.forward_backward(data, "cross_entropy").result(timeout=10)
    calls = fake.requests_to("/api/v1/forward_backward")
    assert [len(c.json["forward_backward_input"]["data"]) for c in calls] == [2, 1]
    assert [c.json["seq_id"] for c in calls] == [1, 2]


def _chunk_metrics(values: list[dict[str, float]]) -> Any:
    """A fwdbwd result function returning ``values[i]`` as the i-th chunk's metrics."""
    pending = list(values)

    def result(body: dict[str, Any]) -> Any:
        data = body["forward_backward_input"]["data"]
        return {
            "loss_fn_output_type": "scalar",
            "loss_fn_outputs": [
                {"logprobs": {"data": [-1.0], "dtype": "float32", "shape": [1]}} for _ in data
            ],
            "metrics": pending.pop(0),
        }

    return result


def test_metric_reduction_by_suffix(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    fake.config = {"fwdbwd_max_chunk_len": 2, "parallel_fwdbwd_chunks": False}
    fake.fwdbwd_result = _chunk_metrics(
        [
            {
                "loss:sum": 1.0,
                "acc:mean": 0.5,
                "lo:min": 3.0,
                "hi:max": 1.0,
                "sl:slack": 2.0,
                "h:hash2": 3.0,
                "hu:hash_unordered": 7.0,
                "u:unique": 10.0,
                "odd:median": 1.0,
                "only_first:sum": 4.0,
            },
            {
                "loss:sum": 2.0,
                "acc:mean": 1.0,
                "lo:min": 1.0,
                "hi:max": 5.0,
                "sl:slack": 6.0,
                "h:hash2": 4.0,
                "hu:hash_unordered": 2.5,
                "u:unique": 20.0,
                "odd:median": 2.0,
            },
        ]
    )
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    data = [datum([1]), datum([2]), datum([3])]  # chunks of 2 and 1 datums
    metrics = training.forward_backward(data, "cross_entropy").result(timeout=10).metrics
    assert metrics["loss:sum"] == 3.0
    assert math.isclose(metrics["acc:mean"], (0.5 * 2 + 1.0 * 1) / 3)
    assert metrics["lo:min"] == 1.0
    assert metrics["hi:max"] == 5.0
    assert math.isclose(metrics["sl:slack"], 6.0 - (2.0 * 2 + 6.0) / 3)
    assert metrics["h:hash2"] == 7.0
    assert metrics["hu:hash_unordered"] == hash_unordered([2.5, 7.0])
    assert metrics["u:unique"] == 10.0
    assert metrics["u:unique_1"] == 20.0
    assert "odd:median" not in metrics  # unknown reduction: dropped
    assert "only_first:sum" not in metrics  # not present in every chunk


def test_metric_key_without_colon_fails(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    fake.fwdbwd_result = _chunk_metrics([{"loss": 1.0}, {"a:b:sum": 1.0}])
    future = training.forward_backward([datum([1, 2])], "cross_entropy")
    with pytest.raises(ValueError, match="'loss'"):
        future.result(timeout=10)
    with pytest.raises(ValueError, match="'a:b:sum'"):
        training.forward_backward([datum([1, 2])], "cross_entropy").result(timeout=10)


def test_single_chunk_metrics_are_reduced_too(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    fake.fwdbwd_result = _chunk_metrics([{"loss:sum": 2.0, "x:median": 1.0, "h:hash2": 3.7}])
    metrics = training.forward_backward([datum([1])], "cross_entropy").result(timeout=10).metrics
    assert metrics == {"loss:sum": 2.0, "h:hash2": 3.0}


def test_optim_step_body(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    params = types.AdamParams(learning_rate=0.01, weight_decay=0.1, grad_clip_norm=1.0)
    response = training.optim_step(params).result(timeout=10)
    assert response.metrics == {"grad_norm:mean": 0.5}
    training.optim_step(adam_params=types.AdamParams()).result(timeout=10)
    first, second = fake.requests_to("/api/v1/optim_step")
    assert first.json == {
        "model_id": MODEL_ID,
        "adam_params": {
            "learning_rate": 0.01,
            "beta1": 0.9,
            "beta2": 0.95,
            "eps": 1e-12,
            "weight_decay": 0.1,
            "grad_clip_norm": 1.0,
        },
        "seq_id": 1,
        "type": "optim_step",
    }
    assert second.json["seq_id"] == 2
    assert first.headers["x-sdk-method"] == "TrainingClient.optim_step"
    poll = fake.requests_to("/api/v1/retrieve_future")[-1]
    assert poll.headers["X-Tinker-Request-Type"] == "OptimStep"
    assert poll.headers["Accept"] == "application/json"


def test_optim_step_argument_errors(training: tinkex.TrainingClient) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        training.optim_step()
    with pytest.raises(ValueError, match="exactly one"):
        training.optim_step(types.AdamParams(), adam_params=types.AdamParams())
    with pytest.raises(TypeError, match="AdamParams"):
        training.optim_step({"learning_rate": 1e-3})  # type: ignore[arg-type]


def test_save_bodies(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    state = training.save_state("step-1", ttl_seconds=7200, user_metadata={"k": "v"})
    sampler = training.save_weights_for_sampler("s-1")
    assert state.result(timeout=10).path == f"tinker://{MODEL_ID}/weights/step-1"
    assert sampler.result(timeout=10).path == f"tinker://{MODEL_ID}/sampler_weights/s-1"
    (save,) = fake.requests_to("/api/v1/save_weights")
    assert save.json == {
        "model_id": MODEL_ID,
        "path": "step-1",
        "seq_id": 1,
        "ttl_seconds": 7200,
        "overwrite": False,
        "user_metadata": {"k": "v"},
        "type": "save_weights",
    }
    (for_sampler,) = fake.requests_to("/api/v1/save_weights_for_sampler")
    assert for_sampler.json == {
        "model_id": MODEL_ID,
        "path": "s-1",
        "kind": "snapshot",
        "seq_id": 2,
        "type": "save_weights_for_sampler",
    }
    # Each future is polled with its own request type. The two polls run concurrently, so
    # their order is not a property; the submissions' order is (req-N then req-N+1).
    polled = {
        (c.json["request_id"], c.headers["X-Tinker-Request-Type"])
        for c in fake.requests_to("/api/v1/retrieve_future")
    }
    newest = sorted(polled, key=lambda pair: int(pair[0].removeprefix("req-")))[-2:]
    assert [kind for _, kind in newest] == ["SaveWeights", "SaveWeightsForSampler"]
    assert len({request_id for request_id, _ in polled}) == len(polled)  # one type per id
    with pytest.raises(ValueError, match="name"):
        training.save_state("a/b")


def test_save_weights_and_get_sampling_client(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    sampler = training.save_weights_and_get_sampling_client(kind="inflight").result(timeout=10)
    assert isinstance(sampler, tinkex.SamplingClient)
    assert sampler.get_base_model() == "tiny-base"
    (save,) = fake.requests_to("/api/v1/save_weights_for_sampler")
    assert save.json == {
        "model_id": MODEL_ID,
        "sampling_session_seq_id": 0,
        "kind": "inflight",
        "seq_id": 1,
        "type": "save_weights_for_sampler",
    }
    assert fake.requests_to("/api/v1/create_sampling_session") == []
    assert sampler.sampling_session_id == f"{SESSION_ID}:sample:0"


def test_unnamed_save_retried_takes_a_new_sampling_session_seq_id(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    """Issue 11.1: as the official SDK, the counter is allocated inside the retried call, so the
    resend after a 503 carries the next sampling_session_seq_id (and the same seq_id)."""
    fake.reply("POST", "/api/v1/save_weights_for_sampler", (503, {"detail": "busy"}), None)
    sampler = training.save_weights_and_get_sampling_client().result(timeout=10)
    saves = [c.json for c in fake.requests_to("/api/v1/save_weights_for_sampler")]
    assert [(s["seq_id"], s["sampling_session_seq_id"]) for s in saves] == [(1, 0), (1, 1)]
    assert sampler.sampling_session_id == f"{SESSION_ID}:sample:1"
    # the next sampler takes the next number
    training.save_weights_and_get_sampling_client().result(timeout=10)
    last = fake.requests_to("/api/v1/save_weights_for_sampler")[-1].json
    assert (last["seq_id"], last["sampling_session_seq_id"]) == (2, 2)


def test_a_submission_the_server_did_not_take_poisons_the_client(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    """413: the server refused the body unread, so its seq_id is a hole later requests would
    wait behind; they fail fast instead."""
    fake.reply("POST", "/api/v1/forward_backward", (413, {"detail": "body too large"}))
    failed = training.forward_backward([datum([1])], "cross_entropy")
    later = training.optim_step(types.AdamParams())
    with pytest.raises(tinkex.APIStatusError) as info:
        failed.result(timeout=10)
    assert info.value.status_code == 413
    with pytest.raises(RuntimeError, match="poisoned") as poisoned:
        later.result(timeout=10)
    assert poisoned.value.__cause__ is info.value
    with pytest.raises(RuntimeError, match="poisoned"):
        training.save_state("x").result(timeout=10)
    assert fake.requests_to("/api/v1/optim_step") == []
    assert fake.requests_to("/api/v1/save_weights") == []


def test_a_rejected_submission_fails_only_its_own_call(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    """400 with a reason: the server consumed the seq_id (issue 10.4)."""
    fake.reply("POST", "/api/v1/forward_backward", (400, {"detail": "bad datum"}), None)
    failed = training.forward_backward([datum([1])], "cross_entropy")
    later = training.optim_step(types.AdamParams())
    with pytest.raises(tinkex.BadRequestError, match="bad datum"):
        failed.result(timeout=10)
    assert later.result(timeout=10).metrics == {"grad_norm:mean": 0.5}
    seq_ids = [c.json["seq_id"] for c in fake.requests_to("/api/v1/forward_backward")]
    assert seq_ids == [1]
    assert [c.json["seq_id"] for c in fake.requests_to("/api/v1/optim_step")] == [2]


def test_failed_future_surfaces_request_failed(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    fake.script_future("req-2", (200, {"error": "NaN loss", "category": "user"}))
    with pytest.raises(tinkex.RequestFailedError, match="NaN loss") as info:
        training.forward_backward([datum([1])], "cross_entropy").result(timeout=10)
    assert info.value.request_id == "req-2"
    assert str(info.value.category) == "user"


def test_load_state_is_deprecated(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    path = f"tinker://{MODEL_ID}/weights/step-1"
    with pytest.warns(FutureWarning, match="deprecated"):
        result = training.load_state(path).result(timeout=10)
    assert result.path == path
    (load,) = fake.requests_to("/api/v1/load_weights")
    assert load.json == {
        "path": path,
        "model_id": MODEL_ID,
        "seq_id": 1,
        "optimizer": False,
        "type": "load_weights",
    }


def test_forward_backward_custom_wire(fake: FakeTinker, training: tinkex.TrainingClient) -> None:
    np = pytest.importorskip("numpy")

    def loss(data: list[types.Datum], logprobs: list[Any]) -> Any:
        total = sum(float(np.sum(lp)) for lp in logprobs)
        grads = [np.full_like(lp, 2.0) for lp in logprobs]
        return total, {"custom:sum": 1.5}, grads

    # a numpy loss (loss, metrics, grads): unmarked losses are torch ones when torch is installed
    loss.__tinkex_backend__ = "numpy"  # type: ignore[attr-defined]

    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"target_tokens": [2, 3, 4]},
        )
    ]
    # a hang guard, not a speed check: the first custom loss of a process imports the pipeline
    out = training.forward_backward_custom(data, loss).result(timeout=60)
    forward, backward = (
        fake.requests_to("/api/v1/forward"),
        fake.requests_to("/api/v1/forward_backward"),
    )
    assert [c.json["seq_id"] for c in forward + backward] == [1, 2]
    fwd_datum = forward[0].json["forward_input"]["data"][0]
    assert forward[0].json["forward_input"]["loss_fn"] == "cross_entropy"
    assert fwd_datum["loss_fn_inputs"]["weights"]["data"] == [0.0, 0.0, 0.0]
    bwd_datum = backward[0].json["forward_backward_input"]["data"][0]
    assert bwd_datum["loss_fn_inputs"]["weights"]["data"] == [-2.0, -2.0, -2.0]
    assert bwd_datum["loss_fn_inputs"]["target_tokens"]["data"] == [2, 3, 4]
    assert out.metrics["surrogate_loss:sum"] == 1.0
    assert out.metrics["loss:sum"] == -3.0
    assert out.metrics["custom:sum"] == 1.5
    # the next request queues behind both phases
    training.optim_step(types.AdamParams()).result(timeout=10)
    assert fake.requests_to("/api/v1/optim_step")[0].json["seq_id"] == 3


def test_forward_backward_custom_failure_poisons(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    def broken(data: list[types.Datum], logprobs: list[Any]) -> Any:
        raise ZeroDivisionError("user loss failed")

    future = training.forward_backward_custom([datum([1, 2])], broken)
    with pytest.raises(ZeroDivisionError):
        future.result(timeout=10)
    with pytest.raises(RuntimeError, match="poisoned"):
        training.optim_step(types.AdamParams()).result(timeout=10)


def _numpy_zero_loss(data: list[types.Datum], logprobs: list[Any]) -> Any:
    import numpy as np

    return 0.0, {}, [np.zeros_like(lp) for lp in logprobs]


_numpy_zero_loss.__tinkex_backend__ = "numpy"  # type: ignore[attr-defined]


def test_a_cancelled_forward_backward_custom_poisons(
    fake: FakeTinker, training: tinkex.TrainingClient
) -> None:
    """Cancelled while queued, the custom loss's forward is still sent but its backward never
    is: the server would wait for the missing seq id, so later calls must fail fast."""
    import threading

    submitting, release = threading.Event(), threading.Event()
    normal = fake.fwdbwd_result

    def blocking(body: dict[str, Any]) -> Any:
        submitting.set()
        release.wait(30)
        return normal(body)

    fake.fwdbwd_result = blocking  # computed while the submission is answered: holds the sender
    first = training.forward_backward([datum([1, 2])], "cross_entropy")
    assert submitting.wait(10)
    fake.fwdbwd_result = normal
    custom = training.forward_backward_custom([datum([1, 2])], _numpy_zero_loss)
    assert custom.cancel()
    release.set()
    first.result(timeout=30)
    with pytest.raises(RuntimeError, match="poisoned"):
        training.optim_step(types.AdamParams()).result(timeout=10)
    assert fake.requests_to("/api/v1/optim_step") == []


def test_parallel_chunks_keep_seq_ids_and_output_order(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.config = {"fwdbwd_max_chunk_len": 2}  # parallel_fwdbwd_chunks defaults to true
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    data = [datum([i, i + 1, i + 2]) for i in range(7)]
    out = training.forward_backward(data, "cross_entropy").result(timeout=10)
    training.optim_step(types.AdamParams()).result(timeout=10)
    calls = fake.requests_to("/api/v1/forward_backward")
    by_seq = {c.json["seq_id"]: c.json["forward_backward_input"]["data"] for c in calls}
    assert sorted(by_seq) == [1, 2, 3, 4]
    # every chunk went out before the next call's request
    assert submitted(fake)[-1] == ("/api/v1/optim_step", 5)
    sent = [d["model_input"]["chunks"][0]["tokens"] for seq in sorted(by_seq) for d in by_seq[seq]]
    assert sent == [[i, i + 1, i + 2] for i in range(7)]
    assert len(out.loss_fn_outputs) == 7 and out.metrics == {"loss:sum": 7.0}


def test_parallel_chunk_submission_failure_poisons(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.config = {"fwdbwd_max_chunk_len": 1}
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    fake.reply("POST", "/api/v1/forward_backward", (413, {"detail": "chunk too large"}))
    future = training.forward_backward([datum([1]), datum([2])], "cross_entropy")
    with pytest.raises(tinkex.APIStatusError, match="chunk too large"):
        future.result(timeout=10)
    with pytest.raises(RuntimeError, match="poisoned"):
        training.optim_step(types.AdamParams()).result(timeout=10)


def test_parallel_chunks_rejected_with_400_do_not_poison(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    """Every chunk reached the server and was rejected (seq_ids consumed): no hole."""
    fake.config = {"fwdbwd_max_chunk_len": 1}
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    fake.reply(
        "POST",
        "/api/v1/forward_backward",
        (400, {"detail": "bad chunk"}),
        (400, {"detail": "bad chunk"}),
        None,
    )
    future = training.forward_backward([datum([1]), datum([2])], "cross_entropy")
    with pytest.raises(tinkex.BadRequestError, match="bad chunk"):
        future.result(timeout=10)
    assert training.optim_step(types.AdamParams()).result(timeout=10).metrics


def test_parallel_chunks_one_rejected_one_unanswered_poison(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    """The first chunk is rejected (its seq_id consumed), the second gets no usable answer
    (413: not taken): the call fails with the first failure and the client is poisoned."""
    fake.config = {"fwdbwd_max_chunk_len": 1}
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    fake.reply(
        "POST",
        "/api/v1/forward_backward",
        (400, {"detail": "bad chunk"}),
        (413, {"detail": "too large"}),
        None,
    )
    future = training.forward_backward([datum([1]), datum([2])], "cross_entropy")
    with pytest.raises(tinkex.APIStatusError):
        future.result(timeout=10)
    with pytest.raises(RuntimeError, match="poisoned"):
        training.optim_step(types.AdamParams()).result(timeout=10)


def test_hash_unordered_fingerprints_the_values_whatever_their_order() -> None:
    values = [0.25, -3.0, 1e9, 7.0, float("nan")]
    fingerprint = hash_unordered(values)
    assert hash_unordered(list(reversed(values))) == fingerprint
    assert hash_unordered([7.0, float("nan"), 0.25, 1e9, -3.0]) == fingerprint
    assert hash_unordered(values[:-1]) != fingerprint  # another multiset
    assert hash_unordered([0.25, 0.25]) != hash_unordered([0.25])
    assert hash_unordered([1, 2]) == hash_unordered([2.0, 1.0])
    # An integer a float holds exactly (53 bits), so it survives JSON and float arithmetic.
    assert fingerprint.is_integer() and 0 <= fingerprint < 2**53
    # The same in every process: a digest, not Python's salted or id-based hash().
    code = "from tinkex.clients._chunking import hash_unordered as h; print(repr(h([2.0, 1.0])))"
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert float(out.stdout) == hash_unordered([1.0, 2.0]), out.stderr
