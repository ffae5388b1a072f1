"""Sampling from :class:`SamplerWeights`: KV-cached decoding of all samples in one batch."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import tiny
from ._blas import pin_blas_single_thread
from .spec import ModelInputError, PromptScores, SampleCancelled, SampleOutput, SampleSettings
from .trainable import NULL_ARCH, SamplerWeights

__all__ = ["sample"]

Array = npt.NDArray[Any]


def _check(
    weights: SamplerWeights,
    prompt: Array,
    num_samples: int,
    settings: SampleSettings,
    topk_prompt_logprobs: int,
    topk_sample_logprobs: int = 0,
    target_prompt_logprobs: Array | None = None,
    prompt_alt_tokens_k: int = 0,
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
    if not 0 <= topk_sample_logprobs <= arch.vocab_size:
        raise ModelInputError(
            f"topk_sample_logprobs must be in [0, {arch.vocab_size}], got {topk_sample_logprobs}"
        )
    if prompt_alt_tokens_k < 0:
        raise ModelInputError(f"prompt_alt_tokens_k must be >= 0, got {prompt_alt_tokens_k}")
    if target_prompt_logprobs is not None:
        _check_targets(np.asarray(target_prompt_logprobs), tokens.shape[0], arch.vocab_size)
    return tokens


def _check_targets(targets: Array, length: int, vocab: int) -> None:
    if not np.issubdtype(targets.dtype, np.integer):
        raise ModelInputError(
            f"target_prompt_logprobs must hold integer token ids, got dtype {targets.dtype}"
        )
    if targets.ndim != 2 or targets.shape[0] != length - 1:
        raise ModelInputError(
            f"target_prompt_logprobs must have shape [len(prompt) - 1, K] = [{length - 1}, K], "
            f"got {list(targets.shape)}"
        )
    bad = targets[(targets < -1) | (targets >= vocab)]
    if bad.size:
        raise ModelInputError(
            f"target_prompt_logprobs has token id {int(bad[0])} outside the vocabulary "
            f"[0, {vocab}) (use -1 for no target)"
        )


def _rng(seed: int | None, stream: int = 0) -> np.random.Generator:
    """A generator for ``seed`` (any int; negative seeds wrap like uint64); ``stream`` > 0 gives
    independent generators for the extras, so asking for them never changes sampled tokens."""
    if seed is None:
        return np.random.default_rng()
    seed %= 1 << 64
    return np.random.default_rng(seed if stream == 0 else [seed, stream])


#: the ids the null model draws: lowercase ASCII letters, [low, high)
_NULL_LETTERS = (97, 123)
#: per thread: seed -> (the null sampler's generator for it, its seeded state)
_null_generators = threading.local()
_NULL_GENERATORS_KEPT = 64


def _null_rng(seed: int | None) -> np.random.Generator:
    """``_rng(seed)`` for the null sampler, which draws from one generator at a time per
    thread: a seed's generator is kept (per thread) and rewound to its seeded state, since
    seeding a new one costs ~10x more than the few draws a null sample makes."""
    if seed is None:
        return np.random.default_rng()
    kept: dict[int, tuple[np.random.Generator, Mapping[str, Any]]] | None
    kept = getattr(_null_generators, "kept", None)
    if kept is None:
        kept = _null_generators.kept = {}
    seed %= 1 << 64
    found = kept.get(seed)
    if found is None:
        if len(kept) >= _NULL_GENERATORS_KEPT:
            del kept[next(iter(kept))]
        generator = _rng(seed)
        kept[seed] = generator, generator.bit_generator.state
        return generator
    generator, state = found
    generator.bit_generator.state = state
    return generator


def sample(
    weights: SamplerWeights,
    prompt: Array,
    num_samples: int,
    settings: SampleSettings,
    *,
    prompt_logprobs: bool = False,
    topk_prompt_logprobs: int = 0,
    topk_sample_logprobs: int = 0,
    target_prompt_logprobs: Array | None = None,
    prompt_alt_tokens_k: int = 0,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[list[SampleOutput], PromptScores | None]:
    """Sample ``num_samples`` continuations of ``prompt`` (token ids) and optionally score it.

    ``cancelled()`` is asked before each decoding step: once it is true, sampling stops with
    :class:`SampleCancelled` (work nobody waits for is not computed).

    The same ``settings.seed`` gives the same output. Prompt scores are returned when
    ``prompt_logprobs``, ``topk_prompt_logprobs > 0``, ``target_prompt_logprobs`` (int ids of
    shape (P-1, K), -1 = none) or ``prompt_alt_tokens_k > 0`` ask for them;
    ``topk_sample_logprobs > 0`` adds the top-k of each sampled position to the outputs.

    Raises:
        ModelInputError: empty prompt, ids out of range, prompt + max_tokens > max_seq_len,
            num_samples < 1, or an out-of-range setting.
    """
    pin_blas_single_thread()
    tokens = _check(
        weights,
        prompt,
        num_samples,
        settings,
        topk_prompt_logprobs,
        topk_sample_logprobs,
        target_prompt_logprobs,
        prompt_alt_tokens_k,
    )
    extras = _Extras(
        topk_prompt_logprobs,
        None if target_prompt_logprobs is None else np.asarray(target_prompt_logprobs, np.int64),
        prompt_alt_tokens_k,
    )
    want_scores = prompt_logprobs or extras.wanted
    if weights.arch.arch == NULL_ARCH:
        return _null_sample(
            weights, tokens, num_samples, settings, extras, topk_sample_logprobs, want_scores
        )
    arch = weights.arch
    w = weights.effective()
    capacity = tokens.shape[0] + max(settings.max_tokens, 1)
    prompt_logp, cache = tiny.prefill(arch, w, tokens, num_samples, capacity)
    scores = _prompt_scores(prompt_logp, tokens, extras, settings) if want_scores else None
    rng = _rng(settings.seed)
    stopper = _Stopper(num_samples, settings, topk_sample_logprobs)
    next_logp = np.broadcast_to(prompt_logp[-1], (num_samples, arch.vocab_size))
    for step in range(settings.max_tokens):
        if cancelled is not None and cancelled():
            raise SampleCancelled("the sample request was cancelled")
        chosen, chosen_lp, dist = _choose(next_logp, settings, rng)
        stopper.push(chosen, chosen_lp, dist)
        if stopper.all_done or step == settings.max_tokens - 1:
            break
        next_logp = tiny.decode_step(arch, w, chosen, cache)
    return stopper.outputs(), scores


class _Extras:
    """The prompt-scoring extras of one request."""

    def __init__(self, topk: int, targets: Array | None, alt_k: int) -> None:
        self.topk = topk
        self.targets = targets
        self.alt_k = alt_k

    @property
    def wanted(self) -> bool:
        return self.topk > 0 or self.targets is not None or self.alt_k > 0


def _topk(dist: Array, k: int) -> tuple[Array, Array]:
    """Best-first ``(ids int32, logprobs float32)`` of shape (rows, k) of each row of ``dist``."""
    best = np.argsort(-dist, axis=-1, kind="stable")[:, :k]
    return best.astype(np.int32), np.take_along_axis(dist, best, axis=-1).astype(np.float32)


def _choose(
    logp: Array, settings: SampleSettings, rng: np.random.Generator
) -> tuple[Array, Array, Array]:
    """``(chosen ids, their logprobs, the log-distribution they were drawn from)``."""
    rows = np.arange(logp.shape[0])
    if settings.temperature == 0:
        chosen = np.argmax(logp, axis=-1)
        return chosen, logp[rows, chosen], logp
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
    return chosen, tempered[rows, chosen], tempered


def _prompt_scores(
    logp: Array, tokens: Array, extras: _Extras, settings: SampleSettings
) -> PromptScores:
    length = tokens.shape[0]
    lps = np.full(length, np.nan, np.float32)
    lps[1:] = logp[np.arange(length - 1), tokens[1:]]
    scores = PromptScores(lps)
    preceding = logp[:-1]  # row i: the distribution over prompt token i + 1
    topk = extras.topk
    if topk > 0:
        scores.topk_ids = np.full((length, topk), -1, np.int32)
        scores.topk_logprobs = np.full((length, topk), np.nan, np.float32)
        if length > 1:
            scores.topk_ids[1:], scores.topk_logprobs[1:] = _topk(preceding, topk)
    if extras.targets is not None:
        scores.target_logprobs = _target_logprobs(preceding, extras.targets)
    if extras.alt_k > 0:
        scores.alt_tokens, scores.alt_logprobs = _alt_draws(
            preceding, extras.alt_k, settings.temperature, _rng(settings.seed, 1)
        )
    return scores


def _target_logprobs(preceding: Array, targets: Array) -> Array:
    wanted = targets >= 0
    values = np.take_along_axis(preceding, np.where(wanted, targets, 0), axis=-1)
    return np.where(wanted, values, 0.0).astype(np.float32)


def _alt_draws(
    preceding: Array, k: int, temperature: float, rng: np.random.Generator
) -> tuple[Array, Array]:
    """``k`` independent draws per row at ``temperature`` (argmax when 0), with their
    untempered logprobs: int64 and float32 arrays of shape (rows, k)."""
    rows, vocab = preceding.shape
    if temperature == 0:
        ids = np.repeat(np.argmax(preceding, axis=-1)[:, None], k, axis=1).astype(np.int64)
    else:
        probs = np.exp(tiny.log_softmax(preceding.astype(np.float64) / temperature))
        cdf = np.cumsum(probs, axis=-1)
        cdf /= cdf[:, -1:]
        # one searchsorted over all rows: row i's cdf lives in (i, i + 1]
        offsets = np.arange(rows, dtype=np.float64)[:, None]
        flat = (cdf + offsets).reshape(-1)
        draws = rng.random((rows, k)) + offsets
        positions = np.searchsorted(flat, draws.reshape(-1), side="right").reshape(rows, k)
        ids = np.clip(positions - np.arange(rows)[:, None] * vocab, 0, vocab - 1).astype(np.int64)
    return ids, np.take_along_axis(preceding, ids, axis=-1).astype(np.float32)


class _Stopper:
    """Collects sampled tokens per row and decides when each row stops."""

    def __init__(self, rows: int, settings: SampleSettings, topk: int = 0):
        self._stop_ids = set(settings.stop_token_ids)
        self._sequences = [list(s) for s in settings.stop_sequences]
        self._tokens: list[list[int]] = [[] for _ in range(rows)]
        self._logprobs: list[list[float]] = [[] for _ in range(rows)]
        self._topk = topk
        self._topk_ids: list[list[Array]] = [[] for _ in range(rows)]
        self._topk_lps: list[list[Array]] = [[] for _ in range(rows)]
        self._reasons: list[Literal["stop", "length"]] = ["length"] * rows
        self._active = rows

    @property
    def all_done(self) -> bool:
        return self._active == 0

    def push(self, chosen: Array, chosen_lp: Array, dist: Array | None = None) -> None:
        top: tuple[Array, Array] | None = None
        if self._topk > 0 and dist is not None:
            top = _topk(dist, self._topk)
        for row, (token, lp) in enumerate(zip(chosen.tolist(), chosen_lp.tolist(), strict=True)):
            if self._reasons[row] == "stop":
                continue
            generated = self._tokens[row]
            generated.append(int(token))
            self._logprobs[row].append(float(lp))
            if top is not None:
                self._topk_ids[row].append(top[0][row])
                self._topk_lps[row].append(top[1][row])
            if token in self._stop_ids or any(
                len(seq) <= len(generated) and generated[-len(seq) :] == seq
                for seq in self._sequences
            ):
                self._reasons[row] = "stop"
                self._active -= 1

    def outputs(self) -> list[SampleOutput]:
        outputs = [
            SampleOutput(np.array(tokens, np.int32), np.array(lps, np.float32), reason)
            for tokens, lps, reason in zip(self._tokens, self._logprobs, self._reasons, strict=True)
        ]
        if self._topk > 0:
            empty_ids = np.zeros((0, self._topk), np.int32)
            empty_lps = np.zeros((0, self._topk), np.float32)
            for out, ids, lps in zip(outputs, self._topk_ids, self._topk_lps, strict=True):
                out.topk_ids = np.stack(ids).astype(np.int32) if ids else empty_ids
                out.topk_logprobs = np.stack(lps).astype(np.float32) if lps else empty_lps
        return outputs


def _null_sample(
    weights: SamplerWeights,
    tokens: Array,
    num_samples: int,
    settings: SampleSettings,
    extras: _Extras,
    topk_sample: int,
    want_scores: bool,
) -> tuple[list[SampleOutput], PromptScores | None]:
    """Cheap deterministic output: seeded lowercase letters, constant logprobs."""
    vocab = weights.arch.vocab_size
    topk = extras.topk
    constant = np.float32(-math.log(vocab))
    low, high = _NULL_LETTERS
    rng = _null_rng(settings.seed)
    drawn = rng.integers(low, high, size=(num_samples, settings.max_tokens), dtype=np.int32)
    # only letters can be drawn: other stop ids (EOS) never stop a null sample
    stop_ids = np.array([i for i in settings.stop_token_ids if low <= i < high], np.int32)
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
        output = SampleOutput(row[:end].copy(), np.full(end, constant), reason)
        if topk_sample > 0:
            output.topk_ids = np.tile(np.arange(topk_sample, dtype=np.int32), (end, 1))
            output.topk_logprobs = np.full((end, topk_sample), constant, np.float32)
        outputs.append(output)
    scores = None
    if want_scores:
        length = tokens.shape[0]
        lps = np.full(length, constant, np.float32)
        lps[0] = np.nan
        scores = PromptScores(lps)
        if topk:
            scores.topk_ids = np.tile(np.arange(topk, dtype=np.int32), (length, 1))
            scores.topk_logprobs = np.full((length, topk), constant, np.float32)
            scores.topk_ids[0] = -1
            scores.topk_logprobs[0] = np.nan
        if extras.targets is not None:
            scores.target_logprobs = np.where(extras.targets >= 0, constant, 0.0).astype(np.float32)
        if extras.alt_k > 0:
            alt_rng = _rng(settings.seed, 1)
            scores.alt_tokens = alt_rng.integers(0, vocab, size=(length - 1, extras.alt_k))
            scores.alt_logprobs = np.full((length - 1, extras.alt_k), constant, np.float32)
    return outputs, scores
