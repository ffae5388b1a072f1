"""``tinkex checkpoint list|info|delete|publish|unpublish|set-ttl|download|push-hf|save``."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import (
    Output,
    Table,
    count_title,
    format_bool,
    format_lora,
    format_size,
    format_time,
    property_table,
)
from tinkex.cli._pagination import add_paging_options, fetch_pages
from tinkex.cli._parsers import (
    add_command,
    add_group,
    bounded_int,
    parse_path,
)
from tinkex.cli._progress import wait_for

if TYPE_CHECKING:
    from tinkex import RestClient
    from tinkex.types import Checkpoint

_PATH_HELP = "a tinker path, e.g. tinker://RUN_ID/weights/NAME"
_KIND_TO_TYPE = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}
#: The TTL range the help text promises (and the hosted service accepts): 1 hour to 10 years.
TTL_MIN_SECONDS = 3600
TTL_MAX_SECONDS = 10 * 365 * 24 * 3600


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``checkpoint`` group."""
    from tinkex.cli import _checkpoint_save, _push_hf

    _, sub = add_group(subparsers, "checkpoint", "Manage checkpoints.", common)
    for add in (
        _register_list,
        _register_info,
        _register_delete,
        _register_publish,
        _register_set_ttl,
        _register_download,
        _push_hf.register,
        _checkpoint_save.register,
    ):
        add(sub, common)


def _register_list(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "list",
        "List checkpoints.",
        common,
        description="List the checkpoints of one training run (--run-id), or your most recent "
        "checkpoints across all runs.",
    )
    p.add_argument("--run-id", help="list the checkpoints of this training run")
    add_paging_options(p, "checkpoints", scope=" when listing across runs")
    p.set_defaults(cmd=cmd_list)


def _register_info(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(sub, "info", "Show details of a checkpoint.", common)
    p.add_argument("checkpoint_path", metavar="CHECKPOINT_PATH", help=_PATH_HELP)
    p.set_defaults(cmd=cmd_info)


def _register_delete(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "delete",
        "Delete checkpoints permanently.",
        common,
        epilog="examples:\n"
        "  tinkex checkpoint delete tinker://RUN/weights/step-10 tinker://RUN/weights/step-20\n"
        "  tinkex checkpoint delete --run-id RUN --type weights --before 2025-06-01 --yes\n\n"
        "Dates are UTC (ISO 8601: 2025-06-01 or 2025-06-01T08:00:00Z). This cannot be undone.",
    )
    p.add_argument("checkpoint_paths", metavar="CHECKPOINT_PATH", nargs="*", help=_PATH_HELP)
    p.add_argument("--run-id", help="delete the checkpoints of this training run (with filters)")
    p.add_argument(
        "--type",
        dest="kind",
        choices=("weights", "sampler_weights", "external_weights"),
        help="only checkpoints of this kind (with --run-id)",
    )
    p.add_argument(
        "--before", metavar="DATE", type=_parse_date, help="only checkpoints created before DATE"
    )
    p.add_argument(
        "--after", metavar="DATE", type=_parse_date, help="only checkpoints created after DATE"
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(cmd=cmd_delete)


def _register_publish(sub: Any, common: argparse.ArgumentParser) -> None:
    for name, help_text in (
        ("publish", "Publish a checkpoint (make it public)."),
        ("unpublish", "Unpublish a checkpoint (make it private again)."),
    ):
        p = add_command(sub, name, help_text, common)
        p.add_argument("checkpoint_path", metavar="CHECKPOINT_PATH", help=_PATH_HELP)
        p.set_defaults(cmd=cmd_publish, public=name == "publish")


def _register_set_ttl(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "set-ttl",
        "Set or remove the time-to-live of a checkpoint.",
        common,
        description="Set (--ttl SECONDS from now) or remove (--remove) a checkpoint's expiry.",
    )
    p.add_argument("checkpoint_path", metavar="CHECKPOINT_PATH", help=_PATH_HELP)
    ttl = p.add_mutually_exclusive_group(required=True)
    ttl.add_argument(
        "--ttl",
        metavar="SECONDS",
        type=bounded_int(TTL_MIN_SECONDS, TTL_MAX_SECONDS, "between 1 hour and 10 years"),
        help=f"seconds from now, 1 hour to 10 years ({TTL_MIN_SECONDS}..{TTL_MAX_SECONDS})",
    )
    ttl.add_argument("--remove", action="store_true", help="remove the expiry")
    p.set_defaults(cmd=cmd_set_ttl)


def _register_download(sub: Any, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub,
        "download",
        "Download a checkpoint's files.",
        common,
        description="Download a checkpoint into OUTPUT/<run>_<kind>_<name>/ (the tinker:// path\n"
        "with '/' as '_'), with a progress bar.\n"
        "Training checkpoints (weights/) are exported as a PEFT adapter through a temporary\n"
        "external-weights copy, as the official CLI does (this starts a training session on the\n"
        "checkpoint's base model; the copy is deleted afterwards). external_weights/ paths are\n"
        "fetched file by file; sampler_weights/ paths as the server's checkpoint archive,\n"
        "extracted safely (no absolute paths, '..' or links leaving the directory).",
        epilog="example:\n  tinkex checkpoint download tinker://RUN/weights/final -o ./models",
    )
    p.add_argument("checkpoint_path", metavar="CHECKPOINT_PATH", help=_PATH_HELP)
    p.add_argument(
        "--output",
        "-o",
        metavar="DIR",
        default=None,
        help="parent directory (default: current directory)",
    )
    p.add_argument("--force", action="store_true", help="replace the target directory if it exists")
    p.set_defaults(cmd=cmd_download)


def _parse_date(text: str) -> _dt.datetime:
    try:
        value = _dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date such as 2025-06-01 or 2025-06-01T08:00:00Z, got {text!r}"
        ) from None
    return _as_utc(value)


def _as_utc(value: _dt.datetime) -> _dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.UTC)


