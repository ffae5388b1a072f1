"""Names of stored things: tinker checkpoint paths, checkpoint kinds, the owner, timestamps.

A checkpoint is addressed as ``tinker://<run>/<kind>/<name>``; ``kind`` is one of :data:`KINDS`.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = [
    "KINDS",
    "OWNER",
    "CheckpointError",
    "CheckpointPathError",
    "iso",
    "parse_tinker_path",
    "tinker_path",
]

#: The owner of everything on the local server (there is one user).
OWNER = "tml:user:local"
#: checkpoint kind in a tinker path -> ``checkpoint_type`` on the wire
KINDS: dict[str, str] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch -> ``2026-01-05T10:00:00.123456Z`` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tinker_path(run_id: str, kind: str, name: str) -> str:
    """``tinker://<run>/<kind>/<name>``."""
    return f"tinker://{run_id}/{kind}/{name}"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked (a caller error: answered 400, category user)."""


class CheckpointPathError(CheckpointError):
    """A tinker path that does not name a checkpoint (``tinker://RUN/KIND/NAME``)."""


def parse_tinker_path(path: str, field: str = "path") -> tuple[str, str, str]:
    """``tinker://RUN/KIND/NAME`` -> ``(run, kind, name)``.

    Raises:
        CheckpointPathError: malformed path; the message names ``field`` and the value.
    """
    if not isinstance(path, str) or not path.startswith("tinker://"):
        raise CheckpointPathError(
            f"{field} must be a tinker path tinker://RUN/KIND/NAME, got {path!r}"
        )
    parts = path[len("tinker://") :].split("/")
    if len(parts) != 3 or not all(parts):
        raise CheckpointPathError(
            f"{field} must have the form tinker://RUN/KIND/NAME (3 parts), got {path!r}"
        )
    if parts[1] not in KINDS:
        raise CheckpointPathError(
            f"{field} has unknown checkpoint kind {parts[1]!r} in {path!r} "
            f"(expected one of {', '.join(KINDS)})"
        )
    return parts[0], parts[1], parts[2]
