"""Client-side reliability against a real LocalServer with fault injection (issues 10, 11, 12).

Each test reproduces a reported problem over loopback HTTP and counts what the server executed
(``LocalServer.finished_requests()``), so "ran once" is the server's word, not the client's.
"""

from __future__ import annotations

from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex.local import LocalServer

from .conftest import BASE_MODEL, BATCH

pytestmark = pytest.mark.e2e

PARAMS = types.SamplingParams(max_tokens=3, seed=1)
PROMPT = types.ModelInput.from_ints([72, 101, 108])


def _executions(server: LocalServer, kind: str, outcome: str = "complete") -> int:
    return sum(
        n for (k, _, o), n in server.finished_requests().items() if k == kind and o == outcome
    )


def _service(server: LocalServer) -> tinkex.ServiceClient:
    return tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key)


# -- issue 10.1: a sample resent after the connection dropped runs once ---------------------------


def test_a_sample_resent_after_its_answer_was_lost_runs_once(tinker_server_factory: Any) -> None:
    """reset_after: the server accepted the sample, then the connection dropped. The resend
    carries the same seq_id, so the server answers with the original future."""
    server = tinker_server_factory(faults="asample:reset_after:2", long_poll_seconds=0.5)
    with _service(server) as service:
        sampler = service.create_sampling_client(base_model=BASE_MODEL)
        result = sampler.sample(PROMPT, 2, PARAMS).result(timeout=60)
    assert len(result.sequences) == 2
    assert server.injected_faults.count(("asample", "reset_after")) == 2
    assert _executions(server, "Sample") == 1


def test_a_sample_whose_result_was_lost_is_resubmitted_under_a_new_seq_id(
    tinker_server_factory: Any,
) -> None:
    """410 on retrieve_future: the server dropped the result; the retry handler resubmits as a
    new request (a new seq_id), which runs again, as the official SDK does."""
    server = tinker_server_factory(faults="retrieve_future:410:1", long_poll_seconds=0.5)
    with _service(server) as service:
        sampler = service.create_sampling_client(base_model=BASE_MODEL)
        assert len(sampler.sample(PROMPT, 1, PARAMS).result(timeout=60).sequences) == 1
    assert _executions(server, "Sample") == 2


# -- issue 10.4: one rejected request does not poison the TrainingClient -------------------------


def _bad_datum() -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints([100_000, 5]),
        loss_fn_inputs={"target_tokens": [5, 6], "weights": [1.0, 1.0]},
    )


def test_a_rejected_forward_backward_fails_only_its_own_future(
    service: tinkex.ServiceClient,
) -> None:
    training = service.create_lora_training_client(BASE_MODEL, rank=2).result(timeout=30)
    with pytest.raises(tinkex.BadRequestError, match="outside the vocabulary"):
        training.forward_backward([_bad_datum()], "cross_entropy").result(timeout=30)
    out = training.forward_backward(BATCH, "cross_entropy").result(timeout=30)
    assert out.metrics["loss:sum"] > 0
    assert training.optim_step(types.AdamParams(learning_rate=0.01)).result(timeout=30)


@pytest.mark.parametrize("parallel", [True, False], ids=["parallel-chunks", "chunks-one-by-one"])
def test_a_rejected_chunk_poisons_only_when_later_chunks_stay_unsent(
    tinker_server_factory: Any, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    """One chunk per datum; the first is rejected. Sent concurrently, every chunk reached the
    server (no hole: the next call works); sent one by one, the second chunk's seq_id stays
    unsent, so the next call fails fast with PoisonedError instead of waiting forever."""
    from tinkex.local.app.handlers.config import CLIENT_CONFIG

    monkeypatch.setitem(CLIENT_CONFIG, "fwdbwd_max_chunk_len", 1)
    monkeypatch.setitem(CLIENT_CONFIG, "parallel_fwdbwd_chunks", parallel)
    server = tinker_server_factory()
    with _service(server) as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=2).result(timeout=30)
        with pytest.raises(tinkex.BadRequestError, match="outside the vocabulary"):
            training.forward_backward([_bad_datum(), BATCH[0]], "cross_entropy").result(timeout=30)
        later = training.forward(BATCH, "cross_entropy")
        if parallel:
            assert later.result(timeout=30).loss_fn_outputs
        else:
            with pytest.raises(RuntimeError, match=r"poisoned.*outside the vocabulary"):
                later.result(timeout=30)


# -- issue 11.1: counters allocated inside a retried call advance as the official SDK's do -----


def test_an_unnamed_save_resent_after_a_dropped_answer_runs_once(
    tinker_server_factory: Any,
) -> None:
    """The resend carries the same seq_id and the next sampling_session_seq_id (as the official
    SDK's); the server recognises it and answers with the original future."""
    server = tinker_server_factory(
        faults="save_weights_for_sampler:reset_after:1", long_poll_seconds=0.5
    )
    with _service(server) as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=2).result(timeout=30)
        sampler = training.save_weights_and_get_sampling_client().result(timeout=60)
        assert sampler.sample(PROMPT, 1, PARAMS).result(timeout=60).sequences
    assert ("save_weights_for_sampler", "reset_after") in server.injected_faults
    assert _executions(server, "SaveWeightsForSampler") == 1
