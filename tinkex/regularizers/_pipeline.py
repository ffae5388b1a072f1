"""``compute_custom_loss``: base loss + weighted regularizers, with gradients for the server.

This is the client-side half of ``TrainingClient.forward_backward_custom`` (docs/protocol.md,
"Custom losses"). After the forward pass returns per-datum logprobs, the client calls::

    output, grads = compute_custom_loss(data, logprobs_list, loss_fn, regularizers,
                                        track_grad_norms=True)

and sends the backward pass with ``weights = -grads[i]`` (cross-entropy is ``sum(-w * lp)``,
so the server's gradient equals the custom loss's). ``output.to_metrics()`` supplies the
result's metrics (``loss:sum`` = ``output.loss_total``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, overload

from tinkex.regularizers._arrays import Array, as_float_array, normalize_numpy_result
from tinkex.regularizers._computation import CustomLossComputation
from tinkex.regularizers._evaluation import (
    NumpyLossResult,
    check_lengths,
    default_backend,
    read_only_arrays,
    resolve_backend,
)
from tinkex.regularizers._types import Backend, CustomLossOutput, RegularizerSpec
from tinkex.telemetry import (
    CUSTOM_LOSS_EXCEPTION,
    CUSTOM_LOSS_START,
    CUSTOM_LOSS_STOP,
    CustomLossExceptionMetadata,
    CustomLossMeasurements,
    CustomLossMetadata,
    emit,
    has_handlers,
)


@overload
def numpy_loss(
    fn: Callable[..., Any], *, per_datum: bool = False
) -> Callable[..., NumpyLossResult]: ...


@overload
def numpy_loss(
    fn: None = None, *, per_datum: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., NumpyLossResult]]: ...


def numpy_loss(fn: Callable[..., Any] | None = None, *, per_datum: bool = False) -> Any:
    """Turn a numpy loss with an analytic gradient into the pipeline's numpy loss shape
    ``(data, logprobs_list) -> (loss, metrics, grads)`` and mark it as numpy.

    ``fn`` returns ``(loss, grads)`` or ``(loss, grads, metrics)``. With ``per_datum=True``
    it is called once per datum as ``fn(datum, logprobs) -> (loss, grad[, metrics])``; losses
    are summed over datums and each metric is reduced by its key's suffix: ``:sum`` summed,
    ``:mean`` averaged, ``:max`` / ``:min`` the extreme value; keys without one of these
    suffixes are summed. Usable as ``@numpy_loss`` or
    ``@numpy_loss(per_datum=True)``::

        @numpy_loss(per_datum=True)
        def weighted_nll(datum, logprobs):
            w = datum.loss_fn_inputs["weights"].to_numpy()
            return float(-(w * logprobs).sum()), -w

        output, grads = compute_custom_loss(data, logprobs_list, weighted_nll)
    """

    def wrap(inner: Callable[..., Any]) -> Callable[..., NumpyLossResult]:
        def loss(data: Sequence[Any], logprobs_list: Sequence[Any]) -> NumpyLossResult:
            arrays = [as_float_array(lp) for lp in logprobs_list]
            if not per_datum:
                return _reorder(inner(data, arrays), arrays, who=_name(inner))
            total = 0.0
            per_key: dict[str, list[float]] = {}
            grads: list[Array] = []
            for datum, lp in zip(data, arrays, strict=True):
                value, datum_metrics, (grad,) = _reorder(inner(datum, lp), [lp], who=_name(inner))
                total += value
                grads.append(grad)
                for key, item in datum_metrics.items():
                    per_key.setdefault(key, []).append(item)
            return total, reduce_datum_metrics(per_key), grads

        loss.__tinkex_backend__ = "numpy"  # type: ignore[attr-defined]
        loss.__name__ = _name(inner)
        loss.__doc__ = inner.__doc__
        loss.__wrapped__ = inner  # type: ignore[attr-defined]
        return loss

    if fn is not None:
        return wrap(fn)
    return wrap


def reduce_datum_metrics(per_key: dict[str, list[float]]) -> dict[str, float]:
    """Combine each metric's per-datum values by its key's suffix.

    ``:mean`` averages (over the datums that reported the key), ``:max`` / ``:min`` keep the
    extreme value, ``:sum`` and keys without a known suffix are summed.
    """
    out: dict[str, float] = {}
    for key, values in per_key.items():
        suffix = key.rsplit(":", 1)[1] if ":" in key else ""
        if suffix == "mean":
            out[key] = sum(values) / len(values)
        elif suffix == "max":
            out[key] = max(values)
        elif suffix == "min":
            out[key] = min(values)
        else:
            out[key] = float(sum(values))
    return out


def _reorder(out: Any, arrays: list[Array], *, who: str) -> NumpyLossResult:
    """``(loss, grads[, metrics])`` -> validated ``(loss, metrics, grads)``."""
    if isinstance(out, tuple) and len(out) == 2:
        loss, grads = out
        metrics: Any = {}
    elif isinstance(out, tuple) and len(out) == 3:
        loss, grads, metrics = out
    else:
        raise TypeError(f"{who} must return (loss, grads) or (loss, grads, metrics)")
    if len(arrays) == 1 and not isinstance(grads, list | tuple):
        grads = [grads]
    return normalize_numpy_result((loss, metrics, grads), arrays, who=who)


def torch_loss(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn`` as a torch loss/regularizer (``backend="auto"`` then uses autograd)."""
    fn.__tinkex_backend__ = "torch"  # type: ignore[attr-defined]
    return fn


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def compute_custom_loss(
    data: Sequence[Any],
    logprobs_list: Sequence[Any],
    base_loss_fn: Callable[..., Any],
    regularizers: Sequence[RegularizerSpec] | None = (),
    *,
    track_grad_norms: bool = False,
    parallel: bool = False,
    max_workers: int | None = None,
    backend: Backend = "auto",
    timeout: float | None = None,
) -> tuple[CustomLossOutput, list[Array]]:
    """Compute ``loss_total = base + sum(weight_i * reg_i)`` and its gradient per datum.

    Args:
        data: the ``Datum`` list of the training call (passed through to every function).
        logprobs_list: per-datum target-token logprobs from the forward pass (numpy arrays,
            lists or ``TensorData``); ``logprobs_list[i]`` belongs to ``data[i]``.
        base_loss_fn: the user's loss.

            * numpy: ``(data, logprobs_list: list[np.ndarray]) -> (loss: float,
              metrics: dict[str, float], grads: list[np.ndarray])`` where ``grads[i]`` is
              ``d loss / d logprobs_list[i]`` with the same shape. ``(loss, grads)`` is accepted
              too. :func:`numpy_loss` builds this from ``(loss, grads)`` functions, whole-batch
              or per datum.
            * torch (the official SDK signature): ``(data, logprobs: list[torch.Tensor]) ->
              (loss: torch.Tensor, metrics: dict[str, float])``; gradients come from autograd
              (a datum the loss does not depend on raises ``ValueError``).
        regularizers: :class:`RegularizerSpec` terms (unique names); ``None`` means none.
            Every function receives read-only arrays (write into copies).
        track_grad_norms: fill in gradient L2 norms (base, each regularizer, total).
        parallel: run the synchronous regularizers on a thread pool (``max_workers``
            threads, default one per regularizer). numpy and torch release the GIL in their
            kernels, so large regularizers overlap.
        backend: ``"numpy"``/``"torch"`` force the base loss's backend; ``"auto"`` uses a
            ``__tinkex_backend__`` marker (:func:`numpy_loss`, :func:`torch_loss`, the
            built-ins), else torch when it is installed (so official-SDK loss functions work
            unchanged) and numpy otherwise. Unmarked regularizers with ``backend="auto"``
            follow the base loss's backend.
        timeout: seconds to wait for each async regularizer.

    Returns:
        ``(output, grads)``: the :class:`CustomLossOutput` and ``grads[i] = d loss_total /
        d logprobs_list[i]`` as float64 arrays shaped like the inputs. The client sends
        ``weights = -grads[i]`` in the backward pass and ``output.to_metrics()`` as metrics.

    Raises:
        ValueError: mismatched lengths, duplicate regularizer names, bad gradients.
        TypeError: a function returned the wrong shape of result.
        RegularizerError: a regularizer raised (its name in the message, the error as cause).

    Emits ``tinkex.custom_loss.start`` once the arguments are checked, then
    ``tinkex.custom_loss.stop`` (the totals) or ``tinkex.custom_loss.exception`` (what failed);
    per regularizer ``tinkex.regularizer.compute.start`` and ``.stop`` (value, contribution,
    duration, gradient norm) or ``.exception``. Payloads: ``tinkex.telemetry.EVENT_SCHEMAS``.
    """
    started = time.perf_counter()
    check_lengths(data, logprobs_list, who="compute_custom_loss")
    specs = _checked_specs(regularizers)
    arrays = read_only_arrays(logprobs_list)
    base_backend = resolve_backend(base_loss_fn, backend, fallback=default_backend())
    meta: CustomLossMetadata = {
        "regularizer_count": len(specs),
        "backend": base_backend,
        "parallel": parallel,
        "track_grad_norms": track_grad_norms,
    }
    if has_handlers(CUSTOM_LOSS_START):
        emit(CUSTOM_LOSS_START, {"system_time": time.time()}, meta)
    computation = CustomLossComputation(
        data, arrays, base_loss_fn, base_backend, track_grad_norms, parallel, max_workers, timeout
    )
    try:
        output, grads = computation.run(specs)
    except BaseException as exc:
        _emit_exception(meta, started, exc)
        raise
    _emit_stop(meta, started, output)
    return output, grads


