"""The module table of the ``tinker`` alias: each official module path and where its names live.

One entry per public module path of the official ``tinker`` 0.38 package that tinkex provides.
An entry lists the module's public names (its ``__all__``) with the tinkex module defining
each, and optionally a tinkex module that every other attribute is looked up in (``forward``),
so ``tinker.types.datum.TensorData`` works as it does with the official package. Paths that
are not here (the official SDK's internals, its protobuf classes, its CLI) do not import; the
parity test ``tests/dropin/test_module_parity.py`` lists each with its reason.

This module is data only (a NamedTuple, not a dataclass: the start-up hook imports it, and
``dataclasses`` would cost more than the rest of the hook).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from tinkex._version import TINKER_SDK_VERSION

__all__ = ["AliasModule", "TINKER_MODULES"]


class AliasModule(NamedTuple):
    """What one ``tinker.*`` alias module offers.

    Attributes:
        exports: public names (the module's ``__all__``) -> tinkex module that defines each
            (``"module:attribute"`` when tinkex names it differently).
        forward: tinkex module asked for any attribute not in ``exports``; when ``exports`` is
            empty the module's ``__all__`` is ``forward``'s.
        package: the path is a package (it has submodules in this table).
        constants: attributes with a fixed value (``tinker.__version__``).
    """

    exports: Mapping[str, str] = MappingProxyType({})
    forward: str | None = None
    package: bool = False
    constants: Mapping[str, object] = MappingProxyType({})


def _names(source: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, source)


def _types(*names: str) -> AliasModule:
    """A ``tinker.types.<module>``: its names, and every other type, from ``tinkex.types``."""
    return AliasModule(exports=_names("tinkex.types", *names), forward="tinkex.types")


_CLIENTS = "tinkex.clients"
_FUTURES = "tinkex._futures"
_CUSTOM_LOSS = "tinkex.clients._custom_loss"

TINKER_MODULES: dict[str, AliasModule] = {
    # ``tinker.__version__`` is the official release whose API tinkex speaks, so code that
    # checks the SDK version sees the API it gets; tinkex's own is ``tinkex.__version__``.
    "tinker": AliasModule(
        forward="tinkex", package=True, constants={"__version__": TINKER_SDK_VERSION}
    ),
    "tinker.auth": AliasModule(forward="tinkex.auth"),
    "tinker.types": AliasModule(forward="tinkex.types", package=True),
    "tinker.types.audit_log_entry": _types("AuditLogEntry"),
    "tinker.types.audit_log_response": _types("AuditLogResponse"),
    "tinker.types.auth_token_response": _types("AuthTokenResponse"),
    "tinker.types.billing_usage_request": _types("GetBillingUsageRequest"),
    "tinker.types.billing_usage_response": _types(
        "TrainingBillingEvent",
        "SamplingPrefillBillingEvent",
        "SamplingSampleBillingEvent",
        "CheckpointBillingEvent",
        "StorageBillingEvent",
        "BillingEventInfo",
        "BillingUsageEvent",
        "BillingUsageSession",
        "BillingUsageResponse",
    ),
    "tinker.types.checkpoint": _types("Checkpoint", "CheckpointType"),
    "tinker.types.checkpoints_list_response": _types("CheckpointsListResponse"),
    "tinker.types.client_config_request": _types("ClientConfigRequest"),
    "tinker.types.client_config_response": _types("ClientConfigResponse"),
    "tinker.types.client_dynamic_config_response": _types("ClientDynamicConfigResponse"),
    "tinker.types.copy_weights_request": _types("CopyWeightsRequest"),
    "tinker.types.copy_weights_response": _types("CopyWeightsResponse"),
    "tinker.types.create_custom_loss_request": _types("CreateCustomLossRequest"),
    "tinker.types.create_custom_loss_response": _types("CreateCustomLossResponse"),
    "tinker.types.create_model_request": _types("CreateModelRequest"),
    "tinker.types.create_model_response": _types("CreateModelResponse"),
    "tinker.types.create_sampling_session_request": _types("CreateSamplingSessionRequest"),
    "tinker.types.create_sampling_session_response": _types("CreateSamplingSessionResponse"),
    "tinker.types.create_session_request": _types("CreateSessionRequest"),
    "tinker.types.create_session_response": _types("CreateSessionResponse"),
    "tinker.types.current_checkpoint_storage_usage_request": _types(
        "GetCurrentCheckpointStorageUsageRequest"
    ),
    "tinker.types.current_checkpoint_storage_usage_response": _types(
        "CurrentCheckpointStorageUsageItem", "CurrentCheckpointStorageUsageResponse"
    ),
    "tinker.types.cursor": _types("Cursor"),
    "tinker.types.custom_loss_graph": _types(
        "CustomLossGraph", "CustomLossNode", "CustomLossNodeOp"
    ),
    "tinker.types.custom_loss_input": _types("CustomLossInput", "CustomLossInputRank"),
    "tinker.types.datum": _types("Datum"),
    "tinker.types.dmel_chunk": _types("DmelChunk"),
    "tinker.types.encoded_text_chunk": _types("EncodedTextChunk"),
    "tinker.types.event_type": _types("EventType"),
    "tinker.types.external_weights_urls_response": _types("ExternalWeightsUrlsResponse"),
    "tinker.types.forward_backward_input": _types("ForwardBackwardInput"),
    "tinker.types.forward_backward_output": _types("ForwardBackwardOutput"),
    "tinker.types.forward_backward_request": _types("ForwardBackwardRequest"),
    "tinker.types.forward_request": _types("ForwardRequest"),
    "tinker.types.future_completion": _types("FutureCompletion", "FutureFinished", "FutureFailed"),
    "tinker.types.future_retrieve_request": _types("FutureRetrieveRequest"),
    "tinker.types.future_retrieve_response": _types("FutureRetrieveResponse"),
    "tinker.types.futures_retrieve_request": _types(
        "FuturesRetrieveRequest", "SamplingSessionFuturesTarget"
    ),
    "tinker.types.futures_retrieve_response": _types("FuturesRetrieveResponse"),
    "tinker.types.generic_event": _types("GenericEvent"),
    "tinker.types.get_info_request": _types("GetInfoRequest"),
    "tinker.types.get_info_response": _types("ModelData", "GetInfoResponse"),
    "tinker.types.get_sampler_response": _types("GetSamplerResponse"),
    "tinker.types.get_server_capabilities_response": _types(
        "GetServerCapabilitiesResponse", "SupportedModel"
    ),
    "tinker.types.get_session_response": _types("GetSessionResponse"),
    "tinker.types.health_response": _types("HealthResponse"),
    "tinker.types.image_asset_pointer_chunk": _types("ImageAssetPointerChunk"),
    "tinker.types.image_chunk": _types("ImageChunk"),
    "tinker.types.join_sampling_session_request": _types("JoinSamplingSessionRequest"),
    "tinker.types.join_sampling_session_response": _types("JoinSamplingSessionResponse"),
    "tinker.types.list_sessions_response": _types("ListSessionsResponse"),
    "tinker.types.load_weights_request": _types("LoadWeightsRequest"),
    "tinker.types.load_weights_response": _types("LoadWeightsResponse"),
    "tinker.types.lora_config": _types("LoraConfig"),
    "tinker.types.loss_fn_inputs": _types("LossFnInputs"),
    "tinker.types.loss_fn_output": _types("LossFnOutput"),
    "tinker.types.loss_fn_type": _types("LossFnType"),
    "tinker.types.model_id": _types("ModelID"),
    "tinker.types.model_input": _types("ModelInput"),
    "tinker.types.model_input_chunk": _types("ModelInputChunk"),
    "tinker.types.optim_step_request": _types("OptimStepRequest", "AdamParams"),
    "tinker.types.optim_step_response": _types("OptimStepResponse"),
    "tinker.types.optimizer": _types(
        "OptimizerConfigBase",
        "AdamOptimizerConfig",
        "DimuonOptimizerConfig",
        "OptimizerConfig",
        "OptimParamsBase",
        "AdamParams",
        "DimuonParams",
        "OptimParams",
    ),
    "tinker.types.prompt_alt_tokens": _types("PromptAltTokens"),
    "tinker.types.provenance_spans": _types(
        "SampledProvenanceSpan", "PromptProvenanceSpan", "ProvenanceSpans"
    ),
    "tinker.types.request_error_category": _types("RequestErrorCategory"),
    "tinker.types.request_failed_response": _types("RequestFailedResponse"),
    "tinker.types.request_id": _types("RequestID"),
    "tinker.types.sample_request": _types("SampleRequest"),
    "tinker.types.sample_response": _types("SampleResponse"),
    "tinker.types.sampled_sequence": _types("SampledSequence"),
    "tinker.types.sampling_client_kind": _types("SamplingClientKind"),
    "tinker.types.sampling_params": _types("SamplingParams"),
    "tinker.types.save_weights_external_request": _types("SaveWeightsExternalRequest"),
    "tinker.types.save_weights_external_response": _types(
        "SaveWeightsExternalResponseInternal", "SaveWeightsExternalResponse"
    ),
    "tinker.types.save_weights_for_sampler_request": _types("SaveWeightsForSamplerRequest"),
    "tinker.types.save_weights_for_sampler_response": _types(
        "SaveWeightsForSamplerResponseInternal", "SaveWeightsForSamplerResponse"
    ),
    "tinker.types.save_weights_request": _types("SaveWeightsRequest"),
    "tinker.types.save_weights_response": _types("SaveWeightsResponse"),
    "tinker.types.search_owner": _types(
        "OwnSearchOwner", "AccessibleSearchOwner", "UserSearchOwner", "SearchOwner"
    ),
    "tinker.types.session_end_event": _types("SessionEndEvent"),
    "tinker.types.session_heartbeat_request": _types("SessionHeartbeatRequest"),
    "tinker.types.session_heartbeat_response": _types("SessionHeartbeatResponse"),
    "tinker.types.session_search_cursor": _types("SessionSearchCursor"),
    "tinker.types.session_search_request": _types("SessionSearchRequest"),
    "tinker.types.session_search_response": _types("SessionSearchResponse"),
    "tinker.types.session_start_event": _types("SessionStartEvent"),
    "tinker.types.session_status": _types(
        "SessionFailedRequestReason",
        "SessionFailedTrainingRunReason",
        "SessionFailedSamplingSessionReason",
        "SessionFailedReason",
        "SessionFailed",
        "SessionCancelled",
        "ClientSessionFinishSuccess",
        "ClientSessionFinishErrored",
        "ClientSessionFinishInterrupted",
        "ClientSessionFinishReason",
        "ClientSessionFinished",
        "SessionActive",
        "SessionStatus",
    ),
    "tinker.types.session_status_query": _types(
        "ClientSessionFinishReasonType",
        "ActiveSessionStatusQuery",
        "CancelledSessionStatusQuery",
        "FailedSessionStatusQuery",
        "ClientFinishedSessionStatusQuery",
        "SessionStatusQuery",
    ),
    "tinker.types.session_summary": _types("SessionSummary"),
    "tinker.types.severity": _types("Severity"),
    "tinker.types.shared": AliasModule(
        exports=_names("tinkex.types", "UntypedAPIFuture"), package=True
    ),
    "tinker.types.shared.untyped_api_future": _types("UntypedAPIFuture"),
    "tinker.types.stop_reason": _types("StopReason"),
    "tinker.types.telemetry_batch": _types("TelemetryBatch"),
    "tinker.types.telemetry_event": _types("TelemetryEvent"),
    "tinker.types.telemetry_response": _types("TelemetryResponse"),
    "tinker.types.telemetry_send_request": _types("TelemetrySendRequest"),
    "tinker.types.tensor_data": _types("TensorData"),
    "tinker.types.tensor_dtype": _types("TensorDtype"),
    "tinker.types.topk_logprobs": _types("TopkLogprobs"),
    "tinker.types.training_run": _types("TrainingRun"),
    "tinker.types.training_runs_response": _types("TrainingRunsResponse"),
    "tinker.types.try_again_response": _types("TryAgainResponse"),
    "tinker.types.unhandled_exception_event": _types("UnhandledExceptionEvent"),
    "tinker.types.unload_model_request": _types("UnloadModelRequest"),
    "tinker.types.unload_model_response": _types("UnloadModelResponse"),
    "tinker.types.weights_info_response": _types("WeightsInfoResponse"),
    "tinker.types.whoami_response": _types("WhoamiResponse"),
    # tinker.lib: the public client classes and the few helpers user code imports.
    "tinker.lib": AliasModule(package=True),
    "tinker.lib.public_interfaces": AliasModule(
        exports={
            **_names(
                _CLIENTS,
                "ServiceClient",
                "TrainingClient",
                "BackcompatTrainingClientFuture",
                "SamplingClient",
                "BackcompatSamplingClientFuture",
                "RestClient",
                "AdminClient",
            ),
            **_names(_FUTURES, "APIFuture", "AwaitableConcurrentFuture"),
            **_names(_CUSTOM_LOSS, "LossHandle", "PerDatumLossFn"),
        },
        package=True,
    ),
    "tinker.lib.public_interfaces.admin_client": AliasModule(
        exports=_names(_CLIENTS, "AdminClient")
    ),
    "tinker.lib.public_interfaces.api_future": AliasModule(
        exports=_names(_FUTURES, "APIFuture", "AwaitableConcurrentFuture")
    ),
    # tinkex's common base of the two back-compat client futures.
    "tinker.lib.public_interfaces.backcompat_client_future": AliasModule(
        exports={"BackcompatClientFuture": "tinkex.clients._backcompat:ClientFuture"}
    ),
    "tinker.lib.public_interfaces.backcompat_sampling_client_future": AliasModule(
        exports=_names(_CLIENTS, "BackcompatSamplingClientFuture")
    ),
    "tinker.lib.public_interfaces.backcompat_training_client_future": AliasModule(
        exports=_names(_CLIENTS, "BackcompatTrainingClientFuture")
    ),
    "tinker.lib.public_interfaces.custom_loss": AliasModule(
        exports=_names(_CUSTOM_LOSS, "LossHandle", "PerDatumLossFn")
    ),
    "tinker.lib.public_interfaces.rest_client": AliasModule(exports=_names(_CLIENTS, "RestClient")),
    "tinker.lib.public_interfaces.sampling_client": AliasModule(
        exports=_names(_CLIENTS, "SamplingClient")
    ),
    "tinker.lib.public_interfaces.service_client": AliasModule(
        exports=_names(_CLIENTS, "ServiceClient")
    ),
    "tinker.lib.public_interfaces.training_client": AliasModule(
        exports=_names(_CLIENTS, "TrainingClient")
    ),
    "tinker.lib.api_future_impl": AliasModule(exports=_names(_FUTURES, "QueueState")),
    "tinker.lib.base_url": AliasModule(exports=_names("tinkex._config", "DEFAULT_BASE_URL")),
    "tinker.lib.credentials": AliasModule(
        exports=_names("tinkex._config", "default_credentials_path")
    ),
    "tinker.lib.backcompat_concurrent_future": AliasModule(exports=_names(_FUTURES, "APIFuture")),
    "tinker.lib.experimental": AliasModule(
        exports=_names("tinkex._exceptions", "ExperimentalWarning")
    ),
    "tinker.lib.retry_handler": AliasModule(
        exports=_names("tinkex.lib.retry_handler", "RetryConfig")
    ),
    "tinker.lib.retryable_exception": AliasModule(
        exports=_names("tinkex.lib.retryable_exception", "RetryableException")
    ),
}
