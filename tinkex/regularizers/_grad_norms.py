"""Gradient norms on their own: what ``track_grad_norms=True`` reports, for one function.

Use them to see, before or between training steps, which term would dominate an update::

    compute_grad_norm(nll, data, logprobs_list)              # |d nll / d logprobs|
    grad_norm_for_regularizer(L2().spec(0.1), data, logprobs_list)
    total_grad_norm(nll, [L2().spec(0.1)], data, logprobs_list)

The norm is the L2 norm of the gradient w.r.t. every datum's logprobs taken together. numpy
functions supply their gradient themselves; torch functions get it from autograd.
"""

from __future__ import annotations

import concurrent.futures
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from tinkex.regularizers._arrays import flat_norm
from tinkex.regularizers._evaluation import (
    Evaluation,
    await_all,
    check_lengths,
    default_backend,
    failure_message,
    read_only_arrays,
    resolve_backend,
)
from tinkex.regularizers._pipeline import compute_custom_loss
from tinkex.regularizers._types import Backend, RegularizerError, RegularizerSpec


def compute_grad_norm(
    fn: Callable[..., Any],
    data: Sequence[Any],
    logprobs_list: Sequence[Any],
    *,
    backend: Backend = "auto",
) -> float:
    """L2 norm of ``d fn / d logprobs`` over all datums.

    Args:
        fn: a loss or regularizer in the pipeline's shape (see
            :func:`~tinkex.regularizers.compute_custom_loss`): numpy ``(data, arrays) ->
            (value, grads)`` / ``(value, metrics, grads)``, or torch ``(data, tensors) ->
            tensor`` / ``(tensor, metrics)``.
        data: the ``Datum`` list passed through to ``fn``.
        logprobs_list: one logprobs array per datum.
        backend: ``"numpy"``, ``"torch"`` or ``"auto"`` (``fn``'s ``__tinkex_backend__``
            marker, else torch when it is installed).

    Raises:
        TypeError, ValueError: ``fn`` returned the wrong shape of result or bad gradients.
        ImportError: the torch backend without torch installed.
    """
    check_lengths(data, logprobs_list, who="compute_grad_norm")
    arrays = read_only_arrays(logprobs_list)
    chosen = resolve_backend(fn, backend, fallback=default_backend())
    run = Evaluation(fn, chosen, data, arrays, getattr(fn, "__name__", type(fn).__name__))
    _, _, grads = run.finish(run.raw, require_grads=False)
    return flat_norm(grads)


def grad_norm_for_regularizer(
    spec: RegularizerSpec,
    data: Sequence[Any],
    logprobs_list: Sequence[Any],
    *,
    timeout: float | None = None,
) -> float:
    """L2 norm of the gradient of ``spec.fn`` (unweighted: ``RegularizerOutput.grad_norm``;
    multiply by ``spec.weight`` for ``grad_norm_weighted``).

    ``spec.backend`` decides the backend (``"auto"``: the function's marker, else torch when
    installed); an ``async_`` spec is awaited, at most ``timeout`` seconds.

    Raises:
        RegularizerError: the regularizer failed (its name in the message, the error as cause).
    """
    check_lengths(data, logprobs_list, who="grad_norm_for_regularizer")
    arrays = read_only_arrays(logprobs_list)
    chosen = resolve_backend(spec.fn, spec.backend, fallback=default_backend())
    try:
        run = Evaluation(spec.fn, chosen, data, arrays, f"regularizer {spec.name!r}")
        raw = run.raw
        if spec.async_ and inspect.isawaitable(raw):
            raw = await_all([raw]).result(timeout)[0]
        elif spec.async_ and isinstance(raw, concurrent.futures.Future):
            raw = raw.result(timeout)
        _, _, grads = run.finish(raw, require_grads=False)
    except concurrent.futures.TimeoutError as exc:
        raise RegularizerError(
            spec.name, f"regularizer {spec.name!r} did not finish within {timeout} s"
        ) from exc
    except Exception as exc:
        raise RegularizerError(spec.name, failure_message(spec.name, exc)) from exc
    return flat_norm(grads)


def total_grad_norm(
    base_loss_fn: Callable[..., Any],
    regularizers: Sequence[RegularizerSpec] | None,
    data: Sequence[Any],
    logprobs_list: Sequence[Any],
    *,
    backend: Backend = "auto",
    timeout: float | None = None,
) -> float:
    """L2 norm of the gradient of ``base + sum(weight_i * reg_i)``: the
    ``total_grad_norm`` that :func:`~tinkex.regularizers.compute_custom_loss` reports."""
    output, _ = compute_custom_loss(
        data,
        logprobs_list,
        base_loss_fn,
        regularizers,
        track_grad_norms=True,
        backend=backend,
        timeout=timeout,
    )
    assert output.total_grad_norm is not None  # track_grad_norms=True fills it in
    return output.total_grad_norm
