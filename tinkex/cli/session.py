"""``tinkex session list|info``: client sessions on the server."""

from __future__ import annotations

import argparse
from typing import Any

from tinkex.cli._commands import add_command, add_group, non_negative_int
from tinkex.cli._context import Context
from tinkex.cli._output import Output, Table, property_table

_PAGE = 100


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``session`` group."""
    _, sub = add_group(subparsers, "session", "Inspect sessions.", common)
    p = add_command(sub, "list", "List your session ids, newest first.", common)
    p.add_argument(
        "--limit",
        metavar="N",
        type=non_negative_int,
        default=20,
        help="maximum number of sessions (default 20, 0 = all)",
    )
    p.set_defaults(cmd=cmd_list)

    p = add_command(sub, "info", "Show the training runs and samplers of a session.", common)
    p.add_argument("session_id", metavar="SESSION_ID")
    p.set_defaults(cmd=cmd_info)


def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex session list``."""
    rest = ctx.rest()
    sessions: list[str] = []
    while args.limit == 0 or len(sessions) < args.limit:
        page_size = _PAGE if args.limit == 0 else min(_PAGE, args.limit - len(sessions))
        page = rest.list_sessions(limit=page_size, offset=len(sessions)).result()
        sessions.extend(page.sessions)
        if len(page.sessions) < page_size:
            break
    ctx.emit(Output({"sessions": sessions}, Table(["Session ID"], [[s] for s in sessions])))


def cmd_info(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex session info SESSION_ID``."""
    info = ctx.rest().get_session(args.session_id).result()
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
