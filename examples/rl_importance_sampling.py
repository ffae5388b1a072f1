"""A tiny RL loop: sample, score with a reward, train with the importance_sampling loss.

The task: make the model answer in lowercase letters (reward = the fraction of sampled
characters in a-z; an untrained model emits random bytes, so about one in ten). Rewards are
centred per group of samples (GRPO-style advantages); the sampler's logprobs go into the loss so
the update is correct even when sampler and learner weights differ.

Run: python examples/rl_importance_sampling.py
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types

GROUP = 16
ROUNDS = 12


def reward(tokens: list[int]) -> float:
    """Fraction of the sampled tokens that are the bytes of 'a'..'z'."""
    return sum(ord("a") <= t <= ord("z") for t in tokens) / max(len(tokens), 1)


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=16).result()
        tokenizer = training_client.get_tokenizer()
        prompt = types.ModelInput.from_ints(tokenizer.encode("Say something:"))
        params = types.SamplingParams(max_tokens=12, temperature=1.0)
        history = []
        for round_index in range(ROUNDS):
            sampler = training_client.save_weights_and_get_sampling_client().result()
            result = sampler.sample(prompt, num_samples=GROUP, sampling_params=params).result()
            rewards = [reward(list(s.tokens)) for s in result.sequences]
            mean = sum(rewards) / len(rewards)
            history.append(mean)
            data = []
            for seq, r in zip(result.sequences, rewards, strict=True):
                if not seq.tokens:
                    continue
                tokens = prompt.to_ints() + list(seq.tokens)
                n_prompt = prompt.length - 1  # input positions that predict prompt tokens
                data.append(
                    types.Datum(
                        model_input=types.ModelInput.from_ints(tokens[:-1]),
                        loss_fn_inputs={
                            "target_tokens": tokens[1:],
                            "logprobs": [0.0] * n_prompt + list(seq.logprobs),
                            "advantages": [0.0] * n_prompt + [r - mean] * len(seq.tokens),
                        },
                    )
                )
            training_client.forward_backward(data, "importance_sampling")
            training_client.optim_step(types.AdamParams(learning_rate=2e-2)).result()
            print(f"round {round_index}: mean reward {mean:.3f}")
        print(f"reward {history[0]:.3f} -> {history[-1]:.3f}")
        print("last sample:", repr(tokenizer.decode(list(result.sequences[0].tokens))))


if __name__ == "__main__":
    with server():
        main()
