"""``tinkex model list [SUBSTRING]``: the base models a server offers."""

from __future__ import annotations

import argparse
from typing import Any

from tinkex.cli._context import Context
from tinkex.cli._output import Output, Table, format_bool
from tinkex.cli._parsers import add_command, add_group
from tinkex.cli._progress import wait_for


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``model`` group."""
    _, sub = add_group(subparsers, "model", "List available models.", common)
    p = add_command(
        sub,
        "list",
        "List the models the server can train and sample.",
        common,
        description="List the models the server can train and sample. SUBSTRING keeps only "
        "the names that contain it (case-insensitive); pass a name as base_model.",
    )
    p.add_argument("substring", metavar="SUBSTRING", nargs="?", default=None)
    p.set_defaults(cmd=cmd_list)


def cmd_list(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex model list``."""
    capabilities = wait_for(ctx.rest().get_server_capabilities(), "the list of models")
    models = list(capabilities.supported_models)
    if args.substring:
        needle = args.substring.lower()
        models = [m for m in models if needle in (m.model_name or "").lower()]
    rows = [
        [
            m.model_name or "-",
            str(m.max_context_length) if m.max_context_length is not None else "-",
            format_bool(m.trainable),
            format_bool(m.sampleable),
        ]
        for m in models
    ]
    table = Table(["Model", "Max Context", "Trainable", "Sampleable"], rows)
    ctx.emit(Output({"models": models}, table))
