"""Built-in numpy regularizers, each returning its value and its gradient w.r.t. logprobs.

Every built-in is called as ``reg(data, logprobs_list) -> (value, grads)`` (or
``(value, metrics, grads)``), where ``logprobs_list[i]`` is the array of datum ``i`` (shape
``(N_i,)`` for the target-token logprobs of ``forward_backward_custom``) and ``grads[i]`` has
the same shape. Use them through :class:`~tinkex.regularizers.RegularizerSpec`::

    RegularizerSpec(L1(), weight=0.01, name="l1")
    L2(mask_field="weights").spec(1e-3)         # same thing, shorter

Elementwise regularizers (L1, L2, ElasticNet, Entropy, KLDivergence, Consistency with ``mse``
/``l1``) take ``reduction`` (``"mean"`` over elements, the default, or ``"sum"``) and an optional
``mask_field``: a ``loss_fn_inputs`` key (e.g. ``"weights"``) whose values weight each element,
so prompt positions with weight 0 are ignored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from tinkex.regularizers._arrays import (
    Array,
    as_float_array,
    flat_norm,
    masks,
    normalize_numpy_result,
    reduce_units,
    references,
)
from tinkex.regularizers._types import RegularizerSpec

Reduction = Literal["mean", "sum"]


def _check_reduction(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("mean", "sum"):
        raise ValueError(
            f"{type(instance).__name__}.reduction must be 'mean' or 'sum', got {value!r}"
        )


def _arrays(logprobs_list: Sequence[Any]) -> list[Array]:
    return [as_float_array(lp) for lp in logprobs_list]


class NumpyRegularizer:
    """Base of the built-ins: callable ``(data, logprobs_list) -> (value, grads)``."""

    __tinkex_backend__: ClassVar[str] = "numpy"
    default_name: ClassVar[str] = "regularizer"

    def __call__(self, data: Sequence[Any], logprobs_list: Sequence[Any]) -> Any:
        raise NotImplementedError

    def spec(
        self, weight: float, name: str | None = None, *, async_: bool = False
    ) -> RegularizerSpec:
        """This regularizer as a :class:`RegularizerSpec` (named after its kind by default)."""
        return RegularizerSpec(self, weight, name or self.default_name, async_, "numpy")


class _Elementwise(NumpyRegularizer):
    """value = reduce(mask * phi(x)); subclasses define ``_phi(x, i, data) -> (phi, dphi)``."""

    reduction: Reduction
    mask_field: str | None

    def _prepare(self, data: Sequence[Any], xs: list[Array]) -> Any:
        return None

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        raise NotImplementedError

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        xs = _arrays(logprobs_list)
        prepared = self._prepare(data, xs)
        units = [self._phi(x, i, prepared) for i, x in enumerate(xs)]
        unit_masks = masks(data, [u[0].shape for u in units], self.mask_field, who=repr(self))
        return reduce_units(units, unit_masks, self.reduction)


@attrs.frozen
class L1(_Elementwise):
    """``|x - target|`` per element (sub-gradient ``sign(x - target)``)."""

    default_name: ClassVar[str] = "l1"
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None
    target: float = 0.0

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        d = x - self.target
        return np.abs(d), np.sign(d)


@attrs.frozen
class L2(_Elementwise):
    """``(x - target)**2`` per element (gradient ``2 (x - target)``)."""

    default_name: ClassVar[str] = "l2"
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None
    target: float = 0.0

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        d = x - self.target
        return d * d, 2.0 * d


def _check_ratio(instance: Any, attribute: Any, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"ElasticNet.l1_ratio must be in [0, 1], got {value}")


@attrs.frozen
class ElasticNet(_Elementwise):
    """``l1_ratio * |d| + (1 - l1_ratio) * d**2`` per element, ``d = x - target``."""

    default_name: ClassVar[str] = "elastic_net"
    l1_ratio: float = attrs.field(default=0.5, validator=_check_ratio)
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None
    target: float = 0.0

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        d = x - self.target
        a = self.l1_ratio
        return a * np.abs(d) + (1 - a) * d * d, a * np.sign(d) + 2 * (1 - a) * d


def _check_mode(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("maximize", "minimize"):
        raise ValueError(f"Entropy.mode must be 'maximize' or 'minimize', got {value!r}")


@attrs.frozen
class Entropy(_Elementwise):
    """Entropy of the model's token probabilities, ``H = -sum(p * log p)`` with ``p = exp(x)``.

    ``mode="maximize"`` (default) returns ``-H``, so adding it with a positive weight pushes
    entropy up (exploration); ``"minimize"`` returns ``H``. For 1-D target-token logprobs this
    is the entropy contribution of the sampled tokens; pass full log-distributions (``(N, V)``)
    for the exact per-position entropy (``reduction="mean"`` then averages over elements).
    """

    default_name: ClassVar[str] = "entropy"
    mode: Literal["maximize", "minimize"] = attrs.field(default="maximize", validator=_check_mode)
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        p = np.exp(x)
        sign = -1.0 if self.mode == "maximize" else 1.0
        return sign * (-p * x), sign * (-p * (1.0 + x))


_ESTIMATORS = ("k1", "k2", "k3", "full")


def _check_estimator(instance: Any, attribute: Any, value: str) -> None:
    if value not in _ESTIMATORS:
        raise ValueError(f"KLDivergence.estimator must be one of {_ESTIMATORS}, got {value!r}")


@attrs.frozen
class KLDivergence(_Elementwise):
    """KL divergence of the model (logprobs ``x``) from a reference (logprobs ``r``).

    The reference comes from ``loss_fn_inputs[reference_field]`` of each datum, or from
    ``reference`` (one array per datum). Estimators (per element, samples from the model):
    ``"k1"``: ``x - r``; ``"k2"``: ``(x - r)**2 / 2``; ``"k3"`` (default, non-negative, low
    variance): ``exp(r - x) - (r - x) - 1``. ``"full"`` expects full log-distributions over
    the last axis and computes the exact ``sum_v exp(x_v) (x_v - r_v)`` per row (``"mean"``
    averages over rows).
    """

    default_name: ClassVar[str] = "kl"
    reference_field: str = "reference_logprobs"
    reference: Sequence[Any] | None = attrs.field(default=None, eq=False, repr=False)
    estimator: Literal["k1", "k2", "k3", "full"] = attrs.field(
        default="k3", validator=_check_estimator
    )
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None

    def _prepare(self, data: Sequence[Any], xs: list[Array]) -> Any:
        return references(
            data, xs, field=self.reference_field, explicit=self.reference, who=repr(self)
        )

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        r: Array = prepared[i]
        if self.estimator == "k1":
            return x - r, np.ones_like(x)
        if self.estimator == "k2":
            return 0.5 * (x - r) ** 2, x - r
        if self.estimator == "k3":
            d = r - x
            e = np.exp(d)
            return e - d - 1.0, 1.0 - e
        p = np.exp(x)
        return np.sum(p * (x - r), axis=-1), p * (x - r + 1.0)


_METRICS = ("mse", "l1", "cosine")


def _check_metric(instance: Any, attribute: Any, value: str) -> None:
    if value not in _METRICS:
        raise ValueError(f"Consistency.metric must be one of {_METRICS}, got {value!r}")


@attrs.frozen
class Consistency(NumpyRegularizer):
    """Keeps logprobs close to paired ones (e.g. of an augmented or original input).

    The pair comes from ``loss_fn_inputs[pair_field]`` (default ``"original_logprobs"``) or
    ``reference``. ``metric``: ``"mse"`` (``(x - r)**2``), ``"l1"`` (``|x - r|``) or
    ``"cosine"`` (``1 - cos(x, r)`` per datum; ``"mean"`` averages over datums).
    """

    default_name: ClassVar[str] = "consistency"
    pair_field: str = "original_logprobs"
    reference: Sequence[Any] | None = attrs.field(default=None, eq=False, repr=False)
    metric: Literal["mse", "l1", "cosine"] = attrs.field(default="mse", validator=_check_metric)
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    mask_field: str | None = None
    eps: float = 1e-12

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, dict[str, float], list[Array]]:
        xs = _arrays(logprobs_list)
        refs = references(data, xs, field=self.pair_field, explicit=self.reference, who=repr(self))
        if self.metric == "cosine":
            element_masks = masks(data, [x.shape for x in xs], self.mask_field, who=repr(self))
            units = [self._cosine(x, r, m) for x, r, m in zip(xs, refs, element_masks, strict=True)]
            value, grads = reduce_units(units, [None] * len(units), self.reduction)
        else:
            units = [self._phi(x, i, refs) for i, x in enumerate(xs)]
            unit_masks = masks(data, [u[0].shape for u in units], self.mask_field, who=repr(self))
            value, grads = reduce_units(units, unit_masks, self.reduction)
        return value, {"consistency_" + self.metric: value}, grads

    def _phi(self, x: Array, i: int, prepared: Any) -> tuple[Array, Array]:
        d = x - prepared[i]
        if self.metric == "mse":
            return d * d, 2.0 * d
        return np.abs(d), np.sign(d)

    def _cosine(self, x: Array, r: Array, mask: Array | None) -> tuple[Array, Array]:
        m = np.ones_like(x) if mask is None else mask
        xm, rm = (m * x).ravel(), (m * r).ravel()
        nx = max(float(np.linalg.norm(xm)), self.eps)
        nr = max(float(np.linalg.norm(rm)), self.eps)
        cos = float(xm @ rm) / (nx * nr)
        dcos = rm / (nx * nr) - cos * xm / (nx * nx)
        return np.asarray(1.0 - cos), (-dcos * m.ravel()).reshape(x.shape)


@attrs.frozen
class Orthogonality(NumpyRegularizer):
    """Decorrelates the datums' logprob vectors: ``sum_{i != j} G_ij**2`` for the Gram matrix
    ``G`` of the (row-normalised, by default) vectors.

    Each datum's array is flattened and zero-padded to the longest. With
    ``include_diagonal=True`` the penalty is ``||G - I||_F**2`` (soft orthonormality; the
    diagonal only matters when ``normalize=False``). ``"mean"`` divides by the number of terms.
    """

    default_name: ClassVar[str] = "orthogonality"
    normalize: bool = True
    include_diagonal: bool = False
    reduction: Reduction = attrs.field(default="mean", validator=_check_reduction)
    eps: float = 1e-12

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        xs = _arrays(logprobs_list)
        n = len(xs)
        terms = n * n if self.include_diagonal else n * (n - 1)
        if terms == 0:
            return 0.0, [np.zeros_like(x) for x in xs]
        width = max((x.size for x in xs), default=0)
        matrix = np.zeros((n, width))
        for i, x in enumerate(xs):
            matrix[i, : x.size] = x.ravel()
        if self.normalize:
            norms = np.maximum(np.linalg.norm(matrix, axis=1), self.eps)
            rows = matrix / norms[:, None]
        else:
            rows = matrix
        gram = rows @ rows.T
        target = np.eye(n) if self.include_diagonal else np.zeros((n, n))
        weight = np.ones((n, n)) if self.include_diagonal else 1.0 - np.eye(n)
        residual = (gram - target) * weight
        value = float(np.sum(residual**2))
        d_rows = 4.0 * residual @ rows
        if self.normalize:
            # Chain rule through y_i = x_i / |x_i|: dy_i/dx_i = (I - y_i y_i^T) / |x_i|.
            radial = np.sum(d_rows * rows, axis=1, keepdims=True)
            d_matrix = (d_rows - radial * rows) / norms[:, None]
        else:
            d_matrix = d_rows
        scale = 1.0 / terms if self.reduction == "mean" else 1.0
        grads = [scale * d_matrix[i, : x.size].reshape(x.shape) for i, x in enumerate(xs)]
        return scale * value, grads


def _check_gp_mode(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("output", "interpolated"):
        raise ValueError(f"GradientPenalty.mode must be 'output' or 'interpolated', got {value!r}")


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
        default="output", validator=_check_gp_mode
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
        xs = _arrays(logprobs_list)
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
