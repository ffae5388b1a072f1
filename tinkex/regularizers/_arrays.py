"""numpy plumbing shared by the built-in regularizers and the pipeline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

Array: TypeAlias = NDArray[np.float64]


def as_float_array(value: Any) -> Array:
    """``value`` (numpy array, list, ``TensorData``, CPU torch tensor) as a float64 array."""
    if hasattr(value, "to_numpy"):
        return np.asarray(value.to_numpy(), dtype=np.float64)
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch tensor
        return np.asarray(value.detach().cpu().numpy(), dtype=np.float64)
    if not isinstance(value, np.ndarray) and hasattr(value, "data") and hasattr(value, "shape"):
        array = np.asarray(value.data, dtype=np.float64)  # TensorData-like: flat data + shape
        return array.reshape(tuple(value.shape)) if value.shape else array
    return np.asarray(value, dtype=np.float64)


def loss_fn_inputs(datum: Any) -> Mapping[str, Any]:
    """The ``loss_fn_inputs`` mapping of a ``Datum`` (or of a dict shaped like one)."""
    inputs = getattr(datum, "loss_fn_inputs", None)
    if inputs is None and isinstance(datum, Mapping):
        inputs = datum.get("loss_fn_inputs")
    return inputs if isinstance(inputs, Mapping) else {}


def datum_input(datum: Any, field: str, *, who: str, index: int) -> Array:
    """``datum.loss_fn_inputs[field]`` as a float64 array.

    Raises:
        ValueError: the datum has no such input (the message names ``who``, the datum index and
            the inputs it does have).
    """
    inputs = loss_fn_inputs(datum)
    if field not in inputs:
        raise ValueError(
            f"{who}: datum {index} has no loss_fn_inputs[{field!r}] "
            f"(it has {sorted(inputs)}); add it to each Datum or pass the values explicitly"
        )
    return as_float_array(inputs[field])


def match_shape(array: Array, shape: tuple[int, ...], *, who: str, what: str, index: int) -> Array:
    """``array`` reshaped to ``shape`` when it holds the same number of elements.

    Raises:
        ValueError: the sizes differ.
    """
    if array.shape == shape:
        return array
    if array.size == int(np.prod(shape)):
        return array.reshape(shape)
    raise ValueError(
        f"{who}: {what} for datum {index} has shape {array.shape}, "
        f"expected {shape} (the shape of its logprobs)"
    )


def references(
    data: Sequence[Any],
    logprobs_list: Sequence[Array],
    *,
    field: str,
    explicit: Sequence[Any] | None,
    who: str,
) -> list[Array]:
    """Per-datum reference arrays, from ``explicit`` or from each datum's ``loss_fn_inputs``."""
    if explicit is not None:
        if len(explicit) != len(logprobs_list):
            raise ValueError(
                f"{who}: got {len(explicit)} reference arrays for {len(logprobs_list)} datums"
            )
        raw = [as_float_array(item) for item in explicit]
    else:
        raw = [datum_input(datum, field, who=who, index=i) for i, datum in enumerate(data)]
    return [
        match_shape(ref, lp.shape, who=who, what=f"reference {field!r}", index=i)
        for i, (ref, lp) in enumerate(zip(raw, logprobs_list, strict=True))
    ]


def masks(
    data: Sequence[Any],
    unit_shapes: Sequence[tuple[int, ...]],
    field: str | None,
    *,
    who: str,
) -> list[Array | None]:
    """Per-datum masks read from ``loss_fn_inputs[field]`` (``None`` each when no field)."""
    if field is None:
        return [None] * len(unit_shapes)
    return [
        match_shape(
            datum_input(datum, field, who=who, index=i), shape, who=who, what="mask", index=i
        )
        for i, (datum, shape) in enumerate(zip(data, unit_shapes, strict=True))
    ]


def reduce_units(
    units: Sequence[tuple[Array, Array]],
    unit_masks: Sequence[Array | None],
    reduction: str,
) -> tuple[float, list[Array]]:
    """Combine per-unit values into one number and per-datum gradients.

    ``units[i] = (values_i, derivs_i)``: ``values_i`` has the unit shape (elements, rows or a
    scalar per datum); ``derivs_i`` has the logprobs shape and holds ``d values_i[u] / d x``
    for the elements of unit ``u``. ``"sum"`` adds masked unit values; ``"mean"`` divides by
    the total mask weight (the unit count when unmasked).
    """
    total = 0.0
    weight = 0.0
    grads: list[Array] = []
    for (values, derivs), mask in zip(units, unit_masks, strict=True):
        m = np.ones(values.shape) if mask is None else mask
        total += float(np.sum(m * values))
        weight += float(np.sum(m))
        expanded = m.reshape(m.shape + (1,) * (derivs.ndim - m.ndim))
        grads.append(np.asarray(derivs * expanded, dtype=np.float64))
    if reduction == "mean":
        if weight == 0:
            return 0.0, [np.zeros_like(g) for g in grads]
        return total / weight, [g / weight for g in grads]
    return total, grads


def flat_norm(grads: Sequence[Array]) -> float:
    """L2 norm of all gradients taken together."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))


def normalize_numpy_result(
    out: Any, logprobs_list: Sequence[Array], *, who: str
) -> tuple[float, dict[str, float], list[Array]]:
    """Validate what a numpy loss/regularizer returned: ``(value, grads)`` or
    ``(value, metrics, grads)``; returns ``(value, metrics, grads)``.

    Raises:
        TypeError: wrong shape of result (the message shows the expected signature).
        ValueError: wrong number of gradients, a gradient of the wrong shape, or a non-finite
            value or gradient.
    """
    if not isinstance(out, tuple) or len(out) not in (2, 3):
        raise TypeError(
            f"{who} must return (value, grads) or (value, metrics, grads) for the numpy "
            f"backend, got {type(out).__name__}; torch functions need backend='torch' "
            f"(or the tinkex.regularizers.torch_loss marker)"
        )
    if len(out) == 2:
        value, grads = out
        metrics: Any = {}
        if isinstance(grads, Mapping):
            raise TypeError(
                f"{who} returned (value, metrics): that is the torch signature. A numpy "
                f"function returns (value, metrics, grads); wrap a (value, grads) function "
                f"with tinkex.regularizers.numpy_loss, or use backend='torch'"
            )
    else:
        value, metrics, grads = out
    total = float(np.sum(np.asarray(value, dtype=np.float64)))
    if not np.isfinite(total):
        raise ValueError(f"{who} returned a non-finite value {total}")
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{who} metrics must be a mapping, got {type(metrics).__name__}")
    if len(grads) != len(logprobs_list):
        raise ValueError(
            f"{who} returned {len(grads)} gradients for {len(logprobs_list)} logprobs arrays"
        )
    checked: list[Array] = []
    for i, (grad, lp) in enumerate(zip(grads, logprobs_list, strict=True)):
        array = match_shape(as_float_array(grad), lp.shape, who=who, what="gradient", index=i)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{who} returned a non-finite gradient for datum {i}")
        checked.append(array)
    return total, {str(k): float(v) for k, v in metrics.items()}, checked
