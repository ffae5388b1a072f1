"""The public clients: ServiceClient, TrainingClient, SamplingClient, RestClient, AdminClient.

Loaded lazily (PEP 562) so that using one client does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.clients.futures import (
        BackcompatSamplingClientFuture as BackcompatSamplingClientFuture,
    )
    from tinkex.clients.futures import (
        BackcompatTrainingClientFuture as BackcompatTrainingClientFuture,
    )
    from tinkex.clients.rest import AdminClient as AdminClient
    from tinkex.clients.rest import RestClient as RestClient
    from tinkex.clients.sampling import SamplingClient as SamplingClient
    from tinkex.clients.service import ServiceClient as ServiceClient
    from tinkex.clients.training import TrainingClient as TrainingClient

_MODULES = {
    "AdminClient": ".rest",
    "BackcompatSamplingClientFuture": ".futures",
    "BackcompatTrainingClientFuture": ".futures",
    "RestClient": ".rest",
    "SamplingClient": ".sampling",
    "ServiceClient": ".service",
    "TrainingClient": ".training",
}

__all__ = sorted(_MODULES)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)