def checkpoint_rows(checkpoints: list[Checkpoint]) -> list[list[str]]:
    """Table rows for a list of checkpoints."""
    return [
        [
            c.checkpoint_id,
            str(c.checkpoint_type),
            format_size(c.size_bytes) if c.size_bytes is not None else "N/A",
            format_bool(c.public),
            format_time(c.time),
            format_time(c.expires_at, never="Never"),
            c.tinker_path,
        ]
        for c in checkpoints
    ]


_CHECKPOINT_COLUMNS = ["Checkpoint ID", "Type", "Size", "Public", "Created", "Expires", "Path"]


def list_user_checkpoints(
    rest: RestClient, limit: int, offset: int = 0, *, progress: bool = False
) -> tuple[list[Checkpoint], int | None]:
    """Up to ``limit`` (0 = all) of the user's checkpoints after the first ``offset``, newest
    first, fetched page by page; also the server's total count (None when it does not say)."""

    def fetch(page_size: int, page_offset: int) -> tuple[list[Checkpoint], int | None]:
        page = wait_for(
            rest.list_user_checkpoints(limit=page_size, offset=page_offset),
            "the list of checkpoints",
        )
        total = page.cursor.total_count if page.cursor is not None else None
        return list(page.checkpoints), total

    return fetch_pages(fetch, limit, offset, "checkpoints", progress=progress)


