"""The telemetry events of recovery: one name, and one typed payload, per step.

Emitted through :func:`tinkex.telemetry.emit` (handlers receive ``(event, measurements,
metadata)``). Every executor event carries ``attempt`` in its measurements and ``run_id`` and
``strategy`` in its metadata. The order for one recovery is::

    detected -> started -> checkpoint_selected -> client_created -> completed
                       \\-> failed (-> started ... again, after the back-off) -> exhausted

``poll_error`` stands alone: the monitor could not read a run's status (it keeps watching).
"""

from __future__ import annotations

from typing import TypedDict

RECOVERY_DETECTED = "tinkex.recovery.detected"
RECOVERY_STARTED = "tinkex.recovery.started"
RECOVERY_CHECKPOINT_SELECTED = "tinkex.recovery.checkpoint_selected"
RECOVERY_CLIENT_CREATED = "tinkex.recovery.client_created"
RECOVERY_COMPLETED = "tinkex.recovery.completed"
RECOVERY_FAILED = "tinkex.recovery.failed"
RECOVERY_EXHAUSTED = "tinkex.recovery.exhausted"
RECOVERY_POLL_ERROR = "tinkex.recovery.poll_error"

#: Every recovery event name, in the order of a recovery.
EVENTS: tuple[str, ...] = (
    RECOVERY_DETECTED,
    RECOVERY_STARTED,
    RECOVERY_CHECKPOINT_SELECTED,
    RECOVERY_CLIENT_CREATED,
    RECOVERY_COMPLETED,
    RECOVERY_FAILED,
    RECOVERY_EXHAUSTED,
    RECOVERY_POLL_ERROR,
)


def attempt_measurements(attempt: int) -> dict[str, float]:
    """The measurements of every executor event: ``{"attempt": n}`` (1-based)."""
    return {"attempt": attempt}


class DetectedMetadata(TypedDict):
    """``detected``: the monitor found the run marked ``corrupted``."""

    run_id: str
    last_checkpoint: str | None  # the run's own last checkpoint path, when it reports one


class PollErrorMetadata(TypedDict):
    """``poll_error``: reading the run's status failed; the monitor polls it again later."""

    run_id: str
    error: str
    error_type: str


class AttemptMetadata(TypedDict):
    """``started``: an attempt begins."""

    run_id: str
    strategy: str


class CheckpointMetadata(TypedDict):
    """``checkpoint_selected``: the policy picked ``checkpoint``."""

    run_id: str
    strategy: str
    checkpoint: str


class ClientMetadata(TypedDict):
    """``client_created`` and ``completed``: the replacement client (run ``new_run_id``)."""

    run_id: str
    strategy: str
    checkpoint: str
    new_run_id: str


class FailedMetadata(TypedDict):
    """``failed``: the attempt failed; ``will_retry`` says whether another one follows."""

    run_id: str
    strategy: str
    error: str
    error_type: str
    will_retry: bool


class ExhaustedMetadata(TypedDict):
    """``exhausted``: recovery gave up (attempts spent, or no checkpoint can ever fit)."""

    run_id: str
    strategy: str
    error: str
    error_type: str
