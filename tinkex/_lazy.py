"""Lazy exports (PEP 562): a package's public names, each imported on its first access.

``import tinkex`` must stay cheap (docs/internals.md, "Import time is a feature"), so packages
list ``name -> defining module`` once and take their module ``__getattr__`` and ``__dir__``
from :func:`lazy_exports`::

    if TYPE_CHECKING:  # what mypy and IDEs read
        from tinkex.local.server import LocalServer

    __getattr__, __dir__ = lazy_exports(__name__, globals(), {"LocalServer": ".server"})

The first access imports the module (a name starting with ``.`` is relative to the package) and
stores the value in the package's namespace, so later accesses are plain lookups. Unknown names
raise ``AttributeError: module 'tinkex.local' has no attribute 'Nope'`` with ``name`` and ``obj``
set, as Python's own (so its "Did you mean" hint works, from ``__dir__``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    table: Mapping[str, str],
    *,
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` pair of ``package`` for the names of ``table``.

    ``namespace`` is the package's ``globals()``; ``table`` maps each lazy name to the module
    that defines it; ``submodules`` are names that are the package's own submodules
    (``tinkex.types``), imported as such. ``__dir__`` lists the namespace and every lazy name.
    """
    modules = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module, package), name)
        elif name in modules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            message = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(message, name=name, obj=sys.modules.get(package))
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(namespace.keys() | table.keys() | modules)

    return __getattr__, __dir__