def _checked_specs(regularizers: Sequence[RegularizerSpec] | None) -> list[RegularizerSpec]:
    """``regularizers`` as a list; raises unless each is a ``RegularizerSpec`` of its own name."""
    specs = list(regularizers or ())
    for spec in specs:
        if not isinstance(spec, RegularizerSpec):
            raise TypeError(
                "compute_custom_loss: regularizers must be RegularizerSpec, "
                f"got {type(spec).__name__}"
            )
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"compute_custom_loss: duplicate regularizer names {duplicates}")
    return specs


def _emit_exception(meta: CustomLossMetadata, started: float, exc: BaseException) -> None:
    """``tinkex.custom_loss.exception``: what failed and after how long."""
    if has_handlers(CUSTOM_LOSS_EXCEPTION):
        failure: CustomLossExceptionMetadata = {
            **meta,
            "error_type": type(exc).__name__,
            "error": str(exc),
        }
        emit(CUSTOM_LOSS_EXCEPTION, {"duration": time.perf_counter() - started}, failure)


def _emit_stop(meta: CustomLossMetadata, started: float, output: CustomLossOutput) -> None:
    """``tinkex.custom_loss.stop``: the totals and the duration."""
    if has_handlers(CUSTOM_LOSS_STOP):
        measurements: CustomLossMeasurements = {
            "duration": time.perf_counter() - started,
            "loss_total": output.loss_total,
            "base_loss": output.base_loss,
            "regularizer_total": output.regularizer_total,
        }
        if output.total_grad_norm is not None:
            measurements["total_grad_norm"] = output.total_grad_norm
        emit(CUSTOM_LOSS_STOP, measurements, meta)
