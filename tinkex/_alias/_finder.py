"""The import hook behind the ``tinker`` alias: a meta-path finder that is also the loader.

For a path in :data:`~tinkex._alias._table.TINKER_MODULES` it makes a small module whose
attributes are tinkex's own objects, looked up on first access (PEP 562 ``__getattr__``) and
then cached in the module, so ``tinker.types.tensor_data.TensorData is tinkex.types.TensorData``
and nothing is imported before it is used. Any other ``tinker.*`` path fails with a
``ModuleNotFoundError`` that says why, instead of falling through to the official package.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import importlib.abc

from tinkex._alias._table import TINKER_MODULES, AliasModule

__all__ = ["ALIAS_ORIGIN", "TinkerAliasFinder", "is_alias_module"]

#: ``__spec__.origin`` of every alias module (shown in its ``repr``).
ALIAS_ORIGIN = "alias of tinkex"


def is_alias_module(module: object) -> bool:
    """True for a module made by :class:`TinkerAliasFinder`."""
    spec = getattr(module, "__spec__", None)
    return spec is not None and getattr(spec, "origin", None) == ALIAS_ORIGIN


def _children(path: str) -> frozenset[str]:
    prefix = path + "."
    return frozenset(
        name[len(prefix) :]
        for name in TINKER_MODULES
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    )


def _resolve(source: str, name: str) -> Any:
    module_name, _, attribute = source.partition(":")
    return getattr(importlib.import_module(module_name), attribute or name)


class TinkerAliasFinder:
    """Finds and loads ``tinker`` and its submodules as views of tinkex (see module docstring).

    A meta-path finder and loader by protocol (``find_spec``, ``create_module``,
    ``exec_module``); it does not derive from ``importlib.abc``, whose import the start-up
    hook would pay for.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec of an alias module; ``None`` for names outside ``tinker``.

        Raises:
            ModuleNotFoundError: ``fullname`` is a ``tinker.*`` path tinkex does not provide.
        """
        if fullname != "tinker" and not fullname.startswith("tinker."):
            return None
        entry = TINKER_MODULES.get(fullname)
        if entry is None:
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: tinkex.install_as_tinker() maps the public "
                f"modules of the official tinker SDK to tinkex, and {fullname!r} is not one of "
                "them (it is internal to the official SDK, or its protobuf classes, low-level "
                "resources or CLI). Use tinkex's public API instead; docs/cookbook.md lists "
                "what the alias covers.",
                name=fullname,
            )
        spec = importlib.machinery.ModuleSpec(
            fullname,
            cast("importlib.abc.Loader", self),
            origin=ALIAS_ORIGIN,
            is_package=entry.package,
        )
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """Default module creation (a plain module object)."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Fill an alias module: ``__all__``, constants and the lazy ``__getattr__``."""
        name = module.__name__
        entry = TINKER_MODULES[name]
        namespace = module.__dict__
        namespace["__doc__"] = _docstring(name, entry)
        namespace.update(entry.constants)
        namespace["__all__"] = _public_names(entry)
        namespace["__getattr__"] = _make_getattr(name, entry, namespace)
        namespace["__dir__"] = lambda: sorted(
            set(namespace) | set(namespace["__all__"]) | _children(name)
        )


def _public_names(entry: AliasModule) -> list[str]:
    if entry.exports:
        return list(entry.exports)
    if entry.forward is None:
        return []
    return list(getattr(importlib.import_module(entry.forward), "__all__", []))


def _docstring(name: str, entry: AliasModule) -> str:
    source = entry.forward or ", ".join(
        sorted({s.partition(":")[0] for s in entry.exports.values()})
    )
    origin = f" (tinkex's objects, from {source})" if source else ""
    return f"``{name}`` as provided by tinkex.install_as_tinker(){origin}."


def _make_getattr(
    module_name: str, entry: AliasModule, namespace: dict[str, Any]
) -> Callable[[str], Any]:
    children = _children(module_name)

    def __getattr__(name: str) -> Any:
        if name in children:
            value: Any = importlib.import_module(f"{module_name}.{name}")
        elif name in entry.exports:
            value = _resolve(entry.exports[name], name)
        elif entry.forward is not None and (
            not name.startswith("__") or name in namespace["__all__"]
        ):
            try:
                value = getattr(importlib.import_module(entry.forward), name)
            except AttributeError:
                raise _missing(module_name, name) from None
        else:
            raise _missing(module_name, name)
        namespace[name] = value
        return value

    return __getattr__


def _missing(module_name: str, name: str) -> AttributeError:
    return AttributeError(
        f"module {module_name!r} (tinkex's tinker alias) has no attribute {name!r}; tinkex "
        "does not provide it (docs/cookbook.md lists what the alias covers)",
        name=name,
        obj=sys.modules.get(module_name),
    )
