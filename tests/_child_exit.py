"""How long a child process takes to exit once it has said it is done.

A test of a prompt exit times the exit alone: from the moment the child prints a marker line
(its work done, or its error reported) to the moment it has exited. Start-up, imports and the
work before the marker are left out, so the figure does not grow with the machine's load the
way a whole run's wall time does. ``pytest`` finds this module through
``pythonpath = ["tests"]``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ExitTiming", "time_exit_after"]


@dataclass(frozen=True)
class ExitTiming:
    """A finished child: its exit status, its output (stdout and stderr, interleaved) and the
    seconds from the first line holding the marker to its exit (None: it never printed it)."""

    returncode: int
    output: str
    exit_seconds: float | None


def time_exit_after(
    args: Sequence[str],
    marker: str,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 90,
) -> ExitTiming:
    """Run ``args``; time its exit after the first output line containing ``marker``.

    The child is killed after ``timeout`` seconds in all (its status is then negative).
    """
    proc = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else dict(env),
    )
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    lines: list[str] = []
    seen_at: float | None = None
    assert proc.stdout is not None
    with proc.stdout:
        try:
            for line in iter(proc.stdout.readline, ""):
                lines.append(line)
                if seen_at is None and marker in line:
                    seen_at = time.monotonic()
            returncode = proc.wait()
            exited_at = time.monotonic()
        finally:
            killer.cancel()
    seconds = None if seen_at is None else exited_at - seen_at
    return ExitTiming(returncode, "".join(lines), seconds)
