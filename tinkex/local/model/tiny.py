"""The tiny decoder-only transformer: deterministic frozen base weights, forward with a cache
for manual backprop, and KV-cached incremental decoding.

Architecture: token + learned position embeddings, ``n_layers`` pre-norm blocks (RMSNorm,
causal multi-head attention, RMSNorm, GELU MLP), final RMSNorm, untied unembedding. No biases.
Weights are plain dicts of arrays; LoRA is applied by the caller by passing effective
(base + scale * A @ B) matrices, and the backward returns gradients of those matrices.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .spec import ModelArch

__all__ = [
    "adapted_modules",
    "ForwardCache",
    "KVCache",
    "backward",
    "base_weights",
    "decode_step",
    "forward",
    "log_softmax",
    "module_shape",
    "prefill",
]

Array = npt.NDArray[Any]
Weights = dict[str, Array]

_BASE_SEED = 0x7117E  # fixed: the frozen base model is identical in every process
_EPS = 1e-6
_GELU_C = float(np.sqrt(2.0 / np.pi))

_cache_lock = threading.Lock()
_weights_cache: dict[tuple[ModelArch, str], Weights] = {}


def adapted_modules(arch: ModelArch) -> dict[str, str]:
    """Adaptable weight matrices of ``arch``: module name -> LoRA group (attn/mlp/unembed)."""
    modules: dict[str, str] = {}
    for layer in range(arch.n_layers):
        for proj in ("q", "k", "v", "o"):
            modules[f"layers.{layer}.attn.{proj}"] = "attn"
        for proj in ("in", "out"):
            modules[f"layers.{layer}.mlp.{proj}"] = "mlp"
    modules["unembed"] = "unembed"
    return modules


def module_shape(arch: ModelArch, module: str) -> tuple[int, int]:
    """``(d_in, d_out)`` of an adaptable weight matrix."""
    if module == "unembed":
        return arch.d_model, arch.vocab_size
    if module.endswith("mlp.in"):
        return arch.d_model, arch.d_ff
    if module.endswith("mlp.out"):
        return arch.d_ff, arch.d_model
    return arch.d_model, arch.d_model


def base_weights(arch: ModelArch, dtype: npt.DTypeLike = np.float32) -> Weights:
    """The frozen base weights of ``arch`` (built once per process and dtype; read-only)."""
    key = (arch, np.dtype(dtype).name)
    with _cache_lock:
        cached = _weights_cache.get(key)
        if cached is None:
            cached = _build_weights(arch, np.dtype(dtype))
            _weights_cache[key] = cached
        return cached


def _build_weights(arch: ModelArch, dtype: np.dtype[Any]) -> Weights:
    rng = np.random.default_rng(_BASE_SEED)
    d, f, v = arch.d_model, arch.d_ff, arch.vocab_size
    residual_scale = 1.0 / np.sqrt(2.0 * arch.n_layers)

    def normal(shape: tuple[int, ...], std: float) -> Array:
        return rng.standard_normal(shape) * std

    weights: Weights = {
        "embed": normal((v, d), 1.0),
        "pos": normal((arch.max_seq_len, d), 0.5),
    }
    for layer in range(arch.n_layers):
        prefix = f"layers.{layer}"
        weights[f"{prefix}.norm1"] = np.ones(d)
        for proj in ("q", "k", "v"):
            weights[f"{prefix}.attn.{proj}"] = normal((d, d), d**-0.5)
        weights[f"{prefix}.attn.o"] = normal((d, d), d**-0.5 * residual_scale)
        weights[f"{prefix}.norm2"] = np.ones(d)
        weights[f"{prefix}.mlp.in"] = normal((d, f), d**-0.5)
        weights[f"{prefix}.mlp.out"] = normal((f, d), f**-0.5 * residual_scale)
    weights["final_norm"] = np.ones(d)
    weights["unembed"] = normal((d, v), d**-0.5)
    frozen: Weights = {}
    for name, value in weights.items():
        array = np.ascontiguousarray(value, dtype=dtype)
        array.flags.writeable = False
        frozen[name] = array
    return frozen


# ----------------------------------------------------------------------------- building blocks


def _rmsnorm(x: Array, gain: Array) -> tuple[Array, Array, Array]:
    rms = np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + _EPS)
    xhat = x / rms
    return xhat * gain, xhat, rms


def _rmsnorm_backward(dy: Array, gain: Array, xhat: Array, rms: Array) -> Array:
    dxhat = dy * gain
    dx: Array = (dxhat - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)) / rms
    return dx


def _gelu(u: Array) -> tuple[Array, Array]:
    t = np.tanh(_GELU_C * u * (1.0 + 0.044715 * u * u))
    return 0.5 * u * (1.0 + t), t


def _gelu_grad(u: Array, t: Array) -> Array:
    return 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * u * u)


def _split_heads(x: Array, n_heads: int) -> Array:
    b, t, d = x.shape
    return x.reshape(b, t, n_heads, d // n_heads).transpose(0, 2, 1, 3)


def _merge_heads(x: Array) -> Array:
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


def _softmax(x: Array) -> Array:
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e: Array = np.exp(shifted)
    out: Array = e / np.sum(e, axis=-1, keepdims=True)
    return out


def log_softmax(x: Array) -> Array:
    """Numerically stable log-softmax over the last axis."""
    shifted = x - np.max(x, axis=-1, keepdims=True)
    out: Array = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return out


# ----------------------------------------------------------------------------- training path


@dataclass
class _LayerCache:
    h_in: Array
    xhat1: Array
    rms1: Array
    a: Array
    q: Array
    k: Array
    v: Array
    probs: Array
    o: Array
    xhat2: Array
    rms2: Array
    m: Array
    u: Array
    t: Array
    z: Array


@dataclass
class ForwardCache:
    """Intermediates of :func:`forward` needed by :func:`backward`."""

    layers: list[_LayerCache] = field(default_factory=list)
    xhatf: Array | None = None
    rmsf: Array | None = None
    hf: Array | None = None
    probs: Array | None = None


def forward(
    arch: ModelArch,
    w: Weights,
    tokens: Array,
    *,
    keep: bool,
    keys_values: list[tuple[Array, Array]] | None = None,
) -> tuple[Array, ForwardCache]:
    """Log-probabilities (B, T, V) of next tokens for a batch of equal-length token rows.

    With ``keep`` the intermediates are kept for :func:`backward`; each layer's attention keys
    and values (B, heads, T, head_dim) are appended to ``keys_values`` when given (the KV cache
    of :func:`prefill`).
    """
    _, length = tokens.shape
    h = w["embed"][tokens] + w["pos"][:length]
    cache = ForwardCache()
    n_heads = arch.n_heads
    scale = (arch.d_model // n_heads) ** -0.5
    causal = np.triu(np.ones((length, length), dtype=bool), k=1)
    for layer in range(arch.n_layers):
        p = f"layers.{layer}"
        a, xhat1, rms1 = _rmsnorm(h, w[f"{p}.norm1"])
        q = _split_heads(a @ w[f"{p}.attn.q"], n_heads)
        k = _split_heads(a @ w[f"{p}.attn.k"], n_heads)
        v = _split_heads(a @ w[f"{p}.attn.v"], n_heads)
        scores = (q @ k.transpose(0, 1, 3, 2)) * scale
        scores = np.where(causal, -np.inf, scores)
        probs = _softmax(scores)
        o = _merge_heads(probs @ v)
        h_mid = h + o @ w[f"{p}.attn.o"]
        m, xhat2, rms2 = _rmsnorm(h_mid, w[f"{p}.norm2"])
        u = m @ w[f"{p}.mlp.in"]
        z, t = _gelu(u)
        h_out = h_mid + z @ w[f"{p}.mlp.out"]
        if keys_values is not None:
            keys_values.append((k, v))
        if keep:
            cache.layers.append(
                _LayerCache(h, xhat1, rms1, a, q, k, v, probs, o, xhat2, rms2, m, u, t, z)
            )
        h = h_out
    hf, xhatf, rmsf = _rmsnorm(h, w["final_norm"])
    logp = log_softmax(hf @ w["unembed"])
    if keep:
        cache.xhatf, cache.rmsf, cache.hf = xhatf, rmsf, hf
    return logp, cache


def backward(
    arch: ModelArch, w: Weights, cache: ForwardCache, dlogits: Array, wanted: set[str]
) -> dict[str, Array]:
    """Gradients of the loss w.r.t. the weight matrices named in ``wanted``, given the
    gradient w.r.t. the logits (B, T, V)."""
    assert cache.hf is not None and cache.xhatf is not None and cache.rmsf is not None
    grads: dict[str, Array] = {}
    d = arch.d_model
    n_heads = arch.n_heads
    scale = (d // n_heads) ** -0.5

    def weight_grad(name: str, x: Array, dy: Array) -> None:
        if name in wanted:
            grads[name] = x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])

    weight_grad("unembed", cache.hf, dlogits)
    dh = _rmsnorm_backward(dlogits @ w["unembed"].T, w["final_norm"], cache.xhatf, cache.rmsf)
    for layer in reversed(range(arch.n_layers)):
        c = cache.layers[layer]
        p = f"layers.{layer}"
        # MLP block: h_out = h_mid + gelu(m W_in) W_out
        weight_grad(f"{p}.mlp.out", c.z, dh)
        du = (dh @ w[f"{p}.mlp.out"].T) * _gelu_grad(c.u, c.t)
        weight_grad(f"{p}.mlp.in", c.m, du)
        dh_mid = dh + _rmsnorm_backward(du @ w[f"{p}.mlp.in"].T, w[f"{p}.norm2"], c.xhat2, c.rms2)
        # attention block: h_mid = h_in + attn(a) W_o
        weight_grad(f"{p}.attn.o", c.o, dh_mid)
        do = _split_heads(dh_mid @ w[f"{p}.attn.o"].T, n_heads)
        dprobs = do @ c.v.transpose(0, 1, 3, 2)
        dv = c.probs.transpose(0, 1, 3, 2) @ do
        dscores = c.probs * (dprobs - np.sum(dprobs * c.probs, axis=-1, keepdims=True)) * scale
        dq = _merge_heads(dscores @ c.k)
        dk = _merge_heads(dscores.transpose(0, 1, 3, 2) @ c.q)
        dv_m = _merge_heads(dv)
        weight_grad(f"{p}.attn.q", c.a, dq)
        weight_grad(f"{p}.attn.k", c.a, dk)
        weight_grad(f"{p}.attn.v", c.a, dv_m)
        if layer == 0:
            break  # no weight below needs a gradient
        da = dq @ w[f"{p}.attn.q"].T + dk @ w[f"{p}.attn.k"].T + dv_m @ w[f"{p}.attn.v"].T
        dh = dh_mid + _rmsnorm_backward(da, w[f"{p}.norm1"], c.xhat1, c.rms1)
    return grads


# ----------------------------------------------------------------------------- decoding path


@dataclass
class KVCache:
    """Per-layer keys/values (rows, heads, capacity, head_dim) and the filled length."""

    keys: list[Array]
    values: list[Array]
    length: int


def prefill(
    arch: ModelArch, w: Weights, prompt: Array, rows: int, capacity: int
) -> tuple[Array, KVCache]:
    """Log-probs (P, V) at every prompt position of one prompt, and a KV cache with
    ``rows`` copies of it and room for ``capacity`` positions."""
    length = prompt.shape[0]
    layers: list[tuple[Array, Array]] = []
    logp, _ = forward(arch, w, prompt[None, :], keep=False, keys_values=layers)
    n_heads = arch.n_heads
    keys, values = [], []
    for k, v in layers:
        kc = np.zeros((rows, n_heads, capacity, arch.d_model // n_heads), dtype=k.dtype)
        vc = np.zeros_like(kc)
        kc[:, :, :length] = k
        vc[:, :, :length] = v
        keys.append(kc)
        values.append(vc)
    return logp[0], KVCache(keys, values, length)


def decode_step(arch: ModelArch, w: Weights, tokens: Array, cache: KVCache) -> Array:
    """Feed one token per row at position ``cache.length``; returns next-token log-probs
    (rows, V) and advances the cache."""
    pos = cache.length
    h = w["embed"][tokens][:, None, :] + w["pos"][pos]
    n_heads = arch.n_heads
    scale = (arch.d_model // n_heads) ** -0.5
    for layer in range(arch.n_layers):
        p = f"layers.{layer}"
        a, _, _ = _rmsnorm(h, w[f"{p}.norm1"])
        q = _split_heads(a @ w[f"{p}.attn.q"], n_heads)
        cache.keys[layer][:, :, pos : pos + 1] = _split_heads(a @ w[f"{p}.attn.k"], n_heads)
        cache.values[layer][:, :, pos : pos + 1] = _split_heads(a @ w[f"{p}.attn.v"], n_heads)
        k = cache.keys[layer][:, :, : pos + 1]
        v = cache.values[layer][:, :, : pos + 1]
        probs = _softmax((q @ k.transpose(0, 1, 3, 2)) * scale)
        h = h + _merge_heads(probs @ v) @ w[f"{p}.attn.o"]
        m, _, _ = _rmsnorm(h, w[f"{p}.norm2"])
        h = h + _gelu(m @ w[f"{p}.mlp.in"])[0] @ w[f"{p}.mlp.out"]
    cache.length = pos + 1
    hf, _, _ = _rmsnorm(h[:, 0], w["final_norm"])
    return log_softmax(hf @ w["unembed"])
