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

Nothing happens unless ``policy.enabled`` is True.
"""

from tinkex.recovery._monitor import (
    RECOVERY_FAILED,
    RECOVERY_STARTED,
    RECOVERY_SUCCEEDED,
    RUN_CORRUPTED,
    RecoveryError,
    RecoveryExecutor,
    RecoveryMonitor,
    RecoveryPolicy,
    RecoveryResult,
)

__all__ = [
    "RECOVERY_FAILED",
    "RECOVERY_STARTED",
    "RECOVERY_SUCCEEDED",
    "RUN_CORRUPTED",
    "RecoveryError",
    "RecoveryExecutor",
    "RecoveryMonitor",
    "RecoveryPolicy",
    "RecoveryResult",
]
