"""Value types of the custom-loss pipeline (no numpy needed to import them)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import attrs

from tinkex._exceptions import TinkerError

Backend = Literal["auto", "numpy", "torch"]
_BACKENDS = ("auto", "numpy", "torch")


class RegularizerError(TinkerError):
    """A regularizer (or the base loss) failed; ``name`` says which, ``__cause__`` why."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.message))


def _check_weight(instance: Any, attribute: Any, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"RegularizerSpec.weight must be a finite number >= 0, got {value!r}")


def _check_name(instance: Any, attribute: Any, value: str) -> None:
    if not isinstance(value, str) or not value or ":" in value:
        raise ValueError(
            f"RegularizerSpec.name must be a non-empty string without ':' "
            f"(it becomes a metric key), got {value!r}"
        )


def _check_fn(instance: Any, attribute: Any, value: Any) -> None:
    if not callable(value):
        raise TypeError(f"RegularizerSpec.fn must be callable, got {type(value).__name__}")


def _check_backend(instance: Any, attribute: Any, value: str) -> None:
    if value not in _BACKENDS:
        raise ValueError(f"RegularizerSpec.backend must be one of {_BACKENDS}, got {value!r}")


@attrs.frozen
class RegularizerSpec:
    """One term of ``loss_total = base + sum(weight_i * reg_i)``.

    Attributes:
        fn: the regularizer. numpy backend: ``fn(data, logprobs_list) -> (value, grads)`` or
            ``(value, metrics, grads)`` where ``grads[i]`` is ``d value / d logprobs_list[i]``
            (same shape). torch backend: ``fn(data, logprobs_tensors) -> scalar tensor`` or
            ``(tensor, metrics)``; gradients come from autograd. The built-ins
            (:class:`~tinkex.regularizers.L1`, ...) are numpy regularizers.
        weight: multiplier (finite, >= 0).
        name: unique within a pipeline call; no ``:`` (it becomes a metric key).
        async_: ``fn`` returns an awaitable or a ``concurrent.futures.Future``; the pipeline
            starts every async regularizer before the synchronous ones and awaits them last.
        backend: ``"numpy"``, ``"torch"`` or ``"auto"`` (a ``__tinkex_backend__`` marker on
            ``fn``, e.g. from :func:`~tinkex.regularizers.torch_loss`, else the base loss's
            backend).
    """

    fn: Callable[..., Any] = attrs.field(validator=_check_fn)
    weight: float = attrs.field(converter=float, validator=_check_weight)
    name: str = attrs.field(validator=_check_name)
    async_: bool = attrs.field(default=False, converter=bool)
    backend: Backend = attrs.field(default="auto", validator=_check_backend)


@attrs.frozen
class RegularizerOutput:
    """What one regularizer contributed to a custom loss.

    Attributes:
        name, weight: from the spec.
        value: the regularizer's own value.
        contribution: ``weight * value`` (its share of ``loss_total``).
        grad_norm: L2 norm of ``d value / d logprobs`` over all datums (when tracked).
        grad_norm_weighted: ``weight * grad_norm`` (when tracked).
        custom: metrics the regularizer returned.
        duration: seconds spent computing it.
    """

    name: str
    value: float
    weight: float
    contribution: float
    grad_norm: float | None = None
    grad_norm_weighted: float | None = None
    custom: dict[str, float] = attrs.field(factory=dict)
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able fields."""
        return attrs.asdict(self)


@attrs.frozen
class CustomLossOutput:
    """Structured result of :func:`~tinkex.regularizers.compute_custom_loss`.

    Attributes:
        loss_total: ``base_loss + regularizer_total``.
        base_loss: value of the base loss function.
        base_metrics: metrics returned by the base loss function.
        regularizer_total: sum of the regularizers' contributions.
        regularizers: name -> :class:`RegularizerOutput`, in spec order.
        base_grad_norm, total_grad_norm: gradient L2 norms (when tracked).
    """

    loss_total: float
    base_loss: float
    base_metrics: dict[str, float] = attrs.field(factory=dict)
    regularizer_total: float = 0.0
    regularizers: dict[str, RegularizerOutput] = attrs.field(factory=dict)
    base_grad_norm: float | None = None
    total_grad_norm: float | None = None

    @property
    def loss(self) -> float:
        """Alias of :attr:`loss_total`."""
        return self.loss_total

    def to_metrics(self) -> dict[str, float]:
        """Tinker-style ``name:reduction`` metrics of this computation.

        The base loss's own metrics come first (as returned), then ``loss:sum`` (the total),
        ``base_loss:sum``, ``regularizer_total:sum``, and per regularizer
        ``regularizer/<name>:sum`` (value), ``regularizer/<name>/contribution:sum`` and, when
        tracked, ``regularizer/<name>/grad_norm:max`` and ``.../grad_norm_weighted:max``, plus
        ``base_grad_norm:max`` / ``total_grad_norm:max``.
        """
        metrics: dict[str, float] = dict(self.base_metrics)
        metrics["loss:sum"] = self.loss_total
        metrics["base_loss:sum"] = self.base_loss
        metrics["regularizer_total:sum"] = self.regularizer_total
        for name, output in self.regularizers.items():
            metrics[f"regularizer/{name}:sum"] = output.value
            metrics[f"regularizer/{name}/contribution:sum"] = output.contribution
            if output.grad_norm is not None:
                metrics[f"regularizer/{name}/grad_norm:max"] = output.grad_norm
            if output.grad_norm_weighted is not None:
                metrics[f"regularizer/{name}/grad_norm_weighted:max"] = output.grad_norm_weighted
        if self.base_grad_norm is not None:
            metrics["base_grad_norm:max"] = self.base_grad_norm
        if self.total_grad_norm is not None:
            metrics["total_grad_norm:max"] = self.total_grad_norm
        return metrics

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able fields (regularizers as nested dicts)."""
        return attrs.asdict(self)