def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint list``."""
    rest = ctx.rest()
    data: dict[str, Any]
    if args.run_id:
        listing = wait_for(rest.list_checkpoints(args.run_id), f"the checkpoints of {args.run_id}")
        checkpoints = list(listing.checkpoints)
        title = count_title(len(checkpoints), "checkpoint", scope=f" for run {args.run_id}")
        data = {"run_id": args.run_id, "checkpoints": checkpoints}
    else:
        checkpoints, total = list_user_checkpoints(
            rest, args.limit, args.offset, progress=ctx.format != "json"
        )
        title = count_title(len(checkpoints), "checkpoint", total, args.offset)
        data = {"checkpoints": checkpoints}
    ctx.emit(Output(data, Table(_CHECKPOINT_COLUMNS, checkpoint_rows(checkpoints), title)))


def find_checkpoint(rest: RestClient, path: str) -> Checkpoint:
    """The Checkpoint record behind a tinker path (CommandError when the run has no such one)."""
    parsed = parse_path(path)
    run_id = parsed.training_run_id
    listing = wait_for(rest.list_checkpoints(run_id), f"the checkpoints of {run_id}")
    checkpoint: Checkpoint
    for checkpoint in listing.checkpoints:
        if checkpoint.checkpoint_id == parsed.checkpoint_id or checkpoint.tinker_path == path:
            return checkpoint
    raise CommandError(f"checkpoint {path} not found in run {parsed.training_run_id}")


def cmd_info(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint info PATH``."""
    from tinkex.cli._output import to_jsonable

    rest = ctx.rest()
    checkpoint = find_checkpoint(rest, args.checkpoint_path)
    run_id = parse_path(args.checkpoint_path).training_run_id
    run = wait_for(rest.get_training_run(run_id), f"training run {run_id}")
    pairs = [
        ("Checkpoint ID", checkpoint.checkpoint_id),
        ("Type", str(checkpoint.checkpoint_type)),
        ("Tinker Path", checkpoint.tinker_path),
        ("Size", format_size(checkpoint.size_bytes)),
        ("Public", format_bool(checkpoint.public)),
        ("Created", format_time(checkpoint.time)),
        ("Expires", format_time(checkpoint.expires_at, never="Never")),
        ("Training Run ID", run.training_run_id),
        ("Base Model", run.base_model),
        ("LoRA", format_lora(run.is_lora, run.lora_rank)),
    ]
    for key, value in sorted((checkpoint.user_metadata or {}).items()):
        pairs.append((f"Metadata {key}", value))
    data = {
        **to_jsonable(checkpoint),
        "is_lora": run.is_lora,
        "lora_rank": run.lora_rank,
        # tinkex additions (not in the official CLI's JSON):
        "training_run_id": run.training_run_id,
        "base_model": run.base_model,
    }
    title = f"Checkpoint: {checkpoint.checkpoint_id}"
    ctx.emit(Output(data, property_table(pairs, title)))


def _select_for_delete(rest: RestClient, args: argparse.Namespace) -> list[str]:
    if args.checkpoint_paths and args.run_id:
        raise CommandError("give checkpoint paths or --run-id, not both")
    if args.checkpoint_paths:
        if args.kind or args.before or args.after:
            raise CommandError("--type, --before and --after only apply with --run-id")
        for path in args.checkpoint_paths:
            parse_path(path)
        return list(dict.fromkeys(args.checkpoint_paths))
    if not args.run_id:
        raise CommandError("nothing to delete: give checkpoint paths or --run-id")
    wanted_type = _KIND_TO_TYPE.get(args.kind) if args.kind else None
    selected = []
    listing = wait_for(rest.list_checkpoints(args.run_id), f"the checkpoints of {args.run_id}")
    for checkpoint in listing.checkpoints:
        created = _as_utc(checkpoint.time)
        if wanted_type and str(checkpoint.checkpoint_type) != wanted_type:
            continue
        if args.before and not created < args.before:
            continue
        if args.after and not created > args.after:
            continue
        selected.append(checkpoint.tinker_path)
    return selected


