"""Registration of the ``tinkex`` subcommands (parsers only; handlers import the SDK lazily)."""

from __future__ import annotations

import argparse
from typing import Any


def register_all(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add every subcommand except ``serve`` (which ``tinkex.local.cli`` registers)."""
    from tinkex.cli import checkpoint, model, run, sample, session, version

    checkpoint.register(subparsers, common)
    run.register(subparsers, common)
    session.register(subparsers, common)
    model.register(subparsers, common)
    sample.register(subparsers, common)
    version.register(subparsers, common)


def add_group(
    subparsers: Any, name: str, help_text: str, common: argparse.ArgumentParser
) -> tuple[argparse.ArgumentParser, Any]:
    """A command group (``tinkex checkpoint ...``) and its own subparsers."""
    group: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, parents=[common]
    )
    group.set_defaults(group_parser=group)
    return group, group.add_subparsers(dest=f"{name}_command", metavar="COMMAND")


def add_command(
    subparsers: Any,
    name: str,
    help_text: str,
    common: argparse.ArgumentParser,
    *,
    description: str | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """One leaf command with the shared options and a readable help layout."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description or help_text,
        epilog=epilog,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, got 0")
    return value
