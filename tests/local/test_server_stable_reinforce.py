"""stable_reinforce end to end: samples recorded with record_stability_info, datums naming them
in provenance spans, the loss computed from the recorded sampler logprobs; every way a datum
can name a sequence wrongly is a 400 naming the sequence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tinker
from tinker import types as tinker_types

import tinkex
from tinkex.local import LocalServer

from .conftest import Api

PROMPT = [256, 72, 105, 33]
P = len(PROMPT)


def _official(server: LocalServer) -> Any:
    return tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key)


def _tinkex(server: LocalServer) -> Any:
    return tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)


def _rl_datum(types: Any, sequence: Any) -> Any:
    """The datum a REINFORCE loop builds from one sample: advantage 1 on every sampled token,
    provenance as tinker-cookbook's rl_loop writes it."""
    tokens = list(sequence.tokens)
    full = PROMPT + tokens
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(full[:-1]),
        loss_fn_inputs={
            "target_tokens": full[1:],
            "logprobs": [0.0] * (P - 1) + list(sequence.logprobs),
            "advantages": [0.0] * (P - 1) + [1.0] * len(tokens),
        },
    )
    sid = sequence.sequence_id
    return datum.with_provenance(
        model_input=[
            types.PromptProvenanceSpan(sequence_id=sid, length=P),
            types.SampledProvenanceSpan(sequence_id=sid, length=len(tokens) - 1),
        ],
        loss_fn_inputs=[
            types.PromptProvenanceSpan(sequence_id=sid, offset=1, length=P - 1),
            types.SampledProvenanceSpan(sequence_id=sid, length=len(tokens)),
        ],
    )


@pytest.mark.parametrize(
    ("make_client", "types"),
    [(_official, tinker_types), (_tinkex, tinkex.types)],
    ids=["official", "tinkex"],
)
def test_stable_reinforce_trains_on_recorded_samples(
    server: LocalServer, make_client: Callable[[LocalServer], Any], types: Any
) -> None:
    with make_client(server) as service:
        _train_on_recorded_samples(service, types)


def _train_on_recorded_samples(service: Any, types: Any) -> None:
    training = service.create_lora_training_client(base_model="tinkex/tiny", rank=4)
    training = training.result() if hasattr(training, "result") else training
    sampler = training.save_weights_and_get_sampling_client(record_stability_info=True)
    sampler = sampler.result() if hasattr(sampler, "result") else sampler
    response = sampler.sample(
        prompt=types.ModelInput.from_ints(PROMPT),
        num_samples=3,
        sampling_params=types.SamplingParams(max_tokens=6, seed=5),
    ).result()
    data = [_rl_datum(types, seq) for seq in response.sequences]
    sampled = sum(len(seq.tokens) for seq in response.sequences)

    result = training.forward_backward(
        data, loss_fn="stable_reinforce", loss_fn_config={"kl_coeff": 0.5}
    ).result()
    # on-policy (the learner is the sampler): every ratio is 1, so the loss is -sum(A) and the
    # KL term is 0; the logprobs of the sampled rows are the sampler's
    assert result.metrics["loss:sum"] == pytest.approx(-sampled, rel=1e-5)
    for out, seq in zip(result.loss_fn_outputs, response.sequences, strict=True):
        learner = np.asarray(out["logprobs"].tolist())[P - 1 :]
        np.testing.assert_allclose(learner, seq.logprobs, atol=1e-5)

    training.optim_step(types.AdamParams(learning_rate=0.05)).result()
    after = training.forward(data, loss_fn="stable_reinforce").result()
    before_lp = sum(sum(seq.logprobs) for seq in response.sequences)
    after_lp = sum(
        float(np.sum(np.asarray(out["logprobs"].tolist())[P - 1 :]))
        for out in after.loss_fn_outputs
    )
    assert after_lp > before_lp  # positive advantages made the sampled tokens more likely
    # off-policy now: the ratios differ from 1 and the loss is no longer -sum(A)
    assert after.metrics["loss:sum"] < -sampled


# --- bad provenance over plain HTTP (JSON bodies) ----------------------------------------------


def _sample(api: Api, sampler_id: str, *, record: bool, seq_id: int = 0) -> dict[str, Any]:
    future = api.ok(
        "asample",
        {
            "sampling_session_id": sampler_id,
            "seq_id": seq_id,
            "num_samples": 1,
            "prompt": {"chunks": [{"tokens": PROMPT, "type": "encoded_text"}]},
            "sampling_params": {"max_tokens": 5, "seed": 2},
            "record_stability_info": record,
        },
    )
    result = api.result(future["request_id"])
    sequence = dict(result["sequences"][0])
    assert sequence["sequence_id"] == future["sample_sequence_ids"][0]
    return sequence


