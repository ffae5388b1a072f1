"""Base-model names (issue 12.6): the local server serves the names the hosted service
publishes (plus tinkex/tiny and tinkex/null) and rejects others by default, with a "did you
mean" and the list; ``any_model`` accepts any name."""

from __future__ import annotations

import pytest
import tinker

from tinkex.local import LocalServer
from tinkex.local.app import SUPPORTED_MODELS
from tinkex.local.app.base_models import HOSTED_MODELS

from .conftest import Api


def _create(api: Api, base_model: str, model_seq_id: int = 0) -> tuple[int, str]:
    body = {"session_id": api.session(), "model_seq_id": model_seq_id, "base_model": base_model}
    response = api.post("create_model", body)
    return response.status_code, response.text


def test_a_typo_is_rejected_with_did_you_mean(api: Api) -> None:
    status, text = _create(api, "Qwen/Qwen3-8b")
    assert status == 400
    assert "'Qwen/Qwen3-8b' is not a model the Tinker service serves" in text
    assert "did you mean 'Qwen/Qwen3-8B'?" in text
    assert "--any-model" in text and "meta-llama/Llama-3.1-8B-Instruct" in text
    status, text = _create(api, "meta-llama/Llama-3.1-8B-Instrct")
    assert status == 400 and "did you mean 'meta-llama/Llama-3.1-8B-Instruct'" in text
    status, text = _create(api, "acme/unknown-1B")
    assert status == 400 and "did you mean" not in text and "supported:" in text


@pytest.mark.parametrize(
    "endpoint, body",
    [
        ("create_sampling_session", {"sampling_session_seq_id": 0}),
        ("asample", {"num_samples": 1, "prompt": {"chunks": []}, "sampling_params": {}}),
    ],
)
def test_every_endpoint_that_names_a_base_model_checks_it(
    api: Api, endpoint: str, body: dict[str, object]
) -> None:
    answer = api.post(endpoint, {**body, "session_id": api.session(), "base_model": "Qwen3-8B"})
    assert answer.status_code == 400
    assert "did you mean 'Qwen/Qwen3-8B'" in answer.json()["detail"]


def test_every_hosted_name_and_the_tinkex_models_are_served(api: Api) -> None:
    assert {"tinkex/tiny", "tinkex/null"} < set(SUPPORTED_MODELS)
    # base and instruct variants of the lineup, as the cookbook names them
    for name in ("Qwen/Qwen3-8B-Base", "Qwen/Qwen3-30B-A3B-Instruct-2507", "openai/gpt-oss-20b"):
        assert name in HOSTED_MODELS
    capabilities = api.get("get_server_capabilities").json()["supported_models"]
    assert [m["model_name"] for m in capabilities] == list(SUPPORTED_MODELS)
    session = api.session()
    for seq, name in enumerate(SUPPORTED_MODELS):
        body = {"session_id": session, "sampling_session_seq_id": seq, "base_model": name}
        assert api.post("create_sampling_session", body).status_code == 200, name


def test_cookbook_model_names_are_all_supported() -> None:
    """Every model tinker-cookbook's model_info knows is a supported name."""
    model_info = pytest.importorskip("tinker_cookbook.model_info")
    families = [
        ("meta-llama", model_info.get_llama_info()),
        ("Qwen", model_info.get_qwen_info()),
        ("deepseek-ai", model_info.get_deepseek_info()),
        ("openai", model_info.get_gpt_oss_info()),
        ("moonshotai", model_info.get_moonshot_info()),
        ("zai-org", model_info.get_zai_info()),
        ("nvidia", model_info.get_nvidia_info()),
        ("thinkingmachines", model_info.get_thinkingmachines_info()),
    ]
    names = {f"{org}/{name}" for org, table in families for name in table}
    assert names - set(HOSTED_MODELS) == set()


def test_any_model_accepts_any_name_and_the_official_client_sees_the_error() -> None:
    with LocalServer(any_model=True, long_poll_seconds=0.3) as server:
        assert Api(server).model("acme/unknown-1B")
    with (
        LocalServer(long_poll_seconds=0.3) as server,
        tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service,
        pytest.raises(tinker.BadRequestError, match="did you mean 'Qwen/Qwen3-8B'"),
    ):
        service.create_lora_training_client(base_model="Qwen/Qwen3-8b").result()


def test_tinkex_serve_any_model_flag() -> None:
    import argparse

    from tinkex.local.cli import add_serve_parser

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "--any-model"]).any_model is True
    assert parser.parse_args(["serve"]).any_model is False
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--any-model", "--strict-models"])
