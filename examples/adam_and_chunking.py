"""Adam with weight decay and gradient clipping, and how a large batch is split into chunks.

A ``forward_backward`` over more datums than the server takes in one request (its client config
says ``fwdbwd_max_chunk_len``, 1024 here, and about 5 MB per request) is sent as several
requests; the results come back as one ``ForwardBackwardOutput`` with one output per datum and
the metrics reduced across chunks (``loss:sum`` summed). ``optim_step`` then applies
``AdamParams(learning_rate, weight_decay, grad_clip_norm)``.

Run: python examples/adam_and_chunking.py
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import telemetry, types

COUNT = 1025  # one datum more than a chunk holds


def datum(i: int) -> types.Datum:
    tokens = [65 + i % 26, 97 + i % 26, 33]
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0, 1.0]},
    )


def main() -> None:
    requests: list[int] = []
    telemetry.attach(
        "example.chunks",
        telemetry.HTTP_REQUEST_STOP,
        lambda event, m, md: (
            requests.append(md["status"]) if md["path"] == "/api/v1/forward_backward" else None
        ),
    )
    try:
        with tinker.ServiceClient() as service_client:
            training_client = service_client.create_lora_training_client(
                BASE_MODEL, rank=8
            ).result()
            batch = [datum(i) for i in range(COUNT)]
            whole = training_client.forward_backward(batch, "cross_entropy").result()
            print(
                f"{COUNT} datums -> {len(requests)} forward_backward requests, "
                f"{len(whole.loss_fn_outputs)} outputs, loss:sum={whole.metrics['loss:sum']:.2f}"
            )
            assert len(requests) == 2 and len(whole.loss_fn_outputs) == COUNT

            # The same loss as the two halves sent on their own (the sum is over datums).
            first = training_client.forward(batch[:1024], "cross_entropy").result()
            rest = training_client.forward(batch[1024:], "cross_entropy").result()
            halves = first.metrics["loss:sum"] + rest.metrics["loss:sum"]
            print(f"forward on the two halves: {halves:.2f}")
            assert abs(halves - whole.metrics["loss:sum"]) < 1e-3 * abs(halves)

            adam = types.AdamParams(learning_rate=2e-4, weight_decay=0.01, grad_clip_norm=1.0)
            step = training_client.optim_step(adam).result()
            print(f"optim_step with weight_decay=0.01, grad_clip_norm=1.0: {step.metrics}")
            after = training_client.forward(batch[:64], "cross_entropy").result()
            print(f"loss:sum of the first 64 after the step: {after.metrics['loss:sum']:.2f}")
    finally:
        telemetry.detach("example.chunks")


if __name__ == "__main__":
    with server():
        main()
