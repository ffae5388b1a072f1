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

import asyncio
import concurrent.futures
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from tinkex.regularizers._arrays import Array, as_float_array, flat_norm, normalize_numpy_result
from tinkex.regularizers._gradient_penalty import GradientPenalty
from tinkex.regularizers._torch import finish_torch, leaf_tensors, torch_available
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
    CustomLossExceptionMetadata,
    CustomLossMeasurements,
    CustomLossMetadata,
    RegularizerExceptionMetadata,
    RegularizerMeasurements,
    RegularizerMetadata,
    emit,
    has_handlers,
)

NumpyLossResult = tuple[float, dict[str, float], list[Array]]


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


def default_backend() -> str:
    """The backend of an unmarked base loss under ``"auto"``: torch when installed, else numpy
    (so official-SDK torch losses work unchanged)."""
    return "torch" if torch_available() else "numpy"


def resolve_backend(fn: Any, requested: Backend, *, fallback: str) -> str:
    """The backend ``fn`` runs on: ``requested`` unless ``"auto"``, then its
    ``__tinkex_backend__`` marker, then ``fallback``."""
    if requested != "auto":
        return requested
    marker = getattr(fn, "__tinkex_backend__", None)
    if marker in ("numpy", "torch"):
        return str(marker)
    return fallback


class Evaluation:
    """One function evaluation, possibly started asynchronously and finished later."""

    def __init__(self, fn: Any, backend: str, data: Sequence[Any], arrays: list[Array], who: str):
        self.backend = backend
        self.who = who
        self.arrays = arrays
        self.tensors = leaf_tensors(arrays, who) if backend == "torch" else None
        self.started = time.perf_counter()
        self.raw = fn(data, self.tensors if self.tensors is not None else arrays)

    def finish(self, raw: Any, *, require_grads: bool) -> NumpyLossResult:
        if self.tensors is not None:
            return finish_torch(raw, self.tensors, who=self.who, require_grads=require_grads)
        return normalize_numpy_result(raw, self.arrays, who=self.who)


def await_all(awaitables: list[Any]) -> concurrent.futures.Future[list[Any]]:
    """Run coroutines/awaitables concurrently on a private event loop in a helper thread."""

    async def gather() -> list[Any]:
        return list(await asyncio.gather(*awaitables))

    future: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(asyncio.run(gather()))
        except BaseException as exc:
            future.set_exception(exc)

    import threading

    threading.Thread(target=run, name="tinkex-async-regularizers", daemon=True).start()
    return future


def read_only(array: Array) -> Array:
    # Every function sees the same arrays; a read-only view stops one from corrupting the
    # others' inputs (and leaves the caller's array writable).
    view = array.view()
    view.flags.writeable = False
    return view


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
    specs = list(regularizers or ())
    if len(data) != len(logprobs_list):
        raise ValueError(
            f"compute_custom_loss: got {len(data)} datums but {len(logprobs_list)} logprobs arrays"
        )
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
    arrays = [read_only(as_float_array(lp)) for lp in logprobs_list]
    base_backend = resolve_backend(base_loss_fn, backend, fallback=default_backend())
    meta: CustomLossMetadata = {
        "regularizer_count": len(specs),
        "backend": base_backend,
        "parallel": parallel,
        "track_grad_norms": track_grad_norms,
    }
    if has_handlers(CUSTOM_LOSS_START):
        emit(CUSTOM_LOSS_START, {"system_time": time.time()}, meta)
    try:
        output, grads = _compute(
            data,
            arrays,
            base_loss_fn,
            base_backend,
            specs,
            track_grad_norms,
            parallel,
            max_workers,
            timeout,
        )
    except BaseException as exc:
        if has_handlers(CUSTOM_LOSS_EXCEPTION):
            failure: CustomLossExceptionMetadata = {
                **meta,
                "error_type": type(exc).__name__,
                "error": str(exc),
            }
            emit(CUSTOM_LOSS_EXCEPTION, {"duration": time.perf_counter() - started}, failure)
        raise
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
    return output, grads


def _regularizer_meta(spec: RegularizerSpec, backend: str) -> RegularizerMetadata:
    return {"name": spec.name, "backend": backend, "async": spec.async_}


def _regularizer_failed(
    spec: RegularizerSpec, backend: str, started: float, cause: BaseException, message: str
) -> RegularizerError:
    """Emit ``tinkex.regularizer.compute.exception``; returns the :class:`RegularizerError`
    to raise (``from cause``)."""
    if has_handlers(REGULARIZER_EXCEPTION):
        meta: RegularizerExceptionMetadata = {
            **_regularizer_meta(spec, backend),
            "error_type": type(cause).__name__,
            "error": message,
        }
        emit(REGULARIZER_EXCEPTION, {"duration": time.perf_counter() - started}, meta)
    return RegularizerError(spec.name, message)


