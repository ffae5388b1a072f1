"""End-to-end sampling fan-out, pickling across processes, REST, and clean shutdown."""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import pickle
import sys
import textwrap
import time
from typing import Any

import pytest
from _child_exit import time_exit_after

import tinkex
from tinkex import types

from ._workers import sample_in_child
from .conftest import BASE_MODEL, BATCH

pytestmark = pytest.mark.e2e

PROMPT = types.ModelInput.from_ints([1, 2, 3])


@pytest.fixture
def sampler(service: tinkex.ServiceClient) -> tinkex.SamplingClient:
    client: tinkex.SamplingClient = service.create_sampling_client(base_model=BASE_MODEL).result(
        timeout=30
    )
    return client


def test_fan_out_200_samples(sampler: tinkex.SamplingClient) -> None:
    params = types.SamplingParams(max_tokens=4, temperature=1.0, stop=[])  # no early EOS
    futures = [sampler.sample(PROMPT, 1, params) for _ in range(200)]
    done, not_done = concurrent.futures.wait(futures, timeout=60)
    assert not not_done
    assert len(done) == 200
    results = [f.result() for f in futures]
    assert all(len(r.sequences[0].tokens) == 4 for r in results)
    assert {r.sequences[0].stop_reason for r in results} == {"length"}
    ids = {r.sequences[0].sequence_id for r in results}
    assert len(ids) == 200  # every sampled sequence has its own id


def test_sampling_params_and_logprobs(sampler: tinkex.SamplingClient) -> None:
    greedy = types.SamplingParams(max_tokens=5, temperature=0.0)
    first = sampler.sample(PROMPT, 2, greedy).result(timeout=30)
    assert first.sequences[0].tokens == first.sequences[1].tokens
    assert first.sequences[0].stop_reason in ("length", "stop")
    with_prompt = sampler.sample(PROMPT, 1, greedy, include_prompt_logprobs=True).result(timeout=30)
    assert with_prompt.prompt_logprobs is not None
    assert with_prompt.prompt_logprobs[0] is None
    logprobs = sampler.compute_logprobs(PROMPT).result(timeout=30)
    assert logprobs[0] is None
    assert logprobs[1:] == pytest.approx(with_prompt.prompt_logprobs[1:], rel=1e-5)
    assert all(lp < 0 for lp in logprobs[1:])


def test_pickle_round_trip_in_process(sampler: tinkex.SamplingClient) -> None:
    params = types.SamplingParams(max_tokens=4, seed=1, temperature=0.0)
    expected = sampler.sample(PROMPT, 1, params).result(timeout=30).sequences[0].tokens
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone.get_base_model() == BASE_MODEL
    assert clone.sample(PROMPT, 1, params).result(timeout=30).sequences[0].tokens == expected
    handle = sampler.get_sampler_handle()
    restored = tinkex.SamplingClient.from_sampler_handle(
        handle, api_key=sampler.holder.settings.api_key
    )
    assert restored.sample(PROMPT, 1, params).result(timeout=30).sequences[0].tokens == expected
    for copied in (clone, restored):  # each has a holder of its own
        copied.holder.close()


def test_an_unpickled_sampler_stops_its_threads_once_collected(
    sampler: tinkex.SamplingClient,
) -> None:
    # Nothing owns an unpickled client's holder but the client: once the client is gone,
    # its I/O thread and pools must not run on (one per unpickled copy, forever).
    params = types.SamplingParams(max_tokens=4, seed=1, temperature=0.0)
    blob = pickle.dumps(sampler)
    threads = []
    for _ in range(2):
        clone = pickle.loads(blob)
        clone.sample(PROMPT, 1, params).result(timeout=30)
        io = clone.holder.io()
        assert io is not None
        threads.append(io[0].thread)
        holder = clone.holder
        del clone, io
        gc.collect()
        deadline = time.monotonic() + 10
        while threads[-1].is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.closed
    assert not any(thread.is_alive() for thread in threads)
    # The original's own holder is not touched.
    assert sampler.sample(PROMPT, 1, params).result(timeout=30).sequences


def test_pickled_sampler_in_a_spawned_process(sampler: tinkex.SamplingClient) -> None:
    params = types.SamplingParams(max_tokens=4, seed=1, temperature=0.0)
    expected = sampler.sample(PROMPT, 1, params).result(timeout=30).sequences[0].tokens
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        tokens = pool.submit(sample_in_child, pickle.dumps(sampler)).result(timeout=60)
    assert tokens == expected


