"""``tinkex session list|info|export-trace``: client sessions on the server."""

from __future__ import annotations

import argparse
from typing import Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import Output, Table, format_size, property_table
from tinkex.cli._pagination import add_paging_options, fetch_pages
from tinkex.cli._parsers import add_access_scope, add_command, add_group
from tinkex.cli._progress import wait_for


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``session`` group."""
    _, sub = add_group(subparsers, "session", "Inspect sessions.", common)
    p = add_command(sub, "list", "List your session ids, newest first.", common)
    add_paging_options(p, "sessions")
    add_access_scope(p)
    p.set_defaults(cmd=cmd_list)

    p = add_command(sub, "info", "Show the training runs and samplers of a session.", common)
    p.add_argument("session_id", metavar="SESSION_ID")
    add_access_scope(p)
    p.set_defaults(cmd=cmd_info)

    p = add_command(
        sub,
        "export-trace",
        "Export a session's timeline as a trace file.",
        common,
        description="Ask the server for a trace of the session's training and sampling\n"
        "requests and download it (the hosted service writes a Perfetto .pftrace: open it in\n"
        "https://ui.perfetto.dev). --url-only prints the signed download URL instead.",
        epilog="examples:\n"
        "  tinkex session export-trace SESSION_ID              # ./SESSION_ID.pftrace\n"
        "  tinkex session export-trace SESSION_ID -o my.pftrace\n"
        "  tinkex session export-trace SESSION_ID --url-only",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument(
        "--output", "-o", metavar="FILE", help="where to write it (default ./SESSION_ID.pftrace)"
    )
    p.add_argument(
        "--url-only", action="store_true", help="print the signed URL instead of downloading"
    )
    p.set_defaults(cmd=cmd_export_trace)


def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex session list``."""
    rest = ctx.rest()

    def fetch(page_size: int, page_offset: int) -> tuple[list[str], int | None]:
        page = wait_for(
            rest.list_sessions(limit=page_size, offset=page_offset, access_scope=args.access_scope),
            "the list of sessions",
        )
        return list(page.sessions), None

    sessions, _ = fetch_pages(
        fetch, args.limit, args.offset, "sessions", progress=ctx.format != "json"
    )
    ctx.emit(Output({"sessions": sessions}, Table(["Session ID"], [[s] for s in sessions])))


def cmd_info(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex session info SESSION_ID``."""
    info = wait_for(
        ctx.rest().get_session(args.session_id, args.access_scope), f"session {args.session_id}"
    )
    pairs = [
        ("Session ID", args.session_id),
        ("Display Name", info.display_name or "-"),
        ("Training Runs", ", ".join(info.training_run_ids) or "-"),
        ("Samplers", ", ".join(info.sampler_ids) or "-"),
    ]
    for key, value in sorted((info.user_metadata or {}).items()):
        pairs.append((f"Metadata {key}", str(value)))
    data = {"session_id": args.session_id, **_as_dict(info)}
    ctx.emit(Output(data, property_table(pairs, f"Session {args.session_id}")))


def _as_dict(value: Any) -> dict[str, Any]:
    from tinkex.cli._output import to_jsonable

    converted = to_jsonable(value)
    return converted if isinstance(converted, dict) else {}


def cmd_export_trace(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex session export-trace SESSION_ID [-o FILE] [--url-only]``."""
    import os
    import sys

    from tinkex.checkpoint_download import download_file
    from tinkex.cli._progress import FileProgress

    if not args.session_id.strip():
        raise CommandError("SESSION_ID must not be empty")
    rest = ctx.rest()
    if ctx.format != "json":
        print(
            f"Exporting trace for session {args.session_id} (this may take a while)...",
            file=sys.stderr,
        )
    url = wait_for(rest.export_session_trace(args.session_id), "the trace export")
    if args.url_only:
        if ctx.format == "json":
            ctx.emit(Output({"session_id": args.session_id, "url": url}))
        else:
            print(url)  # bare, for $(tinkex session export-trace ID --url-only)
        return
    target = args.output or os.path.join(os.getcwd(), f"{args.session_id}.pftrace")
    parent = os.path.dirname(target)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with FileProgress(enabled=ctx.format != "json") as progress:
        size = download_file(url, target, name="trace", progress=progress)
    data: dict[str, Any] = {"session_id": args.session_id, "destination": target}
    pairs = [("Session ID", args.session_id), ("Saved to", target)]
    if size:
        data["file_size_bytes"] = size
        pairs.append(("Size", format_size(size)))
    ctx.emit(Output(data, property_table(pairs, f"Trace Export: {args.session_id}")))
