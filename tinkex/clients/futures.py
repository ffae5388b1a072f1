"""Futures of clients: ``BackcompatTrainingClientFuture`` / ``BackcompatSamplingClientFuture``.

Client-creating methods return these. They are futures of the client (``.result()``,
``await``) and, for old code, also behave like the client: calling a client method on the
future warns (``FutureWarning``) and forwards the call to the finished client.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from tinkex._futures import APIFuture, mirror
from tinkex.clients.sampling import SamplingClient
from tinkex.clients.training import TrainingClient

__all__ = ["BackcompatTrainingClientFuture", "BackcompatSamplingClientFuture"]

_FUTURE_NAMES = frozenset(dir(APIFuture)) | {
    "_condition",
    "_state",
    "_result",
    "_exception",
    "_waiters",
    "_done_callbacks",
    "_cancel_lock",
    "_client_names",
    "_client_type",
    "wrap",
    "__class__",
    "__dict__",
}


class _ClientFuture(APIFuture[Any]):
    _client_type: ClassVar[type]
    _client_names: ClassVar[frozenset[str]]

    @classmethod
    def wrap(cls, future: APIFuture[Any]) -> Any:
        """A back-compat future settled like ``future``."""
        wrapped = cls()
        mirror(future, wrapped)
        return wrapped

    def __getattribute__(self, name: str) -> Any:
        if name in type(self)._client_names and name not in _FUTURE_NAMES:
            client_type = type(self)._client_type.__name__
            warnings.warn(
                f"Using the future as the {client_type} is deprecated; call .result() (or "
                f"await it) to get the {client_type} first",
                FutureWarning,
                stacklevel=2,
            )
            return getattr(APIFuture.result(self), name)
        return super().__getattribute__(name)

    def __repr__(self) -> str:
        if self.cancelled():
            state = "cancelled"
        elif not self.done():
            state = "pending"
        elif (exc := self.exception()) is not None:
            state = f"failed: {exc!r}"
        else:
            state = repr(APIFuture.result(self))
        return f"<{type(self).__name__}: {state}>"


def _public_names(cls: type, *instance_attributes: str) -> frozenset[str]:
    """Class attributes plus the attributes the client's ``__init__`` sets."""
    return frozenset(n for n in dir(cls) if not n.startswith("__")) | {
        "holder",
        *instance_attributes,
    }


class BackcompatTrainingClientFuture(_ClientFuture, TrainingClient):
    """Future of a :class:`TrainingClient` (also usable as one, with a deprecation warning)."""

    _client_type = TrainingClient
    _client_names = _public_names(TrainingClient, "model_id", "model_seq_id")

    def __init__(self) -> None:
        APIFuture.__init__(self)


class BackcompatSamplingClientFuture(_ClientFuture, SamplingClient):  # type: ignore[misc]
    """Future of a :class:`SamplingClient` (also usable as one, with a deprecation warning)."""

    _client_type = SamplingClient
    _client_names = _public_names(
        SamplingClient,
        "sampling_session_id",
        "retry_config",
        "record_stability_info",
        "tokenizer_id",
    )

    def __init__(self) -> None:
        APIFuture.__init__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles as the client it resolves to (waiting for it), as tinker's does: workers of a
        # process pool receive a SamplingClient.
        client: SamplingClient = APIFuture.result(self)
        return client.__reduce__()
