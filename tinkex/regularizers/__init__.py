"""Regularizers and the custom-loss pipeline behind ``forward_backward_custom``.

``loss_total = base_loss + sum(weight_i * regularizer_i)``, computed client-side on the
per-datum logprobs of a forward pass, with the gradient the backward pass needs::

    from tinkex.regularizers import L1, Entropy, RegularizerSpec, compute_custom_loss, numpy_loss

    @numpy_loss(per_datum=True)
    def nll(datum, logprobs):                    # (loss, d loss / d logprobs)
        return float(-logprobs.sum()), -np.ones_like(logprobs)

    output, grads = compute_custom_loss(
        data, logprobs_list, nll,
        [RegularizerSpec(L1(), 0.01, "l1"), Entropy(mode="maximize").spec(0.001)],
        track_grad_norms=True,
    )
    output.loss_total, output.regularizers["l1"].grad_norm, output.to_metrics()

Built-ins: :class:`L1`, :class:`L2`, :class:`ElasticNet` (on logprobs, probabilities or a
:class:`Field`), :class:`Entropy`, :class:`KLDivergence`, :class:`Consistency`,
:class:`Orthogonality`, :class:`GradientPenalty`. :func:`compute_grad_norm`,
:func:`grad_norm_for_regularizer` and :func:`total_grad_norm` give gradient norms on their own.

Importing this package is cheap; numpy is loaded when a regularizer or the pipeline is first
used. torch is optional: torch functions run through autograd when it is installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports
from tinkex.regularizers._types import (
    Backend,
    CustomLossOutput,
    RegularizerError,
    RegularizerOutput,
    RegularizerSpec,
)
from tinkex.telemetry import (
    CUSTOM_LOSS_EXCEPTION,
    CUSTOM_LOSS_START,
    CUSTOM_LOSS_STOP,
    REGULARIZER_EXCEPTION,
    REGULARIZER_START,
    REGULARIZER_STOP,
)

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.regularizers._base import NumpyRegularizer
    from tinkex.regularizers._divergences import Entropy, KLDivergence
    from tinkex.regularizers._evaluation import resolve_backend
    from tinkex.regularizers._grad_norms import (
        compute_grad_norm,
        grad_norm_for_regularizer,
        total_grad_norm,
    )
    from tinkex.regularizers._gradient_penalty import GradientPenalty
    from tinkex.regularizers._pairwise import Consistency, Orthogonality
    from tinkex.regularizers._penalties import L1, L2, ElasticNet, Field
    from tinkex.regularizers._pipeline import compute_custom_loss, numpy_loss, torch_loss
    from tinkex.regularizers._torch import torch_available, torch_gradient_penalty

#: The telemetry events of the custom-loss pipeline (payloads: ``tinkex.telemetry.EVENT_SCHEMAS``),
#: e.g. for ``tinkex.telemetry.attach_logger(events=EVENTS)``.
EVENTS: tuple[str, ...] = (
    CUSTOM_LOSS_START,
    CUSTOM_LOSS_STOP,
    CUSTOM_LOSS_EXCEPTION,
    REGULARIZER_START,
    REGULARIZER_STOP,
    REGULARIZER_EXCEPTION,
)

__all__ = [
    "EVENTS",
    "L1",
    "L2",
    "Backend",
    "Consistency",
    "CustomLossOutput",
    "ElasticNet",
    "Entropy",
    "Field",
    "GradientPenalty",
    "KLDivergence",
    "NumpyRegularizer",
    "Orthogonality",
    "RegularizerError",
    "RegularizerOutput",
    "RegularizerSpec",
    "compute_custom_loss",
    "compute_grad_norm",
    "grad_norm_for_regularizer",
    "numpy_loss",
    "resolve_backend",
    "torch_available",
    "torch_gradient_penalty",
    "torch_loss",
    "total_grad_norm",
]

_LAZY: dict[str, str] = {
    "NumpyRegularizer": "tinkex.regularizers._base",
    **dict.fromkeys(("L1", "L2", "ElasticNet", "Field"), "tinkex.regularizers._penalties"),
    **dict.fromkeys(("Entropy", "KLDivergence"), "tinkex.regularizers._divergences"),
    **dict.fromkeys(("Consistency", "Orthogonality"), "tinkex.regularizers._pairwise"),
    "GradientPenalty": "tinkex.regularizers._gradient_penalty",
    "resolve_backend": "tinkex.regularizers._evaluation",
    **dict.fromkeys(
        ("compute_custom_loss", "numpy_loss", "torch_loss"),
        "tinkex.regularizers._pipeline",
    ),
    **dict.fromkeys(
        ("compute_grad_norm", "grad_norm_for_regularizer", "total_grad_norm"),
        "tinkex.regularizers._grad_norms",
    ),
    **dict.fromkeys(("torch_available", "torch_gradient_penalty"), "tinkex.regularizers._torch"),
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
