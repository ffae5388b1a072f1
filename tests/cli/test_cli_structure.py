"""The ``tinkex.cli`` package is a one-way import tree: ``main`` collects the command modules,
command modules use the shared helpers, and no helper imports a command (issue 9.6)."""

from __future__ import annotations

import ast
import pathlib

import tinkex.cli

CLI_DIR = pathlib.Path(tinkex.cli.__file__).parent


def _cli_imports(path: pathlib.Path) -> set[str]:
    """The ``tinkex.cli.*`` modules a file imports anywhere (module level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tinkex.cli":
                found.update(f"tinkex.cli.{alias.name}" for alias in node.names)
            elif node.module.startswith("tinkex.cli."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tinkex.cli."))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {f"tinkex.cli.{p.stem}": p for p in CLI_DIR.glob("*.py") if p.stem != "__init__"}
    return {name: _cli_imports(path) & modules.keys() for name, path in modules.items()}


def test_cli_modules_import_each_other_without_cycles():
    graph = _graph()
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target) :], target] if target in trail else [target]
                raise AssertionError("import cycle: " + " -> ".join([*cycle]))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_main_collects_every_command_module():
    from tinkex.cli import main

    registered = {module.__name__ for module in main.COMMAND_MODULES}
    commands = {
        f"tinkex.cli.{p.stem}"
        for p in CLI_DIR.glob("*.py")
        if not p.stem.startswith("_") and p.stem not in ("main",)
    }
    assert registered == commands
