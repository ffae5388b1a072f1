"""``tinkex checkpoint push-hf``: upload a checkpoint to the Hugging Face Hub as a PEFT adapter.

The checkpoint is downloaded into a temporary directory (:mod:`tinkex.checkpoint_download`),
checked to be a PEFT adapter, given a ``README.md`` model card unless it has one (or
``--no-model-card``), and uploaded with ``huggingface_hub`` (``HfApi.upload_folder``), which
honours ``HF_ENDPOINT``, ``HF_TOKEN`` and the token ``hf auth login`` stores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import Output, format_bool, property_table
from tinkex.cli._parsers import add_command, parse_path
from tinkex.cli._progress import wait_for

if TYPE_CHECKING:
    from tinkex import RestClient

_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``checkpoint push-hf`` to the ``checkpoint`` group's subparsers."""
    p = add_command(
        sub,
        "push-hf",
        "Upload a checkpoint to the Hugging Face Hub as a PEFT adapter.",
        common,
        description="Upload a checkpoint (tinker://RUN/weights/NAME or .../external_weights/NAME)\n"
        "to the Hugging Face Hub as a PEFT adapter, with a model card. Needs huggingface_hub\n"
        "and a Hub token (hf auth login, HF_TOKEN or --hf-token); HF_ENDPOINT picks the Hub.",
        epilog="example:\n  tinkex checkpoint push-hf tinker://RUN/weights/final -r me/my-adapter",
    )
    p.add_argument("checkpoint_path", metavar="CHECKPOINT_PATH")
    p.add_argument(
        "--repo",
        "-r",
        dest="repo_id",
        metavar="REPO_ID",
        help="Hub repo id, e.g. username/my-lora-adapter (default: derived from the run)",
    )
    p.add_argument("--public", action="store_true", help="create a public repo (default private)")
    p.add_argument("--revision", metavar="BRANCH", help="branch to upload to (created if missing)")
    p.add_argument("--commit-message", metavar="TEXT", help="commit message of the upload")
    p.add_argument(
        "--create-pr", action="store_true", help="open a pull request instead of pushing"
    )
    p.add_argument(
        "--allow-pattern",
        dest="allow_patterns",
        action="append",
        metavar="GLOB",
        help="only upload files matching GLOB (repeatable)",
    )
    p.add_argument(
        "--ignore-pattern",
        dest="ignore_patterns",
        action="append",
        metavar="GLOB",
        help="skip files matching GLOB (repeatable)",
    )
    p.add_argument("--no-model-card", action="store_true", help="do not add a README.md model card")
    p.add_argument("--hf-token", metavar="TOKEN", help="Hub token (default: HF_TOKEN / hf login)")
    p.set_defaults(cmd=cmd_push_hf)


def cmd_push_hf(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex checkpoint push-hf PATH``."""
    from tinkex.checkpoint_download import download_checkpoint, safe_join

    parsed = parse_path(args.checkpoint_path)
    if parsed.checkpoint_type == "sampler":
        raise CommandError(
            f"push-hf uploads training or external weights checkpoints, got {parsed.tinker_path}"
            " (a sampler checkpoint); save one with save_state() or save_weights_external()"
        )
    api, user = _hub_api(args.hf_token)
    rest = ctx.rest()
    with tempfile.TemporaryDirectory(prefix="tinkex-push-hf-") as scratch:
        folder = download_checkpoint(args.checkpoint_path, scratch, rest_client=rest).destination
        if not os.path.isfile(safe_join(folder, "adapter_config.json")) or not any(
            os.path.isfile(os.path.join(folder, name)) for name in _ADAPTER_WEIGHTS
        ):
            raise CommandError(
                f"{args.checkpoint_path} is not a PEFT adapter: expected adapter_config.json and "
                f"adapter_model.safetensors (found {', '.join(sorted(os.listdir(folder)))})"
            )
        info = _weights_info(rest, args.checkpoint_path)
        _fill_base_model(folder, info.get("base_model"))
        repo_id, revision = args.repo_id, args.revision
        if repo_id is None:
            repo_id = f"{user}/{derive_repo_id(info.get('base_model'), parsed.training_run_id)}"
            revision = revision or _slug(parsed.checkpoint_id.replace("/", "-"))
        if not args.no_model_card and not os.path.exists(os.path.join(folder, "README.md")):
            card = model_card(args.checkpoint_path, repo_id, info)
            with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as handle:
                handle.write(card)
        _upload(api, folder, repo_id, revision, args)
    data: dict[str, Any] = {"checkpoint_path": args.checkpoint_path, "repo_id": repo_id}
    if revision is not None:
        data["revision"] = revision
    data["public"] = bool(args.public)
    pairs = [("Checkpoint Path", args.checkpoint_path), ("Repo ID", repo_id)]
    if revision is not None:
        pairs.append(("Revision", revision))
    pairs.append(("Public", format_bool(bool(args.public))))
    ctx.emit(Output(data, property_table(pairs, f"Checkpoint Hub Upload: {args.checkpoint_path}")))


def _hub_api(token: str | None) -> tuple[Any, str]:
    """A logged-in ``HfApi`` and the Hub user name."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise CommandError(
            "push-hf needs huggingface_hub: pip install 'tinkex[hf]', then run 'hf auth login'"
        ) from None
    api = HfApi(token=token)
    try:
        user = str(api.whoami()["name"])
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CommandError(
            f"not logged in to the Hugging Face Hub ({reason}); run 'hf auth login', set "
            "HF_TOKEN or pass --hf-token"
        ) from None
    return api, user


