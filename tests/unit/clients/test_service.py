"""ServiceClient wire behaviour: lazy session, client config, create_model, get_info, finish."""

from __future__ import annotations

import pytest

import tinkex
from tinkex import types

from .conftest import API_KEY, BASE_URL, MODEL_ID, SESSION_ID, FakeTinker


def test_construction_sends_nothing(fake: FakeTinker) -> None:
    client = tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY)
    assert fake.calls == []
    client.close()
    assert fake.calls == []  # no session was created, so there is nothing to finish


def test_create_lora_training_client_flow(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    training = service.create_lora_training_client("tiny-base", rank=8, seed=3).result(timeout=10)
    assert isinstance(training, tinkex.TrainingClient)
    assert training.model_id == MODEL_ID
    assert fake.paths() == [
        "/api/v1/client/config",
        "/api/v1/client/dynamic_config",
        "/api/v1/create_session",
        "/api/v1/create_model",
        "/api/v1/retrieve_future",
        "/api/v1/get_info",
    ]
    config, dynamic, session, create, poll, info = fake.calls
    assert config.json == dynamic.json == {"sdk_version": "0.38.0"}
    assert config.headers["X-API-Key"] == API_KEY
    assert session.json == {
        "tags": [],
        "user_metadata": {},
        "sdk_version": "0.38.0",
        "type": "create_session",
    }
    assert "x-sdk-method" not in {k.lower() for k in session.headers}
    assert create.json == {
        "session_id": SESSION_ID,
        "model_seq_id": 0,
        "base_model": "tiny-base",
        "lora_config": {
            "rank": 8,
            "seed": 3,
            "train_unembed": True,
            "train_mlp": True,
            "train_attn": True,
        },
        "optimizer_config": {"type": "adamw"},
        "type": "create_model",
    }
    assert create.headers["x-sdk-method"] == "ServiceClient.create_lora_training_client"
    assert create.headers["x-sdk-version"] == "0.38.0"
    assert poll.json == {"request_id": "req-1", "allow_metadata_only": True}
    assert poll.headers["X-Tinker-Request-Type"] == "CreateModel"
    assert poll.headers["X-Tinker-Request-Iteration"] == "0"
    assert info.json == {"model_id": MODEL_ID, "type": "get_info"}
    got = training.get_info()
    assert got.model_data.model_name == "tiny-base"
    assert got.lora_rank == 4


def test_session_metadata_and_second_model(fake: FakeTinker) -> None:
    with tinkex.ServiceClient(
        {"owner": "me"}, "proj-1", display_name="nightly", base_url=BASE_URL, api_key=API_KEY
    ) as service:
        first = service.create_lora_training_client("tiny-base", user_metadata={"k": "v"})
        second = service.create_lora_training_client(
            "tiny-base", optimizer=types.DimuonOptimizerConfig()
        )
        ids = sorted([first.result(timeout=10).model_id, second.result(timeout=10).model_id])
    assert ids == [f"{SESSION_ID}:train:0", f"{SESSION_ID}:train:1"]
    (session,) = fake.requests_to("/api/v1/create_session")
    assert session.json["user_metadata"] == {"owner": "me"}
    assert session.json["project_id"] == "proj-1"
    assert session.json["display_name"] == "nightly"
    creates = sorted(fake.requests_to("/api/v1/create_model"), key=lambda c: c.json["model_seq_id"])
    assert [c.json["model_seq_id"] for c in creates] == [0, 1]
    bodies = {c.json.get("user_metadata", {}).get("k"): c.json for c in creates}
    assert bodies["v"]["optimizer_config"] == {"type": "adamw"}
    assert bodies[None]["optimizer_config"] == {"type": "dimuon", "version": 1}
    assert "user_metadata" not in bodies[None]


def test_tags_from_environment(fake: FakeTinker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TAGS", "a,b,a")
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        service.create_lora_training_client("tiny-base").result(timeout=10)
    (session,) = fake.requests_to("/api/v1/create_session")
    assert sorted(session.json["tags"]) == ["a", "b"]


def test_close_finishes_the_session_once(
    fake: FakeTinker, training: tinkex.TrainingClient, service: tinkex.ServiceClient
) -> None:
    assert service.close().result(timeout=5) is None
    assert service.close().result(timeout=5) is None  # idempotent
    (finish,) = fake.requests_to(f"/api/v1/sessions/{SESSION_ID}/finish")
    assert finish.method == "POST"
    assert finish.json == {"reason": {"type": "success"}, "detail": None}
    with pytest.raises(RuntimeError, match="closed"):
        service.create_lora_training_client("tiny-base")


@pytest.mark.parametrize(
    ("raised", "status"),
    [(ValueError("boom"), "errored"), (KeyboardInterrupt(), "interrupted")],
)
def test_context_manager_status(fake: FakeTinker, raised: BaseException, status: str) -> None:
    with (
        pytest.raises(type(raised)),
        tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service,
    ):
        service.create_lora_training_client("tiny-base").result(timeout=10)
        raise raised
    (finish,) = fake.requests_to(f"/api/v1/sessions/{SESSION_ID}/finish")
    assert finish.json["reason"] == {"type": status}


def test_close_rejects_unknown_status(service: tinkex.ServiceClient) -> None:
    with pytest.raises(ValueError, match="status"):
        service.close("done")  # type: ignore[arg-type]


def test_unknown_kwargs_warn(fake: FakeTinker) -> None:
    with pytest.warns(FutureWarning, match="unknown options"):
        tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY, bogus=1).close()


def test_create_lora_needs_a_trainable_part(service: tinkex.ServiceClient) -> None:
    with pytest.raises(ValueError, match="train_mlp"):
        service.create_lora_training_client(
            "tiny-base", train_mlp=False, train_attn=False, train_unembed=False
        )


def test_console_url(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    assert service.get_console_url() == "https://tinker.thinkingmachines.ai/sessions"
    training = service.create_lora_training_client("tiny-base").result(timeout=10)
    assert service.get_console_url().endswith(f"/sessions/{SESSION_ID}")
    assert training.get_console_url().endswith(f"/training_runs/{MODEL_ID}")


def test_create_training_client_from_state(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    path = "tinker://run-9:train:0/weights/step-1"
    training = service.create_training_client_from_state(path, user_metadata={"a": "b"}).result(
        timeout=10
    )
    resumed = service.create_training_client_from_state_with_optimizer(path).result(timeout=10)
    loads = sorted(fake.requests_to("/api/v1/load_weights"), key=lambda c: c.json["model_seq_id"])
    assert loads[0].json == {
        "path": path,
        "session_id": SESSION_ID,
        "model_seq_id": 0,
        "optimizer": False,
        "user_metadata": {"a": "b"},
        "type": "load_weights",
    }
    assert loads[1].json["optimizer"] is True
    assert loads[0].headers["x-sdk-method"] == "ServiceClient.create_training_client_from_state"
    assert {training.model_id, resumed.model_id} == {
        f"{SESSION_ID}:train:0",
        f"{SESSION_ID}:train:1",
    }
    polls = fake.requests_to("/api/v1/retrieve_future")
    assert {p.headers["X-Tinker-Request-Type"] for p in polls} == {"LoadWeights"}
    with pytest.raises(ValueError):
        service.create_training_client_from_state("not-a-tinker-path")


def test_create_sampling_client(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
    assert sampler.get_base_model() == "tiny-base"
    (create,) = fake.requests_to("/api/v1/create_sampling_session")
    assert create.json == {
        "session_id": SESSION_ID,
        "sampling_session_seq_id": 0,
        "base_model": "tiny-base",
        "type": "create_sampling_session",
    }
    assert fake.requests_to("/api/v1/samplers/sess-1:sample:0") == []


def test_create_sampling_client_from_path_asks_for_base_model(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    sampler_id = f"{SESSION_ID}:sample:0"
    fake.reply(
        "GET",
        f"/api/v1/samplers/{sampler_id}",
        (200, {"sampler_id": sampler_id, "base_model": "tiny-base", "model_path": "tinker://x"}),
    )
    path = "tinker://run:train:0/sampler_weights/s1"
    sampler = service.create_sampling_client(model_path=path).result(timeout=10)
    assert sampler.get_base_model() == "tiny-base"
    (create,) = fake.requests_to("/api/v1/create_sampling_session")
    assert create.json["model_path"] == path
    assert "base_model" not in create.json
    with pytest.raises(ValueError, match="tinker://"):
        service.create_sampling_client(model_path="s3://bucket/x")
    with pytest.raises(ValueError):
        service.create_sampling_client()


def test_backcompat_future_used_as_client_warns(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    future = service.create_lora_training_client("tiny-base")
    with pytest.warns(FutureWarning, match="Using the future as the TrainingClient"):
        model_id = future.model_id
    assert model_id == MODEL_ID
    assert repr(future).startswith("<BackcompatTrainingClientFuture: TrainingClient(")


def test_heartbeat(fake: FakeTinker) -> None:
    import time

    fake.reply("POST", "/api/v1/session_heartbeat", (200, {}), (410, {"detail": "finished"}))
    with tinkex.ServiceClient(
        base_url=BASE_URL, api_key=API_KEY, heartbeat_interval=0.01
    ) as service:
        service.create_lora_training_client("tiny-base").result(timeout=10)
        deadline = time.monotonic() + 5
        while len(fake.requests_to("/api/v1/session_heartbeat")) < 2:
            assert time.monotonic() < deadline, "no heartbeats"
            time.sleep(0.01)
        time.sleep(0.1)  # a 410 stops the loop: no third beat
        beats = fake.requests_to("/api/v1/session_heartbeat")
    assert len(beats) == 2
    assert beats[0].json == {"session_id": SESSION_ID, "type": "session_heartbeat"}
    assert "x-sdk-method" not in {k.lower() for k in beats[0].headers}


def test_heartbeat_warning_after_is_a_client_option(
    fake: FakeTinker, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import time

    caplog.set_level(logging.WARNING, logger="tinkex")
    fake.reply("POST", "/api/v1/session_heartbeat", (500, {"detail": "down"}))
    with tinkex.ServiceClient(
        base_url=BASE_URL, api_key=API_KEY, heartbeat_interval=0.01, heartbeat_warning_after=0.05
    ) as service:
        service.create_lora_training_client("tiny-base").result(timeout=10)
        deadline = time.monotonic() + 5
        while not any("no successful heartbeat" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no heartbeat warning"
            time.sleep(0.01)
    warning = next(r for r in caplog.records if "no successful heartbeat" in r.getMessage())
    assert warning.getMessage().startswith(f"Tinker session {SESSION_ID}: no successful")


def test_the_heartbeat_defaults_are_the_official_ones() -> None:
    settings = tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY).holder.settings
    assert (settings.heartbeat_interval, settings.heartbeat_warning_after) == (10.0, 120.0)


@pytest.mark.parametrize("option", ["heartbeat_interval", "heartbeat_warning_after"])
def test_heartbeat_options_must_be_positive(option: str) -> None:
    with pytest.raises(tinkex.TinkerError, match=f"ClientSettings.{option} must be > 0 seconds"):
        tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY, **{option: 0})
