"""Every example script runs green (so examples cannot rot), and the index lists them all."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest
from _child_env import child_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RUN_ALL = EXAMPLES / "run_all.sh"

#: Examples that must start their own (fault-injecting) local server.
OWN_SERVER = {
    "retries_and_faults.py",
    "recovery.py",
    "telemetry_reporter.py",
    "heartbeat_probe.py",
    "queue_state_observer.py",
}
#: Examples run with server-side telemetry on (the others run with TINKER_TELEMETRY=0).
TELEMETRY_ON = {"telemetry_metrics.py", "telemetry_reporter.py"}
#: What each example must print (beyond running green), so a silent no-op cannot pass.
EXPECTED_OUTPUT = {
    "recovery.py": [
        "run corrupted",
        "recovered from tinker://",
        "(redone: same loss as before the corruption)",
        "with 2 recovery(ies)",
        "[telemetry] detected",
        "[telemetry] checkpoint_selected",
        "[telemetry] client_created",
        "[telemetry] completed",
    ],
    "telemetry_metrics.py": ["reporter: session", "drained=True", "0 dropped", " p95="],
    "kimi_k2_tokenization.py": [
        "'revision': '612681931a8c906ddb349f8ad0f582cb552189cd'",
        "-> 'Say hi<|im_end|>'",
        "tokenizer_for_model: TiktokenTokenizer",
        "special-token text as plain text: [60, 124,",
        "round trip: 'hi  there'",
        "sample 1:",
    ],
    "telemetry_reporter.py": [
        "flaky call: ok after 3 call(s)",
        "doomed call gave up: flaky (call 4)",
        "drained=True, dropped=0",
        "GENERIC_EVENT        INFO     example.started",
        "UNHANDLED_EXCEPTION  WARNING  KeyError",
        "UNHANDLED_EXCEPTION  ERROR    APIConnectionError",
        "GENERIC_EVENT        WARNING  user_error",
        "SESSION_END",
    ],
    "adam_and_chunking.py": [
        "1025 datums -> 2 forward_backward requests, 1025 outputs",
        "optim_step with weight_decay=0.01, grad_clip_norm=1.0",
    ],
    "cli_sampling_and_cleanup.py": [
        "text prompt: 1 sample(s)",
        "prompt file, saved weights:",
        "deleted in one call: 2, failed: []",
        "left: ['sampler_weights/final', 'weights/step-2']",
    ],
    "weights_inspection.py": ["sampler ", "/sampler_weights/inspect-me", "LoRA rank 8, owner"],
    "multimodal.py": [
        "prompt: 3 chunks, 15 positions (the image takes 8)",
        "logprobs: 15 per prompt; red and blue differ: True",
        "same loss",
        "checkpoints left: []",
    ],
    "model_info_and_unload.py": [
        "health: HealthResponse(status='ok')",
        "lora rank 4",
        "is no longer loaded: unloaded by the client",
        "still trains",
    ],
    "llama3_tokenizer_override.py": [
        "meta-llama/Llama-3.1-8B                  -> thinkingmachineslabinc/meta-llama-3-instruct",
        "from thinkingmachineslabinc/meta-llama-3-instruct-tokenizer",
        "decoded sample (",
    ],
    "queue_state_observer.py": [
        "[observer] Sample: paused_capacity (injected fault: the service is short on capacity)",
        "[observer] Sample: paused_rate_limit (injected fault: too many requests from this user)",
        "sampled 4 tokens anyway",
        "paused states seen: ['paused_capacity', 'paused_rate_limit']",
        "asample refused with 429 and resent: 1 time(s)",
    ],
    "heartbeat_probe.py": [
        "live session: 200 {'type': 'session_heartbeat'}",
        "kept alive by probes for 2 s: 200",
        "after 2 s of silence: 410 session ",
        "has finished (cancelled)",
        "unknown session: 404 session 'no-such-session' not found",
        "with heartbeat_interval=0.2, after 2 s: 200 {'type': 'session_heartbeat'}",
    ],
    "checkpoint_download.py": [
        "  progress: adapter_config.json",
        "  progress: adapter_model.safetensors",
        "downloaded tinker://",
        "adapter_config: {'peft_type': 'LORA', 'r': 4",
        "a second download refuses to overwrite: FileExistsError",
        "force=True replaces it: True",
    ],
    "structured_regularizers.py": [
        "with 13 regularizers",
        "kl_symmetric",
        "same result: True",
        "tinkex.regularizer.compute.start l1_sparsity",
        "tinkex.regularizer.compute.stop l1_sparsity",
        "tinkex.custom_loss.stop",
        "duplicate regularizer names ['l1']",
    ],
}


def _listed_in_run_all() -> list[str]:
    return re.findall(r"^\s+(\w+\.py)\s*$", RUN_ALL.read_text(), flags=re.MULTILINE)


def _scripts() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_run_all_and_readme_cover_every_example():
    listed = _listed_in_run_all()
    assert sorted(listed) == _scripts(), "examples/run_all.sh must list every example"
    readme = (EXAMPLES / "README.md").read_text()
    missing = [name for name in _scripts() if f"`{name}`" not in readme]
    assert not missing, f"examples/README.md does not describe {missing}"
    assert os.access(RUN_ALL, os.X_OK), "run_all.sh must be executable"


@pytest.fixture(scope="module")
def example_server(tmp_path_factory):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path_factory.mktemp("examples-server"))) as server:
        yield server


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("script", _listed_in_run_all())
def test_example_runs(script, example_server, tmp_path):
    telemetry = "1" if script in TELEMETRY_ON else "0"
    env = child_env(TINKER_TELEMETRY=telemetry, MPLBACKEND="Agg")
    if script not in OWN_SERVER:
        env.update(TINKER_BASE_URL=example_server.base_url, TINKER_API_KEY=example_server.api_key)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
    )
    assert done.returncode == 0, f"{script} failed\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout.strip(), f"{script} printed nothing"
    for expected in EXPECTED_OUTPUT.get(script, []):
        assert expected in done.stdout, f"{script} did not print {expected!r}:\n{done.stdout}"
    # Examples teach the current API: no deprecated calls, no stray tracebacks.
    assert "Warning:" not in done.stderr, f"{script} warns:\n{done.stderr}"
    assert "Traceback" not in done.stderr, f"{script}:\n{done.stderr}"


@pytest.mark.e2e
def test_telemetry_example_respects_the_kill_switch(example_server, tmp_path):
    env = child_env(example_server.base_url, example_server.api_key, TINKER_TELEMETRY="0")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "telemetry_metrics.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "server telemetry is off (TINKER_TELEMETRY=0)" in done.stdout
    assert "POST /api/v1/telemetry" not in done.stdout
