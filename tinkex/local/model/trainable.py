"""LoRA-trainable models (tiny transformer and null model), AdamW, and sampler snapshots."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from . import tiny
from ._blas import pin_blas_single_thread
from .losses import check_columns, check_datums, loss_and_grad, parse_loss_config
from .spec import (
    LORA_ALPHA,
    AdamSettings,
    DatumArrays,
    DatumColumns,
    ForwardBackwardResult,
    LoraSpec,
    ModelArch,
    ModelInputError,
    column_rows,
)

__all__ = ["SamplerWeights", "TrainableModel", "batch_rows", "create_trainable"]

Array = npt.NDArray[Any]

NULL_ARCH = "tinkex-null"
RANK_KEY = "tinkex.lora_rank"
STEP_KEY = "optimizer.step"
_M_PREFIX = "optimizer.exp_avg."
_V_PREFIX = "optimizer.exp_avg_sq."
# Upper bound of batch * heads * T * T attention entries per forward chunk (memory cap).
_MAX_ATTENTION_ENTRIES = 1 << 24
# Upper bound of tokens per forward chunk (memory cap: activations grow with tokens).
_MAX_BATCH_TOKENS = 1 << 14


def _lora_modules(arch: ModelArch, lora: LoraSpec) -> list[str]:
    enabled = {"attn": lora.train_attn, "mlp": lora.train_mlp, "unembed": lora.train_unembed}
    return [name for name, group in tiny.adapted_modules(arch).items() if enabled[group]]


def _effective_weights(
    arch: ModelArch, params: Mapping[str, Array], rank: int, dtype: npt.DTypeLike
) -> dict[str, Array]:
    """Base weights with every LoRA delta ``(alpha / rank) * A @ B`` merged in."""
    weights = dict(tiny.base_weights(arch, dtype))
    scale = LORA_ALPHA / rank
    for key, a in params.items():
        if key.endswith(".lora_A"):
            module = key[: -len(".lora_A")]
            b = params[f"{module}.lora_B"]
            if np.any(b):
                weights[module] = weights[module] + scale * (a @ b)
    return weights


def batch_rows(lengths: list[int], n_heads: int) -> list[list[int]]:
    """Datum indices grouped into right-padded batches of similar length (longest first).

    A batch's attention entries and tokens stay under fixed caps, which bounds the memory of
    one forward (:mod:`.footprint` estimates it from these batches). Right padding is exact
    here: attention is causal, so padding never reaches real tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            longest = lengths[current[0]]
            too_short = lengths[index] < 0.75 * longest - 4
            rows = len(current) + 1
            too_big = (
                rows * n_heads * longest * longest > _MAX_ATTENTION_ENTRIES
                or rows * longest > _MAX_BATCH_TOKENS
            )
            if too_short or too_big:
                batches.append(current)
                current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class TrainableModel:
    """A frozen base model with trainable LoRA adapters and AdamW state.

    Create with :func:`create_trainable`. Methods are thread-safe (one call at a time).
    """

    def __init__(self, arch: ModelArch, lora: LoraSpec, *, dtype: npt.DTypeLike = np.float32):
        self.arch = arch
        self.lora = lora
        self.dtype = np.dtype(dtype)
        self._null = arch.arch == NULL_ARCH
        self._lock = threading.Lock()
        self._params: dict[str, Array] = {}
        if not self._null:
            rng = np.random.default_rng(0 if lora.seed is None else lora.seed)
            for module in _lora_modules(arch, lora):
                d_in, d_out = tiny.module_shape(arch, module)
                a = rng.standard_normal((d_in, lora.rank)) / math.sqrt(d_in)
                self._params[f"{module}.lora_A"] = a.astype(self.dtype)
                self._params[f"{module}.lora_B"] = np.zeros((lora.rank, d_out), self.dtype)
        self._grads = {key: np.zeros_like(value) for key, value in self._params.items()}
        self._exp_avg = {key: np.zeros_like(value) for key, value in self._params.items()}
        self._exp_avg_sq = {key: np.zeros_like(value) for key, value in self._params.items()}
        self._step = 0
        self._weights: dict[str, Array] | None = None  # merged weights, reset on param change

    # ------------------------------------------------------------------ forward / backward

    def forward_backward(
        self,
        data: list[DatumArrays],
        loss_fn: str,
        loss_fn_config: Mapping[str, float] | None,
        *,
        forward_only: bool,
        columns: DatumColumns | None = None,
    ) -> ForwardBackwardResult:
        """Target logprobs and per-token losses of every datum; unless ``forward_only``, the
        LoRA gradients of the summed loss are added to the accumulated gradients.

        ``columns`` is the same ``data`` as columns, when the caller has it (the null model
        then works on them, with no per-datum step).

        Raises:
            ModelInputError: unknown loss/config key, bad token ids, too long or ill-shaped input.
        """
        config = parse_loss_config(loss_fn, loss_fn_config)
        if self._null and columns is not None and loss_fn != "gspo":
            floats = check_columns(columns, loss_fn, self.arch)
            if floats is not None:
                return self._null_columns(columns.lengths, floats, loss_fn, config)
        checked = check_datums(data, loss_fn, self.arch)
        if self._null:
            return self._null_forward(checked, loss_fn, config)
        with self._lock:
            weights = self._merged()
            outputs: list[dict[str, npt.NDArray[np.float32]]] = [{} for _ in checked]
            total = 0.0
            wanted = {key[: -len(".lora_A")] for key in self._params if key.endswith(".lora_A")}
            weight_grads: dict[str, Array] = {}
            lengths = [tokens.shape[0] for tokens, _, _ in checked]
            for batch in batch_rows(lengths, self.arch.n_heads):
                longest = lengths[batch[0]]
                tokens = np.zeros((len(batch), longest), np.int64)
                targets = np.zeros((len(batch), longest), np.int64)
                for row, index in enumerate(batch):
                    tokens[row, : lengths[index]] = checked[index][0]
                    targets[row, : lengths[index]] = checked[index][1]
                logp, cache = tiny.forward(self.arch, weights, tokens, keep=not forward_only)
                target_lp = np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
                dlp = np.zeros(targets.shape, np.float64)
                for row, index in enumerate(batch):
                    n = lengths[index]
                    lp = target_lp[row, :n].astype(np.float64)
                    loss, grad = loss_and_grad(loss_fn, config, lp, checked[index][2])
                    dlp[row, :n] = grad
                    total += float(loss.sum())
                    outputs[index] = {
                        "logprobs": lp.astype(np.float32),
                        "elementwise_loss": loss.astype(np.float32),
                    }
                if forward_only or not wanted:
                    continue
                # d lp / d logits = onehot(target) - softmax
                dlogits = -np.exp(logp) * dlp[..., None].astype(logp.dtype)
                np.put_along_axis(
                    dlogits,
                    targets[..., None],
                    np.take_along_axis(dlogits, targets[..., None], axis=-1)
                    + dlp[..., None].astype(logp.dtype),
                    axis=-1,
                )
                for name, grad in tiny.backward(self.arch, weights, cache, dlogits, wanted).items():
                    if name in weight_grads:
                        weight_grads[name] += grad
                    else:
                        weight_grads[name] = grad
            scale = LORA_ALPHA / self.lora.rank
            for module, dw in weight_grads.items():
                a = self._params[f"{module}.lora_A"]
                b = self._params[f"{module}.lora_B"]
                # W_eff = W + s A B  =>  dA = s dW B^T, dB = s A^T dW
                self._grads[f"{module}.lora_A"] += (scale * (dw @ b.T)).astype(self.dtype)
                self._grads[f"{module}.lora_B"] += (scale * (a.T @ dw)).astype(self.dtype)
        return ForwardBackwardResult(outputs=outputs, metrics={"loss:sum": total})

    def _null_forward(
        self,
        checked: list[tuple[Array, Array, dict[str, Array]]],
        loss_fn: str,
        config: dict[str, float],
    ) -> ForwardBackwardResult:
        constant = -math.log(self.arch.vocab_size)
        if loss_fn != "gspo" and len(checked) > 1:
            # Per-token losses: one vectorised computation over the whole batch.
            names = checked[0][2].keys()
            if all(inputs.keys() == names for _, _, inputs in checked):
                lengths = np.array([tokens.shape[0] for tokens, _, _ in checked], np.int64)
                joined = {n: np.concatenate([inp[n] for _, _, inp in checked]) for n in names}
                return self._null_columns(lengths, joined, loss_fn, config)
        outputs = []
        total = 0.0
        for tokens, _, inputs in checked:
            lp = np.full(tokens.shape[0], constant)
            loss, _ = loss_and_grad(loss_fn, config, lp, inputs)
            total += float(loss.sum())
            outputs.append(
                {"logprobs": lp.astype(np.float32), "elementwise_loss": loss.astype(np.float32)}
            )
        return ForwardBackwardResult(outputs=outputs, metrics={"loss:sum": total})

    def _null_columns(
        self,
        lengths: npt.NDArray[np.int64],
        inputs: dict[str, npt.NDArray[np.float64]],
        loss_fn: str,
        config: dict[str, float],
    ) -> ForwardBackwardResult:
        """The null model's outputs for every datum at once (not gspo: its ratio is per
        datum), from the float loss inputs as columns."""
        lp = np.full(int(lengths.sum()), -math.log(self.arch.vocab_size))
        loss, _ = loss_and_grad(loss_fn, config, lp, inputs)
        columns = {
            "logprobs": lp.astype(np.float32),
            "elementwise_loss": loss.astype(np.float32),
        }
        return ForwardBackwardResult(
            outputs=column_rows(columns, lengths),
            metrics={"loss:sum": float(loss.sum())},
            columns=columns,
            lengths=lengths,
        )

    def _merged(self) -> dict[str, Array]:
        if self._weights is None:
            self._weights = _effective_weights(self.arch, self._params, self.lora.rank, self.dtype)
        return self._weights

    # ------------------------------------------------------------------ optimizer

    def optim_step(self, adam: AdamSettings) -> dict[str, float]:
        """One AdamW step on the accumulated gradients (then zeroed).

        Weight decay is decoupled (``p -= lr * wd * p``); with ``grad_clip_norm > 0`` the
        gradients are first scaled so their global L2 norm is at most that value. Returns
        ``{"grad_norm:mean": <norm before clipping>}``.

        Raises:
            ModelInputError: a hyper-parameter out of range (named with its value).
        """
        _check_adam(adam)
        with self._lock:
            self._step += 1
            if self._null:
                return {"grad_norm:mean": 0.0}
            sq = sum(float(np.vdot(g, g)) for g in self._grads.values())
            norm = math.sqrt(sq)
            clip = 1.0
            if adam.grad_clip_norm > 0 and norm > adam.grad_clip_norm:
                clip = adam.grad_clip_norm / norm
            lr = adam.learning_rate
            bias1 = 1.0 - adam.beta1**self._step
            bias2 = 1.0 - adam.beta2**self._step
            for key, param in self._params.items():
                grad = self._grads[key] * clip
                m = self._exp_avg[key]
                v = self._exp_avg_sq[key]
                m *= adam.beta1
                m += (1.0 - adam.beta1) * grad
                v *= adam.beta2
                v += (1.0 - adam.beta2) * grad * grad
                if adam.weight_decay:
                    param *= 1.0 - lr * adam.weight_decay
                param -= (lr * (m / bias1) / (np.sqrt(v / bias2) + adam.eps)).astype(self.dtype)
                self._grads[key].fill(0.0)
            self._weights = None
            return {"grad_norm:mean": norm}

    # ------------------------------------------------------------------ state

    def state_dict(self, *, include_optimizer: bool) -> dict[str, np.ndarray]:
        """Copies of the LoRA weights (``<module>.lora_A``/``lora_B``), ``tinkex.lora_rank``,
        and with ``include_optimizer`` the Adam moments and ``optimizer.step``."""
        with self._lock:
            tensors: dict[str, np.ndarray] = {RANK_KEY: np.array([self.lora.rank], np.int64)}
            for key, value in self._params.items():
                tensors[key] = value.copy()
            if include_optimizer:
                for key in self._params:
                    tensors[_M_PREFIX + key] = self._exp_avg[key].copy()
                    tensors[_V_PREFIX + key] = self._exp_avg_sq[key].copy()
                tensors[STEP_KEY] = np.array([self._step], np.int64)
            return tensors

    def load_state_dict(
        self, tensors: Mapping[str, np.ndarray], *, include_optimizer: bool
    ) -> None:
        """Replace the LoRA weights (and Adam state with ``include_optimizer``) by ``tensors``;
        accumulated gradients are cleared. Optimizer entries are ignored otherwise.

        Raises:
            ModelInputError: a missing, unexpected or wrongly shaped key (named).
        """
        expected: dict[str, tuple[int, ...]] = {k: v.shape for k, v in self._params.items()}
        if include_optimizer:
            for key, shape in list(expected.items()):
                expected[_M_PREFIX + key] = shape
                expected[_V_PREFIX + key] = shape
            expected[STEP_KEY] = (1,)
        optional = {RANK_KEY}
        for key in tensors:
            if key in expected or key in optional:
                continue
            if not include_optimizer and (
                key == STEP_KEY or key.startswith((_M_PREFIX, _V_PREFIX))
            ):
                continue
            raise ModelInputError(
                f"checkpoint tensor {key!r} does not belong to a {self.arch.name} LoRA of "
                f"rank {self.lora.rank} with {_flags(self.lora)}"
            )
        if RANK_KEY in tensors:
            rank = int(np.asarray(tensors[RANK_KEY]).reshape(-1)[0])
            if rank != self.lora.rank:
                raise ModelInputError(
                    f"checkpoint tensor {RANK_KEY!r} is {rank}, but the model has LoRA rank "
                    f"{self.lora.rank}"
                )
        converted: dict[str, Array] = {}
        for key, shape in expected.items():
            if key not in tensors:
                raise ModelInputError(f"checkpoint is missing tensor {key!r} (shape {shape})")
            value = np.asarray(tensors[key])
            if value.shape != shape:
                raise ModelInputError(
                    f"checkpoint tensor {key!r} has shape {value.shape}, expected {shape}"
                )
            converted[key] = value
        with self._lock:
            for key in self._params:
                self._params[key] = converted[key].astype(self.dtype, copy=True)
                self._grads[key] = np.zeros_like(self._params[key])
                if include_optimizer:
                    self._exp_avg[key] = converted[_M_PREFIX + key].astype(self.dtype, copy=True)
                    self._exp_avg_sq[key] = converted[_V_PREFIX + key].astype(self.dtype, copy=True)
            if include_optimizer:
                self._step = int(converted[STEP_KEY][0])
            self._weights = None

    def sampler_weights(self) -> SamplerWeights:
        """An immutable snapshot of the current weights for sampling."""
        with self._lock:
            params = {key: value.copy() for key, value in self._params.items()}
        return SamplerWeights(self.arch, self.lora.rank, params, self.dtype)


