"""The base class of the built-in numpy regularizers and the validators they share."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from tinkex.regularizers._arrays import Array, as_float_array
from tinkex.regularizers._types import RegularizerSpec

Reduction = Literal["mean", "sum"]


def check_reduction(instance: Any, attribute: Any, value: str) -> None:
    """attrs validator: ``reduction`` is ``"mean"`` or ``"sum"``."""
    if value not in ("mean", "sum"):
        raise ValueError(
            f"{type(instance).__name__}.reduction must be 'mean' or 'sum', got {value!r}"
        )


def check_one_of(*allowed: str) -> Any:
    """attrs validator: the value is one of ``allowed`` (the message names class and field)."""

    def check(instance: Any, attribute: Any, value: Any) -> None:
        if value not in allowed:
            raise ValueError(
                f"{type(instance).__name__}.{attribute.name} must be one of {allowed}, "
                f"got {value!r}"
            )

    return check


def check_positive(instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: a finite number > 0 (``None`` allowed for optional fields)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{type(instance).__name__}.{attribute.name} must be a number, "
            f"got {type(value).__name__}"
        )
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name} must be a finite number > 0, got {value!r}"
        )


def as_arrays(logprobs_list: Sequence[Any]) -> list[Array]:
    """Every datum's logprobs as a float64 array."""
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
