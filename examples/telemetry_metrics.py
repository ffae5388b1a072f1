"""Telemetry hooks, metrics and the server-side Reporter.

In-process hooks watch every request, ``tinkex.metrics`` turns them into latency percentiles,
and the clients' ``Reporter`` (``get_telemetry()``) sends session events, failures and your own
events to the server's ``/api/v1/telemetry`` (off with ``TINKER_TELEMETRY=0``).

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

            # The Reporter every client wires (None when TINKER_TELEMETRY=0).
            reporter = service_client.get_telemetry()
            if reporter is None:
                print("server telemetry is off (TINKER_TELEMETRY=0): get_telemetry() is None")
            else:
                assert reporter is training_client.get_telemetry()  # one per session
                reporter.log("example.finished", {"steps": 5, "samples": len(futures)})
                # Also send the in-process future-completion events, as GENERIC_EVENTs.
                reporter.forward(telemetry.FUTURE_COMPLETE)
                sampler.sample(datum.model_input, 1, types.SamplingParams(max_tokens=2)).result()
                delivered = reporter.wait_until_drained(timeout=10)
                print(
                    f"reporter: session {reporter.session_id}, drained={delivered}, "
                    f"{reporter.sent_batches} batch(es) delivered to /api/v1/telemetry, "
                    f"{reporter.dropped} dropped"
                )
                assert delivered and reporter.dropped == 0
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
            f"p90={lat['p90']:.4f} p95={lat['p95']:.4f} p99={lat['p99']:.4f} max={lat['max']:.4f}"
        )
    assert any("forward_backward" in e for e in registry.snapshot()["endpoints"])
    metrics.reset()


if __name__ == "__main__":
    with server():
        main()
