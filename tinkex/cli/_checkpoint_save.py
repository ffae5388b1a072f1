"""``tinkex checkpoint save``: a new sampler checkpoint of a base model or of saved weights.

A LoRA training run is created on ``--base-model`` (rank, seed and trained parts as given) or
from the weights of a training checkpoint (``--model-path``, its run's LoRA configuration), and
its weights are saved for sampling as ``--name``. The result (and the ``--output`` file, as
Elixir Tinkex's ``tinkex checkpoint --output``) is the checkpoint's metadata: ``base_model``,
``model_id`` (the training run), ``weights_path`` (the ``tinker://`` path), ``name``,
``saved_at``, and ``model_path`` when given.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
from typing import Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import Output, property_table, write_json
from tinkex.cli._parsers import add_command, parse_path, positive_int
from tinkex.cli._progress import wait_for

#: The LoRA options and their defaults (those of ``ServiceClient.create_lora_training_client``).
LORA_DEFAULTS: dict[str, Any] = {
    "rank": 32,
    "seed": None,
    "train_mlp": True,
    "train_attn": True,
    "train_unembed": True,
}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``checkpoint save`` to the ``checkpoint`` group's subparsers."""
    p = add_command(
        sub,
        "save",
        "Save a new sampler checkpoint of a base model or of saved weights.",
        common,
        description="Create a LoRA training run on --base-model (or from the weights of a\n"
        "training checkpoint, --model-path) and save its weights for sampling as --name.\n"
        "Prints the checkpoint's metadata; --output also writes it to FILE as JSON.",
        epilog="examples:\n"
        "  tinkex checkpoint save --base-model Qwen/Qwen3-8B --rank 16 --output base.json\n"
        "  tinkex checkpoint save --model-path tinker://RUN/weights/step-100 --name step-100",
    )
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--base-model", metavar="NAME", help="a new LoRA run on this base model")
    model.add_argument(
        "--model-path", metavar="PATH", help="a new run from these weights (tinker://RUN/weights/X)"
    )
    p.add_argument(
        "--name", help="checkpoint name (default: checkpoint-<base model, '/' and ':' as '-'>)"
    )
    p.add_argument("--rank", metavar="N", type=positive_int, help="LoRA rank (default 32)")
    p.add_argument("--seed", metavar="N", type=int, help="seed of the LoRA initialisation")
    for part, what in (("mlp", "MLP"), ("attn", "attention"), ("unembed", "unembedding")):
        p.add_argument(
            f"--train-{part}",
            action=argparse.BooleanOptionalAction,
            help=f"train the {what} layers (default: yes)",
        )
    p.add_argument("--output", "-o", metavar="FILE", help="also write the metadata JSON to FILE")
    p.set_defaults(cmd=cmd_save)


def lora_options(args: argparse.Namespace) -> dict[str, Any]:
    """The LoRA keyword arguments asked for (defaults filled in); with ``--model-path`` none may
    be given, since the run keeps its checkpoint's configuration."""
    given = {key: getattr(args, key) for key in LORA_DEFAULTS if getattr(args, key) is not None}
    if args.model_path and given:
        flags = ", ".join("--" + key.replace("_", "-") for key in given)
        raise CommandError(
            f"{flags}: only with --base-model (--model-path keeps the checkpoint's LoRA "
            "configuration)"
        )
    return {**LORA_DEFAULTS, **given}


def default_name(base_model: str) -> str:
    """``checkpoint-qwen-qwen3-8b`` for ``Qwen/Qwen3-8B``."""
    return "checkpoint-" + re.sub(r"[/:]", "-", base_model).lower()


def cmd_save(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint save``."""
    lora = lora_options(args)
    if args.model_path:
        parse_path(args.model_path)
    with ctx.service() as service:
        if args.model_path:
            creating = service.create_training_client_from_state(args.model_path)
        else:
            creating = service.create_lora_training_client(args.base_model, **lora)
        training = wait_for(creating, "the new training run")
        info = training.get_info()
        base_model = args.base_model or info.model_data.model_name or info.model_name or "model"
        name = args.name or default_name(base_model)
        saved = wait_for(training.save_weights_for_sampler(name), f"the checkpoint {name}")
    data: dict[str, Any] = {
        "base_model": base_model,
        "model_id": training.model_id,
        "weights_path": saved.path,
        "name": name,
        "saved_at": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
    }
    if args.model_path:
        data["model_path"] = args.model_path
    if args.output:
        _write_metadata(args.output, data)
    pairs = [("Checkpoint Path", saved.path), ("Base Model", base_model)]
    pairs.append(("Training Run ID", training.model_id))
    ctx.emit(Output(data, property_table(pairs, f"Saved checkpoint {name}")))


def _write_metadata(path: str, data: dict[str, Any]) -> None:
    """``data`` as JSON in ``path`` (its folder created); says so on stderr."""
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        write_json(path, data)
    except OSError as exc:
        raise CommandError(f"cannot write --output {path}: {exc}") from None
    print(f"Wrote the checkpoint metadata to {path}", file=sys.stderr)