def _upload(
    api: Any, folder: str, repo_id: str, revision: str | None, args: argparse.Namespace
) -> None:
    api.create_repo(repo_id=repo_id, private=not args.public, exist_ok=True)
    if revision is not None and not args.create_pr:
        api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
    existing = _readme_tinker_path(repo_id, revision, args.hf_token)
    if existing and existing != args.checkpoint_path:
        raise CommandError(
            f"the Hub repo {repo_id} holds another checkpoint ({existing}); pick another --repo "
            "or --revision"
        )
    ignore = list(args.ignore_patterns or [])
    if not args.allow_patterns and "checkpoint_complete" not in ignore:
        ignore.append("checkpoint_complete")
    api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        path_in_repo="",
        revision=revision,
        commit_message=args.commit_message or f"Upload {args.checkpoint_path}",
        create_pr=args.create_pr,
        allow_patterns=args.allow_patterns or None,
        ignore_patterns=ignore or None,
    )


def _readme_tinker_path(repo_id: str, revision: str | None, token: str | None) -> str | None:
    """The ``tinker://`` path a repo's model card names, if it has one."""
    from huggingface_hub import hf_hub_download

    try:
        readme = hf_hub_download(
            repo_id=repo_id, filename="README.md", revision=revision, token=token
        )
        with open(readme, encoding="utf-8", errors="replace") as handle:
            found = re.search(r"tinker://[^\s`'\"]+", handle.read())
    except Exception:  # no README (or no branch yet): nothing to protect
        return None
    return found.group(0) if found else None


def _weights_info(rest: RestClient, tinker_path: str) -> dict[str, Any]:
    try:
        info = wait_for(
            rest.get_weights_info_by_tinker_path(tinker_path), f"the info of {tinker_path}"
        )
    except Exception:  # the card then says less; the upload itself does not need it
        return {}
    return {
        "base_model": info.base_model,
        "lora_rank": info.lora_rank,
        "train_attn": info.train_attn,
        "train_mlp": info.train_mlp,
        "train_unembed": info.train_unembed,
    }


def _fill_base_model(folder: str, base_model: str | None) -> None:
    """PEFT loads the base model named in ``adapter_config.json``; add it when missing."""
    path = os.path.join(folder, "adapter_config.json")
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    if isinstance(config, dict) and base_model and not config.get("base_model_name_or_path"):
        config["base_model_name_or_path"] = base_model
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write("\n")


def _slug(text: str) -> str:
    """Letters, digits, ``-``, ``_`` and ``.``; runs of anything else become one ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-_. ")


def derive_repo_id(base_model: str | None, run_id: str) -> str:
    """``tinker-<base model short name>-<run id>`` (the Hub puts it under your user)."""
    short = base_model.rsplit("/", 1)[-1] if base_model else "adapter"
    return re.sub(r"-{2,}", "-", _slug(f"tinker-{short}-{run_id}"))


def model_card(tinker_path: str, repo_id: str, info: dict[str, Any]) -> str:
    """A README.md for the Hub: metadata block, loading snippet, provenance."""
    base = info.get("base_model") or "unknown"
    tags = ["tinker", "tinkex", "peft", "lora"]
    if base != "unknown":
        tags.append(f"base_model:adapter:{base}")
    lines = ["---", f"base_model: {base}", "library_name: peft", "tags:"]
    lines += [f"- {tag}" for tag in tags]
    lines += [f"tinker_path: {tinker_path}", "---", "", f"# {repo_id}", ""]
    lines += [
        f"A LoRA adapter trained with Tinker on `{base}`, exported by `tinkex checkpoint push-hf`.",
        "",
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        "",
        f'model = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")',
        "```",
        "",
        f"Source checkpoint: `{tinker_path}`",
    ]
    if info.get("lora_rank") is not None:
        lines.append(f"LoRA rank: {info['lora_rank']}")
    trained = [
        k[len("train_") :] for k in ("train_attn", "train_mlp", "train_unembed") if info.get(k)
    ]
    if trained:
        lines.append(f"Trained parts: {', '.join(trained)}")
    return "\n".join(lines) + "\n"
