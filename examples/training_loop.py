"""Supervised fine-tuning with LoRA: build datums, pipeline forward_backward + optim_step.

Run: python examples/training_loop.py   (uses TINKER_BASE_URL if set, else a local server)
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types

PAIRS = [
    ("Q: Capital of France?\nA:", " Paris."),
    ("Q: Capital of Japan?\nA:", " Tokyo."),
    ("Q: Largest planet?\nA:", " Jupiter."),
    ("Q: Frozen water?\nA:", " Ice."),
]


def make_datum(tokenizer, prompt: str, completion: str) -> types.Datum:
    """Train on the completion only: prompt positions get weight 0."""
    prompt_tokens = tokenizer.encode(prompt, add_special_tokens=False)
    completion_tokens = tokenizer.encode(completion, add_special_tokens=False)
    tokens = prompt_tokens + completion_tokens + [tokenizer.eos_token_id]
    weights = [0.0] * (len(prompt_tokens) - 1) + [1.0] * (len(completion_tokens) + 1)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
    )


def main(steps: int = 25) -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(
            base_model=BASE_MODEL, rank=16
        ).result()
        tokenizer = training_client.get_tokenizer()
        data = [make_datum(tokenizer, p, c) for p, c in PAIRS]
        n_weighted = sum(sum(d.loss_fn_inputs["weights"].data) for d in data)

        # Pipelining: submit step n+1 before waiting for step n.
        pending = []
        losses: list[float] = []

        def finish_oldest() -> None:
            fwd_bwd, optim = pending.pop(0)
            losses.append(fwd_bwd.result().metrics["loss:sum"] / n_weighted)
            optim.result()
            print(f"step {len(losses):3d}  loss {losses[-1]:.4f}")

        for step in range(steps):
            lr = 1e-2 * (1 - 0.9 * step / steps)
            pending.append(
                (
                    training_client.forward_backward(data, "cross_entropy"),
                    training_client.optim_step(types.AdamParams(learning_rate=lr)),
                )
            )
            if len(pending) > 1:
                finish_oldest()
        while pending:
            finish_oldest()

        assert losses[-1] < losses[0], "the loss should go down"
        sampler = training_client.save_weights_and_get_sampling_client().result()
        prompt = types.ModelInput.from_ints(tokenizer.encode(PAIRS[0][0]))
        answer = sampler.sample(prompt, 1, types.SamplingParams(max_tokens=10, temperature=0.0))
        print("sample:", repr(tokenizer.decode(answer.result().sequences[0].tokens)))


if __name__ == "__main__":
    with server():
        main()
