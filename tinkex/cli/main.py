"""Entry point of the ``tinkex`` command (argparse; subcommands register themselves here)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="tinkex", description="tinkex: Tinker SDK tools")
    parser.add_argument("--format", "-f", choices=("table", "json"), default="table")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tinkex.local.cli import add_serve_parser

    add_serve_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
