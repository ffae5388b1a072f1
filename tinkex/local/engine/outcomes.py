"""How a job ends: a result value or a :class:`Failure` (never an exception across threads).

Jobs run in worker threads; :func:`run_guarded` turns what they raise into a failure value
with the future category the client sees (``user`` for bad input, ``server`` for bugs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tinkex.local.codec import CodecError
from tinkex.local.model import ModelInputError, SampleCancelled
from tinkex.local.storage import CheckpointError

__all__ = ["Failure", "UserError", "failure_of", "run_guarded"]

logger = logging.getLogger("tinkex.local")


class UserError(ValueError):
    """A request failed because of the caller's input (future category ``user``)."""


@dataclass(frozen=True)
class Failure:
    """A job that failed: the message and the future category (``user`` or ``server``)."""

    message: str
    category: str


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; user errors and bugs become a :class:`Failure` (never raised), a cancelled
    sample None (what a job nobody waits for any more returns)."""
    try:
        return fn()
    except SampleCancelled:
        return None
    except (ModelInputError, UserError, CodecError, CheckpointError, FileExistsError) as exc:
        return Failure(str(exc), "user")
    except Exception as exc:
        logger.exception("local server job failed")
        return Failure(f"internal error: {type(exc).__name__}: {exc}", "server")


def failure_of(value: Any) -> Failure | None:
    """``value`` if it is a :class:`Failure` from :func:`run_guarded`, else None."""
    return value if isinstance(value, Failure) else None
