"""Run a ``tinkex`` command from Python and get its result as values, not text.

``invoke(["checkpoint", "list", "--run-id", run_id])`` parses and runs the command in this
process, as ``tinkex`` would with ``--format json``, and returns what that would print, decoded
(dicts, lists, strings, numbers). The result is not printed and progress bars stay off, as in
JSON mode; notices about a slow server still go to stderr. A failure raises :class:`CLIError`
with the exit status and the message the command line prints after ``Error:``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

from tinkex.cli._context import Context
from tinkex.cli._errors import describe_error
from tinkex.cli._output import Output, to_jsonable


class CLIError(Exception):
    """A ``tinkex`` command run by :func:`invoke` failed.

    Attributes:
        exit_code: what the ``tinkex`` process would exit with (1: the command failed,
            2: bad arguments or no command, 130: interrupted).
        message: the error the command line prints (without ``Error:``).
        result: what the command produced before it failed (as :func:`invoke` returns it).
    """

    def __init__(self, exit_code: int, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.result = result


def invoke(argv: Sequence[str]) -> Any:
    """Run ``tinkex ARGV`` in this process; returns the command's result as Python values.

    The result is what ``tinkex --format json ARGV`` prints, decoded: e.g. ``{"runs": [...]}``
    for ``run list``, ``{"checkpoint_path": ..., "public": True}`` for ``checkpoint publish``.
    A command that prints no result (``--help``) returns None; one that prints several results
    returns them as a list.

    Example::

        from tinkex.cli import invoke

        runs = invoke(["run", "list", "--limit", "0"])["runs"]
        invoke(["checkpoint", "delete", runs[0]["last_checkpoint"]["tinker_path"], "--yes"])

    Raises:
        CLIError: the arguments are wrong (``exit_code`` 2, argparse's message), or the command
            failed or finished with a non-zero status (``exit_code`` 1 and the error message).
    """
    from tinkex.cli.main import build_parser, run_parsed

    parser = build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            args = parser.parse_args(list(argv))
    except SystemExit as exc:
        if exc.code in (0, None):  # --help: printed, nothing to return
            return None
        lines = errors.getvalue().strip().splitlines()
        raise CLIError(2, lines[-1] if lines else "invalid arguments") from None
    args.format = "json"
    outputs: list[Output] = []
    with Context(args, sink=outputs) as context:
        try:
            status = run_parsed(parser, context, args)
        except KeyboardInterrupt:
            raise CLIError(130, "aborted", _result(outputs)) from None
        except Exception as exc:
            message = describe_error(exc, context.resolved_base_url())
            raise CLIError(1, message, _result(outputs)) from exc
    if status != 0:
        raise CLIError(
            status, f"tinkex {' '.join(argv)} exited with status {status}", _result(outputs)
        )
    return _result(outputs)


def _result(outputs: list[Output]) -> Any:
    """The outputs as ``--format json`` would print them, decoded."""
    values = [to_jsonable(output.data, timestamps=output.timestamps) for output in outputs]
    if not values:
        return None
    return values[0] if len(values) == 1 else values
