"""End-to-end training: loss goes down, pipelining, checkpoints, custom losses, futures."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import tinkex
from tinkex import types

from .conftest import BASE_MODEL, BATCH, make_datum

pytestmark = pytest.mark.e2e


def _loss(out: types.ForwardBackwardOutput) -> float:
    return float(out.metrics["loss:sum"])


def test_training_loop_reduces_loss(training: tinkex.TrainingClient) -> None:
    adam = types.AdamParams(learning_rate=0.05)
    losses = []
    for _ in range(8):
        fwdbwd = training.forward_backward(BATCH, "cross_entropy")
        optim = training.optim_step(adam)
        losses.append(_loss(fwdbwd.result(timeout=30)))
        optim.result(timeout=30)
    assert losses[-1] < 0.7 * losses[0], losses
    info = training.get_info()
    assert info.model_data.model_name == BASE_MODEL
    assert info.lora_rank == 4


def test_pipelined_calls_without_waiting(
    service: tinkex.ServiceClient, training: tinkex.TrainingClient
) -> None:
    adam = types.AdamParams(learning_rate=0.02)
    futures: list[Any] = []
    for _ in range(6):
        futures.append(training.forward_backward(BATCH, "cross_entropy"))
        futures.append(training.optim_step(adam))
    evaluation = training.forward(BATCH, "cross_entropy")
    results = [f.result(timeout=30) for f in futures]
    pipelined = [_loss(r) for r in results[::2]] + [_loss(evaluation.result(timeout=30))]

    # the same run, waiting for every result: identical losses mean the pipelined requests
    # ran in call order
    twin = service.create_lora_training_client(BASE_MODEL, rank=4, seed=0).result(timeout=30)
    sequential = []
    for _ in range(6):
        sequential.append(_loss(twin.forward_backward(BATCH, "cross_entropy").result(timeout=30)))
        twin.optim_step(adam).result(timeout=30)
    sequential.append(_loss(twin.forward(BATCH, "cross_entropy").result(timeout=30)))
    assert pipelined == pytest.approx(sequential, rel=1e-5)
    assert pipelined[-1] < pipelined[0]
    assert len(results[0].loss_fn_outputs) == len(BATCH)
    assert results[0].loss_fn_outputs[0]["logprobs"].shape == [5]


def test_asyncio_usage(training: tinkex.TrainingClient) -> None:
    async def main() -> tuple[float, list[Any]]:
        out = await training.forward(BATCH, "cross_entropy")
        futures = [training.forward(BATCH, "cross_entropy") for _ in range(4)]
        gathered = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        task = asyncio.create_task(training.forward(BATCH, "cross_entropy").coroutine())
        gathered.append(await task)
        gathered.append(await training.forward(BATCH, "cross_entropy").result_async(timeout=30))
        return _loss(out), gathered

    first, rest = asyncio.run(main())
    assert len(rest) == 6
    assert all(_loss(r) == pytest.approx(first) for r in rest)


def test_result_timeout_does_not_break_the_future(tinker_server_factory: Any) -> None:
    server = tinker_server_factory(faults="latency=150ms")
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=2).result(timeout=30)
        future = training.forward(BATCH, "cross_entropy")
        with pytest.raises(TimeoutError):
            future.result(timeout=0.01)
        assert not future.done()
        assert _loss(future.result(timeout=30)) > 0
        assert future.exception() is None


def test_backcompat_future_used_as_client_warns(service: tinkex.ServiceClient) -> None:
    future = service.create_lora_training_client(BASE_MODEL, rank=2)
    with pytest.warns(FutureWarning, match="deprecated"):
        out = future.forward(BATCH, "cross_entropy").result(timeout=30)
    assert _loss(out) > 0
    assert isinstance(future.result(timeout=30), tinkex.TrainingClient)


def test_save_and_load_state(
    service: tinkex.ServiceClient, training: tinkex.TrainingClient
) -> None:
    adam = types.AdamParams(learning_rate=0.05)
    for _ in range(3):
        training.forward_backward(BATCH, "cross_entropy")
        training.optim_step(adam)
    saved = training.save_state("e2e-step-3").result(timeout=30)
    assert saved.path.endswith("/weights/e2e-step-3")
    parsed = types.ParsedCheckpointTinkerPath.from_tinker_path(saved.path)
    assert parsed.training_run_id == training.model_id
    expected = _loss(training.forward(BATCH, "cross_entropy").result(timeout=30))

    weights_only = service.create_training_client_from_state(saved.path).result(timeout=30)
    resumed = service.create_training_client_from_state_with_optimizer(saved.path).result(
        timeout=30
    )
    assert len({training.model_id, weights_only.model_id, resumed.model_id}) == 3
    for client in (weights_only, resumed):
        assert _loss(client.forward(BATCH, "cross_entropy").result(timeout=30)) == pytest.approx(
            expected, rel=1e-5
        )
    # with its optimizer state restored, the resumed run takes the same next step as the original
    steps = []
    for client in (training, resumed):
        client.forward_backward(BATCH, "cross_entropy")
        client.optim_step(adam).result(timeout=30)
        steps.append(_loss(client.forward(BATCH, "cross_entropy").result(timeout=30)))
    assert steps[0] == pytest.approx(steps[1], rel=1e-4)


def test_save_weights_and_sample(training: tinkex.TrainingClient) -> None:
    saved = training.save_weights_for_sampler("e2e-sampler").result(timeout=30)
    assert saved.path.endswith("/sampler_weights/e2e-sampler")
    sampler = training.create_sampling_client(saved.path).result(timeout=30)
    assert sampler.get_base_model() == BASE_MODEL
    ephemeral = training.save_weights_and_get_sampling_client().result(timeout=30)
    params = types.SamplingParams(max_tokens=3, temperature=0.0)
    prompt = types.ModelInput.from_ints([10, 20, 30])
    a = sampler.sample(prompt, 1, params).result(timeout=30).sequences[0].tokens
    b = ephemeral.sample(prompt, 1, params).result(timeout=30).sequences[0].tokens
    assert a == b
    assert len(a) == 3
    # the tokenizer the server reported for the model (offline byte tokenizer)
    assert training.get_tokenizer().encode("hi") == [104, 105]
    assert ephemeral.get_tokenizer().decode([104, 105]) == "hi"


def test_forward_backward_custom_numpy_with_regularizers(training: tinkex.TrainingClient) -> None:
    np = pytest.importorskip("numpy")
    from tinkex.regularizers import L1, RegularizerSpec, numpy_loss

    @numpy_loss(per_datum=True)  # type: ignore[untyped-decorator]
    def nll(datum: types.Datum, logprobs: Any) -> tuple[float, Any]:
        return float(-logprobs.sum()), -np.ones_like(logprobs)

    out = training.forward_backward_custom(
        BATCH, nll, regularizers=[RegularizerSpec(L1(), 0.01, "l1")], track_grad_norms=True
    ).result(timeout=30)
    plain = _loss(training.forward(BATCH, "cross_entropy").result(timeout=30))
    custom = out.custom_loss_output
    assert custom is not None
    assert custom.base_loss == pytest.approx(plain, rel=1e-4)
    assert out.metrics["loss:sum"] == pytest.approx(custom.loss_total)
    assert custom.loss_total > custom.base_loss  # the L1 term adds a positive penalty
    assert "surrogate_loss:sum" in out.metrics
    assert custom.regularizers["l1"].grad_norm is not None
    # the gradient was applied: an optimizer step on it lowers the plain loss
    training.optim_step(types.AdamParams(learning_rate=0.05)).result(timeout=30)
    assert _loss(training.forward(BATCH, "cross_entropy").result(timeout=30)) < plain


def test_chunked_forward_backward_matches_one_request(training: tinkex.TrainingClient) -> None:
    data = [make_datum([i, i + 1, i + 2, i + 3]) for i in range(1, 40, 3)]
    whole = training.forward(data, "cross_entropy").result(timeout=30)
    config = training.holder.client_config()
    assert config.fwdbwd_max_chunk_len >= len(data)
    # force chunking by datum count through a client with a small chunk size
    from tinkex.clients._chunking import chunk_datums

    chunks = chunk_datums(data, 4, config.fwdbwd_max_chunk_bytes_count)
    assert len(chunks) == 4
    parts = [training.forward(c.data, "cross_entropy") for c in chunks]
    summed = sum(_loss(p.result(timeout=30)) for p in parts)
    assert summed == pytest.approx(_loss(whole), rel=1e-5)


def test_unload_model_frees_the_model_on_the_server(
    service: tinkex.ServiceClient, training: tinkex.TrainingClient
) -> None:
    training.forward_backward(BATCH, "cross_entropy").result(timeout=30)
    other = service.create_lora_training_client(BASE_MODEL, rank=4, seed=1).result(timeout=30)
    unloaded = training.unload_model().result(timeout=30)
    assert unloaded.model_id == training.model_id
    with pytest.raises(tinkex.BadRequestError, match="no longer loaded: unloaded by the client"):
        training.forward_backward(BATCH, "cross_entropy").result(timeout=30)
    # Another model of the same session is not affected.
    other.forward_backward(BATCH, "cross_entropy").result(timeout=30)


def test_a_one_request_forward_backward_is_one_job_on_the_thread_that_sent_it(
    training: tinkex.TrainingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After its POST (on the sender thread) a one-request call needs one job: poll the result
    # and combine it, settling the future the caller holds (no job per chunk poll, no future
    # mirrored into the caller's). With no later call waiting to be sent, it runs on the
    # thread that sent the request: no hand-off to a worker between the POST and the poll.
    holder = training.holder
    jobs: list[tuple[str, Any, str]] = []
    run, run_here = holder.run, holder.run_here

    def counting_run(fn: Any, *args: Any, **kwargs: Any) -> Any:
        future = run(fn, *args, **kwargs)
        jobs.append(("worker", future, threading.current_thread().name))
        return future

    def counting_run_here(fn: Any, *args: Any, into: Any) -> None:
        jobs.append(("here", into, threading.current_thread().name))
        run_here(fn, *args, into=into)

    monkeypatch.setattr(holder, "run", counting_run)
    monkeypatch.setattr(holder, "run_here", counting_run_here)
    future = training.forward_backward(BATCH, "cross_entropy")
    out = future.result(timeout=30)
    assert len(out.loss_fn_outputs) == len(BATCH)
    assert jobs == [("here", future, f"tinkex-send-{training.model_id}")], jobs


def test_an_idle_training_client_keeps_no_reference_to_its_last_result(
    training: tinkex.TrainingClient,
) -> None:
    # A finished call's output (a forward/backward result can be megabytes) belongs to the
    # caller: once they drop it, nothing of the client (its sender thread, waiting for the
    # next call) may keep it alive.
    import gc
    import weakref

    out = training.forward_backward(BATCH, "cross_entropy").result(timeout=30)
    left = weakref.ref(out)
    del out
    gc.collect()
    assert left() is None
