"""Resume training from a saved state, with the optimizer state, and check nothing was lost.

Run: python examples/resume_from_state.py
"""

from __future__ import annotations

import numpy as np
from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def datum(text: str, tokenizer) -> types.Datum:
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


def train(client: tinker.TrainingClient, data: list[types.Datum], steps: int) -> float:
    loss = float("nan")
    for _ in range(steps):
        fwd_bwd = client.forward_backward(data, "cross_entropy")
        client.optim_step(types.AdamParams(learning_rate=5e-3)).result()
        loss = fwd_bwd.result().metrics["loss:sum"]
    return loss


def main() -> None:
    with tinker.ServiceClient() as service_client:
        first = service_client.create_lora_training_client(BASE_MODEL, rank=8, seed=1).result()
        tokenizer = first.get_tokenizer()
        data = [datum("resume me, please!", tokenizer)]
        print("loss after 5 steps:", round(train(first, data, 5), 4))
        state_path = first.save_state("after-5").result().path
        print("saved", state_path)

        # Later (or in another process): continue from the checkpoint, optimizer included.
        resumed = service_client.create_training_client_from_state_with_optimizer(
            state_path
        ).result()
        a = first.forward(data, "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
        b = resumed.forward(data, "cross_entropy").result().loss_fn_outputs[0]["logprobs"]
        assert np.allclose(a.to_numpy(), b.to_numpy(), atol=1e-5), "same weights after loading"
        print("resumed run", resumed.model_id, "has the same weights")

        # Both clients now take identical steps: Adam moments were restored too.
        loss_first = train(first, data, 3)
        loss_resumed = train(resumed, data, 3)
        print(f"3 more steps: original {loss_first:.4f}, resumed {loss_resumed:.4f}")
        assert abs(loss_first - loss_resumed) < 1e-3

        # Weights only (fresh optimizer), e.g. to fine-tune further with new settings:
        fresh = service_client.create_training_client_from_state(state_path).result()
        print("weights-only copy:", fresh.model_id)


if __name__ == "__main__":
    with server():
        main()
