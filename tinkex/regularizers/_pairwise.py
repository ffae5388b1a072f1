"""Pairwise terms: consistency with paired logprobs, and orthogonality across datums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from tinkex.regularizers._arrays import Array, masks, reduce_units, references
from tinkex.regularizers._base import (
    NumpyRegularizer,
    Reduction,
    as_arrays,
    check_one_of,
    check_reduction,
)


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
    metric: Literal["mse", "l1", "cosine"] = attrs.field(
        default="mse", validator=check_one_of("mse", "l1", "cosine")
    )
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    mask_field: str | None = None
    eps: float = 1e-12

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, dict[str, float], list[Array]]:
        xs = as_arrays(logprobs_list)
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
    reduction: Reduction = attrs.field(default="mean", validator=check_reduction)
    eps: float = 1e-12

    def __call__(
        self, data: Sequence[Any], logprobs_list: Sequence[Any]
    ) -> tuple[float, list[Array]]:
        xs = as_arrays(logprobs_list)
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
