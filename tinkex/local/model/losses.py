"""Loss functions of the Tinker API (docs/protocol.md, "Losses") on target-token logprobs.

Each loss maps the learner's target logprobs ``lp`` (N,) of one datum to a per-token loss
(summed by the caller, never normalised) and its analytic gradient ``d loss / d lp``; the
model backpropagates that gradient through the network. Every reported loss is the function
whose derivative is that gradient (finite differences of ``loss:sum`` reproduce it), except
``cispo`` and ``gspo``, which stop the gradient through (part of) their ratio by definition.

``stable_reinforce`` (Tinker's StableReinforce; its formula is not public) is implemented as
REINFORCE with a truncated importance weight against the sampler's own recorded logprobs
``q``: on rows that are sampled tokens (``sampled_mask``), with ``r = exp(lp - q)``::

    loss = -A * psi(r) + kl_coeff / 2 * (lp - q)**2
    psi(r) = r                        if r <= C
           = C * (1 + log(r / C))     if r >  C          (C = STABLE_REINFORCE_TRUNCATION)
    d loss / d lp = -A * min(r, C) + kl_coeff * (lp - q)

So on-policy (r = 1) it is plain REINFORCE, off-policy tokens are reweighted by their ratio
(the importance correction) but never by more than C (bounded variance: the truncated
importance sampling, TIS, of Yao, Liu et al., "On the Rollout-Training Mismatch in Modern RL
Systems", 2025), and ``kl_coeff`` (the one config key documented for it) adds a pull towards
the sampler. Rows that are not sampled tokens carry no loss. The server fills
``sampler_logprobs`` and ``sampled_mask`` from the records it keeps of sequences sampled with
``record_stability_info`` (:mod:`tinkex.local.engine.stability`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from .spec import LOSS_FUNCTIONS, DatumArrays, DatumColumns, ModelArch, ModelInputError

__all__ = [
    "STABLE_REINFORCE_TRUNCATION",
    "LossConfig",
    "check_columns",
    "check_datums",
    "loss_and_grad",
    "parse_loss_config",
]

FloatArray = npt.NDArray[np.float64]
LossConfig = dict[str, float]

_CONFIG_DEFAULTS: dict[str, dict[str, float]] = {
    "cross_entropy": {},
    "importance_sampling": {},
    "ppo": {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
    "cispo": {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
    "dro": {"beta": 0.05},
    "gspo": {"clip_low_threshold": 0.8, "clip_high_threshold": 1.2},
    "stable_reinforce": {"kl_coeff": 0.0},
}

#: Largest importance weight ``stable_reinforce`` gives a token (see the module docstring).
STABLE_REINFORCE_TRUNCATION = 2.0

# Float loss inputs each loss needs besides target_tokens (weights is optional for CE,
# sequence_ratio_mask optional for gspo; both default to ones).
_REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": (),
    "importance_sampling": ("logprobs", "advantages"),
    "ppo": ("logprobs", "advantages"),
    "cispo": ("logprobs", "advantages"),
    "dro": ("logprobs", "advantages"),
    "gspo": ("logprobs", "advantages"),
    # sampler_logprobs/sampled_mask come from the server's sampling records, not the client
    "stable_reinforce": ("advantages", "sampler_logprobs", "sampled_mask"),
}
_OPTIONAL_INPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("weights",),
    "gspo": ("sequence_ratio_mask",),
}


def parse_loss_config(loss_fn: str, config: Mapping[str, object] | None) -> LossConfig:
    """Validated config of ``loss_fn`` with defaults filled in.

    Raises:
        ModelInputError: unknown loss function, unknown config key, or a non-numeric value.
    """
    if loss_fn not in _CONFIG_DEFAULTS:
        raise ModelInputError(
            f"unknown loss_fn {loss_fn!r}; supported: {', '.join(LOSS_FUNCTIONS)}"
        )
    parsed = dict(_CONFIG_DEFAULTS[loss_fn])
    for key, value in (config or {}).items():
        if key not in parsed:
            allowed = ", ".join(sorted(parsed)) or "none"
            raise ModelInputError(
                f"loss_fn_config key {key!r} is not accepted by loss_fn {loss_fn!r} "
                f"(accepted keys: {allowed})"
            )
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ModelInputError(
                f"loss_fn_config[{key!r}] must be a number, got {value!r}"
            ) from None
        if not math.isfinite(number):
            raise ModelInputError(f"loss_fn_config[{key!r}] must be finite, got {value!r}")
        parsed[key] = number
    if "clip_low_threshold" in parsed and (
        parsed["clip_low_threshold"] > parsed["clip_high_threshold"]
    ):
        raise ModelInputError(
            f"loss_fn_config clip_low_threshold ({parsed['clip_low_threshold']}) must be <= "
            f"clip_high_threshold ({parsed['clip_high_threshold']})"
        )
    return parsed


def _checked_shape(value: object, name: str, index: int, length: int) -> npt.NDArray[Any]:
    array = np.asarray(value)
    if array.ndim != 1 or array.shape[0] != length:
        raise ModelInputError(
            f"datum {index}: {name} must have shape ({length},) like the model input, "
            f"got shape {tuple(array.shape)}"
        )
    return array


def _as_ints(value: object, name: str, index: int, length: int) -> npt.NDArray[np.int64]:
    array = _checked_shape(value, name, index, length)
    if (
        array.size
        and not np.issubdtype(array.dtype, np.integer)
        and not (np.issubdtype(array.dtype, np.number) and np.all(np.mod(array, 1) == 0))
    ):
        raise ModelInputError(f"datum {index}: {name} must be integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _as_floats(value: object, name: str, index: int, length: int) -> FloatArray:
    array = _checked_shape(value, name, index, length)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ModelInputError(f"datum {index}: {name} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _check_ids(ids: npt.NDArray[np.int64], name: str, index: int, vocab: int) -> None:
    if ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab:
        bad = low if low < 0 else high
        position = int(np.argmax(ids == bad))
        raise ModelInputError(
            f"datum {index}: {name}[{position}] = {bad} is outside the vocabulary [0, {vocab})"
        )


def _check_batch(
    data: list[DatumArrays],
    required: tuple[str, ...],
    optional: tuple[str, ...],
    arch: ModelArch,
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, FloatArray]]] | None:
    """The checks of :func:`check_datums` vectorised over the batch; None if any fails."""
    checked = []
    tokens_all = []
    targets_all = []
    floats_all = []
    for datum in data:
        tokens = datum.tokens
        inputs = datum.loss_inputs
        targets = inputs.get("target_tokens")
        if (
            not isinstance(tokens, np.ndarray)
            or not isinstance(targets, np.ndarray)
            or tokens.ndim != 1
            or tokens.dtype.kind != "i"
            or targets.dtype.kind != "i"
            or not 0 < tokens.shape[0] <= arch.max_seq_len
            or targets.shape != tokens.shape
        ):
            return None
        floats: dict[str, FloatArray] = {}
        for name in (*required, *(n for n in optional if n in inputs)):
            values = inputs.get(name)
            if (
                not isinstance(values, np.ndarray)
                or values.shape != tokens.shape
                or values.dtype.kind not in "fiub"
            ):
                return None
            floats[name] = values.astype(np.float64, copy=False)
            floats_all.append(values)
        tokens_all.append(tokens)
        targets_all.append(targets)
        checked.append(
            (tokens.astype(np.int64, copy=False), targets.astype(np.int64, copy=False), floats)
        )
    ids = np.concatenate(tokens_all + targets_all)
    if ids.size and (ids.min() < 0 or ids.max() >= arch.vocab_size):
        return None
    if floats_all and not np.isfinite(np.concatenate(floats_all).astype(np.float64)).all():
        return None
    return checked


def check_columns(
    columns: DatumColumns, loss_fn: str, arch: ModelArch
) -> dict[str, FloatArray] | None:
    """The float loss inputs ``loss_fn`` uses, as float64 columns, when every datum of
    ``columns`` passes the checks of :func:`check_datums`; None otherwise (then
    :func:`check_datums` names what is wrong)."""
    required = _REQUIRED_INPUTS.get(loss_fn)
    if required is None:
        return None
    optional = _OPTIONAL_INPUTS.get(loss_fn, ())
    tokens, lengths = columns.tokens, columns.lengths
    targets = columns.loss_inputs.get("target_tokens")
    if (
        targets is None
        or tokens.dtype.kind != "i"
        or targets.dtype.kind != "i"
        or targets.shape != tokens.shape
        or not lengths.size
        or lengths.min() <= 0
        or lengths.max() > arch.max_seq_len
    ):
        return None
    floats: dict[str, FloatArray] = {}
    for name in (*required, *(n for n in optional if n in columns.loss_inputs)):
        values = columns.loss_inputs.get(name)
        if values is None or values.shape != tokens.shape or values.dtype.kind not in "fiub":
            return None
        floats[name] = values.astype(np.float64, copy=False)
    ids_ok = all(
        ids.min() >= 0 and ids.max() < arch.vocab_size for ids in (tokens, targets) if ids.size
    )
    if not ids_ok or not all(np.isfinite(values).all() for values in floats.values()):
        return None
    return floats


def check_datums(
    data: list[DatumArrays], loss_fn: str, arch: ModelArch
) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], dict[str, FloatArray]]]:
    """Validated ``(tokens, target_tokens, float loss inputs)`` per datum.

    Raises:
        ModelInputError: naming the datum index, the field and the offending value.
    """
    if loss_fn not in _REQUIRED_INPUTS:
        raise ModelInputError(
            f"unknown loss_fn {loss_fn!r}; supported: {', '.join(LOSS_FUNCTIONS)}"
        )
    required = _REQUIRED_INPUTS[loss_fn]
    optional = _OPTIONAL_INPUTS.get(loss_fn, ())
    fast = _check_batch(data, required, optional, arch)
    if fast is not None:
        return fast
    # Something is off: check datum by datum, so the error names the datum and the field.
    checked = []
    for index, datum in enumerate(data):
        tokens_raw = np.asarray(datum.tokens)
        if tokens_raw.ndim != 1:
            raise ModelInputError(
                f"datum {index}: model input tokens must be 1-D, got shape {tokens_raw.shape}"
            )
        length = int(tokens_raw.shape[0])
        if length == 0:
            raise ModelInputError(f"datum {index}: model input is empty")
        if length > arch.max_seq_len:
            raise ModelInputError(
                f"datum {index}: model input has {length} tokens, more than max_seq_len "
                f"{arch.max_seq_len} of {arch.name}"
            )
        tokens = _as_ints(tokens_raw, "model input tokens", index, length)
        _check_ids(tokens, "model input tokens", index, arch.vocab_size)
        inputs = datum.loss_inputs
        if "target_tokens" not in inputs:
            raise ModelInputError(f"datum {index}: loss_fn_inputs is missing 'target_tokens'")
        targets = _as_ints(inputs["target_tokens"], "target_tokens", index, length)
        _check_ids(targets, "target_tokens", index, arch.vocab_size)
        floats: dict[str, FloatArray] = {}
        for name in required:
            if name not in inputs:
                raise ModelInputError(
                    f"datum {index}: loss_fn {loss_fn!r} needs loss_fn_inputs {name!r}, "
                    f"which is missing (present: {', '.join(sorted(inputs))})"
                )
            floats[name] = _as_floats(inputs[name], name, index, length)
        for name in optional:
            if name in inputs:
                floats[name] = _as_floats(inputs[name], name, index, length)
        for name, values in floats.items():
            if not np.all(np.isfinite(values)):
                position = int(np.argmax(~np.isfinite(values)))
                raise ModelInputError(
                    f"datum {index}: {name}[{position}] = {values[position]} is not finite"
                )
        checked.append((tokens, targets, floats))
    return checked


def loss_and_grad(
    loss_fn: str, config: LossConfig, lp: FloatArray, inputs: Mapping[str, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """Per-token loss and ``d loss / d lp`` of one datum (inputs already validated)."""
    if loss_fn == "cross_entropy":
        weights = inputs.get("weights")
        if weights is None:
            return -lp, np.full_like(lp, -1.0)
        return -weights * lp, -weights
    if loss_fn == "stable_reinforce":
        return _stable_reinforce(config["kl_coeff"], lp, inputs)
    q = inputs["logprobs"]
    adv = inputs["advantages"]
    if loss_fn == "importance_sampling":
        ratio = np.exp(lp - q)
        return -ratio * adv, -ratio * adv
    if loss_fn == "dro":
        beta = config["beta"]
        diff = lp - q
        return -(lp * adv - 0.5 * beta * diff * diff), -(adv - beta * diff)
    low, high = config["clip_low_threshold"], config["clip_high_threshold"]
    if loss_fn == "cispo":
        clipped = np.clip(np.exp(lp - q), low, high)
        return -clipped * lp * adv, -clipped * adv
    if loss_fn == "ppo":
        ratio = np.exp(lp - q)
        return _clipped_objective(ratio, ratio, adv, low, high)
    # gspo (token-level): every token uses the sequence ratio s = exp(mean_masked(lp - q)) as
    # its value, with d s_i / d lp_i = s (stop-gradient on the other tokens); tokens outside
    # sequence_ratio_mask neither enter the mean nor carry loss.
    mask = inputs.get("sequence_ratio_mask")
    if mask is None:
        mask = np.ones_like(lp)
    active = mask != 0
    count = int(active.sum())
    seq_ratio = float(np.exp(np.mean((lp - q)[active]))) if count else 1.0
    ratio = np.full_like(lp, seq_ratio)
    loss, grad = _clipped_objective(ratio, ratio, adv, low, high)
    return np.where(active, loss, 0.0), np.where(active, grad, 0.0)


def _clipped_objective(
    ratio: FloatArray, dratio: FloatArray, adv: FloatArray, low: float, high: float
) -> tuple[FloatArray, FloatArray]:
    # -min(r A, clip(r) A); the gradient flows only where the unclipped term is the minimum.
    unclipped = ratio * adv
    clipped = np.clip(ratio, low, high) * adv
    use_unclipped = unclipped <= clipped
    loss = -np.minimum(unclipped, clipped)
    grad = np.where(use_unclipped, -dratio * adv, 0.0)
    return loss, grad


def _stable_reinforce(
    kl_coeff: float, lp: FloatArray, inputs: Mapping[str, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    # See the module docstring: REINFORCE with a truncated importance weight min(r, C),
    # written as the C^1 function psi whose derivative is that weight.
    active = inputs["sampled_mask"] != 0
    adv = inputs["advantages"]
    diff = np.where(active, lp - inputs["sampler_logprobs"], 0.0)
    cap = STABLE_REINFORCE_TRUNCATION
    log_cap = math.log(cap)
    ratio = np.exp(np.minimum(diff, log_cap))
    psi = np.where(diff <= log_cap, ratio, cap * (1.0 + diff - log_cap))
    loss = -adv * psi + 0.5 * kl_coeff * diff * diff
    grad = -adv * ratio + kl_coeff * diff
    return np.where(active, loss, 0.0), np.where(active, grad, 0.0)
