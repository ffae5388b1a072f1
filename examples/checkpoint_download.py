"""Download a checkpoint with `tinkex.checkpoint_download.download_checkpoint`, with progress.

The same download from a shell: `tinkex checkpoint download TINKER_PATH --output DIR`.

Run: python examples/checkpoint_download.py
"""

from __future__ import annotations

import json
import os
import tempfile

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types
from tinkex.checkpoint_download import download_checkpoint


class Progress:
    """Prints each file once, when it is complete (the callback sees every chunk)."""

    def __init__(self) -> None:
        self.calls = 0
        self.finished: list[str] = []

    def __call__(self, name: str, done: int, total: int | None) -> None:
        self.calls += 1
        if total is not None and done == total and name not in self.finished:
            self.finished.append(name)
            print(f"  progress: {name} {done:,}/{total:,} bytes")


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
        # Reads TINKER_BASE_URL / TINKER_API_KEY like the SDK (or pass rest_client=...).
        progress = Progress()
        result = download_checkpoint(path, out_dir, progress=progress)
        print(f"downloaded {result.checkpoint_path}")
        print(
            f"  into {os.path.basename(result.destination)}: {len(result.files)} files, "
            f"{result.size_bytes:,} bytes, {progress.calls} progress call(s)"
        )
        for name in result.files:
            size = os.path.getsize(os.path.join(result.destination, name))
            print(f"  {name:40} {size:>10,} bytes")
        with open(os.path.join(result.destination, "adapter_config.json"), encoding="utf-8") as f:
            config = json.load(f)
        print("adapter_config:", {k: config[k] for k in ("peft_type", "r", "lora_alpha")})
        try:
            download_checkpoint(path, out_dir)
        except FileExistsError as exc:
            print("a second download refuses to overwrite:", type(exc).__name__)
        again = download_checkpoint(path, out_dir, force=True)
        print("force=True replaces it:", again.files == result.files)


if __name__ == "__main__":
    with server():
        main()
