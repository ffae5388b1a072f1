"""asyncio: the same futures are awaitable; fan out with asyncio.gather.

Run: python examples/async_usage.py
"""

from __future__ import annotations

import asyncio

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types


async def main() -> None:
    service_client = tinker.ServiceClient()
    try:
        # Factory methods return futures too: await them.
        training_client = await service_client.create_lora_training_client(BASE_MODEL, rank=4)
        tokenizer = training_client.get_tokenizer()
        tokens = tokenizer.encode("Hello, async world!", add_special_tokens=False)
        datum = types.Datum(
            model_input=types.ModelInput.from_ints(tokens[:-1]),
            loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
        )
        for step in range(3):
            fwd_bwd = training_client.forward_backward([datum], "cross_entropy")
            optim = training_client.optim_step(types.AdamParams(learning_rate=1e-2))
            output, _ = await asyncio.gather(fwd_bwd, optim)
            print(f"step {step} loss:sum {output.metrics['loss:sum']:.3f}")

        sampler = await training_client.save_weights_and_get_sampling_client()
        prompt = types.ModelInput.from_ints(tokenizer.encode("Hello"))
        params = types.SamplingParams(max_tokens=8, temperature=1.0)
        responses = await asyncio.gather(*(sampler.sample(prompt, 1, params) for _ in range(6)))
        for response in responses:
            print(repr(tokenizer.decode(response.sequences[0].tokens)))

        # result_async(timeout=...) raises TimeoutError instead of waiting forever.
        one = await sampler.sample(prompt, 1, params).result_async(timeout=60)
        print("stop reason:", one.sequences[0].stop_reason)
    finally:
        await service_client.close("success")


if __name__ == "__main__":
    with server():
        asyncio.run(main())
