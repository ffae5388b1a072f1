"""Telemetry hooks and metrics: watch every request, then read latency percentiles.

Run: python examples/telemetry_metrics.py
"""

from __future__ import annotations

import collections
import logging

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import metrics, telemetry, types


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    statuses: collections.Counter[str] = collections.Counter()

    def on_request_stop(event, measurements, metadata) -> None:
        statuses[f"{metadata.get('method')} {metadata.get('path')} {metadata.get('status')}"] += 1

    def broken_handler(event, measurements, metadata) -> None:
        raise RuntimeError("handlers that raise are logged and ignored")

    telemetry.attach("example.statuses", telemetry.HTTP_REQUEST_STOP, on_request_stop)
    telemetry.attach("example.broken", telemetry.FUTURE_COMPLETE, broken_handler)
    logging.getLogger("tinkex.telemetry").setLevel(logging.CRITICAL)  # keep the output short
    registry = metrics.enable()
    try:
        with tinker.ServiceClient() as service_client:
            training_client = service_client.create_lora_training_client(
                BASE_MODEL, rank=4
            ).result()
            datum = types.Datum(
                model_input=types.ModelInput.from_ints([72, 105]),
                loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
            )
            for _ in range(5):
                training_client.forward_backward([datum], "cross_entropy")
                training_client.optim_step(types.AdamParams(learning_rate=1e-3))
            sampler = training_client.save_weights_and_get_sampling_client().result()
            futures = [
                sampler.sample(datum.model_input, 1, types.SamplingParams(max_tokens=4))
                for _ in range(8)
            ]
            for future in futures:
                future.result()
    finally:
        telemetry.detach("example.statuses")
        telemetry.detach("example.broken")
        metrics.disable()

    print("requests seen by the handler:")
    for line, count in sorted(statuses.items()):
        print(f"  {count:3d}  {line}")
    print("\nlatency per endpoint (seconds):")
    for endpoint, stats in sorted(registry.snapshot()["endpoints"].items()):
        lat = stats["latency"]
        print(
            f"  {endpoint:42} n={stats['requests']:3d} p50={lat['p50']:.4f} "
            f"p90={lat['p90']:.4f} p99={lat['p99']:.4f} max={lat['max']:.4f}"
        )
    assert any("forward_backward" in e for e in registry.snapshot()["endpoints"])
    metrics.reset()


if __name__ == "__main__":
    with server():
        main()