def _span(kind: str, sequence_id: str, length: int, offset: int = 0) -> dict[str, Any]:
    return {"type": kind, "sequence_id": sequence_id, "offset": offset, "length": length}


def _json_datum(sequence: dict[str, Any], **changes: Any) -> dict[str, Any]:
    tokens = sequence["tokens"]
    full = PROMPT + tokens
    sid = sequence["sequence_id"]
    n = len(full) - 1
    targets = changes.get("targets", full[1:])
    advantages = changes.get("advantages", [0.0] * (P - 1) + [1.0] * len(tokens))
    datum: dict[str, Any] = {
        "model_input": {"chunks": [{"tokens": full[:-1], "type": "encoded_text"}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": targets, "dtype": "int64", "shape": [n]},
            "advantages": {"data": advantages, "dtype": "float32", "shape": [n]},
            **changes.get("extra_inputs", {}),
        },
    }
    if changes.get("spans", True):
        datum["model_input_spans"] = [
            _span("prompt_tokens", sid, P),
            _span("sampled_tokens", sid, len(tokens) - 1),
        ]
        datum["loss_fn_input_spans"] = [
            _span("prompt_tokens", sid, P - 1, offset=1),
            _span("sampled_tokens", sid, len(tokens)),
        ]
    return datum


def _fwdbwd(api: Api, model_id: str, seq_id: int, datum: dict[str, Any]) -> Any:
    return api.post(
        "forward_backward",
        {
            "forward_backward_input": {"data": [datum], "loss_fn": "stable_reinforce"},
            "model_id": model_id,
            "seq_id": seq_id,
        },
    )


def test_json_datums_with_recorded_provenance_train(api: Api) -> None:
    session = api.session()
    model_id = api.model(session=session)
    sequence = _sample(api, api.sampler(session), record=True)
    response = _fwdbwd(api, model_id, 1, _json_datum(sequence))
    assert response.status_code == 200, response.text
    result = api.result(response.json()["request_id"])
    assert result["metrics"]["loss:sum"] == pytest.approx(-len(sequence["tokens"]), rel=1e-5)


def test_bad_provenance_is_400_naming_the_sequence(api: Api) -> None:
    session = api.session()
    model_id = api.model(session=session)
    sampler_id = api.sampler(session)
    recorded = _sample(api, sampler_id, record=True, seq_id=0)
    unrecorded = _sample(api, sampler_id, record=False, seq_id=1)
    sid = recorded["sequence_id"]
    wrong_target = PROMPT[1:] + list(recorded["tokens"])
    wrong_target[P] = (wrong_target[P] + 1) % 256
    prompt_advantage = [0.5] + [0.0] * (P - 2) + [1.0] * len(recorded["tokens"])
    n = len(wrong_target)
    zeros = {"data": [0.0] * n, "dtype": "float32", "shape": [n]}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        (_json_datum(unrecorded), [unrecorded["sequence_id"], "record_stability_info"]),
        (_json_datum({**recorded, "sequence_id": "sq-nope"}), ["'sq-nope'"]),
        (_json_datum(recorded, spans=False), ["data[0]", "provenance"]),
        (_json_datum(recorded, targets=wrong_target), [sid, "target_tokens[4]"]),
        (_json_datum(recorded, advantages=prompt_advantage), [sid, "advantages[0]", "sampled"]),
        (
            _json_datum(recorded, extra_inputs={"sampler_logprobs": zeros}),
            ["sampler_logprobs", "filled in by the server"],
        ),
    ]
    for seq_id, (datum, needles) in enumerate(cases, start=1):
        response = _fwdbwd(api, model_id, seq_id, datum)
        assert response.status_code == 400, (needles, response.text)
        detail = response.json()["detail"]
        assert all(needle in detail for needle in needles), (needles, detail)
    # the rejected requests consumed their seq_ids: the next one runs at once
    ok = _fwdbwd(api, model_id, len(cases) + 1, _json_datum(recorded))
    assert ok.status_code == 200, ok.text
    assert "metrics" in api.result(ok.json()["request_id"], timeout=10)


def test_provenance_works_only_within_one_session(api: Api) -> None:
    sampling_session = api.session()
    sequence = _sample(api, api.sampler(sampling_session), record=True)
    other_model = api.model(session=api.session())
    response = _fwdbwd(api, other_model, 1, _json_datum(sequence))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert sequence["sequence_id"] in detail and sampling_session in detail
    assert "one session" in detail


def test_losses_the_local_model_cannot_compute_are_400_naming_the_loss(api: Api) -> None:
    model_id = api.model()
    body = {
        "forward_backward_input": {"data": [], "loss_fn": "custom"},
        "model_id": model_id,
        "seq_id": 1,
    }
    response = api.post("forward_backward", body)
    assert response.status_code == 400 and "'custom'" in response.json()["detail"]
