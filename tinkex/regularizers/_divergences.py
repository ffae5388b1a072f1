"""Information terms: the entropy of the model's distribution and its KL divergence from a
reference, with analytic gradients w.r.t. the logprobs.

Both accept the 1-D target-token logprobs of ``forward_backward_custom`` (one term per token)
and full log-distributions (``(N, V)``, the last axis is the vocabulary; one term per row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from tinkex.regularizers._arrays import Array, masks, reduce_units, references
from tinkex.regularizers._base import (
    NumpyRegularizer,
    Reduction,
    as_arrays,
    check_one_of,
    check_positive,
    check_reduction,
)


def _log_softmax(z: Array) -> Array:
    top = np.max(z, axis=-1, keepdims=True)
    shifted = z - np.where(np.isfinite(top), top, 0.0)
    return np.asarray(shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True)))


@attrs.frozen
class Entropy(NumpyRegularizer):
    """Entropy ``H = -sum(p * log p)`` of the model's probabilities ``p = exp(x)``.

    ``mode="minimize"`` (the default, as in Elixir Tinkex) returns ``H``: added with a positive
    weight it lowers the entropy (sharper, more confident predictions). ``"maximize"`` returns
    ``-H``: it raises the entropy (exploration).

    Shapes:

    * full log-distributions, ``(N, V)`` or more axes: the last axis is the vocabulary; each
      row's exact entropy is one term, ``mask_field`` weights rows (shape ``(N,)``) and
      ``reduction="mean"`` averages over rows;
    * 1-D target-token logprobs ``(N,)``: each token contributes ``-p log p`` of its own
      probability; ``mask_field`` weights tokens and ``"mean"`` averages over them.

    ``temperature``: ``T != 1`` takes the entropy of ``log_softmax(x / T)`` over the last axis
    (``T < 1`` sharper, ``T > 1`` flatter); ``T == 1`` uses the logprobs as given.
    ``normalize``: divides by ``log V`` (the entropy of the uniform distribution over the last
    axis), so a row's entropy lies in ``[0, 1]``. On 1-D logprobs the last axis is the datum's
    tokens, so both work over those (as in Elixir Tinkex); they are meant for full
    distributions.
    """

    default_name: ClassVar[str] = "entropy"
    mode: Literal["minimize", "maximize"] = attrs.field(
        default="minimize", validator=check_one_of("minimize", "maximize")
    )
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    temperature: float = attrs.field(default=1.0, kw_only=True, validator=check_positive)
    normalize: bool = attrs.field(default=False, kw_only=True)

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        who = repr(self)
        xs = as_arrays(logprobs_list)
        unit_shapes = [x.shape if x.ndim <= 1 else x.shape[:-1] for x in xs]
        unit_masks = masks(data, unit_shapes, self.mask_field, who=who)
        sign = 1.0 if self.mode == "minimize" else -1.0
        rescale = self.temperature != 1.0
        total = 0.0
        weight = 0.0
        grads: list[Array] = []
        for i, (x, mask, shape) in enumerate(zip(xs, unit_masks, unit_shapes, strict=True)):
            if (rescale or self.normalize) and x.ndim == 0:
                raise ValueError(f"{who}: datum {i} has a scalar logprob; no axis to work over")
            w = np.ones(shape) if mask is None else mask
            w_elements = w if x.ndim <= 1 else w[..., None]
            scale = sign
            if self.normalize:
                if x.shape[-1] < 2:
                    raise ValueError(
                        f"{who}: normalize divides by log(V), but datum {i} has V = "
                        f"{x.shape[-1]} entries on its last axis"
                    )
                scale /= float(np.log(x.shape[-1]))
            q = _log_softmax(x / self.temperature) if rescale else x
            p = np.exp(q)
            safe_q = np.where(np.isfinite(q), q, 0.0)  # p log p -> 0 as log p -> -inf
            total += scale * float(np.sum(w_elements * -p * safe_q))
            weight += float(np.sum(w))
            grad = scale * w_elements * np.where(p > 0, -p * (1.0 + safe_q), 0.0)  # d / d q
            if rescale:
                # Through q = log_softmax(z), z = x / T: d/dz_k = g_k - p_k * sum_j g_j.
                grad = (grad - p * np.sum(grad, axis=-1, keepdims=True)) / self.temperature
            grads.append(np.asarray(grad, dtype=np.float64))
        if self.reduction == "mean":
            if weight == 0:
                return 0.0, [np.zeros_like(g) for g in grads]
            return total / weight, [g / weight for g in grads]
        return total, grads


_ESTIMATORS = ("k1", "k2", "k3", "full")


def _check_callable(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"KLDivergence.compute_reference must be callable (data -> one reference array "
            f"per datum), got {type(value).__name__}"
        )


@attrs.frozen
class KLDivergence(NumpyRegularizer):
    """KL divergence between the model ``M`` (logprobs ``x``) and a reference ``R`` (``r``).

    ``direction="forward"`` (default) is ``KL(M || R)``, mass-covering around the model's own
    samples — the usual "stay close to the base model" penalty; ``"reverse"`` is
    ``KL(R || M)``, which penalises the model for putting little mass where the reference puts
    a lot; ``symmetric=True`` is ``(KL(M || R) + KL(R || M)) / 2`` (``direction`` is then
    ignored).

    The reference is, in this order: ``reference`` (one array per datum), or
    ``compute_reference(data)`` (a callable returning one array per datum, called on every
    evaluation), or each datum's ``loss_fn_inputs[reference_field]``.

    Estimators. ``"full"`` expects full log-distributions over the last axis and is exact per
    row (``"mean"`` averages over rows): ``sum_v p_v (x_v - r_v)`` forward,
    ``sum_v q_v (r_v - x_v)`` reverse (``p = exp(x)``, ``q = exp(r)``). The others work per
    element on the logprobs of tokens sampled from the model, with ``rho = exp(r - x)``:

    =========  ==========================  ==============================
    estimator  forward ``KL(M || R)``      reverse ``KL(R || M)``
    =========  ==========================  ==============================
    ``k1``     ``-log rho``                ``rho log rho``
    ``k2``     ``(log rho)**2 / 2``        ``(log rho)**2 / 2``
    ``k3``     ``rho - 1 - log rho``       ``rho log rho - (rho - 1)``
    =========  ==========================  ==============================

    ``k1`` and ``k3`` are unbiased (their mean over model samples is the divergence); ``k3``
    (default) is non-negative with low variance; ``k2`` is the same second-order approximation
    of both directions.
    """

    default_name: ClassVar[str] = "kl"
    reference_field: str = "reference_logprobs"
    reference: Sequence[Any] | None = attrs.field(default=None, eq=False, repr=False)
    estimator: Literal["k1", "k2", "k3", "full"] = attrs.field(
        default="k3", validator=check_one_of(*_ESTIMATORS)
    )
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    direction: Literal["forward", "reverse"] = attrs.field(
        default="forward", kw_only=True, validator=check_one_of("forward", "reverse")
    )
    symmetric: bool = attrs.field(default=False, kw_only=True)
    compute_reference: Callable[[Sequence[Any]], Sequence[Any]] | None = attrs.field(
        default=None, kw_only=True, eq=False, repr=False, validator=_check_callable
    )

    def __attrs_post_init__(self) -> None:
        if self.reference is not None and self.compute_reference is not None:
            raise ValueError(
                "KLDivergence: pass reference= (fixed arrays) or compute_reference= (a "
                "callable), not both"
            )

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        who = repr(self)
        xs = as_arrays(logprobs_list)
        explicit = self.reference
        if self.compute_reference is not None:
            explicit = list(self.compute_reference(data))
            if len(explicit) != len(xs):
                raise ValueError(
                    f"{who}: compute_reference returned {len(explicit)} arrays for "
                    f"{len(xs)} datums (it must return one reference array per datum)"
                )
        refs = references(data, xs, field=self.reference_field, explicit=explicit, who=who)
        units = [self._divergence(x, r) for x, r in zip(xs, refs, strict=True)]
        unit_masks = masks(data, [u[0].shape for u in units], self.mask_field, who=who)
        return reduce_units(units, unit_masks, self.reduction)

    def _divergence(self, x: Array, r: Array) -> tuple[Array, Array]:
        if not self.symmetric:
            return self._directed(x, r, self.direction)
        forward, d_forward = self._directed(x, r, "forward")
        reverse, d_reverse = self._directed(x, r, "reverse")
        return 0.5 * (forward + reverse), 0.5 * (d_forward + d_reverse)

    def _directed(self, x: Array, r: Array, direction: str) -> tuple[Array, Array]:
        """Per-unit values and their derivatives w.r.t. ``x``."""
        if self.estimator == "full":
            if direction == "forward":
                p = np.exp(x)
                # p log p -> 0: entries without model mass add nothing (and no NaN).
                diff = np.where(p > 0, x - r, 0.0)
                return np.sum(p * diff, axis=-1), p * (diff + 1.0)
            q = np.exp(r)
            diff = np.where(q > 0, r - x, 0.0)
            return np.sum(q * diff, axis=-1), -q
        log_rho = r - x
        rho = np.exp(log_rho)
        if self.estimator == "k2":
            return 0.5 * log_rho**2, -log_rho
        if direction == "forward":
            if self.estimator == "k1":
                return -log_rho, np.ones_like(x)
            return rho - 1.0 - log_rho, 1.0 - rho
        if self.estimator == "k1":
            return rho * log_rho, -rho * (1.0 + log_rho)
        return rho * log_rho - (rho - 1.0), -rho * log_rho
