"""``tinkex billing usage|checkpoint-storage``: your organization's usage and storage.

Outputs follow the official CLI: JSON keeps the response's nested shape (timestamps in RFC 3339
with ``Z``); tables and CSV flatten each row's ``event_info`` into it. In tables an applicable
cost or rate the server could not price yet reads ``null`` (a field that does not apply to the
row's type stays empty); CSV leaves both empty.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from tinkex.cli._context import Context
from tinkex.cli._output import Output, Table, to_jsonable
from tinkex.cli._parsers import add_command, add_group
from tinkex.cli._progress import wait_for

_TOKEN_TYPES = ("training", "sampling_prefill", "sampling_sample")
_PRICED_FIELDS = {
    **{t: ("estimated_cost_usd", "effective_rate_usd_per_million_tokens") for t in _TOKEN_TYPES},
    "storage": ("estimated_cost_usd", "effective_rate_usd_per_gigabyte_month"),
}


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``billing`` group."""
    _, sub = add_group(subparsers, "billing", "View billing usage.", common)
    p = add_command(
        sub,
        "usage",
        "Show hourly billing usage for your organization.",
        common,
        description="Show hourly billing usage for your organization: one row per hour, usage\n"
        "type, base model, session and user. STARTING_ON and ENDING_BEFORE are RFC 3339\n"
        "timestamps on UTC hour boundaries (e.g. 2026-07-13T00:00:00Z), at most 14 days apart.\n"
        "Costs are gross estimates before credits, not invoice amounts; data lags by up to a\n"
        "few hours. Needs billing view access in your organization.",
    )
    p.add_argument("starting_on", metavar="STARTING_ON")
    p.add_argument("ending_before", metavar="ENDING_BEFORE")
    p.add_argument(
        "--csv",
        dest="csv_path",
        metavar="PATH",
        help="write the usage rows as CSV to PATH instead ('-' for stdout)",
    )
    p.add_argument(
        "--sessions-csv",
        dest="sessions_csv_path",
        metavar="PATH",
        help="also write the sessions table (session_id, user_metadata) as CSV ('-' for stdout)",
    )
    p.set_defaults(cmd=cmd_usage)

    p = add_command(
        sub,
        "checkpoint-storage",
        "Show current checkpoint storage and its projected cost.",
        common,
        description="Show current checkpoint storage per project and user, with the projected\n"
        "monthly cost at current rates (gross, before credits). Data can lag by 1-2 hours.",
    )
    p.add_argument("--project-id", metavar="ID", help="only storage in this project")
    p.add_argument(
        "--csv",
        dest="csv_path",
        metavar="PATH",
        help="write the storage rows as CSV to PATH instead ('-' for stdout)",
    )
    p.set_defaults(cmd=cmd_checkpoint_storage)


def _rows(values: Sequence[Any]) -> list[dict[str, Any]]:
    rows = to_jsonable(list(values), timestamps="json")
    return [row for row in rows if isinstance(row, dict)]


def flatten(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its ``event_info`` fields merged in (for tables and CSV)."""
    flat = []
    for row in rows:
        info = row.get("event_info")
        if isinstance(info, dict):
            row = {**{k: v for k, v in row.items() if k != "event_info"}, **info}
        flat.append(row)
    return flat


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key, in first-seen order."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _display(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for row in flatten(rows):
        priced = _PRICED_FIELDS.get(str(row.get("type")), ())
        shown.append({k: ("null" if k in priced and v is None else v) for k, v in row.items()})
    return shown


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    names = columns(rows)
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in names] for row in rows]
    return Table(names, cells, title)


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    """Write flattened ``rows`` as CSV to ``path`` (``-``: stdout)."""
    flat = flatten(rows)

    def write(out: TextIO) -> None:
        writer = csv.DictWriter(out, fieldnames=columns(flat), restval="")
        writer.writeheader()
        writer.writerows(flat)

    if path == "-":
        write(sys.stdout)
        return
    with open(path, "w", newline="", encoding="utf-8") as handle:
        write(handle)
    print(f"Wrote {len(rows)} row(s) to {path}", file=sys.stderr)


def cmd_usage(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex billing usage STARTING_ON ENDING_BEFORE``."""
    with ctx.admin() as admin:
        response = wait_for(
            admin.get_billing_usage(args.starting_on, args.ending_before), "the billing usage"
        )
    rows = _rows(response.data)
    sessions = {sid: to_jsonable(s, timestamps="json") for sid, s in response.sessions.items()}
    if args.sessions_csv_path is not None:
        session_rows = [
            {
                "session_id": sid,
                "user_metadata": None
                if session.get("user_metadata") is None
                else json.dumps(session["user_metadata"]),
            }
            for sid, session in sessions.items()
        ]
        write_csv(session_rows, args.sessions_csv_path)
    if args.csv_path is not None:
        write_csv(rows, args.csv_path)
    if args.csv_path is not None or args.sessions_csv_path is not None:
        return
    data = {
        "data": rows,
        "sessions": sessions,
        "cost_data_through": to_jsonable(response.cost_data_through, timestamps="json"),
    }
    title = f"{len(rows)} hourly usage row(s)" if rows else "No billing usage in this window"
    ctx.emit(Output(data, _table(_display(rows), title)))


def cmd_checkpoint_storage(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex billing checkpoint-storage``."""
    with ctx.admin() as admin:
        response = wait_for(
            admin.get_current_checkpoint_storage_usage(project_id=args.project_id),
            "the checkpoint storage usage",
        )
    rate = response.effective_rate_usd_per_gigabyte_month
    rows = _rows(response.data)
    table_rows = [{"effective_rate_usd_per_gigabyte_month": rate, **row} for row in rows]
    if args.csv_path is not None:
        write_csv(table_rows, args.csv_path)
        return
    data = {"effective_rate_usd_per_gigabyte_month": rate, "data": rows}
    title = "Current checkpoint storage" if rows else "No active checkpoint storage"
    ctx.emit(Output(data, _table(table_rows, title)))
