"""Extraction of the code blocks of the Markdown guides (shared by the docs tests).

Convention, for the fenced blocks of ``docs/*.md`` and ``README.md``:

* every fence names its language; ``text`` marks a synopsis or sample output (not code);
* ``python`` blocks run by default: all runnable blocks of a page are executed in order, in one
  namespace, in a fresh interpreter whose ``TINKER_BASE_URL``/``TINKER_API_KEY`` point at a
  local server;
* ``bash`` blocks run by default too, each on its own with ``bash -euo pipefail`` (the
  ``tinkex`` command on ``PATH``), against the same local server, which already holds a
  training run with training and sampler checkpoints;
* ``<!-- not-run: REASON -->`` on the line(s) just before the fence: not executed; REASON is
  required (e.g. it needs the hosted service or starts a long-running server);
* ``<!-- pytest -->`` just before a python fence: the block is a pytest module; it is written to
  a temporary ``test_*.py`` file and run with pytest (the ``tinker_server`` fixture is
  available).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: Pages whose blocks are checked; internals.md is a contributor map, not a user guide.
EXCLUDED = {"internals.md"}

_FENCE = re.compile(r"^```([\w-]*)\s*$")
#: Languages whose blocks are executed.
RUNNABLE = frozenset({"python", "bash"})
#: Languages allowed for blocks that are not code.
NOT_CODE = frozenset({"text"})
_MARKER = re.compile(r"^<!--\s*(not-run|pytest)\s*(?::\s*(.*?))?\s*-->\s*$")


@dataclasses.dataclass
class Block:
    """One fenced code block."""

    page: pathlib.Path
    line: int  # 1-based line of the first code line
    lang: str
    code: str
    marker: str | None  # "not-run" | "pytest" | None
    reason: str | None

    @property
    def label(self) -> str:
        return f"{self.page.name}:{self.line}"


def pages() -> list[pathlib.Path]:
    """Every guide plus the README."""
    found = sorted(p for p in DOCS.glob("*.md") if p.name not in EXCLUDED)
    return [*found, ROOT / "README.md"]


def blocks(page: pathlib.Path) -> list[Block]:
    """The fenced blocks of ``page`` with their markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        lang = match.group(1)
        marker = reason = None
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0 and (m := _MARKER.match(lines[j].strip())):
            marker, reason = m.group(1), m.group(2)
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(lines[start:end]) + "\n"
        found.append(Block(page, start + 1, lang, code, marker, reason))
        i = end + 1
    return found