def _flags(lora: LoraSpec) -> str:
    return (
        f"train_attn={lora.train_attn}, train_mlp={lora.train_mlp}, "
        f"train_unembed={lora.train_unembed}"
    )


def _check_adam(adam: AdamSettings) -> None:
    checks = [
        ("learning_rate", adam.learning_rate, adam.learning_rate >= 0),
        ("beta1", adam.beta1, 0 <= adam.beta1 < 1),
        ("beta2", adam.beta2, 0 <= adam.beta2 < 1),
        ("eps", adam.eps, adam.eps >= 0),
        ("weight_decay", adam.weight_decay, adam.weight_decay >= 0),
        ("grad_clip_norm", adam.grad_clip_norm, adam.grad_clip_norm >= 0),
    ]
    for name, value, ok in checks:
        if not ok or not math.isfinite(value):
            raise ModelInputError(f"AdamParams.{name} is out of range: {value!r}")


def create_trainable(
    arch: ModelArch, lora: LoraSpec, *, dtype: npt.DTypeLike = np.float32
) -> TrainableModel:
    """A fresh LoRA model on ``arch`` (B = 0, so it computes exactly the base model).

    ``dtype`` (float32 by default; float64 for gradient checks) is the compute precision.
    """
    pin_blas_single_thread()
    return TrainableModel(arch, lora, dtype=dtype)


