"""Which public method a request is made for: the ``x-sdk-method`` / ``x-sdk-version`` headers.

As in the official SDK, every request made while a public client method runs says so
(docs/protocol.md, "Headers"): the submission, its ``retrieve_future`` polls, the
``create_sampling_session`` and ``GET samplers/{id}`` of ``create_sampling_client``, the
``sessions/{id}/finish`` of ``close``. Background traffic (client config, dynamic config,
session creation, heartbeats, telemetry) carries neither header.

The method name lives in a context variable: :func:`public_method` sets it for the duration
of a call (the outermost public method wins, so ``delete_checkpoint_from_tinker_path`` is not
reported as the ``delete_checkpoint`` it calls), the holder's worker pools and the ordered
sender run their jobs in the context of the call that queued them, and the transport reads it
when it builds the headers. :func:`background` clears it for background requests.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

from tinkex.telemetry._context import calling, reset_calling

__all__ = ["background", "current_sdk_method", "public_method", "sdk_method_scope"]

P = ParamSpec("P")
R = TypeVar("R")

_SDK_METHOD: ContextVar[str | None] = ContextVar("tinkex_sdk_method", default=None)


def current_sdk_method() -> str | None:
    """The ``<Class>.<method>`` of the public method running in this context, if any."""
    return _SDK_METHOD.get()


@contextmanager
def sdk_method_scope(name: str | None) -> Iterator[None]:
    """Requests made inside the block report ``name`` (None: no public method)."""
    token = _SDK_METHOD.set(name)
    try:
        yield
    finally:
        _SDK_METHOD.reset(token)


@contextmanager
def background() -> Iterator[None]:
    """A block whose requests are background traffic (no ``x-sdk-method``, no caller ids)."""
    token = _SDK_METHOD.set(None)
    caller = calling(None)
    try:
        yield
    finally:
        reset_calling(caller)
        _SDK_METHOD.reset(token)


def public_method(fn: Callable[P, R]) -> Callable[P, R]:
    """Report ``fn``'s ``<Class>.<method>`` on the requests it makes, unless a public method
    that called it already does."""
    name = fn.__qualname__

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _SDK_METHOD.get() is not None:
            return fn(*args, **kwargs)
        token = _SDK_METHOD.set(name)
        caller = calling(args[0] if args else None)  # the client, for telemetry ids
        try:
            return fn(*args, **kwargs)
        finally:
            reset_calling(caller)
            _SDK_METHOD.reset(token)

    return wrapper
