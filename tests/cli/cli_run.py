"""The ``tinkex`` command run as a subprocess (``python -m tinkex.cli``) by the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

__all__ = ["ok", "run_cli"]


def run_cli(
    *args: str,
    env: Mapping[str, str],
    input: str | None = None,
    cwd: str | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tinkex.cli ARGS`` with ``env``; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "tinkex.cli", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        input=input,
        cwd=cwd,
        timeout=timeout,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """Assert the command exited 0 (else show its exit status and output); returns stdout."""
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done.stdout
