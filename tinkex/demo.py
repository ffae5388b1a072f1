"""``python -m tinkex.demo`` (``make demo``): LoRA fine-tuning end to end, in about a minute.

What it does, only through the public tinkex API (the same code runs with
``import tinker``):

1. connects to ``TINKER_BASE_URL`` (with ``TINKER_API_KEY``) when set — after a fast check that
   a Tinker API answers there — otherwise (or with ``--local``) starts an embedded
   :class:`tinkex.local.LocalServer` in this process;
2. creates a LoRA training client and trains it with supervised cross-entropy on the short Q/A
   pairs shipped in ``tinkex/demo_data/qa.json``, pipelining ``forward_backward`` and
   ``optim_step`` futures (the next step is submitted before the previous one is awaited) and
   drawing a progress bar with the step, the loss, tokens/s and an ETA;
3. samples every prompt from the base model and from the trained weights and prints them side
   by side in a table at most 100 columns wide (a legend explains its marks);
4. writes ``demo-output/loss_curve.png`` (matplotlib, ``pip install 'tinkex[demo]'``) and
   ``demo-output/metrics.json``.

It exits 0 when the loss went down, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from tinkex.cli._progress import ProgressBar, format_rate, wait_for

if TYPE_CHECKING:
    import tinkex
    from tinkex import types

#: How many training steps may be in flight before the oldest one is awaited.
PIPELINE_DEPTH = 2
EOS_FALLBACK = 257  # the byte tokenizer's end-of-text id


@dataclass
class Example:
    """One prompt/completion pair."""

    prompt: str
    completion: str


@dataclass
class DemoResult:
    """What the demo measured (also written to ``metrics.json``)."""

    base_url: str
    base_model: str
    steps: int
    losses: list[float] = field(default_factory=list)
    tokens_per_second: float = 0.0
    train_seconds: float = 0.0
    samples: list[dict[str, str]] = field(default_factory=list)
    sampler_path: str | None = None
    plot_path: str | None = None


def load_examples() -> list[Example]:
    """The shipped Q/A pairs, formatted with the dataset's prompt template."""
    raw = resources.files("tinkex.demo_data").joinpath("qa.json").read_text(encoding="utf-8")
    spec = json.loads(raw)
    template: str = spec["prompt_template"]
    return [
        Example(template.format(question=pair["question"]), pair["answer"])
        for pair in spec["pairs"]
    ]


def build_datum(tokenizer: Any, example: Example) -> types.Datum:
    """A next-token-prediction datum that trains on the completion (and its EOS) only."""
    from tinkex import types

    prompt = list(tokenizer.encode(example.prompt, add_special_tokens=False))
    completion = list(tokenizer.encode(example.completion, add_special_tokens=False))
    eos = getattr(tokenizer, "eos_token_id", None)
    tokens = prompt + completion + [eos if isinstance(eos, int) else EOS_FALLBACK]
    weights = [0.0] * (len(prompt) - 1) + [1.0] * (len(tokens) - len(prompt))
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": weights},
    )


class ServerCheckFailed(RuntimeError):
    """``TINKER_BASE_URL`` points at something that is not a usable Tinker API."""


@contextmanager
def connect(local: bool = False) -> Iterator[tuple[str | None, str | None, str]]:
    """``(base_url, api_key, description)``: the env's server, or an embedded local one.

    A ``TINKER_BASE_URL`` is checked first (:func:`tinkex._server_check.check_server`, a few
    seconds at most), so a stale one fails at once with what to do instead of hanging.
    """
    if os.environ.get("TINKER_BASE_URL") and not local:
        from tinkex._config import ClientSettings
        from tinkex._server_check import check_server
        from tinkex.cli._errors import describe_error

        url = os.environ["TINKER_BASE_URL"]
        try:
            check_server(ClientSettings.resolve())
        except Exception as exc:
            raise ServerCheckFailed(
                f"{describe_error(exc, url)}\n(TINKER_BASE_URL={url}). To run the demo on an "
                "embedded local server instead: python -m tinkex.demo --local "
                "(make demo DEMO_ARGS=--local), or unset TINKER_BASE_URL."
            ) from None
        yield None, None, f"{url} (from TINKER_BASE_URL)"
        return
    from tinkex.local import LocalServer

    with LocalServer() as server:
        yield server.base_url, server.api_key, f"embedded local server at {server.base_url}"


def pick_base_model(client_kwargs: dict[str, Any], requested: str | None) -> str:
    """The requested model, else the first trainable model the server advertises."""
    if requested:
        return requested
    import tinkex

    with tinkex.RestClient(**client_kwargs) as rest:
        models = wait_for(rest.get_server_capabilities(), "the list of models").supported_models
    for model in models:
        if model.model_name and model.trainable is not False:
            return str(model.model_name)
    raise RuntimeError("the server advertises no trainable model; pass --base-model")