class SamplerWeights:
    """Immutable weights for sampling: the base model plus an optional LoRA snapshot."""

    def __init__(
        self,
        arch: ModelArch,
        lora_rank: int | None,
        lora: Mapping[str, Array],
        dtype: npt.DTypeLike = np.float32,
    ):
        self.arch = arch
        self.lora_rank = lora_rank
        self.dtype = np.dtype(dtype)
        self._lora = dict(lora)
        for value in self._lora.values():
            value.flags.writeable = False
        self._lock = threading.Lock()
        self._weights: dict[str, Array] | None = None
        self._digest: str | None = None

    @classmethod
    def base(cls, arch: ModelArch) -> SamplerWeights:
        """The base model without LoRA."""
        return cls(arch, None, {})

    def digest(self) -> str:
        """A content digest of these weights (architecture, rank and LoRA tensors)."""
        with self._lock:
            if self._digest is None:
                hasher = hashlib.blake2b(digest_size=16)
                hasher.update(f"{self.arch.name}|{self.lora_rank}|{self.dtype.str}".encode())
                for key in sorted(self._lora):
                    value = np.ascontiguousarray(self._lora[key])
                    hasher.update(f"|{key}|{value.dtype.str}|{value.shape}|".encode())
                    hasher.update(value.tobytes())
                self._digest = hasher.hexdigest()
            return self._digest

    def state_dict(self) -> dict[str, np.ndarray]:
        """LoRA tensors (copies) plus ``tinkex.lora_rank`` (absent for the base model)."""
        tensors: dict[str, np.ndarray] = {key: value.copy() for key, value in self._lora.items()}
        if self.lora_rank is not None:
            tensors[RANK_KEY] = np.array([self.lora_rank], np.int64)
        return tensors

    @classmethod
    def from_state_dict(cls, arch: ModelArch, tensors: Mapping[str, np.ndarray]) -> SamplerWeights:
        """Sampler weights from :meth:`state_dict` (or a training state dict; optimizer
        entries are ignored).

        Raises:
            ModelInputError: unknown key, unpaired or wrongly shaped LoRA tensors.
        """
        lora: dict[str, Array] = {}
        rank: int | None = None
        if RANK_KEY in tensors:
            rank = int(np.asarray(tensors[RANK_KEY]).reshape(-1)[0])
        modules = tiny.adapted_modules(arch) if arch.arch != NULL_ARCH else {}
        for key, value in tensors.items():
            if key in (RANK_KEY, STEP_KEY) or key.startswith((_M_PREFIX, _V_PREFIX)):
                continue
            module, _, kind = key.rpartition(".")
            if module not in modules or kind not in ("lora_A", "lora_B"):
                raise ModelInputError(f"sampler weights tensor {key!r} is not a {arch.name} LoRA")
            array = np.asarray(value, dtype=np.float32)
            d_in, d_out = tiny.module_shape(arch, module)
            key_rank = array.shape[1] if kind == "lora_A" else array.shape[0]
            if rank is None:
                rank = key_rank
            want = (d_in, rank) if kind == "lora_A" else (rank, d_out)
            if array.shape != want:
                raise ModelInputError(
                    f"sampler weights tensor {key!r} has shape {array.shape}, expected {want}"
                )
            lora[key] = array.copy()
        for key in lora:
            module, _, kind = key.rpartition(".")
            other = f"{module}.lora_B" if kind == "lora_A" else f"{module}.lora_A"
            if other not in lora:
                raise ModelInputError(f"sampler weights tensor {other!r} is missing")
        return cls(arch, rank, lora)

    def effective(self) -> dict[str, Array]:
        """Base weights with the LoRA deltas merged (computed once)."""
        with self._lock:
            if self._weights is None:
                self._weights = _effective_weights(
                    self.arch, self._lora, self.lora_rank or 1, self.dtype
                )
            return self._weights
