"""The ``tinkex`` command-line interface.

``tinkex.cli.invoke(argv)`` runs one command in this process and returns its result as Python
values (:mod:`tinkex.cli._invoke`); ``tinkex.cli.main.main(argv)`` is the command line itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.cli._invoke import CLIError, invoke

__all__ = ["CLIError", "invoke"]


def __getattr__(name: str) -> Any:
    # Lazy, so `python -m tinkex.cli` and `tinkex --help` import only what they use.
    if name in __all__:
        from tinkex.cli import _invoke

        value = getattr(_invoke, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tinkex.cli' has no attribute {name!r}")
