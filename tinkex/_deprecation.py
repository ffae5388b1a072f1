"""Deprecation warnings and the deprecated ``*_async`` twins of client methods, in one place.

The official SDK kept an ``x_async`` coroutine next to most methods ``x`` that return a future;
its users now ``await x(...)`` instead. :func:`async_twin` builds such a twin from ``x``, so the
twin's signature is ``x``'s (``inspect.signature`` follows ``__wrapped__``; type checkers and
IDEs see it through the ``ParamSpec``), and it is declared in the class body where readers
expect it::

    class SamplingClient:
        def sample(self, prompt, num_samples, sampling_params) -> APIFuture[SampleResponse]: ...

        sample_async = async_twin(sample)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

__all__ = ["async_twin", "warn_deprecated"]

S = TypeVar("S")
P = ParamSpec("P")
T = TypeVar("T")


def warn_deprecated(
    what: str,
    instead: str,
    *,
    category: type[Warning] = FutureWarning,
    stacklevel: int = 3,
) -> None:
    """Warn that ``what`` is deprecated and say what to do ``instead``.

    ``FutureWarning`` (shown to end users, as the official SDK does) unless ``category`` says
    otherwise; ``stacklevel`` 3 points at the caller of the deprecated function.
    """
    warnings.warn(f"{what} is deprecated; {instead}", category, stacklevel=stacklevel)


@overload
def async_twin(
    method: Callable[Concatenate[S, P], Awaitable[T]], *, returns_future: Literal[False] = ...
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]: ...


@overload
def async_twin(
    method: Callable[Concatenate[S, P], T], *, returns_future: bool = ...
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]: ...


def async_twin(
    method: Callable[Concatenate[S, P], Any], *, returns_future: bool = False
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, Any]]:
    """The deprecated coroutine twin ``<name>_async`` of ``method``.

    The twin warns (``FutureWarning``), calls ``method`` and awaits what it returns when that is
    awaitable (a future), so ``await client.x_async(...)`` gives the result. With
    ``returns_future`` it returns the future itself, as the official ``TrainingClient`` twins do.
    """
    owner, _, name = method.__qualname__.rpartition(".")

    @functools.wraps(method)
    async def twin(self: S, *args: P.args, **kwargs: P.kwargs) -> Any:
        warn_deprecated(f"{owner}.{name}_async", f"call {name}() and await the returned future")
        value = method(self, *args, **kwargs)
        if not returns_future and isinstance(value, Awaitable):
            return await value
        return value

    twin.__name__ = f"{name}_async"
    twin.__qualname__ = f"{owner}.{name}_async"
    twin.__doc__ = f"DEPRECATED: use ``{name}`` and await the returned future."
    return cast(Callable[Concatenate[S, P], Coroutine[Any, Any, Any]], twin)
