"""Sampling from :class:`SamplerWeights`: KV-cached decoding of all samples in one batch."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import tiny
from ._blas import pin_blas_single_thread
from .spec import ModelInputError, PromptScores, SampleOutput, SampleSettings
from .trainable import NULL_ARCH, SamplerWeights

__all__ = ["sample"]

Array = npt.NDArray[Any]


def _check(
    weights: SamplerWeights,
    prompt: Array,
    num_samples: int,
    settings: SampleSettings,
    topk_prompt_logprobs: int,
) -> Array:
    arch = weights.arch
    tokens = np.asarray(prompt)
    if tokens.ndim != 1:
        raise ModelInputError(f"prompt must be 1-D, got shape {tokens.shape}")
    if tokens.shape[0] == 0:
        raise ModelInputError("prompt is empty; sampling needs at least one prompt token")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ModelInputError(f"prompt tokens must be integers, got dtype {tokens.dtype}")
    tokens = tokens.astype(np.int64)
    low, high = int(tokens.min()), int(tokens.max())
    if low < 0 or high >= arch.vocab_size:
        bad = low if low < 0 else high
        raise ModelInputError(
            f"prompt[{int(np.argmax(tokens == bad))}] = {bad} is outside the vocabulary "
            f"[0, {arch.vocab_size})"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ModelInputError(f"num_samples must be >= 1, got {num_samples!r}")
    if settings.max_tokens < 0:
        raise ModelInputError(f"max_tokens must be >= 0, got {settings.max_tokens}")
    if tokens.shape[0] + settings.max_tokens > arch.max_seq_len:
        raise ModelInputError(
            f"prompt length {tokens.shape[0]} + max_tokens {settings.max_tokens} exceeds the "
            f"max_seq_len {arch.max_seq_len} of {arch.name}"
        )
    if not (settings.temperature >= 0 and math.isfinite(settings.temperature)):
        raise ModelInputError(f"temperature must be >= 0, got {settings.temperature}")
    if not (0 < settings.top_p <= 1):
        raise ModelInputError(f"top_p must be in (0, 1], got {settings.top_p}")
    if topk_prompt_logprobs < 0:
        raise ModelInputError(f"topk_prompt_logprobs must be >= 0, got {topk_prompt_logprobs}")
    if topk_prompt_logprobs > arch.vocab_size:
        raise ModelInputError(
            f"topk_prompt_logprobs {topk_prompt_logprobs} exceeds the vocabulary size "
            f"{arch.vocab_size}"
        )
    for sequence in settings.stop_sequences:
        if len(sequence) == 0:
            raise ModelInputError("stop_sequences must not contain an empty sequence")
    return tokens


def sample(
    weights: SamplerWeights,
    prompt: Array,
    num_samples: int,
    settings: SampleSettings,
    *,
    prompt_logprobs: bool = False,
    topk_prompt_logprobs: int = 0,
) -> tuple[list[SampleOutput], PromptScores | None]:
    """Sample ``num_samples`` continuations of ``prompt`` (token ids) and optionally score it.

    The same ``settings.seed`` gives the same output. Prompt scores are returned when
    ``prompt_logprobs`` or ``topk_prompt_logprobs > 0``.

    Raises:
        ModelInputError: empty prompt, ids out of range, prompt + max_tokens > max_seq_len,
            num_samples < 1, or an out-of-range setting.
    """
    pin_blas_single_thread()
    tokens = _check(weights, prompt, num_samples, settings, topk_prompt_logprobs)
    want_scores = prompt_logprobs or topk_prompt_logprobs > 0
    if weights.arch.arch == NULL_ARCH:
        return _null_sample(
            weights, tokens, num_samples, settings, topk_prompt_logprobs, want_scores
        )
    arch = weights.arch
    w = weights.effective()
    capacity = tokens.shape[0] + max(settings.max_tokens, 1)
    prompt_logp, cache = tiny.prefill(arch, w, tokens, num_samples, capacity)
    scores = _prompt_scores(prompt_logp, tokens, topk_prompt_logprobs) if want_scores else None
    rng = np.random.default_rng(settings.seed)
    stopper = _Stopper(num_samples, settings)
    next_logp = np.broadcast_to(prompt_logp[-1], (num_samples, arch.vocab_size))
    for step in range(settings.max_tokens):
        chosen, chosen_lp = _choose(next_logp, settings, rng)
        stopper.push(chosen, chosen_lp)
        if stopper.all_done or step == settings.max_tokens - 1:
            break
        next_logp = tiny.decode_step(arch, w, chosen, cache)
    return stopper.outputs(), scores


def _choose(logp: Array, settings: SampleSettings, rng: np.random.Generator) -> tuple[Array, Array]:
    rows = np.arange(logp.shape[0])
    if settings.temperature == 0:
        chosen = np.argmax(logp, axis=-1)
        return chosen, logp[rows, chosen]
    tempered = tiny.log_softmax(logp.astype(np.float64) / settings.temperature)
    probs = np.exp(tempered)
    vocab = probs.shape[-1]
    if 0 < settings.top_k < vocab:
        kth = np.partition(probs, vocab - settings.top_k, axis=-1)[:, vocab - settings.top_k]
        probs = np.where(probs >= kth[:, None], probs, 0.0)
    if settings.top_p < 1.0:
        order = np.argsort(-probs, axis=-1, kind="stable")
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        cumulative = np.cumsum(sorted_probs, axis=-1) / np.sum(sorted_probs, axis=-1, keepdims=True)
        # keep the smallest prefix whose mass reaches top_p (always at least the best token)
        keep_sorted = (cumulative - sorted_probs / sorted_probs.sum(-1, keepdims=True)) < (
            settings.top_p
        )
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
    cdf = np.cumsum(probs, axis=-1)
    draws = rng.random(logp.shape[0]) * cdf[:, -1]
    chosen = np.minimum((cdf <= draws[:, None]).sum(axis=-1), vocab - 1)
    # never land on a zero-probability token through float round-off
    chosen = np.where(probs[rows, chosen] > 0, chosen, np.argmax(probs, axis=-1))
    return chosen, tempered[rows, chosen]


def _prompt_scores(logp: Array, tokens: Array, topk: int) -> PromptScores:
    length = tokens.shape[0]
    lps = np.full(length, np.nan, np.float32)
    lps[1:] = logp[np.arange(length - 1), tokens[1:]]
    if topk <= 0:
        return PromptScores(lps)
    ids = np.full((length, topk), -1, np.int32)
    values = np.full((length, topk), np.nan, np.float32)
    if length > 1:
        preceding = logp[:-1]
        best = np.argsort(-preceding, axis=-1, kind="stable")[:, :topk]
        ids[1:] = best
        values[1:] = np.take_along_axis(preceding, best, axis=-1)
    return PromptScores(lps, ids, values)


class _Stopper:
    """Collects sampled tokens per row and decides when each row stops."""

    def __init__(self, rows: int, settings: SampleSettings):
        self._stop_ids = set(settings.stop_token_ids)
        self._sequences = [list(s) for s in settings.stop_sequences]
        self._tokens: list[list[int]] = [[] for _ in range(rows)]
        self._logprobs: list[list[float]] = [[] for _ in range(rows)]
        self._reasons: list[Literal["stop", "length"]] = ["length"] * rows
        self._active = rows

    @property
    def all_done(self) -> bool:
        return self._active == 0

    def push(self, chosen: Array, chosen_lp: Array) -> None:
        for row, (token, lp) in enumerate(zip(chosen.tolist(), chosen_lp.tolist(), strict=True)):
            if self._reasons[row] == "stop":
                continue
            generated = self._tokens[row]
            generated.append(int(token))
            self._logprobs[row].append(float(lp))
            if token in self._stop_ids or any(
                len(seq) <= len(generated) and generated[-len(seq) :] == seq
                for seq in self._sequences
            ):
                self._reasons[row] = "stop"
                self._active -= 1

    def outputs(self) -> list[SampleOutput]:
        return [
            SampleOutput(np.array(tokens, np.int32), np.array(lps, np.float32), reason)
            for tokens, lps, reason in zip(self._tokens, self._logprobs, self._reasons, strict=True)
        ]


def _null_sample(
    weights: SamplerWeights,
    tokens: Array,
    num_samples: int,
    settings: SampleSettings,
    topk: int,
    want_scores: bool,
) -> tuple[list[SampleOutput], PromptScores | None]:
    """Cheap deterministic output: seeded lowercase letters, constant logprobs."""
    vocab = weights.arch.vocab_size
    constant = np.float32(-math.log(vocab))
    rng = np.random.default_rng(settings.seed)
    drawn = rng.integers(97, 123, size=(num_samples, settings.max_tokens), dtype=np.int32)
    stop_ids = np.array(settings.stop_token_ids, np.int32)
    outputs = []
    for row in drawn:
        end = settings.max_tokens
        reason: Literal["stop", "length"] = "length"
        if stop_ids.size:
            hits = np.flatnonzero(np.isin(row, stop_ids))
            if hits.size:
                end, reason = int(hits[0]) + 1, "stop"
        if settings.stop_sequences:
            listed = row[:end].tolist()
            for position in range(1, end + 1):
                if any(
                    len(seq) <= position and listed[position - len(seq) : position] == list(seq)
                    for seq in settings.stop_sequences
                ):
                    end, reason = position, "stop"
                    break
        outputs.append(SampleOutput(row[:end].copy(), np.full(end, constant), reason))
    scores = None
    if want_scores:
        length = tokens.shape[0]
        lps = np.full(length, constant, np.float32)
        lps[0] = np.nan
        if topk:
            ids = np.tile(np.arange(topk, dtype=np.int32), (length, 1))
            values = np.full((length, topk), constant, np.float32)
            ids[0] = -1
            values[0] = np.nan
            scores = PromptScores(lps, ids, values)
        else:
            scores = PromptScores(lps)
    return outputs, scores
