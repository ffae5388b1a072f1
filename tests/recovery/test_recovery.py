"""Recovery of corrupted training runs against the real local server."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import tinkex
from tinkex import recovery, telemetry, types
from tinkex.local import LocalServer
from tinkex.recovery import RecoveryError, RecoveryExecutor, RecoveryMonitor, RecoveryPolicy
from tinkex.resilience import BackoffPolicy

Event = tuple[str, Mapping[str, float], Mapping[str, Any]]

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


@pytest.fixture
def events() -> Iterator[list[Event]]:
    """Every recovery telemetry event, in order, as (short name, measurements, metadata)."""
    seen: list[Event] = []
    telemetry.attach(
        "test-recovery-events",
        list(recovery.EVENTS),
        lambda e, m, md: seen.append((e.rsplit(".", 1)[1], dict(m), dict(md))),
    )
    yield seen
    telemetry.detach("test-recovery-events")


def _names(events: list[Event]) -> list[str]:
    return [name for name, _, _ in events]


def _step(client: tinkex.TrainingClient) -> None:
    client.forward_backward([DATUM], "cross_entropy").result(timeout=30)
    client.optim_step(types.AdamParams(learning_rate=1e-2)).result(timeout=30)


def test_monitor_recovers_a_corrupted_run_from_its_latest_checkpoint(
    server: LocalServer, service: tinkex.ServiceClient, events: list[Event]
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

    assert _names(events) == [
        "detected",
        "started",
        "checkpoint_selected",
        "client_created",
        "completed",
    ]
    by_name = {name: (m, md) for name, m, md in events}
    assert by_name["detected"][1] == {"run_id": training.model_id, "last_checkpoint": early}
    for name in ("started", "checkpoint_selected", "client_created", "completed"):
        measurements, metadata = by_name[name]
        assert measurements == {"attempt": 1}
        assert metadata["run_id"] == training.model_id and metadata["strategy"] == "latest"
    assert by_name["checkpoint_selected"][1]["checkpoint"] == early
    for name in ("client_created", "completed"):
        assert by_name[name][1]["checkpoint"] == early
        assert by_name[name][1]["new_run_id"] == new_client.model_id


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
    server: LocalServer, service: tinkex.ServiceClient, events: list[Event]
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
    # No checkpoint can ever fit: one attempt, no retry.
    assert _names(events) == ["started", "failed", "exhausted"]
    (_, _, failed), (_, exhausted_m, exhausted) = events[1], events[2]
    assert failed["will_retry"] is False and failed["error_type"] == "RecoveryError"
    assert "no training checkpoint" in failed["error"]
    assert exhausted_m == {"attempt": 1} and exhausted["error_type"] == "RecoveryError"
    events.clear()

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
    attempt = ["started", "checkpoint_selected", "failed"]
    assert _names(events) == attempt * 3 + ["exhausted"]
    failed_events = [(m, md) for name, m, md in events if name == "failed"]
    assert [m["attempt"] for m, _ in failed_events] == [1, 2, 3]
    assert [md["will_retry"] for _, md in failed_events] == [True, True, False]
    assert all(md["checkpoint"] == missing for name, _, md in events if name.startswith("check"))
    assert events[-1][1] == {"attempt": 3} and events[-1][2]["strategy"] == "specific"


def test_a_transient_checkpoint_lookup_failure_is_retried(
    server: LocalServer, service: tinkex.ServiceClient, events: list[Event]
) -> None:
    training = service.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
    saved = training.save_state("only").result(timeout=30).path
    rest = service.create_rest_client_internal()
    run = rest.get_training_run(training.model_id).result(timeout=10)

    class FlakyListing:
        """The real RestClient, except that the first checkpoint listing fails."""

        def __init__(self) -> None:
            self.calls = 0

        def list_checkpoints(self, run_id: str) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("checkpoint listing: connection reset")
            return rest.list_checkpoints(run_id)

    flaky = FlakyListing()
    executor = RecoveryExecutor(
        service,
        RecoveryPolicy(
            enabled=True,
            backoff=BackoffPolicy(max_attempts=None, base_delay=0.01, max_delay=0.01, jitter=0),
        ),
        flaky,  # type: ignore[arg-type]
    )
    try:
        result = executor.recover(run)
    finally:
        executor.close()
    assert result.checkpoint_path == saved and result.attempts == 2 and flaky.calls == 2
    assert _names(events) == [
        "started",
        "failed",
        "started",
        "checkpoint_selected",
        "client_created",
        "completed",
    ]
    failed = events[1][2]
    assert failed["will_retry"] is True and failed["error_type"] == "ConnectionError"


def test_monitor_reports_poll_errors_and_keeps_watching(
    server: LocalServer, service: tinkex.ServiceClient, events: list[Event]
) -> None:
    monitor = RecoveryMonitor(service, RecoveryPolicy(enabled=False))
    try:
        monitor.watch("no-such-run")
        assert monitor.check_now() == []
        assert monitor.check_now() == []
    finally:
        monitor.close()
    assert _names(events) == ["poll_error", "poll_error"]
    _, measurements, metadata = events[0]
    assert measurements == {}
    assert metadata["run_id"] == "no-such-run" and metadata["error_type"] == "NotFoundError"
    assert metadata["error"]


def test_monitor_closes_the_rest_client_it_created(
    server: LocalServer, service: tinkex.ServiceClient
) -> None:
    monitor = RecoveryMonitor(service, RecoveryPolicy(enabled=False))
    own_rest = monitor._rest
    monitor.close()
    assert own_rest.holder.closed  # its threads and telemetry reporter are stopped
    given = service.create_rest_client_internal()
    try:
        RecoveryMonitor(service, RecoveryPolicy(enabled=False), rest=given).close()
        assert not given.holder.closed  # a RestClient passed in stays the caller's
    finally:
        given.close()


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


def test_the_service_client_carries_the_recovery_policy(
    server: LocalServer, events: list[Event]
) -> None:
    policy = RecoveryPolicy(enabled=True, poll_interval=0.05)
    recovered = threading.Event()
    with tinkex.ServiceClient(
        base_url=server.base_url, api_key=server.api_key, recovery=policy
    ) as svc:
        assert svc.recovery_policy is policy
        training = svc.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
        _step(training)
        training.save_state("early").result(timeout=30)
        _step(training)  # the fault marks the run corrupted
        with RecoveryMonitor(svc, on_recovery=lambda result: recovered.set()) as monitor:
            assert monitor.policy is policy
            monitor.watch(training.model_id)
            assert recovered.wait(30), "the monitor did not recover the run"
        # An explicit policy wins over the service's.
        other = RecoveryPolicy(enabled=False)
        with RecoveryMonitor(svc, other) as monitor:
            assert monitor.policy is other
    assert "completed" in _names(events)

    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        assert svc.recovery_policy is None
        with pytest.raises(ValueError, match=r"ServiceClient\(recovery=RecoveryPolicy"):
            RecoveryMonitor(svc)
    with pytest.raises(TypeError, match=r"must be a tinkex\.recovery\.RecoveryPolicy, got dict"):
        tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key, recovery={})  # type: ignore[arg-type]


def test_server_marks_runs_corrupted_on_request(server: LocalServer) -> None:
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as svc:
        training = svc.create_lora_training_client("tinkex/tiny", rank=4).result(timeout=30)
        assert server.mark_run_corrupted(training.model_id)
        assert not server.mark_run_corrupted("no-such-run")
        run = svc.create_rest_client_internal().get_training_run(training.model_id).result(10)
        assert run.corrupted is True