def train(
    training: tinkex.TrainingClient,
    data: list[types.Datum],
    *,
    steps: int,
    learning_rate: float,
) -> tuple[list[float], float, float]:
    """Full-batch SFT for ``steps`` steps; returns (per-token losses, tokens/s, seconds)."""
    from tinkex import types

    tokens_per_step = sum(d.model_input.length for d in data)
    weight_per_step = sum(float(sum(d.loss_fn_inputs["weights"].data)) for d in data)
    losses: list[float] = []
    in_flight: collections.deque[tuple[Any, Any]] = collections.deque()
    start = time.monotonic()

    with ProgressBar(steps, label="train", unit="steps") as bar:

        def finish_oldest() -> None:
            fwd_bwd, optim = in_flight.popleft()
            step = len(losses) + 1
            metrics = wait_for(fwd_bwd, f"training step {step} (forward_backward)").metrics
            wait_for(optim, f"training step {step} (optim_step)")
            losses.append(float(metrics["loss:sum"]) / max(weight_per_step, 1.0))
            rate = tokens_per_step * len(losses) / max(time.monotonic() - start, 1e-9)
            bar.update(1, loss=f"{losses[-1]:.3f}", **{"tok/s": format_rate(rate)})

        for step in range(steps):
            # Linear decay to 10% of the peak: stable at the start, precise at the end.
            lr = learning_rate * (1.0 - 0.9 * step / max(steps - 1, 1))
            in_flight.append(
                (
                    training.forward_backward(data, "cross_entropy"),
                    training.optim_step(types.AdamParams(learning_rate=lr)),
                )
            )
            if len(in_flight) > PIPELINE_DEPTH:
                finish_oldest()
        while in_flight:
            finish_oldest()
    seconds = time.monotonic() - start
    return losses, tokens_per_step * steps / max(seconds, 1e-9), seconds


def sample_all(
    client: tinkex.SamplingClient, tokenizer: Any, prompts: Sequence[str], max_tokens: int
) -> list[str]:
    """Greedy completions of every prompt (requests sent concurrently, then awaited)."""
    from tinkex import types

    params = types.SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=0)
    futures = [
        client.sample(
            types.ModelInput.from_ints(tokenizer.encode(p, add_special_tokens=False)),
            num_samples=1,
            sampling_params=params,
        )
        for p in prompts
    ]
    texts = []
    for future in futures:
        tokens = list(wait_for(future, "the samples").sequences[0].tokens)
        texts.append(str(tokenizer.decode(tokens, skip_special_tokens=True)))
    return texts


#: Column widths of the samples table; with the separators it is 96 columns wide (fits 100).
TABLE_WIDTHS = (21, 24, 18, 20, 5)
EMPTY_CELL = "(empty)"
TABLE_LEGEND = (
    f"{EMPTY_CELL}: the model stopped at once (end-of-sequence first); "
    "\u21b5: a newline; \u2026: cut to fit;\n"
    "\u00b7: a character not printable in one column. "
    "The base model is untrained: it samples noise."
)


def show(text: str, width: int) -> str:
    """One printable line of at most ``width`` characters (``(empty)`` for no text)."""
    if not text.strip():
        return EMPTY_CELL
    printable = "".join(ch if _one_column(ch) else "\u00b7" for ch in text.replace("\n", "\u21b5"))
    return printable if len(printable) <= width else printable[: width - 1] + "\u2026"


def _one_column(ch: str) -> bool:
    """Printable, and one terminal column wide (wide CJK characters take two)."""
    import unicodedata

    return (
        ch.isprintable()
        and ch != "\ufffd"
        and unicodedata.east_asian_width(ch) not in ("W", "F")
        and not unicodedata.combining(ch)
    )


def print_side_by_side(examples: Sequence[Example], base: list[str], tuned: list[str]) -> int:
    """Print prompt | expected | base | fine-tuned | match (at most 100 columns, with a legend
    for the marks); returns how many fine-tuned answers match."""
    header = ("prompt", "expected", "base model", "fine-tuned", "match")
    print("  ".join(h.ljust(w) for h, w in zip(header, TABLE_WIDTHS, strict=True)).rstrip())
    print("  ".join("-" * w for w in TABLE_WIDTHS))
    correct = 0
    for example, before, after in zip(examples, base, tuned, strict=True):
        ok = after.strip() == example.completion.strip()
        correct += ok
        question = example.prompt.removeprefix("Q: ").removesuffix("\nA:")
        cells = (question, example.completion.strip(), before, after, "yes" if ok else "no")
        line = "  ".join(show(c, w).ljust(w) for c, w in zip(cells, TABLE_WIDTHS, strict=True))
        print(line.rstrip())
    print(TABLE_LEGEND)
    return correct


