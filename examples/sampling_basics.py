"""Sampling basics: parameters, several samples, stop strings, logprobs, prompt scoring.

Run: python examples/sampling_basics.py
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        tokenizer = training_client.get_tokenizer()
        sampler = service_client.create_sampling_client(base_model=BASE_MODEL).result()
        prompt = types.ModelInput.from_ints(tokenizer.encode("Once upon a time"))

        params = types.SamplingParams(max_tokens=16, temperature=0.9, top_p=0.95, seed=7)
        response = sampler.sample(prompt, num_samples=3, sampling_params=params).result()
        for i, seq in enumerate(response.sequences):
            mean_lp = sum(seq.logprobs) / len(seq.logprobs) if seq.logprobs else float("nan")
            print(f"sample {i}: stop={seq.stop_reason:6} mean logprob={mean_lp:7.3f}", end=" ")
            print(repr(tokenizer.decode(seq.tokens)))

        # Same seed, same tokens.
        again = sampler.sample(prompt, num_samples=3, sampling_params=params).result()
        assert [s.tokens for s in again.sequences] == [s.tokens for s in response.sequences]

        # Greedy decoding with a stop string.
        greedy = types.SamplingParams(max_tokens=32, temperature=0.0, stop=["."])
        seq = sampler.sample(prompt, 1, greedy).result().sequences[0]
        print("greedy:", seq.stop_reason, repr(tokenizer.decode(seq.tokens)))

        # Score a prompt: one logprob per token (None for the first).
        logprobs = sampler.compute_logprobs(prompt).result()
        print("prompt logprobs:", [None if lp is None else round(lp, 2) for lp in logprobs])


if __name__ == "__main__":
    with server():
        main()
