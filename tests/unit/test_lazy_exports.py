"""The lazily exported packages (tinkex._lazy): every public name resolves, is listed by dir(),
is imported only when first used, and unknown names fail as Python's own attribute errors."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from tinkex._lazy import lazy_exports

PACKAGES = (
    "tinkex",
    "tinkex.types",
    "tinkex.clients",
    "tinkex.telemetry",
    "tinkex.tokenizer",
    "tinkex.regularizers",
    "tinkex.cli",
    "tinkex.local",
)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves_and_is_listed(package: str) -> None:
    module = importlib.import_module(package)
    listed = dir(module)
    missing = [name for name in module.__all__ if name not in listed]
    assert missing == []
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unknown_name_is_an_attribute_error_naming_module_and_name(package: str) -> None:
    module = importlib.import_module(package)
    with pytest.raises(AttributeError) as info:
        module.no_such_name  # noqa: B018
    assert str(info.value) == f"module {package!r} has no attribute 'no_such_name'"
    assert (info.value.name, info.value.obj) == ("no_such_name", module)
    assert not hasattr(module, "no_such_name")


def test_importing_the_packages_loads_none_of_their_lazy_modules() -> None:
    code = f"""
import json, sys
for package in {PACKAGES!r}:
    __import__(package)
lazy = ["tinkex.clients.service", "tinkex.clients.sampling", "tinkex.types._tensor",
        "tinkex.types._datum", "tinkex.telemetry._reporter", "tinkex.tokenizer._loader",
        "tinkex.regularizers._penalties", "tinkex.cli._invoke", "tinkex.local.server"]
before = [name for name in lazy if name in sys.modules]
import tinkex.local, tinkex.cli
tinkex.local.LocalServer, tinkex.cli.invoke, tinkex.ServiceClient
print(json.dumps([before, [name for name in lazy if name in sys.modules]]))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    assert before == []
    assert {"tinkex.local.server", "tinkex.cli._invoke", "tinkex.clients.service"} <= set(after)


def test_the_first_access_imports_and_keeps_the_value() -> None:
    namespace: dict[str, object] = {}
    getattr_, dir_ = lazy_exports(
        "tinkex", namespace, {"lazy_exports": "._lazy", "dumps": "json"}, submodules=["types"]
    )
    assert dir_() == ["dumps", "lazy_exports", "types"]
    assert getattr_("lazy_exports") is lazy_exports  # relative to the package
    assert getattr_("dumps") is json.dumps  # absolute
    assert getattr_("types") is importlib.import_module("tinkex.types")
    assert namespace == {
        "lazy_exports": lazy_exports,
        "dumps": json.dumps,
        "types": importlib.import_module("tinkex.types"),
    }
