"""Size penalties: L1, L2 and Elastic Net, on logprobs, probabilities or a datum field.

Each penalises ``phi(t - center)`` per element, where ``t`` is the *target*:

* ``"logprobs"`` (default): the logprobs ``x`` themselves;
* ``"probs"``: the probabilities ``exp(x)`` (the gradient goes through ``exp``);
* ``Field("name")``: each datum's ``loss_fn_inputs["name"]`` (same shape as its logprobs). It
  does not depend on the logprobs, so it adds to the loss value with a zero gradient — a
  penalty you report and weigh, not one that trains.

``center`` is a number, or ``"mean"``: the (mask-weighted) mean of the target over the whole
batch, which moves with every element — its gradient accounts for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, TypeAlias

import attrs
import numpy as np

from tinkex.regularizers._arrays import Array, datum_input, masks, match_shape, reduce_units
from tinkex.regularizers._base import (
    NumpyRegularizer,
    Reduction,
    as_arrays,
    check_positive,
    check_reduction,
)


def _check_field_name(instance: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"Field.name must be a non-empty loss_fn_inputs key, got {value!r}")


@attrs.frozen
class Field:
    """A penalty target read from each datum: ``loss_fn_inputs[name]``, e.g.
    ``L1(target=Field("advantages"))``."""

    name: str = attrs.field(validator=_check_field_name)


Target: TypeAlias = Literal["logprobs", "probs"] | Field
Center: TypeAlias = float | Literal["mean"]


def _check_target(instance: Any, attribute: Any, value: Any) -> None:
    if value in ("logprobs", "probs") or isinstance(value, Field):
        return
    hint = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = f"; to measure around {value}, pass center={value} (target names what is penalised)"
    raise ValueError(
        f"{type(instance).__name__}.target must be 'logprobs', 'probs' or "
        f"Field('<loss_fn_inputs key>'), got {value!r}{hint}"
    )


def _check_center(instance: Any, attribute: Any, value: Any) -> None:
    if value == "mean":
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(
            f"{type(instance).__name__}.center must be a finite number or 'mean', got {value!r}"
        )


def _weighted_mean(arrays: Sequence[Array], weights: Sequence[Array | None]) -> float:
    """Mean of every element of ``arrays`` weighted by ``weights`` (0 when all weights are 0)."""
    total = 0.0
    count = 0.0
    for array, weight in zip(arrays, weights, strict=True):
        w = np.ones(array.shape) if weight is None else weight
        total += float(np.sum(w * array))
        count += float(np.sum(w))
    return total / count if count else 0.0


class _Penalty(NumpyRegularizer):
    """value = reduce(mask * phi(target - center)); subclasses define ``_phi(d)``."""

    reduction: Reduction
    mask_field: str | None
    target: Target
    center: Center

    def _phi(self, d: Array) -> tuple[Array, Array]:
        """``(phi(d), phi'(d))`` elementwise."""
        raise NotImplementedError

    def _target(self, datum: Any, x: Array, index: int, who: str) -> tuple[Array, Array]:
        """``(t, dt/dx)`` for one datum's logprobs ``x``."""
        if self.target == "logprobs":
            return x, np.ones_like(x)
        if self.target == "probs":
            p = np.exp(x)
            return p, p
        assert isinstance(self.target, Field)
        name = self.target.name
        values = datum_input(datum, name, who=who, index=index)
        t = match_shape(values, x.shape, who=who, what=f"target field {name!r}", index=index)
        return t, np.zeros_like(x)

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        who = repr(self)
        xs = as_arrays(logprobs_list)
        if len(data) != len(xs):
            raise ValueError(f"{who}: got {len(data)} datums for {len(xs)} logprobs arrays")
        targets = [
            self._target(datum, x, i, who)
            for i, (datum, x) in enumerate(zip(data, xs, strict=True))
        ]
        element_masks = masks(data, [x.shape for x in xs], self.mask_field, who=who)
        if self.center == "mean":
            center = _weighted_mean([t for t, _ in targets], element_masks)
        else:
            center = float(self.center)
        phis = [self._phi(t - center) for t, _ in targets]
        if self.center == "mean":
            # The center moves with every element t_j (by w_j / W), so
            # d value / d t_j = w_j * (phi'(d_j) - mask-weighted mean of phi').
            mean_slope = _weighted_mean([slope for _, slope in phis], element_masks)
            phis = [(phi, slope - mean_slope) for phi, slope in phis]
        if isinstance(self.target, Field):  # the target does not depend on the logprobs
            units = [(phi, np.zeros_like(x)) for (phi, _), x in zip(phis, xs, strict=True)]
        else:
            units = [(phi, slope * dt) for (phi, slope), (_, dt) in zip(phis, targets, strict=True)]
        return reduce_units(units, element_masks, self.reduction)


@attrs.frozen
class L1(_Penalty):
    """``|t - center|`` per element (sub-gradient ``sign(t - center)``); sparsity."""

    default_name: ClassVar[str] = "l1"
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    target: Target = attrs.field(default="logprobs", validator=_check_target)
    center: Center = attrs.field(default=0.0, validator=_check_center)

    def _phi(self, d: Array) -> tuple[Array, Array]:
        return np.abs(d), np.sign(d)


@attrs.frozen
class L2(_Penalty):
    """``(t - center)**2`` per element (gradient ``2 (t - center)``); weight decay.

    ``clip``: the centred value is clipped to ``[-clip, clip]`` before squaring, so one
    outlier adds at most ``clip**2`` and no gradient beyond the bound.
    """

    default_name: ClassVar[str] = "l2"
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    target: Target = attrs.field(default="logprobs", validator=_check_target)
    center: Center = attrs.field(default=0.0, validator=_check_center)
    clip: float | None = attrs.field(default=None, validator=check_positive)

    def _phi(self, d: Array) -> tuple[Array, Array]:
        if self.clip is None:
            return d * d, 2.0 * d
        clipped = np.clip(d, -self.clip, self.clip)
        return clipped * clipped, np.where(np.abs(d) <= self.clip, 2.0 * d, 0.0)


def _check_ratio(instance: Any, attribute: Any, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"ElasticNet.l1_ratio must be in [0, 1], got {value}")


@attrs.frozen
class ElasticNet(_Penalty):
    """``l1_ratio * |d| + (1 - l1_ratio) * d**2`` per element, ``d = t - center``."""

    default_name: ClassVar[str] = "elastic_net"
    l1_ratio: float = attrs.field(default=0.5, validator=_check_ratio)
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    target: Target = attrs.field(default="logprobs", validator=_check_target)
    center: Center = attrs.field(default=0.0, validator=_check_center)

    def _phi(self, d: Array) -> tuple[Array, Array]:
        a = self.l1_ratio
        return a * np.abs(d) + (1 - a) * d * d, a * np.sign(d) + 2 * (1 - a) * d
