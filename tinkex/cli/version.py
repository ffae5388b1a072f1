"""``tinkex version [--json]``: ``tinkex <version>``, like ``tinker version`` prints
``tinker <version>``; the JSON form adds the Tinker API version, the git commit and Python."""

from __future__ import annotations

import argparse
import os
import subprocess
from typing import Any

from tinkex.cli._context import Context
from tinkex.cli._output import Output
from tinkex.cli._parsers import add_command


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``version``."""
    p = add_command(subparsers, "version", "Show version information.", common)
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


def version_info() -> dict[str, Any]:
    """``{"tinkex", "tinker_api", "git_commit", "python"}``."""
    import platform

    from tinkex._version import TINKER_SDK_VERSION, __version__

    return {
        "tinkex": __version__,
        "tinker_api": TINKER_SDK_VERSION,
        "git_commit": git_commit(),
        "python": platform.python_version(),
    }


def cmd_version(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex version``."""
    info = version_info()
    ctx.emit(Output(info, text=f"tinkex {info['tinkex']}"))
