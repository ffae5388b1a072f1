"""Run a program unchanged with tinkex as ``tinker``: ``python -m tinkex.as_tinker``.

::

    python -m tinkex.as_tinker -m MODULE [ARGS...]     # as `python -m MODULE ARGS...`
    python -m tinkex.as_tinker SCRIPT.py [ARGS...]     # as `python SCRIPT.py ARGS...`

The program sees the ``sys.argv``, ``__main__``, ``sys.path[0]``, exit status and tracebacks
it would see when started by ``python`` itself, except that ``import tinker`` gives tinkex
(:func:`tinkex.install_as_tinker`). ``TINKEX_AS_TINKER=1`` is set in the environment, so every
Python subprocess it starts — ``multiprocessing`` / ``ProcessPoolExecutor`` workers with the
"spawn" start method included — gets tinkex as ``tinker`` too, through the start-up hook
installed with tinkex (``tinkex-as-tinker.pth``).
"""

from __future__ import annotations

import builtins
import importlib.machinery
import importlib.util
import os
import runpy
import sys
import types
import zipfile
from collections.abc import Sequence
from types import TracebackType
from typing import NoReturn

from tinkex._alias import ENV_VAR, TinkerAlreadyImportedError, install_as_tinker

__all__ = ["main"]

USAGE = f"""\
usage: python -m tinkex.as_tinker -m MODULE [ARGS...]
       python -m tinkex.as_tinker SCRIPT [ARGS...]

Runs MODULE (as `python -m MODULE`) or SCRIPT (as `python SCRIPT`) with tinkex installed as
`tinker`, in this process and in every Python subprocess it starts ({ENV_VAR}=1).
"""


def main(argv: Sequence[str] | None = None) -> None:
    """Run the program named by ``argv`` (default ``sys.argv[1:]``); see the module docstring.

    Exits with status 2 on a usage error or a missing script, 1 when MODULE is not found,
    like ``python`` does; otherwise the program's own exit status stands. An exception the
    program does not handle is reported through ``sys.excepthook`` without this launcher's
    frames, and the status is 1.
    """
    try:
        _dispatch(list(sys.argv[1:] if argv is None else argv))
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        # The hook prints the exception's own traceback: trim that one.
        exc = exc.with_traceback(_program_frames(exc.__traceback__))
        sys.excepthook(type(exc), exc, exc.__traceback__)
        raise SystemExit(1) from None


def _dispatch(args: list[str]) -> None:
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        raise SystemExit(0 if args else 2)
    if args[0].startswith("-m"):
        module = args[0][2:] or (args[1] if len(args) > 1 else "")
        rest = args[1:] if args[0] != "-m" else args[2:]
        if not module:
            _fail(2, "Argument expected for the -m option")
        _install()
        _run_module(module, rest)
    elif args[0].startswith("-"):
        _fail(2, f"unknown option {args[0]!r}; see `python -m tinkex.as_tinker --help`")
    else:
        _install()
        _run_script(args[0], args[1:])


def _program_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without its leading frames of this module and of runpy."""
    launcher = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename in launcher:
        tb = tb.tb_next
    return tb


def _install() -> None:
    os.environ[ENV_VAR] = "1"
    try:
        install_as_tinker()
    except TinkerAlreadyImportedError as exc:
        _fail(1, str(exc))


def _run_module(module: str, args: list[str]) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        found = False
    if not found:
        _fail(1, f"No module named {module}")
    sys.argv = [module, *args]  # run_module replaces argv[0] with the module's file
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def _run_script(script: str, args: list[str]) -> None:
    if not os.path.exists(script):
        _fail(2, f"can't open file {os.path.abspath(script)!r}: No such file or directory")
    sys.argv = [script, *args]
    if os.path.isdir(script) or zipfile.is_zipfile(script):
        if not sys.flags.safe_path:
            del sys.path[0]  # run_path puts the directory or zip file there
        runpy.run_path(script, run_name="__main__")
        return
    path = os.path.abspath(script)
    if not sys.flags.safe_path:
        # `python -m` put the cwd first on sys.path; `python SCRIPT` puts the script's
        # directory there instead.
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    with open(path, "rb") as file:
        code = compile(file.read(), path, "exec", dont_inherit=True)
    # The script's module becomes __main__ for good, as with `python SCRIPT`.
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def _fail(status: int, message: str) -> NoReturn:
    print(f"{sys.executable}: {message}", file=sys.stderr)
    raise SystemExit(status)


if __name__ == "__main__":
    main()
