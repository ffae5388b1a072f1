"""Recovery policy, monitor thread and executor (see the package docstring)."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinkex._exceptions import TinkerError
from tinkex.recovery._events import (
    RECOVERY_CHECKPOINT_SELECTED,
    RECOVERY_CLIENT_CREATED,
    RECOVERY_COMPLETED,
    RECOVERY_DETECTED,
    RECOVERY_EXHAUSTED,
    RECOVERY_FAILED,
    RECOVERY_POLL_ERROR,
    RECOVERY_STARTED,
    AttemptMetadata,
    CheckpointMetadata,
    ClientMetadata,
    DetectedMetadata,
    ExhaustedMetadata,
    FailedMetadata,
    PollErrorMetadata,
    attempt_measurements,
)
from tinkex.resilience import RetryPolicy, default_retry_policy
from tinkex.telemetry import emit

if TYPE_CHECKING:
    from tinkex.clients.rest import RestClient
    from tinkex.clients.service import ServiceClient
    from tinkex.clients.training import TrainingClient
    from tinkex.types import Checkpoint, TrainingRun

__all__ = [
    "RecoveryError",
    "RecoveryExecutor",
    "RecoveryMonitor",
    "RecoveryPolicy",
    "RecoveryResult",
]

logger = logging.getLogger("tinkex.recovery")

CheckpointStrategy = Literal["latest", "best", "specific"]


class RecoveryError(TinkerError):
    """A run could not be recovered (no usable checkpoint, or every attempt failed)."""


def _positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"RecoveryPolicy.{name} must be > 0, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class RecoveryPolicy:
    """What recovery does.

    Attributes:
        enabled: recovery runs only when True (opt-in).
        max_attempts: restore attempts per corrupted run.
        backoff: waits between attempts (``RetryPolicy.retry_delay``).
        checkpoint_strategy: ``"latest"`` training checkpoint, ``"best"`` by
            ``best_metric`` in the checkpoint's ``user_metadata``, or ``"specific"``.
        checkpoint_path: the ``tinker://.../weights/...`` path for ``"specific"``.
        best_metric: ``user_metadata`` key compared for ``"best"`` (e.g. ``"loss"``).
        best_mode: ``"min"`` or ``"max"`` for ``"best"``.
        restore_optimizer: restore optimizer state too (else weights only).
        poll_interval: seconds between status polls of watched runs.
        max_concurrent: recoveries running at the same time.
    """

    enabled: bool = False
    max_attempts: int = attrs.field(default=3)
    backoff: RetryPolicy = attrs.field(
        factory=lambda: default_retry_policy(
            name="recovery", max_retries=None, backoff_initial=1.0, backoff_max=30.0
        )
    )
    checkpoint_strategy: CheckpointStrategy = attrs.field(
        default="latest", validator=attrs.validators.in_(("latest", "best", "specific"))
    )
    checkpoint_path: str | None = None
    best_metric: str | None = None
    best_mode: Literal["min", "max"] = attrs.field(
        default="min", validator=attrs.validators.in_(("min", "max"))
    )
    restore_optimizer: bool = True
    poll_interval: float = attrs.field(default=30.0, validator=_positive("poll_interval"))
    max_concurrent: int = attrs.field(default=1)

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RecoveryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_concurrent < 1:
            raise ValueError(
                f"RecoveryPolicy.max_concurrent must be >= 1, got {self.max_concurrent}"
            )
        if self.checkpoint_strategy == "specific" and not self.checkpoint_path:
            raise ValueError("RecoveryPolicy: checkpoint_strategy 'specific' needs checkpoint_path")
        if self.checkpoint_strategy == "best" and not self.best_metric:
            raise ValueError("RecoveryPolicy: checkpoint_strategy 'best' needs best_metric")


@attrs.frozen
class RecoveryResult:
    """A successful recovery: the corrupted run, the checkpoint used, the new client."""

    run_id: str
    checkpoint_path: str
    training_client: TrainingClient
    attempts: int


def _metric(checkpoint: Checkpoint, key: str) -> float | None:
    raw = (checkpoint.user_metadata or {}).get(key)
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


class RecoveryExecutor:
    """Restores corrupted runs from a checkpoint, ``policy.max_concurrent`` at a time."""

    def __init__(
        self,
        service: ServiceClient,
        policy: RecoveryPolicy,
        rest: RestClient,
        *,
        on_recovery: Callable[[RecoveryResult], None] | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self._service = service
        self._policy = policy
        self._rest = rest
        self._on_recovery = on_recovery
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._pool = ThreadPoolExecutor(policy.max_concurrent, thread_name_prefix="tinkex-recovery")

    def choose_checkpoint(self, run: TrainingRun) -> str:
        """The checkpoint path the policy picks for ``run``.

        Raises:
            RecoveryError: the run has no usable training checkpoint.
        """
        policy = self._policy
        if policy.checkpoint_strategy == "specific":
            assert policy.checkpoint_path is not None
            return policy.checkpoint_path
        checkpoints = [
            c
            for c in self._rest.list_checkpoints(run.training_run_id).result().checkpoints
            if c.checkpoint_type == "training"
        ]
        if not checkpoints:
            raise RecoveryError(
                f"training run {run.training_run_id} has no training checkpoint to recover from "
                "(save one with TrainingClient.save_state)"
            )
        if policy.checkpoint_strategy == "latest":
            return max(checkpoints, key=lambda c: c.time).tinker_path
        assert policy.best_metric is not None
        scored = [(m, c) for c in checkpoints if (m := _metric(c, policy.best_metric)) is not None]
        if not scored:
            raise RecoveryError(
                f"no checkpoint of run {run.training_run_id} has a numeric "
                f"user_metadata[{policy.best_metric!r}]"
            )
        pick = min if policy.best_mode == "min" else max
        return pick(scored, key=lambda pair: pair[0])[1].tinker_path

    def submit(self, run: TrainingRun) -> Future[RecoveryResult]:
        """Recover ``run`` in the background."""
        return self._pool.submit(self.recover, run)

    def recover(self, run: TrainingRun) -> RecoveryResult:
        """Recover ``run`` now (blocking); callbacks are called either way.

        Each attempt chooses the checkpoint and creates the replacement client; a failed
        attempt is retried after ``policy.backoff.retry_delay(error, n)``, except when no
        checkpoint can fit (a :class:`RecoveryError` from :meth:`choose_checkpoint`), which no
        retry fixes.

        Raises:
            RecoveryError: no usable checkpoint, or ``max_attempts`` failed attempts.
        """
        run_id = run.training_run_id
        policy = self._policy
        strategy = policy.checkpoint_strategy
        last: BaseException = RecoveryError("recovery stopped before its first attempt")
        attempts = 0
        for attempt in range(1, policy.max_attempts + 1):
            attempts = attempt
            measurements = attempt_measurements(attempt)
            started: AttemptMetadata = {"run_id": run_id, "strategy": strategy}
            emit(RECOVERY_STARTED, measurements, started)
            try:
                result = self._attempt(run, attempt)
            except Exception as exc:
                last = exc
                will_retry = attempt < policy.max_attempts and not isinstance(exc, RecoveryError)
                failed: FailedMetadata = {
                    "run_id": run_id,
                    "strategy": strategy,
                    "error": str(exc),
                    "error_type": type(exc).__name__,
                    "will_retry": will_retry,
                }
                emit(RECOVERY_FAILED, measurements, failed)
                logger.warning("recovery of %s failed (attempt %d): %s", run_id, attempt, exc)
                if not will_retry or self._sleep(policy.backoff.retry_delay(exc, attempt - 1)):
                    break  # permanent, out of attempts, or stopped
                continue
            completed: ClientMetadata = {
                "run_id": run_id,
                "strategy": strategy,
                "checkpoint": result.checkpoint_path,
                "new_run_id": result.training_client.model_id,
            }
            emit(RECOVERY_COMPLETED, measurements, completed)
            logger.info(
                "recovered run %s from %s as %s",
                run_id,
                result.checkpoint_path,
                result.training_client.model_id,
            )
            if self._on_recovery is not None:
                self._on_recovery(result)
            return result
        return self._give_up(run_id, last, attempts)

    def _attempt(self, run: TrainingRun, attempt: int) -> RecoveryResult:
        """One attempt: choose the checkpoint, restore it into a new training client."""
        run_id = run.training_run_id
        strategy = self._policy.checkpoint_strategy
        measurements = attempt_measurements(attempt)
        path = self.choose_checkpoint(run)
        selected: CheckpointMetadata = {"run_id": run_id, "strategy": strategy, "checkpoint": path}
        emit(RECOVERY_CHECKPOINT_SELECTED, measurements, selected)
        if self._policy.restore_optimizer:
            future = self._service.create_training_client_from_state_with_optimizer(path)
        else:
            future = self._service.create_training_client_from_state(path)
        client: TrainingClient = future.result()
        created: ClientMetadata = {
            "run_id": run_id,
            "strategy": strategy,
            "checkpoint": path,
            "new_run_id": client.model_id,
        }
        emit(RECOVERY_CLIENT_CREATED, measurements, created)
        return RecoveryResult(run_id, path, client, attempt)

    def _give_up(self, run_id: str, exc: BaseException, attempts: int) -> RecoveryResult:
        exhausted: ExhaustedMetadata = {
            "run_id": run_id,
            "strategy": self._policy.checkpoint_strategy,
            "error": str(exc),
            "error_type": type(exc).__name__,
        }
        measurements = attempt_measurements(attempts)
        emit(RECOVERY_EXHAUSTED, measurements, exhausted)
        if self._on_failure is not None:
            self._on_failure(run_id, exc)
        if isinstance(exc, RecoveryError):
            raise exc
        raise RecoveryError(
            f"could not recover run {run_id} after {attempts} attempts: {exc}"
        ) from exc

    def close(self) -> None:
        """Stop waiting between attempts and shut the worker threads down."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


