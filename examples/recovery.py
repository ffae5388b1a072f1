"""Opt-in recovery: a training run is corrupted server-side, training goes on from a checkpoint.

The embedded local server runs with the fault ``corrupt_after=3``: every training run is marked
corrupted right after its third optimizer step, as a failing accelerator would leave it. A
``RecoveryMonitor`` notices, restores the latest ``save_state`` checkpoint into a new training
client, and the loop continues on that client from the checkpoint's step.

Run: python examples/recovery.py
(Against a server that never corrupts runs, the loop simply finishes without recovering.)
"""

from __future__ import annotations

import logging
import sys
import threading

from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import telemetry, types
from tinkex.recovery import EVENTS, RecoveryMonitor, RecoveryPolicy, RecoveryResult

CORRUPT_AFTER = 3  # the local server's fault: corrupted after the 3rd optimizer step of a run
TOTAL_STEPS = 6
SAVE_EVERY = 2


def datum(text: str, tokenizer) -> types.Datum:
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


class Handover:
    """Carries the replacement client from the recovery thread to the training loop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: RecoveryResult | None = None
        self.error: BaseException | None = None

    def on_recovery(self, result: RecoveryResult) -> None:
        self.result = result
        self.event.set()

    def on_failure(self, run_id: str, error: BaseException) -> None:
        self.error = error
        self.event.set()

    def take(self, timeout: float) -> RecoveryResult:
        if not self.event.wait(timeout):
            raise TimeoutError(f"no recovery within {timeout} s")
        self.event.clear()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        result, self.result = self.result, None
        return result


def main() -> None:
    def show(event, measurements, metadata) -> None:
        name = event.rsplit(".", 1)[1]
        print(f"  [telemetry] {name}: run={metadata['run_id']} {dict(measurements or {})}")

    # The monitor logs to "tinkex.recovery"; show those lines in order with the rest.
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="  [log] %(message)s")
    telemetry.attach("example.recovery", list(EVENTS), show)
    handover = Handover()
    policy = RecoveryPolicy(enabled=True, checkpoint_strategy="latest", poll_interval=0.1)
    try:
        with tinker.ServiceClient() as service_client:
            training_client = service_client.create_lora_training_client(
                BASE_MODEL, rank=8, seed=0
            ).result()
            data = [datum("recover from the latest checkpoint", training_client.get_tokenizer())]
            with RecoveryMonitor(
                service_client,
                policy,
                on_recovery=handover.on_recovery,
                on_failure=handover.on_failure,
            ) as monitor:
                monitor.watch(training_client.model_id)
                print(f"training run {training_client.model_id}")
                step = 0
                recoveries = 0
                losses: dict[int, float] = {}
                while step < TOTAL_STEPS:
                    try:
                        fwd_bwd = training_client.forward_backward(data, "cross_entropy")
                        training_client.optim_step(types.AdamParams(learning_rate=5e-3)).result()
                        loss = fwd_bwd.result().metrics["loss:sum"]
                        step += 1
                        again = ""
                        if step in losses:
                            # Weights and Adam state came back exactly: the redone step matches.
                            assert abs(losses[step] - loss) < 1e-3, (losses[step], loss)
                            again = " (redone: same loss as before the corruption)"
                        losses[step] = loss
                        print(f"step {step}: loss {loss:.4f}{again}")
                        if step % SAVE_EVERY == 0:
                            path = (
                                training_client.save_state(
                                    f"step-{step}", user_metadata={"step": str(step)}
                                )
                                .result()
                                .path
                            )
                            print(f"  saved {path}")
                    except tinker.RequestFailedError as exc:
                        print(f"step {step + 1} failed: {exc.category} error, run corrupted")
                        result = handover.take(timeout=30)
                        recoveries += 1
                        training_client = result.training_client
                        monitor.watch(training_client.model_id)  # protect the new run too
                        step = int(result.checkpoint_path.rsplit("-", 1)[1])
                        print(
                            f"recovered from {result.checkpoint_path} "
                            f"(attempt {result.attempts}); continuing at step {step + 1} "
                            f"on {training_client.model_id}"
                        )
    finally:
        telemetry.detach("example.recovery")
    print(f"finished {TOTAL_STEPS} steps with {recoveries} recovery(ies)")
    assert losses[TOTAL_STEPS] < losses[1], "the loss went down across the recoveries"


if __name__ == "__main__":
    with server(faults=f"corrupt_after={CORRUPT_AFTER}"):
        main()
