"""The server-side telemetry Reporter: your own events, exceptions, captured failures, retries.

Every client's ``get_telemetry()`` returns the session's ``Reporter``, which batches events to
the server's ``POST /api/v1/telemetry``. This example logs a custom event, reports a caught
exception, retries a flaky call with ``with_retry`` inside ``capture_exceptions`` (the call
recovers; a second one fails for good and is reported on its way out), reports a rejected
request (a ``user_error``), ends with a fatal report (``SESSION_END``), and prints what the
server received. It starts its own local server to read that back; telemetry must be on
(``TINKER_TELEMETRY`` unset or 1).

Run: python examples/telemetry_reporter.py
"""

from __future__ import annotations

import collections
from collections.abc import Callable

import tinkex as tinker
from tinkex import telemetry, types
from tinkex.local import LocalServer
from tinkex.resilience import RetryPolicy, with_retry

FLAKY = RetryPolicy(name="example", max_retries=3, backoff_initial=0.01, jitter=0.0)


def flaky(failures: int) -> Callable[[], str]:
    """A call that fails ``failures`` times with a retryable error, then succeeds."""
    calls: collections.Counter[str] = collections.Counter()

    def call() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise tinker.APIConnectionError(message=f"flaky (call {calls['n']})", request=None)
        return f"ok after {calls['n']} call(s)"

    return call


def main(local: LocalServer) -> None:
    retries: list[str] = []
    telemetry.attach(
        "example.retries",
        telemetry.HTTP_RETRY,
        lambda event, m, md: retries.append(f"{md['request']} attempt {int(m['attempt'])}"),
    )
    service_client = tinker.ServiceClient(base_url=local.base_url, api_key=local.api_key)
    try:
        training_client = service_client.create_lora_training_client(
            "Qwen/Qwen3-8B", rank=4
        ).result()
        reporter = service_client.get_telemetry()
        if reporter is None:
            print("server telemetry is off (TINKER_TELEMETRY=0): get_telemetry() is None")
            return
        reporter.log("example.started", {"model_id": training_client.model_id})

        try:
            {}["missing"]
        except KeyError as exc:
            reporter.log_exception(exc, severity="WARNING")  # caught here, reported anyway

        with reporter.capture_exceptions():
            print(
                "flaky call:", with_retry(flaky(2), FLAKY, name="flaky_call", sleep=lambda s: None)
            )
        try:
            with reporter.capture_exceptions():
                with_retry(flaky(10), FLAKY, name="doomed_call", sleep=lambda s: None)
        except tinker.APIConnectionError as exc:
            print(f"doomed call gave up: {exc.message}")

        bad = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105]},  # one target for two tokens
        )
        try:
            training_client.forward_backward([bad], "cross_entropy").result()
        except tinker.BadRequestError as exc:
            print(f"bad request: HTTP {exc.status_code}")
            reporter.log_exception(exc)  # a 4xx is the caller's fault: sent as "user_error"

        reporter.log_fatal_exception(RuntimeError("example over"))  # + SESSION_END, then waits
        print(f"drained={reporter.wait_until_drained(timeout=10)}, dropped={reporter.dropped}")
    finally:
        telemetry.detach("example.retries")
        service_client.close()

    print("retries:", ", ".join(retries))
    print("the server received:")
    for event in local.telemetry_events:
        name = event.get("event_name") or event.get("error_type") or ""
        print(f"  {event['event']:20} {event['severity']:8} {name}")


if __name__ == "__main__":
    with LocalServer() as local_server:
        main(local_server)
