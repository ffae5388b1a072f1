"""The OFFICIAL ``tinker`` 0.38 SDK against ``tinkex.local.LocalServer`` over real HTTP.

These tests prove wire compatibility: protobuf fwd/bwd requests, protobuf sample results,
futures with long-poll, sessions, checkpoints and the REST listings.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

tinker = pytest.importorskip("tinker")
from tinker import types  # noqa: E402

from tinkex.local import LocalServer  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

HELLO = [72, 101, 108, 108, 111]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(data_dir=str(tmp_path_factory.mktemp("compat")), long_poll_seconds=1.0) as srv:
        yield srv


@pytest.fixture()
def service(server: LocalServer) -> Iterator[Any]:
    client = tinker.ServiceClient(base_url=server.base_url, api_key="tml-local")
    yield client
    client.close("success").result()


def ce_datum(tokens: list[int]) -> Any:
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={
            "target_tokens": types.TensorData(
                data=[*tokens[1:], 33], dtype="int64", shape=[len(tokens)]
            ),
            "weights": types.TensorData(
                data=[1.0] * len(tokens), dtype="float32", shape=[len(tokens)]
            ),
        },
    )


def training_client(service: Any, base_model: str = "Qwen/Qwen3-8B", rank: int = 4) -> Any:
    created = service.create_lora_training_client(base_model, rank=rank)
    return created.result() if hasattr(created, "result") else created


def test_training_loop_loss_goes_down(service: Any, server: LocalServer) -> None:
    trainer = training_client(service)
    info = trainer.get_info()
    assert info.model_data.model_name == "Qwen/Qwen3-8B"
    assert info.model_data.tokenizer_id == server.tokenizer_id
    assert info.model_data.arch == "tinkex-tiny-transformer" and info.lora_rank == 4
    losses = []
    for _ in range(5):
        fwd_bwd = trainer.forward_backward([ce_datum(HELLO)], "cross_entropy")
        step = trainer.optim_step(types.AdamParams(learning_rate=1e-2))
        result = fwd_bwd.result()
        assert len(result.loss_fn_outputs) == 1
        assert result.loss_fn_outputs[0]["logprobs"].shape == [5]
        losses.append(result.metrics["loss:sum"])
        step.result()
    assert losses[-1] < 0.5 * losses[0]
    forward = trainer.forward([ce_datum(HELLO)], "cross_entropy").result()
    assert forward.metrics["loss:sum"] < losses[0]


def test_many_chunks_in_one_forward_backward(service: Any) -> None:
    trainer = training_client(service, "tinkex/null")
    data = [ce_datum([1 + i % 50, 2, 3]) for i in range(40)]
    result = trainer.forward_backward(data, "cross_entropy").result()
    assert len(result.loss_fn_outputs) == 40 and "loss:sum" in result.metrics


def test_sampling_from_trained_weights(service: Any) -> None:
    trainer = training_client(service)
    trainer.forward_backward([ce_datum(HELLO)], "cross_entropy").result()
    trainer.optim_step(types.AdamParams(learning_rate=1e-3)).result()
    sampler = trainer.save_weights_and_get_sampling_client()
    sampler = sampler.result() if hasattr(sampler, "result") else sampler
    params = types.SamplingParams(max_tokens=5, temperature=1.0, seed=3, stop=["\n"])
    response = sampler.sample(types.ModelInput.from_ints([72, 101]), 3, params).result()
    assert len(response.sequences) == 3
    ids = [s.sequence_id for s in response.sequences]
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == 3
    for seq in response.sequences:
        assert 1 <= len(seq.tokens) <= 5 and all(0 <= t < 264 for t in seq.tokens)
        assert seq.logprobs is not None and len(seq.logprobs) == len(seq.tokens)
        assert seq.stop_reason in ("stop", "length")
    again = sampler.sample(types.ModelInput.from_ints([72, 101]), 3, params).result()
    assert [s.tokens for s in again.sequences] == [s.tokens for s in response.sequences]
    logprobs = sampler.compute_logprobs(types.ModelInput.from_ints([72, 101, 108])).result()
    assert len(logprobs) == 3 and logprobs[0] is None
    assert all(lp is not None and lp < 0 for lp in logprobs[1:])


def test_base_model_sampling_client(service: Any) -> None:
    sampler = service.create_sampling_client(base_model="tinkex/null")
    sampler = sampler.result() if hasattr(sampler, "result") else sampler
    params = types.SamplingParams(max_tokens=4, stop=[])
    futures = [sampler.sample(types.ModelInput.from_ints([1, 2]), 2, params) for _ in range(20)]
    assert all(len(f.result().sequences) == 2 for f in futures)


def test_save_state_and_create_from_state(service: Any, server: LocalServer) -> None:
    trainer = training_client(service)
    trainer.forward_backward([ce_datum(HELLO)], "cross_entropy").result()
    trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    path = trainer.save_state("compat-state").result().path
    assert path.startswith("tinker://") and path.endswith("/weights/compat-state")
    before = trainer.forward([ce_datum(HELLO)], "cross_entropy").result().metrics["loss:sum"]
    named = trainer.save_weights_for_sampler("compat-sampler").result().path
    assert named.endswith("/sampler_weights/compat-sampler")
    restored = service.create_training_client_from_state(path)
    restored = restored.result() if hasattr(restored, "result") else restored
    assert restored.get_info().model_data.model_name == "Qwen/Qwen3-8B"
    after = restored.forward([ce_datum(HELLO)], "cross_entropy").result().metrics["loss:sum"]
    assert after == pytest.approx(before, abs=1e-4)
    with_opt = service.create_training_client_from_state_with_optimizer(path)
    with_opt = with_opt.result() if hasattr(with_opt, "result") else with_opt
    with_opt.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    sampler = service.create_sampling_client(model_path=named)
    sampler = sampler.result() if hasattr(sampler, "result") else sampler
    out = sampler.sample(
        types.ModelInput.from_ints([72]), 1, types.SamplingParams(max_tokens=2)
    ).result()
    assert len(out.sequences) == 1


def test_rest_client_listings(service: Any, server: LocalServer) -> None:
    trainer = training_client(service)
    path = trainer.save_state("listed").result().path
    run_id = trainer.get_info().model_id
    rest = tinker.RestClient(base_url=server.base_url, api_key="tml-local")
    runs = rest.list_training_runs(limit=100).result()
    assert run_id in [r.training_run_id for r in runs.training_runs]
    assert runs.cursor.total_count >= 1
    run = rest.get_training_run(run_id).result()
    assert run.base_model == "Qwen/Qwen3-8B" and run.last_checkpoint.tinker_path == path
    ckpts = rest.list_checkpoints(run_id).result().checkpoints
    assert [c.tinker_path for c in ckpts] == [path]
    user = rest.list_user_checkpoints().result().checkpoints
    assert path in [c.tinker_path for c in user]
    info = rest.get_weights_info_by_tinker_path(path).result()
    assert info.lora_rank == 4 and info.base_model == "Qwen/Qwen3-8B"
    rest.publish_checkpoint_from_tinker_path(path).result()
    rest.unpublish_checkpoint_from_tinker_path(path).result()
    rest.delete_checkpoint_from_tinker_path(path).result()
    assert rest.list_checkpoints(run_id).result().checkpoints == []
    caps = service.get_server_capabilities()
    assert "Qwen/Qwen3-8B" in [m.model_name for m in caps.supported_models]


def test_service_client_close_finishes_session(server: LocalServer) -> None:
    before = {t.ident for t in threading.enumerate()}
    client = tinker.ServiceClient(base_url=server.base_url, api_key="tml-local")
    trainer = training_client(client, "tinkex/null")
    run_id = trainer.get_info().model_id
    client.close("success").result()
    session_id = run_id.split(":")[0]
    rest = tinker.RestClient(base_url=server.base_url, api_key="tml-local")
    assert run_id in rest.get_session(session_id).result().training_run_ids
    session = server.store.get_session(session_id)
    assert session is not None and session["status"]["type"] == "client_finished"
    del before  # SDK threads are daemonic and owned by the SDK; nothing to assert about them


def test_wrong_key_is_rejected() -> None:
    with LocalServer(api_key="tml-secret", long_poll_seconds=0.5) as server:
        with pytest.raises(tinker.AuthenticationError) as info:
            tinker.RestClient(base_url=server.base_url, api_key="tml-wrong").list_training_runs()
        assert "invalid API key" in str(info.value)
        ok = tinker.RestClient(base_url=server.base_url, api_key="tml-secret")
        assert ok.list_training_runs().result().cursor.total_count == 0


def test_sampling_survives_injected_429s() -> None:
    warnings.simplefilter("ignore")
    with LocalServer(faults="asample:429:2,retrieve_future:500:2", long_poll_seconds=0.5) as srv:
        with tinker.ServiceClient(base_url=srv.base_url, api_key="tml-local") as client:
            sampler = client.create_sampling_client(base_model="tinkex/null")
            sampler = sampler.result() if hasattr(sampler, "result") else sampler
            out = sampler.sample(
                types.ModelInput.from_ints([5]), 1, types.SamplingParams(max_tokens=2)
            ).result()
            assert len(out.sequences) == 1
        assert ("asample", "429") in srv.injected_faults
        assert ("retrieve_future", "500") in srv.injected_faults


def test_create_from_state_after_server_restart(tmp_path: Any) -> None:
    data_dir = str(tmp_path / "data")
    with (
        LocalServer(data_dir=data_dir, long_poll_seconds=0.5) as first,
        tinker.ServiceClient(base_url=first.base_url, api_key="tml-local") as client,
    ):
        trainer = training_client(client)
        trainer.forward_backward([ce_datum(HELLO)], "cross_entropy").result()
        trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        path = trainer.save_state("persisted").result().path
        loss = trainer.forward([ce_datum(HELLO)], "cross_entropy").result().metrics["loss:sum"]
    with (
        LocalServer(data_dir=data_dir, long_poll_seconds=0.5) as second,
        tinker.ServiceClient(base_url=second.base_url, api_key="tml-local") as client,
    ):
        restored = client.create_training_client_from_state_with_optimizer(path)
        restored = restored.result() if hasattr(restored, "result") else restored
        again = restored.forward([ce_datum(HELLO)], "cross_entropy").result().metrics["loss:sum"]
        assert again == pytest.approx(loss, abs=1e-4)
        rest = tinker.RestClient(base_url=second.base_url, api_key="tml-local")
        run_id = path.split("/")[2]
        assert [c.tinker_path for c in rest.list_checkpoints(run_id).result().checkpoints] == [path]
