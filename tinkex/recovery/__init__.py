"""Opt-in recovery of training runs that the server marks corrupted.

A :class:`RecoveryMonitor` polls the runs you register (``GET /api/v1/training_runs/{id}``)
on a daemon thread; when a run reports ``corrupted``, its :class:`RecoveryExecutor` picks a
checkpoint (``latest``, ``best`` by a metric in the checkpoint's ``user_metadata``, or a
``specific`` path), restores it into a new training client with bounded concurrency and
retries, and calls your ``on_recovery`` / ``on_failure`` callbacks::

    policy = RecoveryPolicy(enabled=True, checkpoint_strategy="latest", poll_interval=30)
    with RecoveryMonitor(service, policy, on_recovery=swap_client) as monitor:
        monitor.watch(training_client.model_id)
        ...  # train, saving checkpoints with save_state()

Nothing happens unless ``policy.enabled`` is True. Each step emits a telemetry event
(``tinkex.recovery.detected``, ``started``, ``checkpoint_selected``, ``client_created``,
``completed``, ``failed``, ``exhausted``, ``poll_error``; see :data:`EVENTS`).
"""

from tinkex.recovery._events import (
    EVENTS,
    RECOVERY_CHECKPOINT_SELECTED,
    RECOVERY_CLIENT_CREATED,
    RECOVERY_COMPLETED,
    RECOVERY_DETECTED,
    RECOVERY_EXHAUSTED,
    RECOVERY_FAILED,
    RECOVERY_POLL_ERROR,
    RECOVERY_STARTED,
)
from tinkex.recovery._monitor import (
    RecoveryError,
    RecoveryExecutor,
    RecoveryMonitor,
    RecoveryPolicy,
    RecoveryResult,
)

__all__ = [
    "EVENTS",
    "RECOVERY_CHECKPOINT_SELECTED",
    "RECOVERY_CLIENT_CREATED",
    "RECOVERY_COMPLETED",
    "RECOVERY_DETECTED",
    "RECOVERY_EXHAUSTED",
    "RECOVERY_FAILED",
    "RECOVERY_POLL_ERROR",
    "RECOVERY_STARTED",
    "RecoveryError",
    "RecoveryExecutor",
    "RecoveryMonitor",
    "RecoveryPolicy",
    "RecoveryResult",
]
