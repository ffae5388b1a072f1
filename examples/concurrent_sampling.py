"""Fan-out sampling: submit many requests at once, collect with concurrent.futures.

Run: python examples/concurrent_sampling.py
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, as_completed, wait

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types

N_PROMPTS = 16


def main() -> None:
    with tinker.ServiceClient() as service_client:
        sampler = service_client.create_sampling_client(base_model=BASE_MODEL).result()
        params = types.SamplingParams(max_tokens=12, temperature=1.0)
        prompts = [types.ModelInput.from_ints([72, 105, 32, 48 + i % 10]) for i in range(N_PROMPTS)]

        start = time.monotonic()
        # sample() returns an APIFuture at once; it is a concurrent.futures.Future.
        futures = {
            sampler.sample(p, num_samples=2, sampling_params=params): i
            for i, p in enumerate(prompts)
        }
        first, _ = wait(futures, return_when=FIRST_COMPLETED)
        print(f"first response after {time.monotonic() - start:.2f}s ({len(first)} done)")

        done, not_done = wait(futures, timeout=120)
        assert not not_done, f"{len(not_done)} requests did not finish"
        total_tokens = sum(len(seq.tokens) for future in done for seq in future.result().sequences)
        elapsed = time.monotonic() - start
        print(f"{len(done)} requests, {total_tokens} tokens in {elapsed:.2f}s")

        # as_completed yields in completion order, which is not submission order.
        order = [futures[f] for f in as_completed(futures)]
        print("completion order:", order)


if __name__ == "__main__":
    with server():
        main()