def cmd_delete(ctx: Context, args: argparse.Namespace) -> int:
    """``tinkex checkpoint delete``."""
    from tinkex.cli._errors import describe_error

    rest = ctx.rest()
    paths = _select_for_delete(rest, args)
    if not paths:
        ctx.emit(
            Output(
                {"deleted_count": 0, "failed": [], "deleted": []}, text="No checkpoints matched."
            )
        )
        return 0
    if not args.yes:
        _confirm(f"Delete {len(paths)} checkpoint(s) permanently?", paths)
    deleted: list[str] = []
    failed: list[dict[str, str]] = []
    for path in paths:
        try:
            wait_for(rest.delete_checkpoint_from_tinker_path(path), f"the deletion of {path}")
            deleted.append(path)
        except Exception as exc:
            failed.append({"tinker_path": path, "error": describe_error(exc)})
    lines = [f"Deleted {path}" for path in deleted]
    lines.append(f"Deleted {len(deleted)} checkpoint(s)")
    data = {"deleted_count": len(deleted), "failed": failed, "deleted": deleted}
    ctx.emit(Output(data, text="\n".join(lines)))
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise CommandError(
            f"could not delete {len(failed)} of {len(paths)} checkpoint(s): "
            f"{first['tinker_path']}: {first['error']}{more}"
        )
    return 0


def _confirm(question: str, items: list[str]) -> None:
    if not sys.stdin.isatty():  # nobody to ask: one clear line, nothing deleted
        raise CommandError(f"{question.rstrip('?')} needs confirmation; pass --yes")
    for item in items:
        print(f"  {item}", file=sys.stderr)
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("cancelled; nothing was deleted")


def cmd_publish(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint publish|unpublish PATH``."""
    parse_path(args.checkpoint_path)
    rest = ctx.rest()
    if args.public:
        wait_for(
            rest.publish_checkpoint_from_tinker_path(args.checkpoint_path),
            f"publishing {args.checkpoint_path}",
        )
    else:
        wait_for(
            rest.unpublish_checkpoint_from_tinker_path(args.checkpoint_path),
            f"unpublishing {args.checkpoint_path}",
        )
    verb = "Published" if args.public else "Unpublished"
    data = {"checkpoint_path": args.checkpoint_path, "public": args.public}
    ctx.emit(Output(data, text=f"{verb} {args.checkpoint_path}"))


def cmd_set_ttl(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint set-ttl PATH --ttl N | --remove``."""
    parse_path(args.checkpoint_path)
    ttl: int | None = None if args.remove else args.ttl
    wait_for(
        ctx.rest().set_checkpoint_ttl_from_tinker_path(args.checkpoint_path, ttl),
        f"the new TTL of {args.checkpoint_path}",
    )
    text = (
        f"Removed the expiry of {args.checkpoint_path}"
        if ttl is None
        else f"{args.checkpoint_path} now expires in {ttl} s"
    )
    ctx.emit(Output({"checkpoint_path": args.checkpoint_path, "ttl_seconds": ttl}, text=text))


def cmd_download(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint download PATH [-o DIR] [--force]``."""
    import os

    from tinkex.checkpoint_download import checkpoint_dir_name, download_checkpoint
    from tinkex.cli._progress import FileProgress

    parsed = parse_path(args.checkpoint_path)
    parent = args.output if args.output is not None else os.getcwd()
    target = os.path.join(parent, checkpoint_dir_name(args.checkpoint_path))
    if os.path.lexists(target) and not args.force:
        raise CommandError(f"{target} already exists; pass --force to replace it")
    if parsed.checkpoint_type == "training" and ctx.format != "json":
        print(
            f"Exporting {args.checkpoint_path} as external weights (this starts a training "
            "session on the checkpoint's base model)...",
            file=sys.stderr,
        )
    with FileProgress(enabled=ctx.format != "json") as progress:
        result = download_checkpoint(
            args.checkpoint_path,
            parent,
            rest_client=ctx.rest(),
            force=args.force,
            progress=progress,
        )
    pairs = [("Checkpoint Path", args.checkpoint_path)]
    if result.size_bytes:
        pairs.append(("Total Size", format_size(result.size_bytes)))
    pairs.append(("Downloaded to", result.destination))
    data: dict[str, Any] = {
        "checkpoint_path": args.checkpoint_path,
        "destination": result.destination,
    }
    if result.size_bytes:
        data["file_size_bytes"] = result.size_bytes
    data["files"] = result.files  # a tinkex addition
    title = f"Checkpoint Download: {args.checkpoint_path}"
    ctx.emit(Output(data, property_table(pairs, title)))
