"""How many bytes the model will allocate for a request, estimated before it allocates any.

The server admits work against its memory budget with these estimates (see
:mod:`tinkex.local.engine.memory`). Each is an upper bound of the numpy arrays the model
allocates at its peak, from the shapes alone: a bit generous on purpose, never dependent on the
values. ``tests/local/model/test_footprint.py`` checks each against the peak ``tracemalloc``
measures.
"""

from __future__ import annotations

from collections.abc import Sequence

from .spec import LoraSpec, ModelArch
from .tiny import adapted_modules, module_shape
from .trainable import NULL_ARCH, batch_rows

__all__ = [
    "forward_backward_bytes",
    "sample_bytes",
    "snapshot_bytes",
    "trainable_bytes",
]

_FLOAT = 4  # float32, the compute precision
_WIDE = 8  # int64 / float64 arrays (tokens, sampling distributions)


def _lora_values(arch: ModelArch, rank: int, lora: LoraSpec | None = None) -> int:
    if arch.arch == NULL_ARCH:
        return 0
    enabled = {"attn": True, "mlp": True, "unembed": True}
    if lora is not None:
        enabled = {"attn": lora.train_attn, "mlp": lora.train_mlp, "unembed": lora.train_unembed}
    return sum(
        (sum(module_shape(arch, module)) * rank)
        for module, group in adapted_modules(arch).items()
        if enabled[group]
    )


def _merged_values(arch: ModelArch) -> int:
    """The adapted matrices of the merged (base + LoRA) weights, which replace the base ones."""
    if arch.arch == NULL_ARCH:
        return 0
    total = 0
    for module in adapted_modules(arch):
        d_in, d_out = module_shape(arch, module)
        total += d_in * d_out
    return total


def trainable_bytes(arch: ModelArch, lora: LoraSpec) -> int:
    """A training run: LoRA weights, gradients, both Adam moments and the merged weights (and
    the temporaries of creating them)."""
    return (5 * _lora_values(arch, lora.rank, lora) + 2 * _merged_values(arch)) * _FLOAT


def snapshot_bytes(arch: ModelArch, rank: int | None) -> int:
    """A sampler's weights: the LoRA snapshot and its merged weights (none for the base model)."""
    if rank is None:
        return 0
    return (_lora_values(arch, rank) + _merged_values(arch)) * _FLOAT


def _per_token_values(arch: ModelArch, length: int, forward_only: bool) -> int:
    """Floats alive per token of a batch of rows of ``length`` tokens, at the peak."""
    d, f, v, h = arch.d_model, arch.d_ff, arch.vocab_size, arch.n_heads
    # what the backward keeps of each layer: activations, q/k/v, MLP values, attention weights
    kept = 10 * d + 3 * f + h * length
    # the layer being computed: attention scores in up to five copies, GELU temporaries
    forward = 5 * h * length + 4 * d + 5 * f
    backward = 3 * h * length + 8 * d + 5 * f
    logits = 4 * v + 4 * d  # log-probs, exp(log-probs), their gradient; the final norm
    if forward_only:
        return forward + logits
    return arch.n_layers * kept + max(forward, backward) + logits


def forward_backward_bytes(arch: ModelArch, lengths: Sequence[int], forward_only: bool) -> int:
    """A forward(_backward) of datums of ``lengths`` tokens: the decoded inputs, the largest
    batch's activations (batches run one at a time) and the per-token outputs."""
    tokens = sum(lengths)
    inputs = tokens * 4 * _WIDE  # tokens, targets and two loss inputs, at most 8 bytes each
    outputs = tokens * 2 * _FLOAT + tokens * 3 * _WIDE  # logprobs, losses; float64 on the way
    if arch.arch == NULL_ARCH or not lengths:
        return inputs + outputs
    peak = 0
    for batch in batch_rows(list(lengths), arch.n_heads):
        longest = lengths[batch[0]]
        rows = len(batch) * longest
        peak = max(peak, rows * _per_token_values(arch, longest, forward_only) * _FLOAT)
    return inputs + outputs + peak


def sample_bytes(
    arch: ModelArch,
    prompt_length: int,
    num_samples: int,
    max_tokens: int,
    *,
    topk_prompt: int = 0,
    topk_sample: int = 0,
    target_columns: int = 0,
    alt_k: int = 0,
) -> int:
    """One sample request: the KV cache of every row, the prompt's scoring, the per-step
    sampling distributions and the sampled outputs."""
    d, f, v, h = arch.d_model, arch.d_ff, arch.vocab_size, arch.n_heads
    capacity = prompt_length + max(max_tokens, 1)
    kv_cache = num_samples * arch.n_layers * 2 * capacity * d * _FLOAT
    prefill = prompt_length * (10 * d + 3 * f + 5 * h * prompt_length + 3 * v) * _FLOAT
    scoring = prompt_length * (topk_prompt + target_columns + 2 * alt_k) * _WIDE
    # tempered log-probs, probabilities, their cumulative sum, top-k/top-p masks: float64 rows
    step = num_samples * v * 8 * _WIDE
    # Python ints/floats per sampled token (~100 bytes) plus its top-k row
    outputs = num_samples * max_tokens * (100 + topk_sample * (2 * _FLOAT + 16))
    if arch.arch == NULL_ARCH:
        return num_samples * max_tokens * (2 * _WIDE + topk_sample * 2 * _FLOAT) + scoring
    return kv_cache + prefill + scoring + step + outputs
