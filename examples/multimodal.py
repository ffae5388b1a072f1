"""Images in prompts and training data, then save, resume and clean up.

A vision model's ``ModelInput`` mixes text chunks and ``ImageChunk``s (PNG/JPEG bytes with the
number of positions the image takes, ``expected_tokens``). This example samples and scores a
prompt holding an image, trains three steps on a datum with an image, saves the state, resumes
it into a new training client (same loss on the same datum), and deletes the checkpoint.
Against the local server the tiny model has no vision encoder: an image reads as ids derived
from its bytes (docs/local-server-and-testing.md, "Images"), so the same image always reads the
same and another one differently.

Run: python examples/multimodal.py
"""

from __future__ import annotations

import struct
import zlib

from _server import server

import tinkex as tinker
from tinkex import types

VISION_MODEL = "Qwen/Qwen3-VL-30B-A3B-Instruct"


def png(rgb: tuple[int, int, int]) -> bytes:
    """A 1x1 PNG of colour ``rgb`` (any real image file works the same way)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def prompt(image: bytes) -> types.ModelInput:
    return types.ModelInput(
        chunks=[
            types.EncodedTextChunk(tokens=[256, 87, 104, 97, 116, 58]),  # "What:"
            types.ImageChunk(data=image, format="png", expected_tokens=8),
            types.EncodedTextChunk(tokens=[63]),  # "?"
        ]
    )


def main() -> None:
    red, blue = prompt(png((255, 0, 0))), prompt(png((0, 0, 255)))
    print(f"prompt: {len(red.chunks)} chunks, {red.length} positions (the image takes 8)")
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(VISION_MODEL, rank=4).result()
        sampler = training_client.save_weights_and_get_sampling_client().result()
        red_lp, blue_lp = (sampler.compute_logprobs(p).result() for p in (red, blue))
        print(f"logprobs: {len(red_lp)} per prompt; red and blue differ: {red_lp != blue_lp}")
        params = types.SamplingParams(max_tokens=6, seed=1, temperature=0.7)
        sample = sampler.sample(red, num_samples=1, sampling_params=params).result()
        print(f"sampled after the image: {sample.sequences[0].tokens}")

        datum = types.Datum(
            model_input=red,
            loss_fn_inputs={
                "target_tokens": [65 + i % 26 for i in range(red.length)],
                "weights": [1.0] * red.length,
            },
        )
        losses = []
        for _ in range(3):
            losses.append(training_client.forward_backward([datum], "cross_entropy").result())
            training_client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
        print("loss:sum per step:", [round(out.metrics["loss:sum"], 3) for out in losses])
        assert losses[-1].metrics["loss:sum"] < losses[0].metrics["loss:sum"]

        saved = training_client.save_state("vision-step-3").result().path
        resumed = service_client.create_training_client_from_state_with_optimizer(saved).result()
        before = training_client.forward([datum], "cross_entropy").result().metrics["loss:sum"]
        after = resumed.forward([datum], "cross_entropy").result().metrics["loss:sum"]
        print(f"resumed from {saved}: same loss {before:.4f} == {after:.4f}")
        assert abs(before - after) < 1e-6 * max(1.0, abs(before))

        rest_client = tinker.RestClient()
        rest_client.delete_checkpoint_from_tinker_path(saved).result()
        left = rest_client.list_checkpoints(training_client.model_id).result().checkpoints
        print(f"deleted {saved}; checkpoints left: {[c.checkpoint_id for c in left]}")
        rest_client.close()


if __name__ == "__main__":
    with server():
        main()
