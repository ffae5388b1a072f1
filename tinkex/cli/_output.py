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
        timestamps: how ``data``'s datetimes are written (see :func:`to_jsonable`).
    """

    data: Any
    table: Table | None = None
    text: str | None = None
    timestamps: str = "python"


#: Key order of the JSON objects, as the official ``tinker`` CLI prints them (its pydantic field
#: order); classes not listed keep their own field order.
FIELD_ORDER: dict[str, tuple[str, ...]] = {
    "TrainingRun": (
        "training_run_id",
        "base_model",
        "model_owner",
        "is_lora",
        "corrupted",
        "lora_rank",
        "last_request_time",
        "last_checkpoint",
        "last_sampler_checkpoint",
        "user_metadata",
    ),
    "BillingUsageEvent": (
        "bucket_start",
        "bucket_end",
        "base_model",
        "user_id",
        "user_name",
        "session_id",
        "project_id",
        "estimated_cost_usd",
        "effective_rate_usd_per_million_tokens",
        "effective_rate_usd_per_gigabyte_month",
        "event_info",
    ),
    "TrainingBillingEvent": ("type", "token_count"),
    "SamplingPrefillBillingEvent": ("type", "cached", "token_count"),
    "SamplingSampleBillingEvent": ("type", "token_count"),
    "CheckpointBillingEvent": ("type", "count"),
    "StorageBillingEvent": ("type", "free", "gigabyte_hours"),
    "CurrentCheckpointStorageUsageResponse": ("effective_rate_usd_per_gigabyte_month", "data"),
}


def to_jsonable(value: Any, *, timestamps: str = "python") -> Any:
    """Convert SDK values (attrs/dataclass instances, datetimes, numpy values) to JSON types.

    ``timestamps`` picks how datetimes look, matching the two styles the official CLI prints:
    ``"python"`` is ``str(datetime)`` (``2025-01-02 03:04:05.123456+00:00``, its run and
    checkpoint listings), ``"json"`` is RFC 3339 with ``Z`` for UTC (its billing output).
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, _dt.datetime | _dt.date):
        return _timestamp(value, timestamps)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, timestamps=timestamps) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, timestamps=timestamps) for v in value]
    fields = _public_fields(value)
    if fields is not None:
        order = FIELD_ORDER.get(type(value).__name__, ())
        ranked = sorted(fields, key=lambda k: order.index(k) if k in order else len(order))
        return {name: to_jsonable(fields[name], timestamps=timestamps) for name in ranked}
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return to_jsonable(tolist(), timestamps=timestamps)
    return str(value)


def _timestamp(value: _dt.date, style: str) -> str:
    if style == "python":
        return str(value)
    text = value.isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


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
        json.dump(to_jsonable(output.data, timestamps=output.timestamps), out, indent=2)
        out.write("\n")
        return
    if output.table is not None:
        out.write(render_table(output.table) + "\n")
    if output.text is not None:
        out.write(output.text + ("" if output.text.endswith("\n") else "\n"))


def write_json(path: str, data: Any) -> None:
    """``data`` (made JSON-able) as indented JSON in the file ``path``; raises ``OSError``."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(to_jsonable(data), handle, indent=2)
        handle.write("\n")


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
    """``Yes (Rank 32)`` / ``Yes`` / ``No`` (the official CLI's ``info`` wording)."""
    if not is_lora:
        return "No" if is_lora is not None else "-"
    return f"Yes (Rank {rank})" if rank else "Yes"


def count_title(
    shown: int, noun: str, total: int | None = None, offset: int = 0, *, scope: str = ""
) -> str:
    """``3 training runs (12 more not shown, use --limit to see more)``; ``scope`` follows the
    noun (``" for run RUN"``)."""
    if shown == 0:
        return f"No {noun}s found{scope}"
    title = f"{shown} {noun}{'' if shown == 1 else 's'}{scope}"
    remaining = None if total is None else total - offset - shown
    if remaining:
        title += f" ({remaining} more not shown, use --limit to see more)"
    return title
