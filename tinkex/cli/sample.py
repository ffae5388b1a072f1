"""``tinkex sample``: sample completions from a base model or a saved sampler checkpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import Output, write_json
from tinkex.cli._parsers import add_command, non_negative_float, positive_int
from tinkex.cli._progress import wait_for

if TYPE_CHECKING:
    from tinkex import SamplingClient


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sample``."""
    p = add_command(
        subparsers,
        "sample",
        "Sample completions from a model.",
        common,
        description="Sample completions of a prompt from a base model (--base-model) or from\n"
        "trained weights (--model-path tinker://RUN/sampler_weights/NAME).\n"
        "The prompt is PROMPT (or --prompt TEXT), or the contents of --prompt-file: text, or a\n"
        "JSON list of token ids such as [72, 105]. '--prompt-file -' reads standard input.",
        epilog="examples:\n"
        '  tinkex sample --base-model Qwen/Qwen3-8B "The capital of France is"\n'
        "  tinkex sample --model-path tinker://RUN/sampler_weights/final --prompt-file q.txt \\\n"
        "      --num-samples 4 --temperature 0.7 --json --output samples.json",
    )
    p.add_argument("prompt", metavar="PROMPT", nargs="?", help="the prompt text")
    p.add_argument(
        "--prompt", dest="prompt_text", metavar="TEXT", help="the prompt text (same as PROMPT)"
    )
    p.add_argument("--prompt-file", metavar="FILE", help="read the prompt (text or token ids)")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--base-model", metavar="NAME", help="sample from this base model")
    model.add_argument("--model-path", metavar="PATH", help="sample from these saved weights")
    p.add_argument("--max-tokens", metavar="N", type=positive_int, default=64, help="default 64")
    p.add_argument(
        "--temperature", metavar="T", type=non_negative_float, default=1.0, help="default 1.0"
    )
    p.add_argument("--top-p", metavar="P", type=_probability, default=1.0, help="default 1.0 (off)")
    p.add_argument("--top-k", metavar="K", type=int, default=-1, help="default -1 (off)")
    p.add_argument("--seed", metavar="N", type=int, default=None, help="same seed, same tokens")
    p.add_argument(
        "--stop",
        action="append",
        metavar="TEXT",
        help="stop when this text is produced (repeatable; default: end-of-sequence token)",
    )
    p.add_argument(
        "--num-samples", "-n", metavar="N", type=positive_int, default=1, help="default 1"
    )
    p.add_argument("--logprobs", action="store_true", help="include per-token logprobs (JSON)")
    p.add_argument("--output", "-o", metavar="FILE", help="also write the JSON result to FILE")
    p.set_defaults(cmd=cmd_sample)