class RecoveryMonitor:
    """Polls watched runs and hands corrupted ones to a :class:`RecoveryExecutor`.

    Args:
        service: the ServiceClient that creates the replacement training clients.
        policy: the recovery policy (nothing happens unless ``policy.enabled``); default the
            one the service was created with (``ServiceClient(recovery=...)``).
        rest: RestClient used to poll runs (default: one with the service's settings, closed
            by :meth:`close`).
        on_recovery, on_failure: callbacks, called on a recovery worker thread.
    """

    def __init__(
        self,
        service: ServiceClient,
        policy: RecoveryPolicy | None = None,
        rest: RestClient | None = None,
        *,
        on_recovery: Callable[[RecoveryResult], None] | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        if policy is None:
            policy = service.recovery_policy
        if policy is None:
            raise ValueError(
                "RecoveryMonitor needs a policy: pass RecoveryMonitor(service, policy) or create "
                "the service with ServiceClient(recovery=RecoveryPolicy(enabled=True, ...))"
            )
        self.policy = policy
        # A RestClient made here is ours to close; one passed in stays the caller's.
        self._owns_rest = rest is None
        self._rest = rest if rest is not None else service.create_rest_client_internal()
        self.executor = RecoveryExecutor(
            service, policy, self._rest, on_recovery=on_recovery, on_failure=on_failure
        )
        self._lock = threading.Lock()
        self._watched: dict[str, Future[RecoveryResult] | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.results: dict[str, Future[RecoveryResult]] = {}

    def watch(self, run_id: str) -> None:
        """Start watching ``run_id`` (starts the monitor thread when the policy is enabled)."""
        with self._lock:
            self._watched.setdefault(run_id, None)
            if self.policy.enabled and self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tinkex-recovery-monitor", daemon=True
                )
                self._thread.start()

    def unwatch(self, run_id: str) -> None:
        """Stop watching ``run_id``."""
        with self._lock:
            self._watched.pop(run_id, None)

    def check_now(self) -> list[str]:
        """Poll every watched run once; returns the runs found corrupted (and dispatched)."""
        with self._lock:
            pending = [run_id for run_id, fut in self._watched.items() if fut is None]
        corrupted: list[str] = []
        for run_id in pending:
            try:
                run = self._rest.get_training_run(run_id).result()
            except Exception as exc:
                poll_error: PollErrorMetadata = {
                    "run_id": run_id,
                    "error": str(exc),
                    "error_type": type(exc).__name__,
                }
                emit(RECOVERY_POLL_ERROR, None, poll_error)
                logger.debug("recovery monitor could not poll %s: %s", run_id, exc)
                continue
            if not run.corrupted:
                continue
            last = run.last_checkpoint.tinker_path if run.last_checkpoint is not None else None
            detected: DetectedMetadata = {"run_id": run_id, "last_checkpoint": last}
            emit(RECOVERY_DETECTED, None, detected)
            logger.warning("training run %s is corrupted; recovering", run_id)
            future = self.executor.submit(run)
            with self._lock:
                if run_id in self._watched:
                    self._watched[run_id] = future
            self.results[run_id] = future
            corrupted.append(run_id)
        return corrupted

    def _loop(self) -> None:
        while not self._stop.wait(self.policy.poll_interval):
            self.check_now()

    def close(self) -> None:
        """Stop the monitor thread and the executor (waits for running recoveries), and
        close the RestClient the monitor made (not one passed as ``rest``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.policy.poll_interval + 5)
        self.executor.close()
        if self._owns_rest:
            self._rest.close()

    def __enter__(self) -> RecoveryMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
