"""SamplingClient wire behaviour: asample body, seq ids, sequence ids, retries, pickling."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex.lib.retry_handler import RetryConfig

from .conftest import API_KEY, BASE_URL, SESSION_ID, FakeTinker

SAMPLER_ID = f"{SESSION_ID}:sample:0"
PROMPT = types.ModelInput.from_ints([1, 2, 3])


@pytest.fixture
def official_types() -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tinker = pytest.importorskip("tinker")
    yield tinker.types


def test_asample_body_matches_official(
    fake: FakeTinker, sampler: tinkex.SamplingClient, official_types: Any
) -> None:
    params = types.SamplingParams(max_tokens=5, seed=7, stop=["\n"], temperature=0.5)
    result = sampler.sample(PROMPT, 2, params).result(timeout=10)
    (call,) = fake.requests_to("/api/v1/asample")
    expected = official_types.SampleRequest(
        sampling_session_id=SAMPLER_ID,
        seq_id=0,
        num_samples=2,
        prompt=official_types.ModelInput.from_ints([1, 2, 3]),
        sampling_params=official_types.SamplingParams(
            max_tokens=5, seed=7, stop=["\n"], temperature=0.5
        ),
        prompt_logprobs=False,
        topk_prompt_logprobs=0,
        topk_sample_logprobs=0,
        prompt_alt_tokens_k=0,
        record_stability_info=False,
    ).model_dump(exclude_none=True, mode="json")
    assert call.json == expected
    assert call.headers["X-Tinker-Sampling-Backpressure"] == "1"
    assert call.headers["x-sdk-method"] == "SamplingClient.sample"
    # sequence ids from the submission answer are attached to the sequences, in order
    assert [s.sequence_id for s in result.sequences] == ["sq-0-0", "sq-0-1"]
    assert result.sequences[0].tokens == [7, 8]
    poll = fake.requests_to("/api/v1/retrieve_future")[-1]
    assert poll.headers["X-Tinker-Request-Type"] == "Sample"
    assert poll.headers["Accept"] == "application/x-protobuf"


def test_seq_ids_increase_per_sample(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    params = types.SamplingParams(max_tokens=1)
    futures = [sampler.sample(PROMPT, 1, params) for _ in range(5)]
    for future in futures:
        future.result(timeout=10)
    seq_ids = sorted(c.json["seq_id"] for c in fake.requests_to("/api/v1/asample"))
    assert seq_ids == [0, 1, 2, 3, 4]


def test_compute_logprobs(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    fake.sample_result = lambda body: {
        "type": "sample",
        "sequences": [{"stop_reason": "length", "tokens": [9], "logprobs": [-0.1]}],
        "prompt_logprobs": [None, -1.5, -2.5],
    }
    logprobs = sampler.compute_logprobs(PROMPT).result(timeout=10)
    assert logprobs == [None, -1.5, -2.5]
    (call,) = fake.requests_to("/api/v1/asample")
    assert call.json["num_samples"] == 1
    assert call.json["prompt_logprobs"] is True
    assert call.json["sampling_params"]["max_tokens"] == 1


def test_argument_validation(sampler: tinkex.SamplingClient) -> None:
    params = types.SamplingParams(max_tokens=1)
    with pytest.raises(TypeError, match="ModelInput"):
        sampler.sample([1, 2, 3], 1, params)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="include_prompt_logprobs"):
        sampler.sample(PROMPT, 1, params, prompt_logprobs_last_n=1)
    bad = types.TensorData(data=[1, 2], dtype="int64", shape=[1, 2])
    with pytest.raises(ValueError, match="target_prompt_logprobs"):
        sampler.sample(PROMPT, 1, params, target_prompt_logprobs=bad)


def test_429_backpressure_resends_same_seq_id(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    fake.reply(
        "POST", "/api/v1/asample", (429, {"detail": "slow down"}, {"retry-after-ms": "20"}), None
    )
    result = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(result.sequences) == 1
    assert [c.json["seq_id"] for c in fake.requests_to("/api/v1/asample")] == [0, 0]


def test_a_submission_answered_5xx_is_resent_under_its_seq_id(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    """No future came back, so the server may hold the sample: the resend carries the same
    seq_id (as the official SDK's submission retries do) and the next sample the next one."""
    fake.reply("POST", "/api/v1/asample", (503, {"detail": "busy"}), None)
    result = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(result.sequences) == 1
    sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    seq_ids = [c.json["seq_id"] for c in fake.requests_to("/api/v1/asample")]
    assert seq_ids == [0, 0, 1]


def test_lost_result_is_resubmitted(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    fake.script_future("req-1", (410, {"detail": "gone"}))
    result = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert result.sequences[0].sequence_id == "sq-1-0"
    assert [c.json["seq_id"] for c in fake.requests_to("/api/v1/asample")] == [0, 1]


def test_user_errors_are_not_retried(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    fake.reply("POST", "/api/v1/asample", (400, {"detail": "prompt too long"}))
    future = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1))
    with pytest.raises(tinkex.BadRequestError) as info:
        future.result(timeout=10)
    assert info.value.status_code == 400
    assert info.value.request == "POST /api/v1/asample"
    assert len(fake.requests_to("/api/v1/asample")) == 1


def test_failed_sample_raises_request_failed(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    fake.script_future("req-1", (200, {"error": "bad prompt", "category": "user"}))
    with pytest.raises(tinkex.RequestFailedError, match="bad prompt"):
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(fake.requests_to("/api/v1/asample")) == 1


def test_sequence_id_count_mismatch(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    fake.sample_result = lambda body: {"type": "sample", "sequences": [], "prompt_logprobs": None}
    with pytest.raises(ValueError, match="sample_sequence_ids"):
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)


def test_pickle_round_trip_keeps_config_and_uses_a_clone_range(
    fake: FakeTinker, sampler: tinkex.SamplingClient
) -> None:
    sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    before = len(fake.calls)
    clone = pickle.loads(pickle.dumps(sampler))
    assert len(fake.calls) == before  # no client/config fetch when unpickling
    assert clone.sampling_session_id == SAMPLER_ID
    assert clone.get_base_model() == "tiny-base"
    clone.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    last = fake.requests_to("/api/v1/asample")[-1]
    assert last.json["sampling_session_id"] == SAMPLER_ID
    assert last.json["seq_id"] >= 1_000_000_000
    assert last.headers["X-API-Key"] == API_KEY
    clone.holder.close()  # an unpickled client has a holder of its own


def test_sampler_handle_has_no_key(fake: FakeTinker, sampler: tinkex.SamplingClient) -> None:
    handle = sampler.get_sampler_handle()
    assert API_KEY not in handle
    import base64

    assert API_KEY not in base64.urlsafe_b64decode(handle).decode()
    restored = tinkex.SamplingClient.from_sampler_handle(handle, api_key=API_KEY)
    assert restored.sampling_session_id == SAMPLER_ID
    assert restored.holder.settings.base_url == BASE_URL
    restored.holder.close()
    with pytest.raises(ValueError, match="sampler handle"):
        tinkex.SamplingClient.from_sampler_handle("!!!not-base64!!!")


def test_backcompat_sampling_future_forwards_attributes(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    future = service.create_sampling_client(base_model="tiny-base")
    with pytest.warns(FutureWarning, match="SamplingClient"):
        assert future.sampling_session_id == SAMPLER_ID
    with pytest.warns(FutureWarning):
        assert future.get_base_model() == "tiny-base"
    assert isinstance(future.result(timeout=10), tinkex.SamplingClient)


def test_402_pauses_and_resends_same_seq_id(
    fake: FakeTinker, sampler: tinkex.SamplingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinkex.clients import _sample_submit as sampling_module

    monkeypatch.setattr(sampling_module, "_BILLING_PAUSE", 0.01)
    fake.reply("POST", "/api/v1/asample", (402, {"detail": "top up"}), None)
    result = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(result.sequences) == 1
    assert [c.json["seq_id"] for c in fake.requests_to("/api/v1/asample")] == [0, 0]


def test_402_beyond_the_billing_allowance_fails(
    fake: FakeTinker, service: tinkex.ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tinkex.clients import _sample_submit as sampling_module

    monkeypatch.setattr(sampling_module, "_BILLING_PAUSE", 0.01)
    fake.config["billing_exception_max_pause_duration_sec"] = 0.05
    sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
    fake.reply("POST", "/api/v1/asample", *([(402, {"detail": "top up"})] * 50))
    with pytest.raises(tinkex.BillingError):
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)


def test_stuck_detection_fails_with_no_progress(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    sampler = service.create_sampling_client(
        base_model="tiny-base", retry_config=RetryConfig(progress_timeout=0.05)
    ).result(timeout=10)
    fake.reply("POST", "/api/v1/asample", (503, {"detail": "busy"}))
    with pytest.raises(tinkex.APIConnectionError, match=r"No progress made in 0.05s") as info:
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert isinstance(info.value.__cause__, tinkex.InternalServerError)
    assert len(fake.requests_to("/api/v1/asample")) >= 2


def test_retry_logic_can_be_switched_off(fake: FakeTinker, service: tinkex.ServiceClient) -> None:
    sampler = service.create_sampling_client(
        base_model="tiny-base", retry_config=RetryConfig(enable_retry_logic=False)
    ).result(timeout=10)
    fake.reply("POST", "/api/v1/asample", (503, {"detail": "busy"}))
    with pytest.raises(tinkex.InternalServerError):
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(fake.requests_to("/api/v1/asample")) == 1


def test_server_can_switch_sampling_retries_off(
    fake: FakeTinker, service: tinkex.ServiceClient
) -> None:
    fake.config["sample_no_retries"] = True
    sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
    fake.reply("POST", "/api/v1/asample", (503, {"detail": "busy"}))
    with pytest.raises(tinkex.InternalServerError):
        sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert len(fake.requests_to("/api/v1/asample")) == 1


def test_the_body_is_encoded_once_and_gets_each_seq_id_spliced_in() -> None:
    from tinkex._transport.headers import json_bytes
    from tinkex.clients._sample_submit import with_seq_id

    body = {"prompt": {"chunks": [{"tokens": [1, 2], "type": "encoded_text"}]}, "stop": ["é\n"]}
    encoded = json_bytes(body)
    assert isinstance(encoded, bytes)
    for seq_id in (0, 7, 1_000_000_003):
        assert with_seq_id(encoded, seq_id) == json_bytes({**body, "seq_id": seq_id})
