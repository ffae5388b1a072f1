"""``tinkex run list|info``: training runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import (
    Output,
    Table,
    count_title,
    format_lora,
    format_time,
    property_table,
)
from tinkex.cli._pagination import add_paging_options, fetch_pages
from tinkex.cli._parsers import add_access_scope, add_command, add_group
from tinkex.cli._progress import wait_for

if TYPE_CHECKING:
    from tinkex import RestClient
    from tinkex.types import TrainingRun


def _status(run: TrainingRun) -> str:
    return "Failed" if run.corrupted else "OK"


def _lora_cell(run: TrainingRun) -> str:
    """``Rank 32`` / ``Yes`` / ``No``, as the official CLI's list shows it."""
    if run.is_lora and run.lora_rank:
        return f"Rank {run.lora_rank}"
    return "Yes" if run.is_lora else "No"


#: column key -> (header, cell getter); keys and meanings follow the official ``tinker`` CLI.
COLUMNS: dict[str, tuple[str, Callable[[TrainingRun], str]]] = {
    "id": ("Run ID", lambda r: r.training_run_id),
    "model": ("Base Model", lambda r: r.base_model),
    "owner": ("Owner", lambda r: r.model_owner),
    "lora": ("LoRA", lambda r: _lora_cell(r)),
    "updated": ("Last Update", lambda r: format_time(r.last_request_time)),
    "status": ("Status", _status),
    "checkpoint": (
        "Last Checkpoint",
        lambda r: r.last_checkpoint.checkpoint_id if r.last_checkpoint else "None",
    ),
    "checkpoint_time": (
        "Checkpoint Time",
        lambda r: format_time(r.last_checkpoint.time) if r.last_checkpoint else "-",
    ),
}
DEFAULT_COLUMNS = "id,model,lora,updated,status"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``run`` group."""
    _, sub = add_group(subparsers, "run", "Manage training runs.", common)
    p = add_command(sub, "list", "List training runs.", common)
    add_paging_options(p, "runs")
    add_access_scope(p)
    p.add_argument(
        "--columns",
        "-c",
        metavar="COLS",
        type=_parse_columns,
        default=DEFAULT_COLUMNS.split(","),
        help=f"comma-separated columns among {', '.join(COLUMNS)} (default: {DEFAULT_COLUMNS})",
    )
    p.set_defaults(cmd=cmd_list)

    p = add_command(sub, "info", "Show details of a training run.", common)
    p.add_argument("run_id", metavar="RUN_ID")
    add_access_scope(p)
    p.set_defaults(cmd=cmd_info)


def _parse_columns(text: str) -> list[str]:
    columns = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise argparse.ArgumentTypeError(
            f"unknown column(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(COLUMNS)}"
        )
    return columns


def list_runs(
    rest: RestClient,
    limit: int,
    offset: int = 0,
    access_scope: str = "owned",
    *,
    progress: bool = False,
) -> tuple[list[TrainingRun], int | None]:
    """Up to ``limit`` (0 = all) training runs after the first ``offset``, fetched page by page;
    also the server's total count of runs (None when it does not say)."""

    def fetch(page_size: int, page_offset: int) -> tuple[list[TrainingRun], int | None]:
        page = wait_for(
            rest.list_training_runs(
                limit=page_size,
                offset=page_offset,
                access_scope=access_scope,  # type: ignore[arg-type]
            ),
            "the list of training runs",
        )
        total = page.cursor.total_count if page.cursor is not None else None
        return list(page.training_runs), total

    return fetch_pages(fetch, limit, offset, "training runs", progress=progress)


def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex run list``."""
    runs, total = list_runs(
        ctx.rest(), args.limit, args.offset, args.access_scope, progress=ctx.format != "json"
    )
    columns: list[str] = args.columns
    table = Table(
        [COLUMNS[c][0] for c in columns],
        [[COLUMNS[c][1](run) for c in columns] for run in runs],
        count_title(len(runs), "training run", total, args.offset),
    )
    ctx.emit(Output({"runs": runs}, table))


def cmd_info(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex run info RUN_ID``."""
    if not args.run_id.strip():
        raise CommandError("RUN_ID must not be empty")
    run = wait_for(
        ctx.rest().get_training_run(args.run_id, args.access_scope), f"training run {args.run_id}"
    )
    pairs = [
        ("Run ID", run.training_run_id),
        ("Base Model", run.base_model),
        ("Owner", run.model_owner),
        ("LoRA", format_lora(run.is_lora, run.lora_rank)),
        ("Status", _status(run)),
        ("Last Update", format_time(run.last_request_time)),
        (
            "Last Checkpoint",
            run.last_checkpoint.tinker_path if run.last_checkpoint else "-",
        ),
        (
            "Last Sampler Checkpoint",
            run.last_sampler_checkpoint.tinker_path if run.last_sampler_checkpoint else "-",
        ),
    ]
    for key, value in sorted((run.user_metadata or {}).items()):
        pairs.append((f"Metadata {key}", str(value)))
    ctx.emit(Output(run, property_table(pairs, f"Training run {run.training_run_id}")))
