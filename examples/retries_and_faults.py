"""Retries under injected faults: a local server that fails on purpose, and a loop that
finishes anyway. Also: your own retries and a circuit breaker with tinkex.resilience.

With TINKER_BASE_URL set, the fault-injection part is skipped (only a local server can be
told to fail); the resilience part runs everywhere.

Run: python examples/retries_and_faults.py
"""

from __future__ import annotations

import os

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import telemetry, types
from tinkex.resilience import CircuitBreaker, CircuitOpenError, default_retry_policy, with_retry

# 20% of requests get a 5xx, 10% a 429 with Retry-After; deterministic thanks to the seed.
FAULTS = "http_5xx=0.2,http_429=0.1,seed=11"


def train_through_faults() -> None:
    retries: list[dict] = []
    telemetry.attach("example.retries", telemetry.HTTP_RETRY, lambda e, m, md: retries.append(md))
    try:
        with tinker.ServiceClient() as service_client:
            training_client = service_client.create_lora_training_client(
                BASE_MODEL, rank=4
            ).result()
            datum = types.Datum(
                model_input=types.ModelInput.from_ints([72, 105]),
                loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
            )
            losses = []
            for _ in range(6):
                fwd_bwd = training_client.forward_backward([datum], "cross_entropy")
                training_client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
                losses.append(fwd_bwd.result().metrics["loss:sum"])
    finally:
        telemetry.detach("example.retries")
    print(f"6 steps done despite the faults, after {len(retries)} retries")
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")


def own_retries() -> None:
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("transient")
        return "ok"

    policy = default_retry_policy(max_retries=4, backoff_initial=0.01)
    result = with_retry(flaky, policy, name="flaky")
    print(f"with_retry: {result} after {calls['n']} attempts")

    breaker = CircuitBreaker("always-failing", failure_threshold=3, reset_timeout=60)
    outcomes = []
    for _ in range(5):
        try:
            breaker.call(lambda: (_ for _ in ()).throw(TimeoutError("down")))
        except TimeoutError:
            outcomes.append("failed")
        except CircuitOpenError:
            outcomes.append("rejected")
    print("circuit breaker:", outcomes, "->", breaker.state)
    assert outcomes == ["failed"] * 3 + ["rejected"] * 2


def main() -> None:
    if os.environ.get("TINKER_BASE_URL"):
        print("TINKER_BASE_URL is set: skipping fault injection (only a local server can fail)")
    else:
        with server(faults=FAULTS):
            train_through_faults()
    own_retries()


if __name__ == "__main__":
    main()
