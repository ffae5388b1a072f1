"""Checkpoint management: save, list, inspect, publish, set a TTL, delete.

Run: python examples/checkpoints.py
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 101, 108, 108]),
            loss_fn_inputs={"target_tokens": [101, 108, 108, 111], "weights": [1.0] * 4},
        )
        paths = []
        for step in range(3):
            training_client.forward_backward([datum], "cross_entropy")
            training_client.optim_step(types.AdamParams(learning_rate=1e-2))
            saved = training_client.save_state(f"step-{step}", user_metadata={"step": str(step)})
            paths.append(saved.result().path)
        sampler_path = training_client.save_weights_for_sampler("final").result().path
        print("saved:", *paths, sampler_path, sep="\n  ")

    rest_client = tinker.RestClient()
    run_id = types.ParsedCheckpointTinkerPath.from_tinker_path(paths[0]).training_run_id
    listing = rest_client.list_checkpoints(run_id).result()
    for ckpt in listing.checkpoints:
        print(f"{ckpt.checkpoint_id:28} {ckpt.checkpoint_type:8} {ckpt.size_bytes} bytes")
    assert len(listing.checkpoints) == 4

    run = rest_client.get_training_run(run_id).result()
    print("run:", run.training_run_id, run.base_model, "rank", run.lora_rank)

    rest_client.publish_checkpoint_from_tinker_path(paths[-1]).result()
    rest_client.set_checkpoint_ttl_from_tinker_path(paths[-1], 24 * 3600).result()
    latest = {c.tinker_path: c for c in rest_client.list_checkpoints(run_id).result().checkpoints}
    print("public:", latest[paths[-1]].public, "expires:", latest[paths[-1]].expires_at)
    rest_client.unpublish_checkpoint_from_tinker_path(paths[-1]).result()
    rest_client.set_checkpoint_ttl_from_tinker_path(paths[-1], None).result()

    # Keep the last training checkpoint, delete the older ones.
    for path in paths[:-1]:
        rest_client.delete_checkpoint_from_tinker_path(path).result()
    remaining = [c.checkpoint_id for c in rest_client.list_checkpoints(run_id).result().checkpoints]
    print("remaining:", remaining)
    assert sorted(remaining) == sorted(["weights/step-2", "sampler_weights/final"])


if __name__ == "__main__":
    with server():
        main()
