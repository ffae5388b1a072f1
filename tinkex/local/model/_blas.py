"""Keep BLAS single-threaded while the tiny model computes.

The model's matrices are tiny (d_model 64); a multi-threaded BLAS spends its time spinning up
and synchronising threads, and with several model workers (and client threads) on a 2-core
machine it oversubscribes the CPU: a 32 x 128-token training step measured ~5 s instead of
~0.25 s. On first use the model pins BLAS to one thread for the whole process (BLAS thread
counts are process-global), via ``threadpoolctl``.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["pin_blas_single_thread"]

_lock = threading.Lock()
_limits: Any = None


def pin_blas_single_thread() -> None:
    """Limit BLAS to one thread, once per process (no-op without threadpoolctl)."""
    global _limits
    if _limits is not None:
        return
    with _lock:
        if _limits is not None:
            return
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _limits = False
            return
        _limits = threadpool_limits(limits=1, user_api="blas")
