"""Download a checkpoint with the `tinkex` CLI and look at the files (PEFT adapter layout).

Run: python examples/checkpoint_download.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
        )
        training_client.forward_backward([datum], "cross_entropy")
        training_client.optim_step(types.AdamParams(learning_rate=1e-2))
        path = training_client.save_state("to-download").result().path

    with tempfile.TemporaryDirectory() as out_dir:
        # The CLI reads TINKER_BASE_URL / TINKER_API_KEY like the SDK.
        cmd = [sys.executable, "-m", "tinkex.cli", "-f", "json"]
        cmd += ["checkpoint", "download", path, "--output", out_dir]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        result = json.loads(done.stdout)
        print("downloaded to", result["destination"])
        for name in result["files"]:
            size = os.path.getsize(os.path.join(result["destination"], name))
            print(f"  {name:40} {size:>10,} bytes")
        config_path = os.path.join(result["destination"], "adapter_config.json")
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        print("adapter_config:", {k: config[k] for k in sorted(config)[:6]})


if __name__ == "__main__":
    with server():
        main()
