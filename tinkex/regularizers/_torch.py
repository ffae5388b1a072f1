"""The torch autograd path of the pipeline (torch is imported only when it is used)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tinkex.regularizers._arrays import Array


def torch_available() -> bool:
    """Whether ``import torch`` works."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _require_torch(who: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            f"{who} uses the torch backend but torch is not installed; install torch, or "
            f"write it for numpy (see tinkex.regularizers.numpy_loss)"
        ) from exc
    return torch


def leaf_tensors(logprobs_list: Sequence[Array], who: str) -> list[Any]:
    """Fresh ``requires_grad`` tensors holding copies of the logprobs arrays.

    They have torch's default dtype (float32 unless the user changed it), as the official
    SDK's tensors built from the logprobs' values have: a loss sees the same dtype and
    computes the same numbers on both.
    """
    torch = _require_torch(who)
    dtype = torch.get_default_dtype()
    return [torch.tensor(np.array(lp), dtype=dtype, requires_grad=True) for lp in logprobs_list]


def finish_torch(
    out: Any, tensors: Sequence[Any], *, who: str, require_grads: bool
) -> tuple[float, dict[str, float], list[Array]]:
    """Backpropagate a torch result ``loss`` or ``(loss, metrics)`` into ``tensors``.

    Returns ``(float(loss.sum()), metrics, grads)`` with ``grads[i] = d loss / d tensors[i]``.

    Raises:
        TypeError: the result is not a tensor (or a tuple starting with one).
        ValueError: ``require_grads`` and the loss does not depend on some datum's logprobs.
    """
    torch = _require_torch(who)
    loss, metrics = (
        (out[0], out[1] if len(out) > 1 else {}) if isinstance(out, tuple) else (out, {})
    )
    if not torch.is_tensor(loss):
        raise TypeError(
            f"{who} must return a torch tensor (or (tensor, metrics)) for the torch backend, "
            f"got {type(loss).__name__}"
        )
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{who} metrics must be a mapping, got {type(metrics).__name__}")
    total = loss.sum()
    grads: list[Array] = []
    if total.requires_grad:
        total.backward()
    for i, tensor in enumerate(tensors):
        if tensor.grad is None:
            if require_grads:
                raise ValueError(
                    f"{who}: the loss has no gradient w.r.t. logprobs[{i}]; it must depend on "
                    f"every datum's logprobs"
                )
            grads.append(np.zeros(tuple(tensor.shape)))
        else:
            grads.append(tensor.grad.detach().cpu().numpy().astype(np.float64))
    return (
        float(total.detach().cpu()),
        {str(k): float(v) for k, v in metrics.items()},
        grads,
    )


def torch_gradient_penalty(
    loss_fn: Callable[..., Any], target_norm: float = 1.0
) -> Callable[[Sequence[Any], Sequence[Any]], Any]:
    """A torch regularizer ``(||d loss_fn / d logprobs|| - target_norm)**2`` (double backprop).

    ``loss_fn`` is a torch loss ``(data, logprobs_tensors) -> loss`` or ``(loss, metrics)``.
    """

    def penalty(data: Sequence[Any], logprobs: Sequence[Any]) -> Any:
        torch = _require_torch("torch_gradient_penalty")
        out = loss_fn(data, list(logprobs))
        loss = out[0] if isinstance(out, tuple) else out
        grads = torch.autograd.grad(
            loss.sum(), list(logprobs), create_graph=True, allow_unused=True
        )
        flat = torch.cat([g.reshape(-1) for g in grads if g is not None])
        return (flat.norm() - target_norm) ** 2

    penalty.__tinkex_backend__ = "torch"  # type: ignore[attr-defined]
    return penalty
