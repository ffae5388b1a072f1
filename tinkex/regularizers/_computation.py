"""The steps of one ``compute_custom_loss`` call, after its arguments are checked.

1. the base loss (its gradient is required);
2. the async regularizers are started, so they overlap with everything else;
3. the synchronous regularizers run, on a thread pool when ``parallel``;
4. the async results are collected (awaited together, at most ``timeout`` seconds);
5. the results are combined in the order of the specs: ``loss_total = base + sum(w_i * r_i)``
   and ``grads[i] = d base / d lp_i + sum(w_i * d r_i / d lp_i)``.

Each regularizer emits ``tinkex.regularizer.compute.start``, then ``.stop`` when combined or
``.exception`` when it fails (payloads: ``tinkex.telemetry.EVENT_SCHEMAS``).
"""

from __future__ import annotations

import concurrent.futures
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import attrs
import numpy as np

from tinkex.regularizers._arrays import Array, flat_norm
from tinkex.regularizers._evaluation import (
    Evaluation,
    NumpyLossResult,
    await_all,
    failure_message,
    resolve_backend,
)
from tinkex.regularizers._gradient_penalty import GradientPenalty
from tinkex.regularizers._types import (
    CustomLossOutput,
    RegularizerError,
    RegularizerOutput,
    RegularizerSpec,
)
from tinkex.telemetry import (
    REGULARIZER_EXCEPTION,
    REGULARIZER_START,
    REGULARIZER_STOP,
    RegularizerExceptionMetadata,
    RegularizerMeasurements,
    RegularizerMetadata,
    emit,
    has_handlers,
)


class Finished(NamedTuple):
    """A regularizer's validated result, how long it took and the backend it ran on."""

    result: NumpyLossResult
    duration: float
    backend: str


class AsyncStart(NamedTuple):
    """The async regularizers once started: their evaluations, the names of those that
    returned awaitables, and the future of those awaitables gathered (None if there are none)."""

    runs: dict[str, Evaluation]
    coroutine_names: list[str]
    gathered: concurrent.futures.Future[list[Any]] | None


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


