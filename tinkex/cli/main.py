"""Entry point of the ``tinkex`` command: builds the argparse tree and runs one command.

``main`` collects the command modules listed in :data:`COMMAND_MODULES`; each has a
``register(subparsers, common)`` function and imports only the standard library at module level
(the SDK, numpy and requests are imported inside the handlers), so ``tinkex --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType

from tinkex.cli._context import Context
from tinkex.cli._errors import describe_error
from tinkex.cli._parsers import positive_float
from tinkex.cli.version import cmd_version

#: The command modules, in the order ``tinkex --help`` lists them (``serve`` comes first).
COMMAND_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"tinkex.cli.{name}")
    for name in (
        "auth",
        "billing",
        "checkpoint",
        "doctor",
        "model",
        "run",
        "sample",
        "session",
        "version",
    )
)


def _common_options() -> argparse.ArgumentParser:
    """Options accepted both before and after the subcommand (``tinkex run list -f json``)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("global options (also accepted before the command)")
    _add_global_options(group, default=argparse.SUPPRESS)
    return common


def _add_global_options(parser: argparse._ActionsContainer, default: object) -> None:
    parser.add_argument(
        "--format",
        "-f",
        choices=("table", "json"),
        default=default,
        help="output format (default: table)",
    )
    parser.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        default=default,
        help="print JSON (same as --format json)",
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
        help="API key (default: $TINKER_API_KEY, else the key stored by 'tinkex auth login')",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        default=default,
        help="give up when the command has not finished after SECONDS (default: no limit)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="tinkex",
        description="tinkex: manage Tinker checkpoints, runs and sessions, sample from models, "
        "check your setup, and run a local Tinker-compatible server.",
        epilog="Run 'tinkex COMMAND --help' for the options of a command.",
    )
    _add_global_options(parser, default=None)
    parser.add_argument(
        "--version", action="store_true", help="print the version (same as 'tinkex version')"
    )
    parser.set_defaults(format="table")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tinkex.local.cli import add_serve_parser

    add_serve_parser(subparsers)
    common = _common_options()
    for module in COMMAND_MODULES:
        module.register(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with Context(args) as context:
        try:
            return run_parsed(parser, context, args)
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
            print(f"Error: {describe_error(exc, context.resolved_base_url())}", file=sys.stderr)
            return 1


def run_parsed(parser: argparse.ArgumentParser, context: Context, args: argparse.Namespace) -> int:
    """Run the command ``args`` names (within ``--timeout``); returns its exit status. Without
    a command, prints the help of the group given (or of ``tinkex``) on stderr and returns 2."""
    if args.version and args.command is None:
        args.cmd = cmd_version
    command: Callable[[Context, argparse.Namespace], int | None] | None = getattr(args, "cmd", None)
    handler = getattr(args, "handler", None)
    if command is None and handler is None:
        group_parser = getattr(args, "group_parser", parser)
        group_parser.print_help(sys.stderr)
        return 2
    if command is None:
        return int(handler(args) or 0)  # type: ignore[misc]
    timeout: float | None = getattr(args, "timeout", None)
    if timeout is None:
        return int(command(context, args) or 0)
    return _run_with_deadline(lambda: command(context, args), timeout, context.abandon)


def _run_with_deadline(
    run_command: Callable[[], int | None], timeout: float, abandon: Callable[[], None]
) -> int:
    """Run the command on a daemon thread; a command still running after ``timeout`` seconds
    is abandoned (``abandon()``, then TimeoutError: exit status 1; its threads are daemons,
    so the process exits)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["result"] = run_command()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="tinkex-cli-command", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        abandon()
        raise TimeoutError(f"the command did not finish within {timeout:g} s (--timeout)")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    result = outcome.get("result")
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