def plot_losses(losses: list[float], path: str, title: str) -> str | None:
    """Write the loss curve PNG; returns its path, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    steps = list(range(1, len(losses) + 1))
    ax.plot(steps, losses, marker=".", linewidth=1.5, color="#3366cc")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / completion token)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> DemoResult:
    """The whole demo; prints as it goes and returns what it measured."""
    import tinkex

    examples = load_examples()
    with connect(args.local) as (base_url, api_key, where):
        print(f"server: {where}")
        kwargs: dict[str, Any] = {
            k: v for k, v in (("base_url", base_url), ("api_key", api_key)) if v
        }
        base_model = pick_base_model(kwargs, args.base_model)
        with tinkex.ServiceClient(**kwargs) as service:
            training = wait_for(
                service.create_lora_training_client(
                    base_model=base_model, rank=args.rank, seed=args.seed
                ),
                f"a LoRA training client for {base_model}",
            )
            tokenizer = training.get_tokenizer()
            data = [build_datum(tokenizer, e) for e in examples]
            tokens = sum(d.model_input.length for d in data)
            print(
                f"model: {base_model}, LoRA rank {args.rank}, "
                f"tokenizer {getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)}"
            )
            print(f"data: {len(data)} Q/A pairs, {tokens} tokens per step (full batch)")
            base_sampler = wait_for(
                service.create_sampling_client(base_model=base_model),
                f"a sampling client for {base_model}",
            )
            result = DemoResult(base_url or os.environ["TINKER_BASE_URL"], base_model, args.steps)
            result.losses, result.tokens_per_second, result.train_seconds = train(
                training, data, steps=args.steps, learning_rate=args.learning_rate
            )
            tuned_sampler = wait_for(
                training.save_weights_and_get_sampling_client(), "the trained weights"
            )
            saved = wait_for(training.save_weights_for_sampler("demo-final"), "the saved weights")
            result.sampler_path = saved.path
            prompts = [e.prompt for e in examples]
            max_tokens = args.max_tokens
            base = sample_all(base_sampler, tokenizer, prompts, max_tokens)
            tuned = sample_all(tuned_sampler, tokenizer, prompts, max_tokens)

    print(f"\nsamples (greedy, up to {args.max_tokens} tokens):")
    correct = print_side_by_side(examples, base, tuned)
    print(f"{correct}/{len(examples)} fine-tuned answers match exactly")
    result.samples = [
        {"prompt": e.prompt, "expected": e.completion, "base": b, "fine_tuned": t}
        for e, b, t in zip(examples, base, tuned, strict=True)
    ]
    os.makedirs(args.output_dir, exist_ok=True)
    png = os.path.abspath(os.path.join(args.output_dir, "loss_curve.png"))
    result.plot_path = plot_losses(
        result.losses, png, f"tinkex demo: LoRA SFT of {base_model} on {len(examples)} Q/A pairs"
    )
    with open(os.path.join(args.output_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(result.__dict__, handle, indent=2)
        handle.write("\n")
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options of the demo (all have working defaults)."""
    parser = argparse.ArgumentParser(
        prog="python -m tinkex.demo",
        description="LoRA fine-tuning demo: trains on short Q/A pairs and compares samples of "
        "the base and the fine-tuned model. Uses TINKER_BASE_URL/TINKER_API_KEY when set, "
        "else an embedded local server.",
    )
    parser.add_argument("--base-model", help="default: the server's first trainable model")
    parser.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    parser.add_argument("--learning-rate", "--lr", type=float, default=1e-2, help="peak LR")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="LoRA init seed (default 0)")
    parser.add_argument("--max-tokens", type=int, default=32, help="sample length (default 32)")
    parser.add_argument("--output-dir", default="demo-output", help="default: ./demo-output")
    parser.add_argument(
        "--local",
        action="store_true",
        help="use an embedded local server even when TINKER_BASE_URL is set",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = parse_args(argv)
    print("tinkex demo: LoRA fine-tuning through the public tinkex API")
    try:
        result = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except ServerCheckFailed as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from tinkex.cli._errors import describe_error

        print(f"Error: {describe_error(exc, os.environ.get('TINKER_BASE_URL'))}", file=sys.stderr)
        return 1
    first, last = result.losses[0], result.losses[-1]
    print(
        f"\nloss {first:.3f} -> {last:.3f} nats/token in {result.steps} steps, "
        f"{result.train_seconds:.1f} s ({format_rate(result.tokens_per_second)} tokens/s)"
    )
    print(f"trained weights: {result.sampler_path}")
    if result.plot_path:
        print(f"loss curve: {result.plot_path}")
    else:
        print("loss curve: skipped (matplotlib missing: pip install 'tinkex[demo]')")
    if not last < first:
        print("Error: the loss did not go down", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
