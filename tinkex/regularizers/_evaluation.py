"""One evaluation of a loss or regularizer: its inputs, its backend, its (possibly async) result.

Shared by the custom-loss pipeline (``_pipeline.py``, ``_computation.py``) and the standalone
gradient norms (``_grad_norms.py``), so every entry point checks and freezes its inputs, picks
the backend and reads a function's result the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

from tinkex.regularizers._arrays import Array, as_float_array, normalize_numpy_result
from tinkex.regularizers._torch import finish_torch, leaf_tensors, torch_available
from tinkex.regularizers._types import Backend

#: A numpy function's result, validated: ``(loss, metrics, grads)``.
NumpyLossResult = tuple[float, dict[str, float], list[Array]]


def check_lengths(data: Sequence[Any], logprobs_list: Sequence[Any], *, who: str) -> None:
    """Raise ``ValueError`` (naming ``who``) unless there is one logprobs array per datum."""
    if len(data) != len(logprobs_list):
        raise ValueError(f"{who}: got {len(data)} datums but {len(logprobs_list)} logprobs arrays")


def read_only_arrays(logprobs_list: Sequence[Any]) -> list[Array]:
    """Each datum's logprobs as a float64 array that no function can write into."""
    return [read_only(as_float_array(lp)) for lp in logprobs_list]


def read_only(array: Array) -> Array:
    """A read-only view of ``array`` (the caller's array stays writable)."""
    # Every function sees the same arrays; a read-only view stops one from corrupting the
    # others' inputs.
    view = array.view()
    view.flags.writeable = False
    return view


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


def failure_message(name: str, exc: BaseException) -> str:
    """What a :class:`RegularizerError` says when regularizer ``name`` raised ``exc``."""
    return f"regularizer {name!r} failed: {type(exc).__name__}: {exc}"


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
        """Validate ``raw`` (the function's result, awaited if it was async) as
        ``(loss, metrics, grads)``; torch results get their gradients from autograd."""
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

    threading.Thread(target=run, name="tinkex-async-regularizers", daemon=True).start()
    return future