def test_rest_client(tinker_server: Any, training: tinkex.TrainingClient) -> None:
    saved = training.save_state("rest-e2e").result(timeout=30)
    run_id = training.model_id
    with tinkex.RestClient(base_url=tinker_server.base_url, api_key=tinker_server.api_key) as rest:
        assert rest.health_check().result(timeout=30) == types.HealthResponse(status="ok")
        runs = rest.list_training_runs(limit=100).result(timeout=30)
        assert run_id in {r.training_run_id for r in runs.training_runs}
        run = rest.get_training_run(run_id).result(timeout=30)
        assert run.base_model == BASE_MODEL
        assert rest.get_training_run_by_tinker_path(saved.path).result(timeout=30) == run
        listed = rest.list_checkpoints(run_id).result(timeout=30)
        (checkpoint,) = [c for c in listed.checkpoints if c.tinker_path == saved.path]
        assert checkpoint.checkpoint_type == "training"
        assert checkpoint.public is False

        rest.publish_checkpoint_from_tinker_path(saved.path).result(timeout=30)
        rest.set_checkpoint_ttl_from_tinker_path(saved.path, 7200).result(timeout=30)
        listed = rest.list_checkpoints(run_id).result(timeout=30)
        (checkpoint,) = [c for c in listed.checkpoints if c.tinker_path == saved.path]
        assert checkpoint.public is True
        assert checkpoint.expires_at is not None
        rest.unpublish_checkpoint_from_tinker_path(saved.path).result(timeout=30)
        rest.set_checkpoint_ttl_from_tinker_path(saved.path, None).result(timeout=30)
        listed = rest.list_checkpoints(run_id).result(timeout=30)
        (checkpoint,) = [c for c in listed.checkpoints if c.tinker_path == saved.path]
        assert checkpoint.public is False
        assert checkpoint.expires_at is None

        mine = rest.list_user_checkpoints(limit=100).result(timeout=30)
        assert saved.path in {c.tinker_path for c in mine.checkpoints}
        info = rest.get_weights_info_by_tinker_path(saved.path).result(timeout=30)
        assert info.base_model == BASE_MODEL

        rest.delete_checkpoint_from_tinker_path(saved.path).result(timeout=30)
        listed = rest.list_checkpoints(run_id).result(timeout=30)
        assert saved.path not in {c.tinker_path for c in listed.checkpoints}
        with pytest.raises(tinkex.NotFoundError):
            rest.delete_checkpoint_from_tinker_path(saved.path).result(timeout=30)
        with pytest.raises(tinkex.NotFoundError):
            rest.get_training_run("no-such-run:train:0").result(timeout=30)

        caps = rest.get_server_capabilities().result(timeout=30)
        assert BASE_MODEL in {m.model_name for m in caps.supported_models}


_CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import tinkex
    from tinkex import types

    base_url, close = sys.argv[1], sys.argv[2] == "close"
    service = tinkex.ServiceClient(base_url=base_url, api_key="tml-local")
    training = service.create_lora_training_client("tinkex/tiny", rank=2).result(timeout=30)
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4], "weights": [1.0, 1.0, 1.0]},
    )
    training.forward_backward([datum], "cross_entropy").result(timeout=30)
    training.optim_step(types.AdamParams()).result(timeout=30)
    sampler = training.save_weights_and_get_sampling_client().result(timeout=30)
    sampler.sample(types.ModelInput.from_ints([1]), 1, types.SamplingParams(max_tokens=2))
    if close:
        service.close().result(timeout=30)
        main = threading.main_thread()
        alive = [t.name for t in threading.enumerate() if t is not main and not t.daemon]
        print("NON_DAEMON", alive)
        print("ALL_THREADS", len(threading.enumerate()))
    print("DONE", flush=True)
    """
)


@pytest.mark.parametrize("close", [True, False], ids=["closed", "forgotten"])
def test_interpreter_exits_promptly(tinker_server: Any, close: bool) -> None:
    # Only the exit is timed (from "DONE" on): start-up and the training before it grow with
    # the machine's load, an exit held by a client's threads does not.
    done = time_exit_after(
        [sys.executable, "-c", _CHILD, tinker_server.base_url, "close" if close else "keep"],
        "DONE",
        timeout=60,
    )
    assert done.returncode == 0, done.output
    assert done.exit_seconds is not None, done.output
    if close:
        assert "NON_DAEMON []" in done.output
    assert done.exit_seconds < 5, f"exited {done.exit_seconds:.1f} s after DONE\n{done.output}"


def test_closed_service_session_is_finished(tinker_server: Any) -> None:
    service = tinkex.ServiceClient(base_url=tinker_server.base_url, api_key=tinker_server.api_key)
    training = service.create_lora_training_client(BASE_MODEL, rank=2).result(timeout=30)
    session_id = service.holder.current_session_id
    assert session_id is not None
    service.close().result(timeout=30)
    with pytest.raises(RuntimeError, match="closed"):
        training.forward(BATCH, "cross_entropy")
    with tinkex.RestClient(base_url=tinker_server.base_url, api_key=tinker_server.api_key) as rest:
        session = rest.get_session(session_id).result(timeout=30)
    assert training.model_id in session.training_run_ids


def test_back_compat_sampling_future_pickles_as_its_client(service: tinkex.ServiceClient) -> None:
    """As with tinker, the future create_sampling_client returns pickles as the client."""
    future = service.create_sampling_client(base_model=BASE_MODEL)
    clone = pickle.loads(pickle.dumps(future))
    assert type(clone) is tinkex.SamplingClient
    params = types.SamplingParams(max_tokens=2, seed=1, temperature=0.0)
    assert len(clone.sample(PROMPT, 1, params).result(timeout=30).sequences[0].tokens) == 2
    clone.holder.close()
