"""The ``tinkex`` command-line interface.

``tinkex.cli.invoke(argv)`` runs one command in this process and returns its result as Python
values (:mod:`tinkex.cli._invoke`); ``tinkex.cli.main.main(argv)`` is the command line itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.cli._invoke import CLIError, invoke

__all__ = ["CLIError", "invoke"]

# Lazy, so `python -m tinkex.cli` and `tinkex --help` import only what they use.
__getattr__, __dir__ = lazy_exports(__name__, globals(), dict.fromkeys(__all__, "._invoke"))
