"""Rendering of command results: aligned text tables or JSON, plus value formatters.

Every command builds a :class:`Output` (a JSON-able ``data`` value and an optional table) and
hands it to :func:`emit`, which picks the format chosen with the global ``--format`` flag.
Only the standard library is imported here, so ``tinkex --help`` stays fast.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


@dataclasses.dataclass
class Table:
    """A table: column headers and rows of already formatted cells."""

    columns: list[str]
    rows: list[list[str]]
    title: str | None = None


@dataclasses.dataclass
class Output:
    """The result of a command.

    Attributes:
        data: what ``--format json`` prints (made JSON-able by :func:`to_jsonable`).
        table: what ``--format table`` prints; when None, ``text`` is printed instead.
        text: plain text for table mode (used when there is no table, or after it).
    """

    data: Any
    table: Table | None = None
    text: str | None = None


def to_jsonable(value: Any) -> Any:
    """Convert SDK values (attrs/dataclass instances, datetimes, numpy values) to JSON types."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    fields = _public_fields(value)
    if fields is not None:
        return {name: to_jsonable(v) for name, v in fields.items()}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return to_jsonable(tolist())
    return str(value)


def _public_fields(value: Any) -> dict[str, Any] | None:
    attrs_fields = getattr(type(value), "__attrs_attrs__", None)
    if attrs_fields is not None:
        return {f.name: getattr(value, f.name) for f in attrs_fields if not f.name.startswith("_")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if not f.name.startswith("_")
        }
    model_dump = getattr(value, "model_dump", None)  # pydantic objects (official tinker types)
    if callable(model_dump):
        dumped = model_dump()
        return dict(dumped) if isinstance(dumped, Mapping) else None
    return None


def render_table(table: Table) -> str:
    """Render ``table`` as aligned plain text (no colours, safe in logs and pipes)."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines: list[str] = []
    if table.title:
        lines.append(table.title)
    lines.append("  ".join(c.ljust(w) for c, w in zip(table.columns, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in table.rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not table.rows:
        lines.append("(none)")
    return "\n".join(lines)


def emit(output: Output, fmt: str, stream: TextIO | None = None) -> None:
    """Print ``output`` in format ``fmt`` (``"table"`` or ``"json"``)."""
    out = stream if stream is not None else sys.stdout
    if fmt == "json":
        json.dump(to_jsonable(output.data), out, indent=2)
        out.write("\n")
        return
    if output.table is not None:
        out.write(render_table(output.table) + "\n")
    if output.text is not None:
        out.write(output.text + ("" if output.text.endswith("\n") else "\n"))


def property_table(pairs: Sequence[tuple[str, str]], title: str | None = None) -> Table:
    """A two-column ``Property | Value`` table (the layout of the ``info`` commands)."""
    return Table(["Property", "Value"], [[k, v] for k, v in pairs], title)


def format_size(size_bytes: int | None) -> str:
    """``1536`` -> ``"1.5 KB"``; None -> ``"-"``."""
    if size_bytes is None:
        return "-"
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover


def format_time(value: _dt.datetime | None, never: str = "-") -> str:
    """A datetime as ``YYYY-MM-DD HH:MM:SS UTC`` (``never`` when None)."""
    if value is None:
        return never
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo is not None else "")


def format_bool(value: bool | None) -> str:
    """``Yes`` / ``No`` / ``-``."""
    if value is None:
        return "-"
    return "Yes" if value else "No"


def format_lora(is_lora: bool | None, rank: int | None) -> str:
    """``Yes (rank 32)`` / ``Yes`` / ``No``."""
    if not is_lora:
        return "No" if is_lora is not None else "-"
    return f"Yes (rank {rank})" if rank is not None else "Yes"
