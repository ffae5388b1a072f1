"""The `tinkex` CLI from a script: sample with a text prompt and with a prompt file, list a run's
checkpoints, and delete several of them at once.

Trains a few steps and saves sampler weights and three training checkpoints with the SDK, then
runs ``tinkex sample`` (a text prompt from a base model; a JSON file of token ids from the saved
weights), ``tinkex checkpoint list --run-id`` and one ``tinkex checkpoint delete PATH PATH --yes``.
The CLI reads ``TINKER_BASE_URL`` / ``TINKER_API_KEY`` as the SDK does.

Run: python examples/cli_sampling_and_cleanup.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def cli(*args: str) -> Any:
    """Run ``tinkex -f json ARGS`` and return its JSON output."""
    cmd = [sys.executable, "-m", "tinkex.cli", "-f", "json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
        )
        paths = []
        for step in range(3):
            training_client.forward_backward([datum], "cross_entropy")
            training_client.optim_step(types.AdamParams(learning_rate=1e-2))
            paths.append(training_client.save_state(f"step-{step}").result().path)
        sampler_path = training_client.save_weights_for_sampler("final").result().path
        run_id = training_client.model_id

    text = cli("sample", "--base-model", BASE_MODEL, "--max-tokens", "8", "--seed", "1", "Hi")
    print(f"text prompt: {len(text['samples'])} sample(s), tokens {text['samples'][0]['tokens']}")

    with tempfile.TemporaryDirectory() as folder:
        prompt_file = os.path.join(folder, "prompt.json")
        with open(prompt_file, "w", encoding="utf-8") as handle:
            json.dump([72, 105], handle)  # token ids; a text file works too
        from_file = cli(
            "sample", "--model-path", sampler_path, "--prompt-file", prompt_file,
            "--max-tokens", "4", "-n", "2", "--seed", "2",
        )  # fmt: skip
    print(f"prompt file, saved weights: {[s['tokens'] for s in from_file['samples']]}")

    listed = cli("checkpoint", "list", "--run-id", run_id)
    names = sorted(c["checkpoint_id"] for c in listed["checkpoints"])
    print(f"checkpoints of the run: {names}")

    deleted = cli("checkpoint", "delete", paths[0], paths[1], "--yes")
    print(f"deleted in one call: {len(deleted['deleted'])}, failed: {deleted['failed']}")
    left = sorted(
        c["checkpoint_id"] for c in cli("checkpoint", "list", "--run-id", run_id)["checkpoints"]
    )
    print(f"left: {left}")
    assert left == sorted(set(names) - {"weights/step-0", "weights/step-1"})


if __name__ == "__main__":
    with server():
        main()
