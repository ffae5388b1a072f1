"""Resends (issues 10.1 and 11.1): a request sent again under its number gets the original
future and never runs twice; a different request under a used number is a 400 naming the
fields that differ. What may differ per endpoint: tinkex/local/engine/resends.py."""

from __future__ import annotations

from typing import Any

import tinker
from tinker import types as tinker_types

from tinkex.local import LocalServer

from .conftest import Api, datum, fwdbwd

PROMPT = {"chunks": [{"tokens": [256, 72, 101], "type": "encoded_text"}]}


def _sample_body(sampler_id: str, seq_id: int, **overrides: Any) -> dict[str, Any]:
    body = {
        "num_samples": 2,
        "prompt": PROMPT,
        "sampling_params": {"max_tokens": 4, "seed": 3},
        "sampling_session_id": sampler_id,
        "seq_id": seq_id,
        "type": "sample",
    }
    body.update(overrides)
    return body


def _executions(server: LocalServer, kind: str) -> int:
    return sum(n for (k, _, outcome), n in server.finished_requests().items() if k == kind)


def test_resent_sample_gets_the_original_future_and_runs_once(server: LocalServer) -> None:
    api = Api(server)
    sampler_id = api.sampler()
    before = _executions(server, "Sample")
    first = api.ok("asample", _sample_body(sampler_id, 7))
    # the same request with its keys in another order is the same request
    again = api.ok("asample", dict(reversed(list(_sample_body(sampler_id, 7).items()))))
    assert again == first
    api.result(first["request_id"])
    assert api.ok("asample", _sample_body(sampler_id, 7)) == first  # also after it finished
    assert _executions(server, "Sample") == before + 1


def test_a_different_sample_under_a_used_seq_id_is_400_naming_the_fields(api: Api) -> None:
    sampler_id = api.sampler()
    first = api.ok("asample", _sample_body(sampler_id, 0))
    other = _sample_body(sampler_id, 0, num_samples=3, prompt={"chunks": []})
    answer = api.post("asample", other)
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert f"seq_id 0 of sampling session {sampler_id}" in detail
    assert first["request_id"] in detail and "num_samples, prompt" in detail


def test_unnamed_save_for_sampler_resent_with_a_new_sampling_session_seq_id(api: Api) -> None:
    """The official client allocates sampling_session_seq_id inside its retried call."""
    model_id = api.model(session=(session := api.session()))
    body = {"model_id": model_id, "seq_id": 1, "sampling_session_seq_id": 1, "kind": "inflight"}
    first = api.ok("save_weights_for_sampler", body)
    result = api.result(first["request_id"])
    resent = api.ok("save_weights_for_sampler", {**body, "sampling_session_seq_id": 2})
    assert resent["request_id"] == first["request_id"]
    assert result["sampling_session_id"] == f"{session}:sample:1"
    changed = api.post("save_weights_for_sampler", {**body, "kind": "snapshot"})
    assert changed.status_code == 400 and "differs from this one in kind" in changed.text


def test_named_save_resent_after_it_ran_gets_its_future_not_already_exists(api: Api) -> None:
    model_id = api.model()
    body = {"model_id": model_id, "seq_id": 1, "path": "named", "type": "save_weights"}
    first = api.ok("save_weights", body)
    assert api.result(first["request_id"])["path"].endswith("/weights/named")
    assert api.ok("save_weights", body)["request_id"] == first["request_id"]


def test_training_conflicts_name_the_fields_and_model_creation_dedupes(api: Api) -> None:
    session = api.session()
    create = {"session_id": session, "model_seq_id": 0, "base_model": "tinkex/tiny"}
    first = api.ok("create_model", {**create, "lora_config": {"rank": 4}})
    assert api.ok("create_model", {**create, "lora_config": {"rank": 4}}) == first
    other_rank = api.post("create_model", {**create, "lora_config": {"rank": 8}})
    assert other_rank.status_code == 400
    assert "differs from this one in lora_config" in other_rank.json()["detail"]
    model_id = first["model_id"]
    step = {"model_id": model_id, "seq_id": 1, "adam_params": {"learning_rate": 0.1}}
    api.ok("optim_step", step)
    changed = api.post("optim_step", {**step, "adam_params": {"learning_rate": 0.2}})
    assert changed.status_code == 400
    assert "seq_id 1 of model" in changed.text and "in adam_params" in changed.text
    api.ok("forward_backward", fwdbwd(model_id, 2, [datum([72, 101])]))
    other_data = api.post("forward_backward", fwdbwd(model_id, 2, [datum([72, 102])]))
    assert other_data.status_code == 400 and "differs from this one in body" in other_data.text


def test_official_client_resends_after_a_dropped_answer_run_once() -> None:
    """reset_after: the server applied the request, then the connection dropped. The official
    client resends the unnamed save with a new sampling_session_seq_id and the sample with
    the same seq_id; each runs once and the client gets its results."""
    faults = "save_weights_for_sampler:reset_after:1,asample:reset_after:1"
    with LocalServer(faults=faults, long_poll_seconds=0.5) as server:
        with tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            training = service.create_lora_training_client(
                base_model="tinkex/tiny", rank=4
            ).result()
            sampler = training.save_weights_and_get_sampling_client().result()
            result = sampler.sample(
                tinker_types.ModelInput.from_ints([72, 101]),
                num_samples=1,
                sampling_params=tinker_types.SamplingParams(max_tokens=3, seed=1),
            ).result()
        assert len(result.sequences) == 1
        assert ("save_weights_for_sampler", "reset_after") in server.injected_faults
        assert ("asample", "reset_after") in server.injected_faults
        assert _executions(server, "SaveWeightsForSampler") == 1
        assert _executions(server, "Sample") == 1
