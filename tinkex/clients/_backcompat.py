"""The back-compat futures of client-creating methods, shared by training.py and sampling.py.

``create_lora_training_client()`` and friends return a future of the client. Old code used that
future as the client itself; :class:`ClientFuture` keeps that working: reading a client
attribute on the future warns (``FutureWarning``) and forwards to the finished client. Each
client module defines its own subclass (``BackcompatTrainingClientFuture`` in ``training.py``,
``BackcompatSamplingClientFuture`` in ``sampling.py``), so no module imports a client module
back.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from tinkex._deprecation import warn_deprecated
from tinkex._futures import APIFuture, mirror

__all__ = ["ClientFuture", "client_names"]

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


class ClientFuture(APIFuture[Any]):
    """Base of the back-compat futures: a future that also forwards client attributes.

    A subclass also derives from its client class (so ``isinstance`` and IDEs see the client's
    methods) and names them in ``_client_names`` (see :func:`client_names`).
    """

    _client_type: ClassVar[type]
    _client_names: ClassVar[frozenset[str]]

    @classmethod
    def wrap(cls, future: APIFuture[Any]) -> Self:
        """A back-compat future settled like ``future``."""
        wrapped = cls()
        mirror(future, wrapped)
        return wrapped

    def __getattribute__(self, name: str) -> Any:
        if name in type(self)._client_names and name not in _FUTURE_NAMES:
            client_type = type(self)._client_type.__name__
            warn_deprecated(
                f"Using the future as the {client_type}",
                f"call .result() (or await it) to get the {client_type} first",
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


def client_names(cls: type, *instance_attributes: str) -> frozenset[str]:
    """Class attributes plus the attributes the client's ``__init__`` sets."""
    return frozenset(n for n in dir(cls) if not n.startswith("__")) | {
        "holder",
        *instance_attributes,
    }
