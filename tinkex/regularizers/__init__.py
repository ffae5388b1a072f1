"""Regularizers and the custom-loss pipeline behind ``forward_backward_custom``.

``loss_total = base_loss + sum(weight_i * regularizer_i)``, computed client-side on the
per-datum logprobs of a forward pass, with the gradient the backward pass needs::

    from tinkex.regularizers import L1, Entropy, RegularizerSpec, compute_custom_loss, numpy_loss

    @numpy_loss(per_datum=True)
    def nll(datum, logprobs):                    # (loss, d loss / d logprobs)
        return float(-logprobs.sum()), -np.ones_like(logprobs)

    output, grads = compute_custom_loss(
        data, logprobs_list, nll,
        [RegularizerSpec(L1(), 0.01, "l1"), Entropy().spec(0.001)],
        track_grad_norms=True,
    )
    output.loss_total, output.regularizers["l1"].grad_norm, output.to_metrics()

Importing this package is cheap; numpy is loaded when a regularizer or the pipeline is first
used. torch is optional: torch functions run through autograd when it is installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tinkex.regularizers._types import (
    Backend,
    CustomLossOutput,
    RegularizerError,
    RegularizerOutput,
    RegularizerSpec,
)

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.regularizers._builtins import (
        L1,
        L2,
        Consistency,
        ElasticNet,
        Entropy,
        GradientPenalty,
        KLDivergence,
        NumpyRegularizer,
        Orthogonality,
    )
    from tinkex.regularizers._pipeline import (
        compute_custom_loss,
        numpy_loss,
        resolve_backend,
        torch_loss,
    )
    from tinkex.regularizers._torch import torch_available, torch_gradient_penalty

__all__ = [
    "L1",
    "L2",
    "Backend",
    "Consistency",
    "CustomLossOutput",
    "ElasticNet",
    "Entropy",
    "GradientPenalty",
    "KLDivergence",
    "NumpyRegularizer",
    "Orthogonality",
    "RegularizerError",
    "RegularizerOutput",
    "RegularizerSpec",
    "compute_custom_loss",
    "numpy_loss",
    "resolve_backend",
    "torch_available",
    "torch_gradient_penalty",
    "torch_loss",
]

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "L1",
            "L2",
            "Consistency",
            "ElasticNet",
            "Entropy",
            "GradientPenalty",
            "KLDivergence",
            "NumpyRegularizer",
            "Orthogonality",
        ),
        "tinkex.regularizers._builtins",
    ),
    **dict.fromkeys(
        ("compute_custom_loss", "numpy_loss", "resolve_backend", "torch_loss"),
        "tinkex.regularizers._pipeline",
    ),
    **dict.fromkeys(("torch_available", "torch_gradient_penalty"), "tinkex.regularizers._torch"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tinkex.regularizers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
