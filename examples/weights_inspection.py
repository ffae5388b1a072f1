"""Weights inspection: what a checkpoint is (weights_info, the sampler serving it, the training run
read with access_scope), and its tensors.

Run: python examples/weights_inspection.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(
            BASE_MODEL, rank=8, train_mlp=False
        ).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105, 33]),
            loss_fn_inputs={"target_tokens": [105, 33, 10], "weights": [1.0] * 3},
        )
        for _ in range(3):
            training_client.forward_backward([datum], "cross_entropy")
            training_client.optim_step(types.AdamParams(learning_rate=1e-2))
        path = training_client.save_weights_for_sampler("inspect-me").result().path
        sampler = training_client.create_sampling_client(path).result()
        run_id = training_client.model_id

    rest_client = tinker.RestClient()
    # What the server knows about the sampler serving these weights, and about the run.
    sampler_info = rest_client.get_sampler(sampler.sampling_session_id).result()
    print(
        f"sampler {sampler_info.sampler_id}: {sampler_info.base_model} at {sampler_info.model_path}"
    )
    assert sampler_info.model_path == path
    run = rest_client.get_training_run(run_id, access_scope="accessible").result()
    print(f"run {run.training_run_id}: LoRA rank {run.lora_rank}, owner {run.model_owner}")
    info = rest_client.get_weights_info_by_tinker_path(path).result()
    print(f"base model {info.base_model}, LoRA={info.is_lora}, rank {info.lora_rank}")
    print(f"trains attn={info.train_attn} mlp={info.train_mlp} unembed={info.train_unembed}")
    assert info.lora_rank == 8 and info.train_mlp is False

    # Fetch the adapter and look at the tensors.
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [sys.executable, "-m", "tinkex.cli", "checkpoint", "download", path, "-o", out_dir]
        subprocess.run(cmd, check=True, capture_output=True)
        (target,) = os.listdir(out_dir)
        tensors = load_file(os.path.join(out_dir, target, "adapter_model.safetensors"))
    print(f"{len(tensors)} tensors, {sum(t.size for t in tensors.values()):,} parameters")
    for name, array in sorted(tensors.items())[:6]:
        print(f"  {name:60} {array.shape!s:12} |w|={np.linalg.norm(array):.4f}")


if __name__ == "__main__":
    with server():
        main()
