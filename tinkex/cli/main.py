"""Entry point of the ``tinkex`` command (argparse; subcommands register themselves here).

Command modules import only the standard library at module level; the SDK (and numpy) are
imported inside the handlers, so ``tinkex --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from tinkex.cli import _commands
from tinkex.cli._context import CommandError, Context


def _common_options() -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand (``tinkex run list -f json``)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options (also accepted before the command)")
    _add_connection_options(group, default=argparse.SUPPRESS)
    return common


def _add_connection_options(parser: argparse._ActionsContainer, default: object) -> None:
    parser.add_argument(
        "--format",
        "-f",
        choices=("table", "json"),
        default=default,
        help="output format (default: table)",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help="server URL (default: $TINKER_BASE_URL, else the hosted Tinker service)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        default=default,
        help="API key (default: $TINKER_API_KEY; any tml-... key works on a local server)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tinkex",
        description="tinkex: manage Tinker checkpoints, runs and sessions, sample from models, "
        "and run a local Tinker-compatible server.",
        epilog="Run 'tinkex COMMAND --help' for the options of a command.",
    )
    _add_connection_options(parser, default=None)
    parser.set_defaults(format="table")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tinkex.local.cli import add_serve_parser

    add_serve_parser(subparsers)
    _commands.register_all(subparsers, _common_options())
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Callable[[Context, argparse.Namespace], int | None] | None = getattr(args, "cmd", None)
    handler = getattr(args, "handler", None)
    if command is None and handler is None:
        group_parser = getattr(args, "group_parser", parser)
        group_parser.print_help(sys.stderr)
        return 2
    try:
        if command is not None:
            return int(command(Context(args), args) or 0)
        return int(handler(args) or 0)  # type: ignore[misc]
    except KeyboardInterrupt:
        print("Aborted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinkex run list | head`
        sys.stderr.close()
        return 1
    except Exception as exc:  # every failure becomes one clear line
        if os.environ.get("TINKEX_DEBUG"):
            import traceback

            traceback.print_exc()
        print(f"Error: {describe_error(exc, args)}", file=sys.stderr)
        return 1


def describe_error(exc: BaseException, args: argparse.Namespace | None = None) -> str:
    """One line that says what failed and, where it helps, what to do about it."""
    from tinkex._exceptions import (
        APIConnectionError,
        APIStatusError,
        AuthenticationError,
        RequestFailedError,
    )

    if isinstance(exc, CommandError):
        return str(exc)
    if isinstance(exc, AuthenticationError):
        return f"the server rejected the API key (HTTP 401){_where(exc)}; check TINKER_API_KEY"
    if isinstance(exc, APIStatusError):
        return f"{_detail(exc.body) or exc.message} (HTTP {exc.status_code}{_where(exc, ', ')})"
    if isinstance(exc, APIConnectionError):
        base_url = (getattr(args, "base_url", None) if args else None) or os.environ.get(
            "TINKER_BASE_URL", "the default Tinker URL"
        )
        return (
            f"cannot reach the server at {base_url}: {_connection_reason(exc.message)}"
            " (start one with 'tinkex serve' and set TINKER_BASE_URL)"
        )
    if isinstance(exc, RequestFailedError):
        return f"request {exc.request_id} failed: {exc.message}"
    text = " ".join(str(exc).split())
    if isinstance(exc, ValueError | TypeError | OSError | RuntimeError | TimeoutError) and text:
        return text if not isinstance(exc, TimeoutError) else f"timed out: {text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connection_reason(message: str) -> str:
    """The useful end of a urllib3 connection error (``[Errno 111] Connection refused``)."""
    import re

    found: list[str] = re.findall(r"\[Errno -?\d+\] [^'\")]+", message)
    if found:
        return found[-1].strip()
    if "timed out" in message.lower():
        return "connection timed out"
    return " ".join(message.split())


def _where(exc: BaseException, sep: str = " on ") -> str:
    request = getattr(exc, "request", None)
    return f"{sep}{request}" if request else ""


def _detail(body: object) -> str | None:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if detail:
            return " ".join(str(detail).split())
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
