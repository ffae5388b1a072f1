"""argparse helpers shared by the command modules: groups, leaf commands, value types.

Only the standard library is imported here; ``tinkex.cli.main`` collects the command modules.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tinkex.cli._context import CommandError

if TYPE_CHECKING:
    from tinkex.types import ParsedCheckpointTinkerPath

T = TypeVar("T")


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


def _parsed(text: str, cast: Callable[[str], T], noun: str) -> T:
    """``cast(text)``; an ``ArgumentTypeError`` "expected NOUN, got 'TEXT'" when it fails."""
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _parsed(text, int, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, got 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (seconds, for example)."""
    value = _parsed(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0 (a temperature, for example)."""
    value = _parsed(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def bounded_int(low: int, high: int, describe: str) -> Callable[[str], int]:
    """argparse type: an integer in ``[low, high]``; ``describe`` names the range in errors."""

    def parse(text: str) -> int:
        value = non_negative_int(text) if low >= 0 else int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {describe} ({low}..{high}), got {value}")
        return value

    return parse


def add_access_scope(parser: argparse.ArgumentParser) -> None:
    """The ``--access-scope owned|accessible`` option of the listing commands."""
    parser.add_argument(
        "--access-scope",
        choices=("owned", "accessible"),
        default="owned",
        help="owned: yours (default); accessible: also what others shared with you",
    )


def parse_path(path: str) -> ParsedCheckpointTinkerPath:
    """Parse a ``tinker://`` checkpoint path, turning a malformed one into a CommandError."""
    from tinkex.types import ParsedCheckpointTinkerPath

    try:
        return ParsedCheckpointTinkerPath.from_tinker_path(path)
    except ValueError as exc:
        raise CommandError(f"invalid checkpoint path {path!r}: {exc}") from None
