"""The Elixir Tinkex CLI rows of issue 14, against a real local server: ``checkpoint save``
(14.1), listing progress and ``--json`` on every command (14.2), ``sample --prompt`` (14.9) and
``tinkex.cli.invoke``, the programmatic CLI (14.14)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from _child_env import child_env

from tinkex.cli import CLIError, invoke
from tinkex.cli.main import main

pytestmark = [pytest.mark.e2e]

BASE_MODEL = "Qwen/Qwen3-8B"
TEXT_MODEL = "tinkex/tiny"  # advertises the byte tokenizer, so text prompts work offline


@pytest.fixture(scope="module")
def weights(server):
    """A training run with five training checkpoints; returns their paths."""
    import tinkex
    from tinkex import types

    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
        )
        training.forward_backward([datum], "cross_entropy")
        training.optim_step(types.AdamParams(learning_rate=1e-2))
        return [training.save_state(f"step-{i}").result().path for i in range(5)]


def on(server, *argv: str) -> list[str]:
    """``argv`` with the server's URL and key as global options."""
    return ["--base-url", server.base_url, "--api-key", server.api_key, *argv]


# --- 14.14 invoke ----------------------------------------------------------------------------


def test_invoke_returns_what_json_prints_and_prints_nothing(server, weights, capsys):
    env = child_env(server.base_url, server.api_key)
    printed = subprocess.run(
        [sys.executable, "-m", "tinkex.cli", "-f", "json", "checkpoint", "info", weights[0]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    capsys.readouterr()
    result = invoke(on(server, "checkpoint", "info", weights[0]))
    assert result == json.loads(printed)
    assert result["tinker_path"] == weights[0]
    assert capsys.readouterr().out == ""


def test_invoke_raises_cli_error_with_the_exit_status_and_message(server):
    with pytest.raises(CLIError) as usage:
        invoke(on(server, "checkpoint", "list", "--limit", "-1"))
    assert usage.value.exit_code == 2 and "--limit" in usage.value.message
    with pytest.raises(CLIError) as failed:
        invoke(on(server, "checkpoint", "info", "not-a-tinker-path"))
    assert failed.value.exit_code == 1
    assert failed.value.message.startswith("invalid checkpoint path 'not-a-tinker-path'")
    with pytest.raises(CLIError) as nothing:
        invoke(on(server, "checkpoint"))
    assert nothing.value.exit_code == 2


def _reporters() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "tinkex-telemetry-reporter"}


def test_an_in_process_command_closes_the_client_it_made(server, monkeypatch, capsys):
    """A failed call starts its RestClient's telemetry reporter (telemetry is on by default);
    once invoke() or main() returns, no reporter of theirs still runs (and posts)."""
    monkeypatch.setenv("TINKER_TELEMETRY", "1")
    before = _reporters()
    with pytest.raises(CLIError, match="no-such-run"):
        invoke(on(server, "run", "info", "no-such-run"))
    assert _reporters() - before == set()
    assert main(on(server, "run", "info", "no-such-run")) == 1
    assert "no-such-run" in capsys.readouterr().err
    assert _reporters() - before == set()


# --- 14.1 checkpoint save --------------------------------------------------------------------


def test_checkpoint_save_on_a_base_model_writes_its_metadata(server, tmp_path):
    meta = tmp_path / "out" / "meta.json"
    save = on(server, "checkpoint", "save", "--base-model", BASE_MODEL, "--rank", "8")
    data = invoke([*save, "--seed", "3", "--no-train-unembed", "--output", str(meta)])
    assert json.loads(meta.read_text()) == data
    assert data["base_model"] == BASE_MODEL and data["name"] == "checkpoint-qwen-qwen3-8b"
    assert data["weights_path"] == f"tinker://{data['model_id']}/sampler_weights/{data['name']}"
    run = invoke(on(server, "run", "info", data["model_id"]))
    assert run["base_model"] == BASE_MODEL and run["lora_rank"] == 8
    listed = invoke(on(server, "checkpoint", "list", "--run-id", data["model_id"]))
    assert [c["tinker_path"] for c in listed["checkpoints"]] == [data["weights_path"]]


def test_checkpoint_save_from_a_training_checkpoint(server, weights, capsys):
    code = main(on(server, "checkpoint", "save", "--model-path", weights[0], "--name", "copy"))
    table = capsys.readouterr().out
    assert code == 0 and "Saved checkpoint copy" in table
    path = next(line.split()[-1] for line in table.splitlines() if "Checkpoint Path" in line)
    run_id = path.removeprefix("tinker://").split("/")[0]
    assert path == f"tinker://{run_id}/sampler_weights/copy"
    assert invoke(on(server, "run", "info", run_id))["lora_rank"] == 4  # the checkpoint's rank
    lora = ["--rank", "8", "--no-train-mlp"]
    with pytest.raises(CLIError, match=r"--rank, --train-mlp: only with --base-model"):
        invoke(on(server, "checkpoint", "save", "--model-path", weights[0], *lora))


# --- 14.2 listing: progress, totals, --json --------------------------------------------------


def test_paged_listing_shows_progress_on_stderr_and_the_same_items(
    server, weights, monkeypatch, capsys
):
    from tinkex.cli import _pagination

    everything = invoke(on(server, "checkpoint", "list", "--limit", "0"))["checkpoints"]
    runs = invoke(on(server, "run", "list", "--limit", "0"))["runs"]
    sessions = invoke(on(server, "session", "list", "--limit", "0"))["sessions"]
    assert len(everything) >= 5
    monkeypatch.setattr(_pagination, "PAGE_SIZE", 2)
    capsys.readouterr()
    assert main(on(server, "checkpoint", "list", "--limit", "0")) == 0
    out, err = capsys.readouterr()
    assert f"{len(everything)} checkpoints" in out.splitlines()[0]
    progress = [line for line in err.splitlines() if line.startswith("Fetching checkpoints")]
    assert progress and f"{len(everything)}/{len(everything)}" in progress[-1]
    assert main(on(server, "checkpoint", "list", "--limit", "3", "--offset", "1", "--json")) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["checkpoints"] == everything[1:4] and "Fetching" not in err
    # the same items through two-item pages as through one page
    assert invoke(on(server, "checkpoint", "list", "--limit", "0"))["checkpoints"] == everything
    assert invoke(on(server, "run", "list", "--limit", "0"))["runs"] == runs
    assert invoke(on(server, "session", "list", "--limit", "0"))["sessions"] == sessions


def test_json_flag_before_or_after_any_command(server, weights, capsys):
    for argv in (
        ["--json", "run", "list"],
        ["run", "list", "--json"],
        ["checkpoint", "list", "--json"],
        ["session", "list", "--json"],
        ["version", "--json"],
    ):
        assert main(on(server, *argv)) == 0, argv
        assert isinstance(json.loads(capsys.readouterr().out), dict), argv


# --- 14.9 sample --prompt --------------------------------------------------------------------


def test_sample_prompt_option_is_the_positional_prompt(server):
    args = ["sample", "--base-model", TEXT_MODEL, "--max-tokens", "4", "--seed", "7"]
    named = invoke(on(server, *args, "--prompt", "Hello"))
    positional = invoke(on(server, *args, "Hello"))
    assert named["prompt"] == "Hello" and named["samples"] == positional["samples"]
    with pytest.raises(CLIError, match="not both"):
        invoke(on(server, *args, "--prompt", "Hello", "Hi"))
