"""Print the public module paths and names of the installed official ``tinker`` as JSON.

Run as a script (in its own interpreter, so the official package never meets the alias):
``python _official_inventory.py`` -> ``{"version": "0.38.0", "modules": {path: [names]}}``.

A module path is public when none of its parts starts with ``_`` (and it is not one of the
package's own ``*_test`` modules). Directories without ``__init__.py`` (``tinker.lib``) count:
``pkgutil.walk_packages`` skips them, so the files are walked instead. A module's public names:

- its ``__all__`` when it has one;
- otherwise, for a package ``__init__``, the names it binds by definition, assignment or by
  importing from tinker itself (its re-exports);
- otherwise the names it defines (``def``, ``class``, top-level assignments), without type
  variables, loggers, ``None`` placeholders and ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import importlib
import json
import logging
import sys
import types
import typing
import warnings
from importlib import metadata
from pathlib import Path


def _module_paths(root: Path) -> list[str]:
    paths = set()
    for file in root.rglob("*.py"):
        parts = list(file.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        paths.add(".".join(parts))
        for depth in range(1, len(parts)):
            paths.add(".".join(parts[:depth]))
    return sorted(
        path
        for path in paths
        if not any(part.startswith("_") for part in path.split(".")) and not path.endswith("_test")
    )


def _bound_names(tree: ast.Module, *, reexports: bool) -> set[str]:
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                if isinstance(node.target, ast.Name):
                    names.add(node.target.id)
            elif isinstance(node, ast.ImportFrom) and reexports:
                if node.level > 0 or (node.module or "").startswith("tinker"):
                    names.update(alias.asname or alias.name for alias in node.names)
            elif isinstance(node, ast.If):
                test = node.test
                if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)

    visit(tree.body)
    return names


def _is_public_value(value: object) -> bool:
    if isinstance(value, types.ModuleType | typing.TypeVar | typing.ParamSpec | logging.Logger):
        return False
    return value is not None


def _public_names(path: str) -> list[str]:
    module = importlib.import_module(path)
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return sorted(declared)
    file = getattr(module, "__file__", None)
    if file is None:  # a directory without __init__.py: only submodules
        return []
    tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    is_package = Path(file).name == "__init__.py"
    names = _bound_names(tree, reexports=is_package)
    return sorted(
        name
        for name in names
        if not name.startswith("_")
        and name != "TYPE_CHECKING"
        and _is_public_value(getattr(module, name, None))
    )


def main() -> None:
    warnings.simplefilter("ignore")
    import tinker

    root = Path(tinker.__file__).parent
    modules = {path: _public_names(path) for path in _module_paths(root)}
    json.dump({"version": metadata.version("tinker"), "modules": modules}, sys.stdout)


if __name__ == "__main__":
    main()
