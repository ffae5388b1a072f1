"""Futures of clients: ``BackcompatTrainingClientFuture`` / ``BackcompatSamplingClientFuture``.

Client-creating methods return these. They are futures of the client (``.result()``,
``await``) and, for old code, also behave like the client: calling a client method on the
future warns (``FutureWarning``) and forwards the call to the finished client. They are
defined next to their clients (``training.py``, ``sampling.py``) on the shared base
``tinkex.clients._backcompat.ClientFuture``; this module is their public import path.
"""

from tinkex.clients.sampling import BackcompatSamplingClientFuture
from tinkex.clients.training import BackcompatTrainingClientFuture

__all__ = ["BackcompatSamplingClientFuture", "BackcompatTrainingClientFuture"]
