"""Queue states: what a client sees while the service holds its requests back, and why.

A busy Tinker service answers a future's poll with `try_again` and a queue state
(`paused_capacity`, `paused_rate_limit`) plus a reason; the request waits on the server and
completes later. A sample request it cannot take now is refused with a 429, and the sampling
client backs off and sends it again. Here the embedded server is told to do both. tinkex reports
each queue state a poll brings as the telemetry event `tinkex.future.queue_state` (one observer
for all clients); a sampling client also logs "Sampling is paused (...): REASON" (stderr) at
most once a minute, training and model creation after 15 minutes paused, as the official SDK.

Run: python examples/queue_state_observer.py
"""

from __future__ import annotations

from typing import Any

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import telemetry, types

#: The first three polls report pauses; the first sample request is refused with a 429.
FAULTS = "retrieve_future:paused_capacity:2,retrieve_future:paused_rate_limit:1,asample:429:1"


class QueueStateObserver:
    """Collects queue-state changes of every request, with the server's reason."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str | None]] = []

    def __call__(self, event: str, measurements: Any, metadata: Any) -> None:
        change = (metadata["request_type"], metadata["queue_state"], metadata["reason"])
        self.changes.append(change)
        print(f"  [observer] {change[0]}: {change[1]} ({change[2] or 'no reason given'})")


def main() -> None:
    observer = QueueStateObserver()
    telemetry.attach("queue-state-observer", telemetry.FUTURE_QUEUE_STATE, observer)
    http_retries: list[Any] = []
    telemetry.attach(
        "retry-observer", telemetry.HTTP_RETRY, lambda e, m, metadata: http_retries.append(metadata)
    )
    try:
        with tinker.ServiceClient() as service_client:
            sampler = service_client.create_sampling_client(base_model=BASE_MODEL).result()
            prompt = types.ModelInput.from_ints([1, 2, 3])
            params = types.SamplingParams(max_tokens=4, seed=0)
            print("sampling while the server reports pauses ...")
            result = sampler.sample(prompt, 1, params).result()
            print(f"sampled {len(result.sequences[0].tokens)} tokens anyway")
            training = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
            print("training client created:", training.model_id is not None)
    finally:
        telemetry.detach("queue-state-observer")
        telemetry.detach("retry-observer")
    paused = sorted({state for _, state, _ in observer.changes if state != "active"})
    print("paused states seen:", paused)
    retried = [event for event in http_retries if event["status"] == 429]
    print(f"asample refused with 429 and resent: {len(retried)} time(s)")


if __name__ == "__main__":
    with server(faults=FAULTS):
        main()
