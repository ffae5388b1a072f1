"""Import every official module path under ``tinkex.install_as_tinker()`` and report as JSON.

Run as a script in a fresh interpreter: ``python _check_alias.py INVENTORY.json``, where the
inventory is what ``_official_inventory.py`` printed. Prints::

    {"missing_modules": {path: error}, "missing_names": {path: [names]},
     "not_tinkex": ["path.name: why"], "official_loaded": [module names]}

``not_tinkex`` lists names that resolve to something other than tinkex's own object: a
class or function from outside tinkex, or a different object than the same name in
``tinkex`` / ``tinkex.types``. ``official_loaded`` lists modules of the official package's
directory that ended up in ``sys.modules`` (there must be none).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any


def _official_dir() -> Path:
    spec = importlib.util.find_spec("tinker")  # finds without importing it
    assert spec is not None and spec.origin is not None, "the official tinker is not installed"
    return Path(spec.origin).parent


def _identity_problem(path: str, name: str, value: Any) -> str | None:
    import tinkex
    import tinkex.types

    if isinstance(value, types.ModuleType) or name.startswith("__"):
        return None
    for reference in (tinkex, tinkex.types):
        if name in dir(reference):
            if getattr(reference, name) is value:
                return None
            return f"{path}.{name} is not {reference.__name__}.{name}"
    module = getattr(value, "__module__", "")
    if isinstance(value, type | types.FunctionType) and not module.startswith("tinkex"):
        return f"{path}.{name} is {value!r} from {module!r}, not a tinkex object"
    return None


def main() -> None:
    inventory: dict[str, list[str]] = json.loads(Path(sys.argv[1]).read_text())["modules"]
    official_dir = _official_dir()

    import tinkex

    tinkex.install_as_tinker()
    missing_modules: dict[str, str] = {}
    missing_names: dict[str, list[str]] = {}
    not_tinkex: list[str] = []
    for path, names in sorted(inventory.items()):
        try:
            module = importlib.import_module(path)
        except ImportError as exc:
            missing_modules[path] = f"{type(exc).__name__}: {exc}"
            continue
        absent = [name for name in names if not hasattr(module, name)]
        if absent:
            missing_names[path] = absent
        for name in names:
            if name in absent:
                continue
            problem = _identity_problem(path, name, getattr(module, name))
            if problem:
                not_tinkex.append(problem)
    official_loaded = sorted(
        name
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
        and Path(module.__file__).resolve().is_relative_to(official_dir.resolve())
    )
    json.dump(
        {
            "missing_modules": missing_modules,
            "missing_names": missing_names,
            "not_tinkex": not_tinkex,
            "official_loaded": official_loaded,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