def _probability(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def read_prompt(args: argparse.Namespace) -> str | list[int]:
    """The prompt as text, or as token ids when the file holds a JSON list of integers."""
    text = _prompt_text(args)
    if text is not None and args.prompt_file:
        raise CommandError("give PROMPT (or --prompt) or --prompt-file, not both")
    if text is not None:
        return text
    if not args.prompt_file:
        raise CommandError("no prompt: give PROMPT, --prompt TEXT or --prompt-file FILE")
    if args.prompt_file == "-":
        content = sys.stdin.read()
    else:
        try:
            with open(args.prompt_file, encoding="utf-8") as handle:
                content = handle.read()
        except OSError as exc:
            raise CommandError(f"cannot read --prompt-file {args.prompt_file}: {exc}") from None
    stripped = content.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError:
            return content
        if not isinstance(parsed, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in parsed
        ):
            raise CommandError(
                f"--prompt-file {args.prompt_file}: a JSON prompt must be a list "
                "of integer token ids"
            )
        if not parsed:
            raise CommandError(f"--prompt-file {args.prompt_file}: the token list is empty")
        return list(parsed)
    return content


def _prompt_text(args: argparse.Namespace) -> str | None:
    """PROMPT or ``--prompt TEXT`` (one of them at most)."""
    option: str | None = getattr(args, "prompt_text", None)
    if option is not None and args.prompt is not None:
        raise CommandError("give PROMPT or --prompt, not both")
    return str(args.prompt) if args.prompt is not None else option


def _local_model_tokenizer(base_model: str) -> Any:
    """The byte tokenizer for the local server's own models (``tinkex/tiny``, ``tinkex/null``).

    Servers that do not report a sampler's ``tokenizer_id`` leave ``get_tokenizer()`` to guess
    from the model name; the local models' names are not Hub ids, so map them here.
    """
    if not base_model.startswith("tinkex/"):
        return None
    from tinkex.tokenizer import get_tokenizer

    try:
        return get_tokenizer("tinkex/byte-tokenizer")
    except Exception:
        return None


def _tinkex_written_tokenizer(client: SamplingClient) -> Any:
    """The sampler's tokenizer loaded by tinkex alone, when tinkex wrote its files: the folder
    a local server names as ``tokenizer_id``, or a ``tinkex/`` id; else None.

    ``get_tokenizer()`` gives a ``transformers`` tokenizer when ``transformers`` is installed,
    and importing it was most of a ``tinkex sample`` run (seconds). For files tinkex wrote,
    both read the same ``tokenizer.json`` and encode and decode alike; a hosted model's
    tokenizer is left to ``get_tokenizer()`` (its configuration may ask ``transformers`` for
    more, such as cleaning up spaces when decoding).
    """
    tokenizer_id = client.tokenizer_id
    if tokenizer_id is None or not (
        tokenizer_id.startswith("tinkex/") or os.path.isdir(tokenizer_id)
    ):
        return None
    from tinkex.tokenizer import TokenizerNotFoundError, get_tokenizer

    try:
        return get_tokenizer(tokenizer_id)
    except (TokenizerNotFoundError, ValueError):
        return None


class _Codec:
    """Encodes/decodes with the sampler's tokenizer when one is available offline."""

    def __init__(self, client: SamplingClient) -> None:
        self._client = client
        self._tokenizer: Any = _tinkex_written_tokenizer(client)
        self.error: str | None = None
        if self._tokenizer is not None:
            return
        try:
            self._tokenizer = client.get_tokenizer()
        except Exception as exc:  # a hosted model whose tokenizer is not cached locally
            self._tokenizer = _local_model_tokenizer(client.get_base_model())
            if self._tokenizer is None:
                self.error = " ".join(str(exc).split()) or type(exc).__name__

    def encode(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise CommandError(
                f"cannot tokenize the prompt ({self.error}); pass token ids in a --prompt-file "
                "as a JSON list instead"
            )
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, tokens: list[int]) -> str | None:
        if self._tokenizer is None:
            return None
        try:
            return str(self._tokenizer.decode(tokens, skip_special_tokens=True))
        except TypeError:
            return str(self._tokenizer.decode(tokens))


def cmd_sample(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex sample``."""
    import tinkex
    from tinkex import types

    prompt = read_prompt(args)
    if args.model_path and not args.model_path.startswith("tinker://"):
        raise CommandError(f"--model-path must be a tinker:// path, got {args.model_path!r}")
    params = types.SamplingParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        seed=args.seed,
        stop=args.stop,
    )
    service: tinkex.ServiceClient
    with ctx.service() as service:
        client = wait_for(
            service.create_sampling_client(model_path=args.model_path, base_model=args.base_model),
            "the sampling session",
        )
        codec = _Codec(client)
        tokens = codec.encode(prompt) if isinstance(prompt, str) else prompt
        response = wait_for(
            client.sample(
                types.ModelInput.from_ints(tokens),
                num_samples=args.num_samples,
                sampling_params=params,
            ),
            "the samples",
        )

    samples = []
    for sequence in response.sequences:
        sample: dict[str, Any] = {
            "text": codec.decode(list(sequence.tokens)),
            "tokens": list(sequence.tokens),
            "stop_reason": sequence.stop_reason,
        }
        if args.logprobs:
            sample["logprobs"] = sequence.logprobs
        samples.append(sample)
    data = {
        "model": args.model_path or args.base_model,
        "prompt": prompt if isinstance(prompt, str) else codec.decode(tokens),
        "prompt_tokens": tokens,
        "sampling_params": {
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "top_k": args.top_k,
            "seed": args.seed,
            "stop": args.stop,
        },
        "samples": samples,
    }
    if args.output:
        try:
            write_json(args.output, data)
        except OSError as exc:
            raise CommandError(f"cannot write --output {args.output}: {exc}") from None
        print(f"Wrote {len(samples)} sample(s) to {args.output}", file=sys.stderr)
    ctx.emit(Output(data, text=_render(samples)))


def _render(samples: list[dict[str, Any]]) -> str:
    blocks = []
    for i, sample in enumerate(samples, 1):
        header = f"--- sample {i}/{len(samples)} ({len(sample['tokens'])} tokens, "
        header += f"stop: {sample['stop_reason']}) ---"
        body = sample["text"] if sample["text"] is not None else json.dumps(sample["tokens"])
        blocks.append(f"{header}\n{body}")
    return "\n".join(blocks)
