"""tinkex: a thread-pool, drop-in replacement for the Tinker Python SDK (0.38 API).

``import tinkex as tinker`` keeps scripts written for the official SDK working;
``tinkex.install_as_tinker()`` (or ``python -m tinkex.as_tinker``) does the same for code that
imports ``tinker`` itself. Public names are loaded lazily on first access so that importing
tinkex stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    ExperimentalWarning,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    RequestFailedError,
    TinkerError,
    UnprocessableEntityError,
)
from tinkex._lazy import lazy_exports
from tinkex._version import __version__

__title__ = "tinkex"

# name -> module that defines it; resolved on first attribute access (tinkex._lazy).
_LAZY: dict[str, str] = {
    "ServiceClient": "tinkex.clients.service",
    "TrainingClient": "tinkex.clients.training",
    "SamplingClient": "tinkex.clients.sampling",
    "RestClient": "tinkex.clients.rest",
    "AdminClient": "tinkex.clients.rest",
    "BackcompatTrainingClientFuture": "tinkex.clients.futures",
    "BackcompatSamplingClientFuture": "tinkex.clients.futures",
    "APIFuture": "tinkex._futures",
    "RetryConfig": "tinkex.lib.retry_handler",
    "LossHandle": "tinkex.clients._custom_loss",
    "PerDatumLossFn": "tinkex.clients._custom_loss",
    "Timeout": "tinkex._timeout",
    "RequestOptions": "tinkex._timeout",
    "AdamOptimizerConfig": "tinkex.types",
    "AdamParams": "tinkex.types",
    "DimuonOptimizerConfig": "tinkex.types",
    "DimuonParams": "tinkex.types",
    "OptimParams": "tinkex.types",
    "Checkpoint": "tinkex.types",
    "CheckpointType": "tinkex.types",
    "Datum": "tinkex.types",
    "DmelChunk": "tinkex.types",
    "EncodedTextChunk": "tinkex.types",
    "ForwardBackwardOutput": "tinkex.types",
    "SampledProvenanceSpan": "tinkex.types",
    "PromptProvenanceSpan": "tinkex.types",
    "LoraConfig": "tinkex.types",
    "ModelID": "tinkex.types",
    "ModelInput": "tinkex.types",
    "ModelInputChunk": "tinkex.types",
    "OptimStepRequest": "tinkex.types",
    "OptimStepResponse": "tinkex.types",
    "ParsedCheckpointTinkerPath": "tinkex.types",
    "SampledSequence": "tinkex.types",
    "SampleRequest": "tinkex.types",
    "SampleResponse": "tinkex.types",
    "SamplingParams": "tinkex.types",
    "StopReason": "tinkex.types",
    "TensorData": "tinkex.types",
    "TensorDtype": "tinkex.types",
    "TrainingRun": "tinkex.types",
    "install_as_tinker": "tinkex._alias",
    "TinkerAlreadyImportedError": "tinkex._alias",
}

if TYPE_CHECKING:  # pragma: no cover
    from tinkex import auth, types
    from tinkex import local as local
    from tinkex import telemetry as telemetry
    from tinkex._alias import TinkerAlreadyImportedError, install_as_tinker
    from tinkex._futures import APIFuture
    from tinkex._timeout import RequestOptions, Timeout
    from tinkex.clients._custom_loss import LossHandle, PerDatumLossFn
    from tinkex.clients.futures import (
        BackcompatSamplingClientFuture,
        BackcompatTrainingClientFuture,
    )
    from tinkex.clients.rest import AdminClient, RestClient
    from tinkex.clients.sampling import SamplingClient
    from tinkex.clients.service import ServiceClient
    from tinkex.clients.training import TrainingClient
    from tinkex.lib.retry_handler import RetryConfig
    from tinkex.types import (
        AdamOptimizerConfig,
        AdamParams,
        Checkpoint,
        CheckpointType,
        Datum,
        DimuonOptimizerConfig,
        DimuonParams,
        DmelChunk,
        EncodedTextChunk,
        ForwardBackwardOutput,
        LoraConfig,
        ModelID,
        ModelInput,
        ModelInputChunk,
        OptimParams,
        OptimStepRequest,
        OptimStepResponse,
        ParsedCheckpointTinkerPath,
        PromptProvenanceSpan,
        SampledProvenanceSpan,
        SampledSequence,
        SampleRequest,
        SampleResponse,
        SamplingParams,
        StopReason,
        TensorData,
        TensorDtype,
        TrainingRun,
    )

__all__ = [
    "__title__",
    "__version__",
    "APIFuture",
    "AdamOptimizerConfig",
    "AdamParams",
    "AdminClient",
    "BackcompatSamplingClientFuture",
    "BackcompatTrainingClientFuture",
    "Checkpoint",
    "CheckpointType",
    "Datum",
    "DimuonOptimizerConfig",
    "DimuonParams",
    "DmelChunk",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "LoraConfig",
    "LossHandle",
    "ModelID",
    "ModelInput",
    "ModelInputChunk",
    "OptimParams",
    "OptimStepRequest",
    "OptimStepResponse",
    "ParsedCheckpointTinkerPath",
    "PerDatumLossFn",
    "PromptProvenanceSpan",
    "RequestOptions",
    "RestClient",
    "RetryConfig",
    "SampleRequest",
    "SampleResponse",
    "SampledProvenanceSpan",
    "SampledSequence",
    "SamplingClient",
    "SamplingParams",
    "ServiceClient",
    "StopReason",
    "TensorData",
    "TensorDtype",
    "Timeout",
    "TrainingClient",
    "TrainingRun",
    "TinkerAlreadyImportedError",
    "auth",
    "install_as_tinker",
    "types",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConflictError",
    "ExperimentalWarning",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "RateLimitError",
    "RequestFailedError",
    "TinkerError",
    "UnprocessableEntityError",
]


__getattr__, __dir__ = lazy_exports(
    __name__, globals(), _LAZY, submodules=("types", "telemetry", "local", "auth")
)
