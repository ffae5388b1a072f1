"""Gradient penalty: the norm of a loss's gradient w.r.t. the logprobs, kept near a target."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from tinkex.regularizers._arrays import Array, flat_norm, normalize_numpy_result, references
from tinkex.regularizers._base import NumpyRegularizer, as_arrays, check_one_of


@attrs.frozen
class GradientPenalty(NumpyRegularizer):
    """Penalises ``(||d loss_fn / d x|| - target_norm)**2``, the gradient norm of a loss.

    ``loss_fn`` is a numpy loss in the pipeline's shape (``(value, grads)`` or
    ``(value, metrics, grads)``); left as ``None``, the pipeline binds the base loss. The
    gradient of the penalty needs a Hessian-vector product, taken here by central differences
    of ``loss_fn``'s analytic gradient along the gradient direction (two extra evaluations;
    ``step`` is the difference step). ``mode="interpolated"`` (WGAN-GP) evaluates at
    ``alpha * x + (1 - alpha) * r`` with ``r`` from ``loss_fn_inputs[reference_field]`` or
    ``reference``; ``alpha=None`` draws it uniformly per call (``seed`` fixes the sequence).
    With the torch backend, write the penalty with ``torch.autograd.grad(create_graph=True)``
    instead (see :func:`~tinkex.regularizers.torch_gradient_penalty`).
    """

    default_name: ClassVar[str] = "gradient_penalty"
    loss_fn: Callable[..., Any] | None = attrs.field(default=None, eq=False)
    target_norm: float = 1.0
    mode: Literal["output", "interpolated"] = attrs.field(
        default="output", validator=check_one_of("output", "interpolated")
    )
    reference_field: str = "reference_logprobs"
    reference: Sequence[Any] | None = attrs.field(default=None, eq=False, repr=False)
    alpha: float | None = 0.5
    seed: int | None = None
    step: float = 1e-4
    _rng: random.Random = attrs.field(
        init=False, eq=False, repr=False, factory=lambda: random.Random()
    )

    def __attrs_post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def bind(self, loss_fn: Callable[..., Any]) -> GradientPenalty:
        """A copy penalising the gradient of ``loss_fn``."""
        return attrs.evolve(self, loss_fn=loss_fn)

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, dict[str, float], list[Array]]:
        if self.loss_fn is None:
            raise ValueError(
                "GradientPenalty has no loss_fn: pass one, or use it in compute_custom_loss "
                "with a numpy base loss (which binds it)"
            )
        loss_fn = self.loss_fn
        xs = as_arrays(logprobs_list)
        if self.mode == "interpolated":
            refs = references(
                data, xs, field=self.reference_field, explicit=self.reference, who=repr(self)
            )
            alpha = self._rng.random() if self.alpha is None else self.alpha
            points = [alpha * x + (1 - alpha) * r for x, r in zip(xs, refs, strict=True)]
            scale = alpha
        else:
            points, scale = xs, 1.0

        def grad_at(arrays: list[Array]) -> list[Array]:
            return normalize_numpy_result(
                loss_fn(data, arrays), arrays, who="GradientPenalty.loss_fn"
            )[2]

        grads = grad_at(points)
        norm = flat_norm(grads)
        value = (norm - self.target_norm) ** 2
        if norm == 0.0:
            return value, {"grad_norm": 0.0}, [np.zeros_like(x) for x in xs]
        direction = [g / norm for g in grads]
        h = self.step
        plus = grad_at([p + h * v for p, v in zip(points, direction, strict=True)])
        minus = grad_at([p - h * v for p, v in zip(points, direction, strict=True)])
        coeff = 2.0 * (norm - self.target_norm) * scale / (2.0 * h)
        penalty_grads = [coeff * (gp - gm) for gp, gm in zip(plus, minus, strict=True)]
        return value, {"grad_norm": norm}, penalty_grads