@attrs.frozen
class CustomLossComputation:
    """The inputs of one ``compute_custom_loss`` call and the steps that compute it."""

    data: Sequence[Any]
    arrays: list[Array]
    base_loss_fn: Callable[..., Any]
    base_backend: str
    track_grad_norms: bool
    parallel: bool
    max_workers: int | None
    timeout: float | None

    def run(self, specs: list[RegularizerSpec]) -> tuple[CustomLossOutput, list[Array]]:
        """All five steps (module docstring); returns ``(output, grads)``."""
        base_run = Evaluation(
            self.base_loss_fn, self.base_backend, self.data, self.arrays, "base_loss_fn"
        )
        base = base_run.finish(base_run.raw, require_grads=True)
        async_specs = [spec for spec in specs if spec.async_]
        started = self._start_async(async_specs)
        results = self._run_sync([spec for spec in specs if not spec.async_])
        results.update(self._collect_async(async_specs, started))
        return self._combine(specs, base, results)

    def _fn(self, spec: RegularizerSpec) -> Any:
        """The function ``spec`` runs: a ``GradientPenalty`` without its own loss is bound to
        the base loss (numpy only)."""
        fn = spec.fn
        if isinstance(fn, GradientPenalty) and fn.loss_fn is None:
            if self.base_backend != "numpy":
                raise RegularizerError(
                    spec.name,
                    f"regularizer {spec.name!r}: GradientPenalty without loss_fn needs a numpy "
                    f"base loss; with torch use torch_gradient_penalty",
                )
            fn = fn.bind(self.base_loss_fn)
        return fn

    def _start(self, spec: RegularizerSpec) -> Evaluation:
        """Emit ``start`` and call the regularizer (an async one returns an awaitable)."""
        backend = resolve_backend(spec.fn, spec.backend, fallback=self.base_backend)
        if has_handlers(REGULARIZER_START):
            emit(REGULARIZER_START, {"system_time": time.time()}, _regularizer_meta(spec, backend))
        started = time.perf_counter()
        try:
            return Evaluation(
                self._fn(spec), backend, self.data, self.arrays, f"regularizer {spec.name!r}"
            )
        except RegularizerError as exc:
            _regularizer_failed(spec, backend, started, exc, exc.message)
            raise
        except Exception as exc:
            message = failure_message(spec.name, exc)
            raise _regularizer_failed(spec, backend, started, exc, message) from exc

    @staticmethod
    def _finish(spec: RegularizerSpec, run: Evaluation, raw: Any) -> Finished:
        """Validate the regularizer's result ``raw``."""
        try:
            result = run.finish(raw, require_grads=False)
        except Exception as exc:
            message = failure_message(spec.name, exc)
            raise _regularizer_failed(spec, run.backend, run.started, exc, message) from exc
        return Finished(result, time.perf_counter() - run.started, run.backend)

    def _run_one(self, spec: RegularizerSpec) -> Finished:
        run = self._start(spec)
        return self._finish(spec, run, run.raw)

    def _run_sync(self, specs: list[RegularizerSpec]) -> dict[str, Finished]:
        """Step 3: the synchronous regularizers, on threads when ``parallel``."""
        if not (self.parallel and len(specs) > 1):
            return {spec.name: self._run_one(spec) for spec in specs}
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=self.max_workers or len(specs), thread_name_prefix="tinkex-regularizer"
        ) as pool:
            futures = {spec.name: pool.submit(self._run_one, spec) for spec in specs}
            return {name: future.result() for name, future in futures.items()}

    def _start_async(self, specs: list[RegularizerSpec]) -> AsyncStart:
        """Step 2: call the async regularizers and gather the awaitables they return."""
        runs = {spec.name: self._start(spec) for spec in specs}
        names = [name for name, run in runs.items() if inspect.isawaitable(run.raw)]
        gathered = await_all([runs[name].raw for name in names]) if names else None
        return AsyncStart(runs, names, gathered)

    def _await_coroutines(
        self, specs: list[RegularizerSpec], started: AsyncStart
    ) -> dict[str, Any]:
        """The awaited results by name; a timeout or failure fails every awaited spec."""
        names = started.coroutine_names
        if started.gathered is None:
            return {}
        try:
            values = started.gathered.result(self.timeout)
        except Exception as exc:
            if isinstance(exc, concurrent.futures.TimeoutError):
                message = f"async regularizers {names} did not finish within {self.timeout} s"
            else:
                which = (
                    f"async regularizer {names[0]!r}"
                    if len(names) == 1
                    else f"one of the async regularizers {names}"
                )
                message = f"{which} failed: {type(exc).__name__}: {exc}"
            for spec in specs:  # awaited together: each pending one failed with them
                if spec.name in names:
                    run = started.runs[spec.name]
                    _regularizer_failed(spec, run.backend, run.started, exc, message)
            raise RegularizerError(",".join(names), message) from exc
        return dict(zip(names, values, strict=True))

    def _collect_async(
        self, specs: list[RegularizerSpec], started: AsyncStart
    ) -> dict[str, Finished]:
        """Step 4: the async results (awaitables awaited, futures waited for)."""
        awaited = self._await_coroutines(specs, started)
        results: dict[str, Finished] = {}
        for spec in specs:
            run = started.runs[spec.name]
            raw = awaited.get(spec.name, run.raw)
            if isinstance(raw, concurrent.futures.Future):
                try:
                    raw = raw.result(self.timeout)
                except Exception as exc:
                    message = failure_message(spec.name, exc)
                    raise _regularizer_failed(spec, run.backend, run.started, exc, message) from exc
            results[spec.name] = self._finish(spec, run, raw)
        return results

    def _combine(
        self, specs: list[RegularizerSpec], base: NumpyLossResult, results: dict[str, Finished]
    ) -> tuple[CustomLossOutput, list[Array]]:
        """Step 5: the weighted sum of values and gradients, with each ``stop`` event."""
        base_loss, base_metrics, base_grads = base
        total_grads = [np.array(g, dtype=np.float64, copy=True) for g in base_grads]
        outputs: dict[str, RegularizerOutput] = {}
        for spec in specs:
            finished = results[spec.name]
            for i, grad in enumerate(finished.result[2]):
                total_grads[i] += spec.weight * grad
            outputs[spec.name] = self._output(spec, finished)
        regularizer_total = sum(output.contribution for output in outputs.values())
        combined = CustomLossOutput(
            loss_total=base_loss + regularizer_total,
            base_loss=base_loss,
            base_metrics=base_metrics,
            regularizer_total=regularizer_total,
            regularizers=outputs,
            base_grad_norm=flat_norm(base_grads) if self.track_grad_norms else None,
            total_grad_norm=flat_norm(total_grads) if self.track_grad_norms else None,
        )
        return combined, total_grads

    def _output(self, spec: RegularizerSpec, finished: Finished) -> RegularizerOutput:
        """One regularizer's :class:`RegularizerOutput`; emits its ``stop`` event."""
        value, metrics, grads = finished.result
        grad_norm = flat_norm(grads) if self.track_grad_norms else None
        output = RegularizerOutput(
            name=spec.name,
            value=value,
            weight=spec.weight,
            contribution=spec.weight * value,
            grad_norm=grad_norm,
            grad_norm_weighted=None if grad_norm is None else spec.weight * grad_norm,
            custom=metrics,
            duration=finished.duration,
        )
        if has_handlers(REGULARIZER_STOP):
            measurements: RegularizerMeasurements = {
                "value": value,
                "contribution": output.contribution,
                "weight": spec.weight,
                "duration": finished.duration,
            }
            if grad_norm is not None:
                measurements["grad_norm"] = grad_norm
            emit(REGULARIZER_STOP, measurements, _regularizer_meta(spec, finished.backend))
        return output