def _compute(
    data: Sequence[Any],
    arrays: list[Array],
    base_loss_fn: Callable[..., Any],
    base_backend: str,
    specs: list[RegularizerSpec],
    track_grad_norms: bool,
    parallel: bool,
    max_workers: int | None,
    timeout: float | None,
) -> tuple[CustomLossOutput, list[Array]]:
    base_run = Evaluation(base_loss_fn, base_backend, data, arrays, "base_loss_fn")
    base_loss, base_metrics, base_grads = base_run.finish(base_run.raw, require_grads=True)

    def reg_fn(spec: RegularizerSpec) -> Any:
        fn = spec.fn
        if isinstance(fn, GradientPenalty) and fn.loss_fn is None:
            if base_backend != "numpy":
                raise RegularizerError(
                    spec.name,
                    f"regularizer {spec.name!r}: GradientPenalty without loss_fn needs a numpy "
                    f"base loss; with torch use torch_gradient_penalty",
                )
            fn = fn.bind(base_loss_fn)
        return fn

    def start(spec: RegularizerSpec) -> Evaluation:
        reg_backend = resolve_backend(spec.fn, spec.backend, fallback=base_backend)
        if has_handlers(REGULARIZER_START):
            emit(
                REGULARIZER_START,
                {"system_time": time.time()},
                _regularizer_meta(spec, reg_backend),
            )
        started = time.perf_counter()
        try:
            return Evaluation(reg_fn(spec), reg_backend, data, arrays, f"regularizer {spec.name!r}")
        except RegularizerError as exc:
            _regularizer_failed(spec, reg_backend, started, exc, exc.message)
            raise
        except Exception as exc:
            message = f"regularizer {spec.name!r} failed: {type(exc).__name__}: {exc}"
            raise _regularizer_failed(spec, reg_backend, started, exc, message) from exc

    def finish(spec: RegularizerSpec, run: Evaluation, raw: Any) -> tuple[NumpyLossResult, float]:
        try:
            result = run.finish(raw, require_grads=False)
        except Exception as exc:
            message = f"regularizer {spec.name!r} failed: {type(exc).__name__}: {exc}"
            raise _regularizer_failed(spec, run.backend, run.started, exc, message) from exc
        return result, time.perf_counter() - run.started

    results: dict[str, tuple[NumpyLossResult, float, str]] = {}

    # 1. Start async regularizers so they overlap with everything else.
    async_specs = [spec for spec in specs if spec.async_]
    async_runs = {spec.name: start(spec) for spec in async_specs}
    coroutine_names = [name for name, run in async_runs.items() if inspect.isawaitable(run.raw)]
    gathered = (
        await_all([async_runs[name].raw for name in coroutine_names]) if coroutine_names else None
    )

    # 2. Synchronous regularizers, on threads when asked.
    sync_specs = [spec for spec in specs if not spec.async_]

    def run_sync(spec: RegularizerSpec) -> tuple[NumpyLossResult, float, str]:
        run = start(spec)
        result, duration = finish(spec, run, run.raw)
        return result, duration, run.backend

    if parallel and len(sync_specs) > 1:
        workers = max_workers or len(sync_specs)
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="tinkex-regularizer"
        ) as pool:
            futures = {spec.name: pool.submit(run_sync, spec) for spec in sync_specs}
            for name, fut in futures.items():
                results[name] = fut.result()
    else:
        for spec in sync_specs:
            results[spec.name] = run_sync(spec)

    # 3. Collect async results.
    awaited: dict[str, Any] = {}
    if gathered is not None:
        try:
            values = gathered.result(timeout)
        except Exception as exc:
            if isinstance(exc, concurrent.futures.TimeoutError):
                message = f"async regularizers {coroutine_names} did not finish within {timeout} s"
            else:
                which = (
                    f"async regularizer {coroutine_names[0]!r}"
                    if len(coroutine_names) == 1
                    else f"one of the async regularizers {coroutine_names}"
                )
                message = f"{which} failed: {type(exc).__name__}: {exc}"
            for spec in async_specs:  # awaited together: each pending one failed with them
                if spec.name in coroutine_names:
                    run = async_runs[spec.name]
                    _regularizer_failed(spec, run.backend, run.started, exc, message)
            raise RegularizerError(",".join(coroutine_names), message) from exc
        awaited = dict(zip(coroutine_names, values, strict=True))
    for spec in async_specs:
        run = async_runs[spec.name]
        raw = awaited.get(spec.name, run.raw)
        if isinstance(raw, concurrent.futures.Future):
            try:
                raw = raw.result(timeout)
            except Exception as exc:
                message = f"regularizer {spec.name!r} failed: {type(exc).__name__}: {exc}"
                raise _regularizer_failed(spec, run.backend, run.started, exc, message) from exc
        result, duration = finish(spec, run, raw)
        results[spec.name] = (result, duration, run.backend)

    # 4. Combine.
    total_grads = [np.array(g, dtype=np.float64, copy=True) for g in base_grads]
    outputs: dict[str, RegularizerOutput] = {}
    for spec in specs:
        (value, metrics, grads), duration, reg_backend = results[spec.name]
        for i, grad in enumerate(grads):
            total_grads[i] += spec.weight * grad
        grad_norm = flat_norm(grads) if track_grad_norms else None
        output = RegularizerOutput(
            name=spec.name,
            value=value,
            weight=spec.weight,
            contribution=spec.weight * value,
            grad_norm=grad_norm,
            grad_norm_weighted=None if grad_norm is None else spec.weight * grad_norm,
            custom=metrics,
            duration=duration,
        )
        outputs[spec.name] = output
        if has_handlers(REGULARIZER_STOP):
            measurements: RegularizerMeasurements = {
                "value": value,
                "contribution": output.contribution,
                "weight": spec.weight,
                "duration": duration,
            }
            if grad_norm is not None:
                measurements["grad_norm"] = grad_norm
            emit(REGULARIZER_STOP, measurements, _regularizer_meta(spec, reg_backend))
    regularizer_total = sum(output.contribution for output in outputs.values())
    combined = CustomLossOutput(
        loss_total=base_loss + regularizer_total,
        base_loss=base_loss,
        base_metrics=base_metrics,
        regularizer_total=regularizer_total,
        regularizers=outputs,
        base_grad_norm=flat_norm(base_grads) if track_grad_norms else None,
        total_grad_norm=flat_norm(total_grads) if track_grad_norms else None,
    )
    return combined, total_grads
