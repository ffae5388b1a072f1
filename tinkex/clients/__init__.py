"""The public clients: ServiceClient, TrainingClient, SamplingClient, RestClient, AdminClient."""

from tinkex.clients.futures import BackcompatSamplingClientFuture, BackcompatTrainingClientFuture
from tinkex.clients.rest import AdminClient, RestClient
from tinkex.clients.sampling import SamplingClient
from tinkex.clients.service import ServiceClient
from tinkex.clients.training import TrainingClient

__all__ = [
    "AdminClient",
    "BackcompatSamplingClientFuture",
    "BackcompatTrainingClientFuture",
    "RestClient",
    "SamplingClient",
    "ServiceClient",
    "TrainingClient",
]
