"""Recovery of corrupted training runs against the real local server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import tinkex
from tinkex import types
from tinkex.local import LocalServer
from tinkex.recovery import RecoveryError, RecoveryExecutor, RecoveryMonitor, RecoveryPolicy
from tinkex.resilience import BackoffPolicy

pytestmark = pytest.mark.e2e

DATUM = types.Datum(
    model_input=types.ModelInput.from_ints([256, 104, 105]),
    loss_fn_inputs={"target_tokens": [104, 105, 257], "weights": [1.0, 1.0, 1.0]},
)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(faults="corrupt_after=2") as srv:
        yield srv


@pytest.fixture
def service(server: LocalServer) -> Iterator[tinkex.ServiceClient]:
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        yield svc


def _step(client: tinkex.TrainingClient) -> None:
    client.forward_backward([DATUM], "cross_entropy").result(timeout=30)
    client.optim_step(types.AdamParams(learning_rate=1e-2)).result(timeout=30)


def test_monitor_recovers_a_corrupted_run_from_its_latest_checkpoint(
    server: LocalServer, service: tinkex.ServiceClient
) -> None:
    training = service.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
    _step(training)
    early = training.save_state("early").result(timeout=30).path
    _step(training)  # second optimizer step: the fault marks the run corrupted
    latest = training.save_state("latest")
    with pytest.raises(tinkex.RequestFailedError, match="corrupted"):
        latest.result(timeout=30)

    recovered = threading.Event()
    results: list[object] = []

    def on_recovery(result: object) -> None:
        results.append(result)
        recovered.set()

    policy = RecoveryPolicy(enabled=True, poll_interval=0.05)
    with RecoveryMonitor(service, policy, on_recovery=on_recovery) as monitor:
        monitor.watch(training.model_id)
        assert recovered.wait(30), "the monitor did not recover the run"
    (result,) = results
    assert result.run_id == training.model_id  # type: ignore[attr-defined]
    assert result.checkpoint_path == early  # type: ignore[attr-defined]
    new_client = result.training_client  # type: ignore[attr-defined]
    assert new_client.model_id != training.model_id
    # The restored client trains (the new run has had no optimizer step yet).
    out = new_client.forward_backward([DATUM], "cross_entropy").result(timeout=30)
    assert out.metrics["loss:sum"] > 0


def test_best_strategy_uses_checkpoint_metadata(
    server: LocalServer, service: tinkex.ServiceClient
) -> None:
    training = service.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
    worse = training.save_state("a", user_metadata={"loss": "3.0"}).result(timeout=30).path
    better = training.save_state("b", user_metadata={"loss": "1.5"}).result(timeout=30).path
    training.save_state("c", user_metadata={"loss": "not-a-number"}).result(timeout=30)
    rest = service.create_rest_client_internal()
    run = rest.get_training_run(training.model_id).result(timeout=10)
    best = RecoveryExecutor(
        service, RecoveryPolicy(enabled=True, checkpoint_strategy="best", best_metric="loss"), rest
    )
    worst = RecoveryExecutor(
        service,
        RecoveryPolicy(
            enabled=True, checkpoint_strategy="best", best_metric="loss", best_mode="max"
        ),
        rest,
    )
    try:
        assert best.choose_checkpoint(run) == better
        assert worst.choose_checkpoint(run) == worse
    finally:
        best.close()
        worst.close()


def test_failure_callback_when_no_checkpoint_and_when_attempts_run_out(
    server: LocalServer, service: tinkex.ServiceClient
) -> None:
    training = service.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
    rest = service.create_rest_client_internal()
    run = rest.get_training_run(training.model_id).result(timeout=10)
    failures: list[tuple[str, BaseException]] = []
    executor = RecoveryExecutor(
        service,
        RecoveryPolicy(enabled=True),
        rest,
        on_failure=lambda run_id, exc: failures.append((run_id, exc)),
    )
    try:
        with pytest.raises(RecoveryError, match="no training checkpoint"):
            executor.recover(run)
    finally:
        executor.close()
    assert failures and failures[0][0] == training.model_id

    missing = f"tinker://{training.model_id}/weights/never-saved"
    sleeps: list[float] = []
    executor = RecoveryExecutor(
        service,
        RecoveryPolicy(
            enabled=True,
            checkpoint_strategy="specific",
            checkpoint_path=missing,
            max_attempts=3,
            backoff=BackoffPolicy(max_attempts=None, base_delay=0.01, max_delay=0.01, jitter=0),
        ),
        rest,
        sleep=lambda seconds: sleeps.append(seconds) is not None,
    )
    try:
        with pytest.raises(RecoveryError, match="after 3 attempts"):
            executor.recover(run)
    finally:
        executor.close()
    assert sleeps == [0.01, 0.01]


def test_disabled_policy_never_polls(server: LocalServer, service: tinkex.ServiceClient) -> None:
    monitor = RecoveryMonitor(service, RecoveryPolicy(enabled=False))
    monitor.watch("some-run")
    assert monitor._thread is None
    monitor.close()


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="checkpoint_path"):
        RecoveryPolicy(checkpoint_strategy="specific")
    with pytest.raises(ValueError, match="best_metric"):
        RecoveryPolicy(checkpoint_strategy="best")
    with pytest.raises(ValueError, match="max_attempts"):
        RecoveryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="poll_interval"):
        RecoveryPolicy(poll_interval=0)


def test_server_marks_runs_corrupted_on_request(server: LocalServer) -> None:
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        training = svc.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
        assert server.mark_run_corrupted(training.model_id)
        assert not server.mark_run_corrupted("no-such-run")
        run = svc.create_rest_client_internal().get_training_run(training.model_id).result(10)
        assert run.corrupted is True
