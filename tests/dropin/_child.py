"""Run Python in a fresh interpreter: how the ``tinker`` alias tests check things.

The alias changes how ``import tinker`` resolves for the whole interpreter, so no test installs
it in the pytest process (other tests use the official package there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).parent
TIMEOUT = 60


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without ``TINKEX_AS_TINKER`` (so children start without the alias)."""
    env = {k: v for k, v in os.environ.items() if k != "TINKEX_AS_TINKER"}
    env.update(extra or {})
    return env


def run_python(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    python: str = sys.executable,
) -> subprocess.CompletedProcess[str]:
    """``python ARGS...`` with a bounded run time; output captured as text."""
    return subprocess.run(
        [python, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(env),
        cwd=cwd,
        check=False,
    )


def run_code(
    code: str, *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -c CODE`` (dedented)."""
    return run_python(["-c", textwrap.dedent(code)], env=env)


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    """The child's stdout; fails with its stderr when it exited non-zero."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout
