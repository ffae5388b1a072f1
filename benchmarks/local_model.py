"""Speed of the local server's tiny numpy model on this machine.

Measures, for the default ``tinkex/tiny`` model (no HTTP, the model alone):

* forward/backward + optim step time of a batch of 32 x 128 tokens (cross_entropy, LoRA rank 8);
* sampling throughput in generated tokens/s (8 samples x 128 tokens from a 32-token prompt).

Usage::

    python benchmarks/local_model.py [--steps 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from tinkex.local.model import (
    AdamSettings,
    DatumArrays,
    LoraSpec,
    SampleSettings,
    create_trainable,
    resolve_arch,
    sample,
)


def fwdbwd_seconds(steps: int, batch: int = 32, tokens: int = 128) -> float:
    """Median seconds of one forward_backward + optim_step on ``batch`` x ``tokens``."""
    model = create_trainable(resolve_arch("tinkex/tiny"), LoraSpec(rank=8))
    rng = np.random.default_rng(0)
    data = []
    for _ in range(batch):
        seq = rng.integers(0, 256, size=tokens + 1)
        data.append(
            DatumArrays(
                tokens=seq[:-1].astype(np.int64),
                loss_inputs={
                    "target_tokens": seq[1:].astype(np.int64),
                    "weights": np.ones(tokens, dtype=np.float32),
                },
            )
        )
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        model.forward_backward(data, "cross_entropy", None, forward_only=False)
        model.optim_step(AdamSettings(learning_rate=1e-3))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def sampling_tokens_per_second(rounds: int, num_samples: int = 8, max_tokens: int = 128) -> float:
    """Generated tokens per second, best of ``rounds``."""
    model = create_trainable(resolve_arch("tinkex/tiny"), LoraSpec(rank=8))
    weights = model.sampler_weights()
    prompt = np.arange(32, 64, dtype=np.int64)
    settings = SampleSettings(max_tokens=max_tokens, temperature=1.0, seed=1, stop_token_ids=())
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        outputs, _ = sample(weights, prompt, num_samples, settings)
        elapsed = time.perf_counter() - start
        generated = sum(len(o.tokens) for o in outputs)
        best = max(best, generated / elapsed)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    step = fwdbwd_seconds(args.steps)
    tps = sampling_tokens_per_second(max(args.steps // 2, 2))
    print(
        f"tinkex/tiny fwd/bwd + optim, 32 x 128 tokens: {step * 1000:.0f} ms/step "
        f"({32 * 128 / step:.0f} tokens/s)"
    )
    print(f"tinkex/tiny sampling, 8 x 128 tokens:        {tps:.0f} generated tokens/s")
    if args.json:
        args.json.write_text(
            json.dumps({"fwdbwd_step_seconds": step, "sampling_tokens_per_s": tps})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
