"""Forward-only inference: per-token logprobs and perplexity, no gradients, no weight change.

Run: python examples/forward_inference.py
"""

from __future__ import annotations

import numpy as np
from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Pack my box with five dozen jugs."]


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=8).result()
        tokenizer = training_client.get_tokenizer()
        data = []
        for text in TEXTS:
            tokens = tokenizer.encode(text, add_special_tokens=False)
            data.append(
                types.Datum(
                    model_input=types.ModelInput.from_ints(tokens[:-1]),
                    loss_fn_inputs={
                        "target_tokens": tokens[1:],
                        "weights": [1.0] * (len(tokens) - 1),
                    },
                )
            )

        before = training_client.forward(data, "cross_entropy").result()
        for text, out in zip(TEXTS, before.loss_fn_outputs, strict=True):
            logprobs = out["logprobs"].to_numpy()
            print(f"{text[:30]!r:34} tokens={len(logprobs):3d} ppl={np.exp(-logprobs.mean()):8.1f}")

        # forward() does not touch the weights: a second call gives the same numbers.
        again = training_client.forward(data, "cross_entropy").result()
        assert np.allclose(
            before.loss_fn_outputs[0]["logprobs"].to_numpy(),
            again.loss_fn_outputs[0]["logprobs"].to_numpy(),
        )
        print("loss:sum", round(before.metrics["loss:sum"], 3), "(unchanged by forward)")


if __name__ == "__main__":
    with server():
        main()
