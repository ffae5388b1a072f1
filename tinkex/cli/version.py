"""``tinkex version [--json]``: the tinkex version, the Tinker API it speaks, the git commit."""

from __future__ import annotations

import argparse
import os
import subprocess
from typing import Any

from tinkex.cli._commands import add_command
from tinkex.cli._context import Context
from tinkex.cli._output import Output


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``version``."""
    p = add_command(subparsers, "version", "Show version information.", common)
    p.add_argument("--json", action="store_true", help="print JSON (same as --format json)")
    p.set_defaults(cmd=cmd_version)


def git_commit() -> str | None:
    """The commit of the source checkout tinkex runs from, or None (e.g. a wheel install)."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checkout = os.path.dirname(package_dir)
    if not os.path.exists(os.path.join(checkout, ".git")):
        return None
    try:
        done = subprocess.run(
            ["git", "-C", checkout, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def cmd_version(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex version``."""
    import platform

    from tinkex._version import TINKER_SDK_VERSION, __version__

    commit = git_commit()
    data = {
        "tinkex": __version__,
        "tinker_api": TINKER_SDK_VERSION,
        "git_commit": commit,
        "python": platform.python_version(),
    }
    text = f"tinkex {__version__} (Tinker API {TINKER_SDK_VERSION}"
    text += f", commit {commit[:12]})" if commit else ")"
    if args.json:
        ctx.format = "json"
    ctx.emit(Output(data, text=text))
