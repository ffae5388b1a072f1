"""The ``tinkex`` command as a subprocess against a real local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from _child_env import child_env
from cli_run import ok, run_cli

pytestmark = [pytest.mark.e2e]

BASE_MODEL = "Qwen/Qwen3-8B"
# The local server serves every name with its tiny model; only ``tinkex/tiny`` advertises the byte
# tokenizer that text prompts need offline (Qwen's tokenizer is not cached on test machines).
TEXT_MODEL = "tinkex/tiny"


def _env(server=None, **extra: str) -> dict[str, str]:
    if server is None:
        return child_env(**extra)
    return child_env(server.base_url, server.api_key, **extra)


def tinkex(*args: str, server=None, env=None, input=None, cwd=None, timeout=60):
    """Run ``python -m tinkex.cli ARGS`` (with ``env``, else against ``server``)."""
    env = env if env is not None else _env(server)
    return run_cli(*args, env=env, input=input, cwd=cwd, timeout=timeout)


def fails(done: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """Assert a clean failure: the status, and exactly one ``Error: ...`` line on stderr."""
    assert done.returncode == status, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(server):
    """A training run with two training checkpoints and one sampler checkpoint."""
    import tinkex
    from tinkex import types

    with tinkex.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, user_metadata={"suite": "cli"}
    ) as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
        )
        training.forward_backward([datum], "cross_entropy")
        training.optim_step(types.AdamParams(learning_rate=1e-2))
        first = training.save_state("first").result().path
        second = training.save_state("second").result().path
        sampler = training.save_weights_for_sampler("final").result().path
        run_id = types.ParsedCheckpointTinkerPath.from_tinker_path(first).training_run_id
    return {"run_id": run_id, "first": first, "second": second, "sampler": sampler}


# --- help, version, fast startup ------------------------------------------------------------

HELP_PATHS = [
    [],
    ["serve"],
    ["checkpoint"],
    *[["checkpoint", c] for c in ("list", "info", "delete", "publish", "unpublish", "set-ttl")],
    ["checkpoint", "download"],
    ["run"],
    ["run", "list"],
    ["run", "info"],
    ["session"],
    ["session", "list"],
    ["session", "info"],
    ["model"],
    ["model", "list"],
    ["sample"],
    ["version"],
]


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "tinkex")
def test_help_at_every_level(path):
    done = tinkex(*path, "--help", env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: tinkex")


def test_help_imports_nothing_heavy():
    """What keeps ``tinkex --help`` fast (its time is a benchmark, not a test bound)."""
    code = (
        "import sys; from tinkex.cli.main import build_parser; build_parser();"
        "print([m for m in ('numpy', 'requests', 'urllib3', 'cattrs', 'tinkex.clients',"
        " 'tinkex.types', 'huggingface_hub') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"`tinkex --help` imports {done.stdout.strip()}"


def test_group_without_command_prints_help_and_exits_2():
    done = tinkex("checkpoint", env=_env())
    assert done.returncode == 2
    assert "usage: tinkex checkpoint" in done.stderr
    assert tinkex(env=_env()).returncode == 2


def test_version_text_and_json():
    from tinkex._version import __version__

    text = ok(tinkex("version", env=_env()))
    assert text == f"tinkex {__version__}\n"  # the official CLI prints "tinker <version>"
    assert ok(tinkex("--version", env=_env())) == text
    data = json.loads(ok(tinkex("version", "--json", env=_env())))
    assert data["tinkex"] == __version__ and data["tinker_api"] == "0.38.0"
    assert data["git_commit"] is None or len(data["git_commit"]) == 40
    assert json.loads(ok(tinkex("-f", "json", "version", env=_env())))["tinkex"] == __version__


# --- reading ---------------------------------------------------------------------------------


def test_model_list(server):
    table = ok(tinkex("model", "list", server=server))
    assert table.splitlines()[0].split() == ["Model", "Max", "Context", "Trainable", "Sampleable"]
    models = json.loads(ok(tinkex("model", "list", "-f", "json", server=server)))["models"]
    assert models and all("model_name" in m for m in models)
    name = models[0]["model_name"]
    filtered = json.loads(ok(tinkex("-f", "json", "model", "list", name.upper(), server=server)))
    assert [m["model_name"] for m in filtered["models"]] == [name]


def test_run_list_and_info(server, trained):
    table = ok(tinkex("run", "list", server=server))
    assert trained["run_id"] in table
    runs = json.loads(ok(tinkex("run", "list", "--limit", "0", "-f", "json", server=server)))
    assert trained["run_id"] in [r["training_run_id"] for r in runs["runs"]]
    custom = ok(tinkex("run", "list", "-c", "id,checkpoint", server=server))
    assert custom.splitlines()[0] == "1 training run"
    assert custom.splitlines()[1].split() == ["Run", "ID", "Last", "Checkpoint"]
    info = ok(tinkex("run", "info", trained["run_id"], server=server))
    assert BASE_MODEL in info and "Rank 4" in info
    data = json.loads(ok(tinkex("-f", "json", "run", "info", trained["run_id"], server=server)))
    assert data["lora_rank"] == 4
    bad = tinkex("run", "list", "-c", "id,nope", server=server)
    assert bad.returncode == 2 and "unknown column" in bad.stderr


def test_checkpoint_list_and_info(server, trained):
    listing = ok(tinkex("checkpoint", "list", "--run-id", trained["run_id"], server=server))
    assert "weights/first" in listing and "sampler_weights/final" in listing
    data = json.loads(ok(tinkex("checkpoint", "list", "-f", "json", server=server)))
    assert trained["first"] in [c["tinker_path"] for c in data["checkpoints"]]
    limited = json.loads(
        ok(tinkex("checkpoint", "list", "--limit", "1", "-f", "json", server=server))
    )
    assert len(limited["checkpoints"]) == 1
    info = json.loads(
        ok(tinkex("-f", "json", "checkpoint", "info", trained["first"], server=server))
    )
    assert info["checkpoint_id"] == "weights/first" and info["lora_rank"] == 4
    assert "Checkpoint ID" in ok(tinkex("checkpoint", "info", trained["first"], server=server))


def test_session_list_and_info(server, trained):
    sessions = json.loads(ok(tinkex("session", "list", "-f", "json", server=server)))["sessions"]
    assert sessions
    found = None
    for session_id in sessions:
        data = json.loads(ok(tinkex("-f", "json", "session", "info", session_id, server=server)))
        if trained["run_id"] in data["training_run_ids"]:
            found = data
    assert found is not None and found["user_metadata"] == {"suite": "cli"}
    assert "Training Runs" in ok(tinkex("session", "info", sessions[0], server=server))


# --- writing ---------------------------------------------------------------------------------


def test_publish_unpublish_and_ttl(server, trained):
    path = trained["second"]

    def current() -> dict:
        return json.loads(ok(tinkex("-f", "json", "checkpoint", "info", path, server=server)))

    assert "Published" in ok(tinkex("checkpoint", "publish", path, server=server))
    assert current()["public"] is True
    ok(tinkex("checkpoint", "unpublish", path, server=server))
    assert current()["public"] is False
    ok(tinkex("checkpoint", "set-ttl", path, "--ttl", "7200", server=server))
    assert current()["expires_at"] is not None
    ok(tinkex("checkpoint", "set-ttl", path, "--remove", server=server))
    assert current()["expires_at"] is None
    usage = tinkex("checkpoint", "set-ttl", path, server=server)
    assert usage.returncode == 2 and "--ttl" in usage.stderr


def test_download_extracts_the_adapter(server, trained, tmp_path):
    out = json.loads(
        ok(
            tinkex(
                "-f",
                "json",
                "checkpoint",
                "download",
                trained["first"],
                "-o",
                str(tmp_path),
                server=server,
            )
        )
    )
    dest = out["destination"]
    assert os.path.isdir(dest) and os.path.dirname(dest) == str(tmp_path)
    assert "adapter_model.safetensors" in out["files"] and "adapter_config.json" in out["files"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tinkex-download")]
    again = tinkex("checkpoint", "download", trained["first"], "-o", str(tmp_path), server=server)
    assert "--force" in fails(again)
    forced = tinkex(
        "checkpoint", "download", trained["first"], "-o", str(tmp_path), "--force", server=server
    )
    assert "Downloaded to" in ok(forced)
    assert "adapter_model.safetensors" in forced.stderr  # the progress bar, one per file


# One `tinkex sample` subprocess per test: each is a fresh interpreter that imports tinkex and
# samples, ~10-20 s on a loaded 2-core machine, so four in one test could pass the per-test limit.


def test_sample_text(server):
    text = ok(
        tinkex(
            "sample",
            "--base-model",
            TEXT_MODEL,
            "Hello",
            "--max-tokens",
            "5",
            "--seed",
            "1",
            server=server,
        )
    )
    assert text.startswith("--- sample 1/1 (")


_INVOKE_AND_LIST_MODULES = """
import json, sys
from tinkex.cli import invoke
result = invoke(sys.argv[1:])
print(json.dumps({"result": result, "transformers": "transformers" in sys.modules}))
"""


def test_sample_text_reads_the_servers_tokenizer_without_transformers(server):
    # Importing transformers was most of a `tinkex sample` run (seconds); the local server's
    # tokenizer files are read by tinkex alone, with the ids and text transformers gives.
    prompt = "héllo <|im_end|> wörld"
    args = ["sample", "--base-model", TEXT_MODEL, "-n", "2", "--max-tokens", "12", "--seed", "3"]
    done = subprocess.run(
        [sys.executable, "-c", _INVOKE_AND_LIST_MODULES, *args, prompt],
        capture_output=True,
        text=True,
        env=_env(server),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ran = json.loads(done.stdout)
    assert ran["transformers"] is False
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(server.tokenizer_id)
    result = ran["result"]
    assert result["prompt_tokens"] == reference.encode(prompt, add_special_tokens=False)
    assert 262 in result["prompt_tokens"]  # <|im_end|>, a special token
    for sample in result["samples"]:
        assert sample["text"] == reference.decode(sample["tokens"], skip_special_tokens=True)


def test_sample_tokens_json_and_output(server, trained, tmp_path):
    prompt_file = tmp_path / "prompt.json"
    prompt_file.write_text("[72, 105]")
    out_file = tmp_path / "out.json"
    done = tinkex(
        "sample",
        "--model-path",
        trained["sampler"],
        "--prompt-file",
        str(prompt_file),
        "-n",
        "3",
        "--max-tokens",
        "4",
        "--temperature",
        "0.5",
        "--logprobs",
        "--json",
        "--output",
        str(out_file),
        server=server,
    )
    data = json.loads(ok(done))
    assert data["prompt_tokens"] == [72, 105] and len(data["samples"]) == 3
    assert all(
        len(s["tokens"]) <= 4 and len(s["logprobs"]) == len(s["tokens"]) for s in data["samples"]
    )
    assert json.loads(out_file.read_text()) == data


def test_sample_prompt_from_stdin(server):
    from_stdin = tinkex(
        "sample",
        "--base-model",
        TEXT_MODEL,
        "--prompt-file",
        "-",
        "--max-tokens",
        "2",
        "-f",
        "json",
        server=server,
        input="Hi there",
    )
    assert json.loads(ok(from_stdin))["prompt"] == "Hi there"


def test_sample_hosted_model_name_with_token_ids(server, tmp_path):
    # A hosted model name works with token ids even when its tokenizer is not available.
    prompt_file = tmp_path / "prompt.json"
    prompt_file.write_text("[72, 105]")
    tokens_only = tinkex(
        "sample",
        "--base-model",
        BASE_MODEL,
        "--prompt-file",
        str(prompt_file),
        "--max-tokens",
        "3",
        "--json",
        server=server,
    )
    assert json.loads(ok(tokens_only))["prompt_tokens"] == [72, 105]


def test_delete_needs_confirmation_then_deletes(server, trained):
    refused = tinkex("checkpoint", "delete", trained["sampler"], server=server, input="")
    assert "--yes" in fails(refused)
    deleted = json.loads(
        ok(tinkex("-f", "json", "checkpoint", "delete", trained["sampler"], "-y", server=server))
    )
    assert deleted == {"deleted_count": 1, "failed": [], "deleted": [trained["sampler"]]}
    listing = ok(tinkex("checkpoint", "list", "--run-id", trained["run_id"], server=server))
    assert "sampler_weights/final" not in listing
    by_filter = tinkex(
        "checkpoint",
        "delete",
        "--run-id",
        trained["run_id"],
        "--type",
        "weights",
        "--after",
        "2000-01-01",
        "--before",
        "2000-01-02",
        "--yes",
        server=server,
    )
    assert "No checkpoints matched" in ok(by_filter)


# --- errors ----------------------------------------------------------------------------------


def test_error_bad_path_is_one_line(server):
    assert "invalid checkpoint path" in fails(
        tinkex("checkpoint", "info", "not-a-path", server=server)
    )


def test_error_missing_checkpoint(server, trained):
    missing = trained["first"].replace("/first", "/nope")
    assert "not found" in fails(tinkex("checkpoint", "info", missing, server=server))


def test_error_unknown_run(server):
    line = fails(tinkex("run", "info", "no-such-run", server=server))
    assert "404" in line or "not found" in line.lower()


def test_error_unreachable_server():
    start = time.monotonic()
    env = _env(TINKER_BASE_URL="http://127.0.0.1:9", TINKER_API_KEY="tml-x")
    line = fails(tinkex("model", "list", env=env, timeout=120))
    assert "cannot reach http://127.0.0.1:9" in line
    assert time.monotonic() - start < 10


def test_error_missing_and_bad_api_key(server, tmp_path):
    no_key = _env(TINKER_BASE_URL=server.base_url, HOME=str(tmp_path))
    assert "API key" in fails(tinkex("model", "list", env=no_key, cwd=str(tmp_path)))
    bad = _env(TINKER_BASE_URL=server.base_url, TINKER_API_KEY="nope")
    assert "tml-" in fails(tinkex("model", "list", env=bad))


def test_error_wrong_key_on_protected_server(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path), api_key="tml-secret") as srv:
        env = _env(TINKER_BASE_URL=srv.base_url, TINKER_API_KEY="tml-wrong")
        assert "401" in fails(tinkex("run", "list", env=env))
        env["TINKER_API_KEY"] = "tml-secret"
        ok(tinkex("run", "list", env=env))


def test_global_options_override_env(server):
    env = _env(TINKER_BASE_URL="http://127.0.0.1:9", TINKER_API_KEY="tml-x")
    done = tinkex(
        "model", "list", "--base-url", server.base_url, "--api-key", server.api_key, env=env
    )
    ok(done)
