"""Every user-facing and wire type of the Tinker API (attrs classes).

``from tinkex import types`` mirrors ``from tinker import types``. Names are loaded on first
access (PEP 562), so importing this package costs nothing until a type is used; numpy and
cattrs are imported later still, when a tensor or the converter is first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.types._datum import (
        Datum as Datum,
    )
    from tinkex.types._datum import (
        LossFnInputs as LossFnInputs,
    )
    from tinkex.types._datum import (
        LossFnOutput as LossFnOutput,
    )
    from tinkex.types._datum import (
        PromptProvenanceSpan as PromptProvenanceSpan,
    )
    from tinkex.types._datum import (
        ProvenanceSpans as ProvenanceSpans,
    )
    from tinkex.types._datum import (
        SampledProvenanceSpan as SampledProvenanceSpan,
    )
    from tinkex.types._model import (
        ValidationError as ValidationError,
    )
    from tinkex.types._model_input import (
        DmelChunk as DmelChunk,
    )
    from tinkex.types._model_input import (
        EncodedTextChunk as EncodedTextChunk,
    )
    from tinkex.types._model_input import (
        ImageAssetPointerChunk as ImageAssetPointerChunk,
    )
    from tinkex.types._model_input import (
        ImageChunk as ImageChunk,
    )
    from tinkex.types._model_input import (
        ModelInput as ModelInput,
    )
    from tinkex.types._model_input import (
        ModelInputChunk as ModelInputChunk,
    )
    from tinkex.types._rest import (
        AuditLogEntry as AuditLogEntry,
    )
    from tinkex.types._rest import (
        AuditLogResponse as AuditLogResponse,
    )
    from tinkex.types._rest import (
        AuthTokenResponse as AuthTokenResponse,
    )
    from tinkex.types._rest import (
        BillingEventInfo as BillingEventInfo,
    )
    from tinkex.types._rest import (
        BillingUsageEvent as BillingUsageEvent,
    )
    from tinkex.types._rest import (
        BillingUsageResponse as BillingUsageResponse,
    )
    from tinkex.types._rest import (
        BillingUsageSession as BillingUsageSession,
    )
    from tinkex.types._rest import (
        Checkpoint as Checkpoint,
    )
    from tinkex.types._rest import (
        CheckpointBillingEvent as CheckpointBillingEvent,
    )
    from tinkex.types._rest import (
        CheckpointsListResponse as CheckpointsListResponse,
    )
    from tinkex.types._rest import (
        CheckpointType as CheckpointType,
    )
    from tinkex.types._rest import (
        CopyWeightsRequest as CopyWeightsRequest,
    )
    from tinkex.types._rest import (
        CopyWeightsResponse as CopyWeightsResponse,
    )
    from tinkex.types._rest import (
        CurrentCheckpointStorageUsageItem as CurrentCheckpointStorageUsageItem,
    )
    from tinkex.types._rest import (
        CurrentCheckpointStorageUsageResponse as CurrentCheckpointStorageUsageResponse,
    )
    from tinkex.types._rest import (
        Cursor as Cursor,
    )
    from tinkex.types._rest import (
        ExternalWeightsUrlsResponse as ExternalWeightsUrlsResponse,
    )
    from tinkex.types._rest import (
        GetBillingUsageRequest as GetBillingUsageRequest,
    )
    from tinkex.types._rest import (
        GetCurrentCheckpointStorageUsageRequest as GetCurrentCheckpointStorageUsageRequest,
    )
    from tinkex.types._rest import (
        GetServerCapabilitiesResponse as GetServerCapabilitiesResponse,
    )
    from tinkex.types._rest import (
        HealthResponse as HealthResponse,
    )
    from tinkex.types._rest import (
        ParsedCheckpointTinkerPath as ParsedCheckpointTinkerPath,
    )
    from tinkex.types._rest import (
        SamplingPrefillBillingEvent as SamplingPrefillBillingEvent,
    )
    from tinkex.types._rest import (
        SamplingSampleBillingEvent as SamplingSampleBillingEvent,
    )
    from tinkex.types._rest import (
        StorageBillingEvent as StorageBillingEvent,
    )
    from tinkex.types._rest import (
        SupportedModel as SupportedModel,
    )
    from tinkex.types._rest import (
        TrainingBillingEvent as TrainingBillingEvent,
    )
    from tinkex.types._rest import (
        TrainingRun as TrainingRun,
    )
    from tinkex.types._rest import (
        TrainingRunsResponse as TrainingRunsResponse,
    )
    from tinkex.types._rest import (
        WeightsInfoResponse as WeightsInfoResponse,
    )
    from tinkex.types._rest import (
        WhoamiResponse as WhoamiResponse,
    )
    from tinkex.types._sampling import (
        CreateSamplingSessionRequest as CreateSamplingSessionRequest,
    )
    from tinkex.types._sampling import (
        CreateSamplingSessionResponse as CreateSamplingSessionResponse,
    )
    from tinkex.types._sampling import (
        GetSamplerResponse as GetSamplerResponse,
    )
    from tinkex.types._sampling import (
        JoinSamplingSessionRequest as JoinSamplingSessionRequest,
    )
    from tinkex.types._sampling import (
        JoinSamplingSessionResponse as JoinSamplingSessionResponse,
    )
    from tinkex.types._sampling import (
        PromptAltTokens as PromptAltTokens,
    )
    from tinkex.types._sampling import (
        SampledSequence as SampledSequence,
    )
    from tinkex.types._sampling import (
        SampleRequest as SampleRequest,
    )
    from tinkex.types._sampling import (
        SampleResponse as SampleResponse,
    )
    from tinkex.types._sampling import (
        SamplingParams as SamplingParams,
    )
    from tinkex.types._sampling import (
        StopReason as StopReason,
    )
    from tinkex.types._sampling import (
        TopkLogprobs as TopkLogprobs,
    )
    from tinkex.types._session import (
        AccessibleSearchOwner as AccessibleSearchOwner,
    )
    from tinkex.types._session import (
        ActiveSessionStatusQuery as ActiveSessionStatusQuery,
    )
    from tinkex.types._session import (
        CancelledSessionStatusQuery as CancelledSessionStatusQuery,
    )
    from tinkex.types._session import (
        ClientConfigRequest as ClientConfigRequest,
    )
    from tinkex.types._session import (
        ClientConfigResponse as ClientConfigResponse,
    )
    from tinkex.types._session import (
        ClientDynamicConfigResponse as ClientDynamicConfigResponse,
    )
    from tinkex.types._session import (
        ClientFinishedSessionStatusQuery as ClientFinishedSessionStatusQuery,
    )
    from tinkex.types._session import (
        ClientSessionFinished as ClientSessionFinished,
    )
    from tinkex.types._session import (
        ClientSessionFinishErrored as ClientSessionFinishErrored,
    )
    from tinkex.types._session import (
        ClientSessionFinishInterrupted as ClientSessionFinishInterrupted,
    )
    from tinkex.types._session import (
        ClientSessionFinishReason as ClientSessionFinishReason,
    )
    from tinkex.types._session import (
        ClientSessionFinishReasonType as ClientSessionFinishReasonType,
    )
    from tinkex.types._session import (
        ClientSessionFinishSuccess as ClientSessionFinishSuccess,
    )
    from tinkex.types._session import (
        CreateSessionRequest as CreateSessionRequest,
    )
    from tinkex.types._session import (
        CreateSessionResponse as CreateSessionResponse,
    )
    from tinkex.types._session import (
        EventType as EventType,
    )
    from tinkex.types._session import (
        FailedSessionStatusQuery as FailedSessionStatusQuery,
    )
    from tinkex.types._session import (
        FutureCompletion as FutureCompletion,
    )
    from tinkex.types._session import (
        FutureFailed as FutureFailed,
    )
    from tinkex.types._session import (
        FutureFinished as FutureFinished,
    )
    from tinkex.types._session import (
        FutureRetrieveRequest as FutureRetrieveRequest,
    )
    from tinkex.types._session import (
        FutureRetrieveResponse as FutureRetrieveResponse,
    )
    from tinkex.types._session import (
        FuturesRetrieveRequest as FuturesRetrieveRequest,
    )
    from tinkex.types._session import (
        FuturesRetrieveResponse as FuturesRetrieveResponse,
    )
    from tinkex.types._session import (
        GenericEvent as GenericEvent,
    )
    from tinkex.types._session import (
        GetSessionResponse as GetSessionResponse,
    )
    from tinkex.types._session import (
        ListSessionsResponse as ListSessionsResponse,
    )
    from tinkex.types._session import (
        OwnSearchOwner as OwnSearchOwner,
    )
    from tinkex.types._session import (
        RequestErrorCategory as RequestErrorCategory,
    )
    from tinkex.types._session import (
        RequestFailedResponse as RequestFailedResponse,
    )
    from tinkex.types._session import (
        SamplingSessionFuturesTarget as SamplingSessionFuturesTarget,
    )
    from tinkex.types._session import (
        SearchOwner as SearchOwner,
    )
    from tinkex.types._session import (
        SessionActive as SessionActive,
    )
    from tinkex.types._session import (
        SessionCancelled as SessionCancelled,
    )
    from tinkex.types._session import (
        SessionEndEvent as SessionEndEvent,
    )
    from tinkex.types._session import (
        SessionFailed as SessionFailed,
    )
    from tinkex.types._session import (
        SessionFailedReason as SessionFailedReason,
    )
    from tinkex.types._session import (
        SessionFailedRequestReason as SessionFailedRequestReason,
    )
    from tinkex.types._session import (
        SessionFailedSamplingSessionReason as SessionFailedSamplingSessionReason,
    )
    from tinkex.types._session import (
        SessionFailedTrainingRunReason as SessionFailedTrainingRunReason,
    )
    from tinkex.types._session import (
        SessionHeartbeatRequest as SessionHeartbeatRequest,
    )
    from tinkex.types._session import (
        SessionHeartbeatResponse as SessionHeartbeatResponse,
    )
    from tinkex.types._session import (
        SessionSearchCursor as SessionSearchCursor,
    )
    from tinkex.types._session import (
        SessionSearchRequest as SessionSearchRequest,
    )
    from tinkex.types._session import (
        SessionSearchResponse as SessionSearchResponse,
    )
    from tinkex.types._session import (
        SessionStartEvent as SessionStartEvent,
    )
    from tinkex.types._session import (
        SessionStatus as SessionStatus,
    )
    from tinkex.types._session import (
        SessionStatusQuery as SessionStatusQuery,
    )
    from tinkex.types._session import (
        SessionSummary as SessionSummary,
    )
    from tinkex.types._session import (
        Severity as Severity,
    )
    from tinkex.types._session import (
        TelemetryBatch as TelemetryBatch,
    )
    from tinkex.types._session import (
        TelemetryEvent as TelemetryEvent,
    )
    from tinkex.types._session import (
        TelemetryResponse as TelemetryResponse,
    )
    from tinkex.types._session import (
        TelemetrySendRequest as TelemetrySendRequest,
    )
    from tinkex.types._session import (
        TryAgainResponse as TryAgainResponse,
    )
    from tinkex.types._session import (
        UnhandledExceptionEvent as UnhandledExceptionEvent,
    )
    from tinkex.types._session import (
        UntypedAPIFuture as UntypedAPIFuture,
    )
    from tinkex.types._session import (
        UserSearchOwner as UserSearchOwner,
    )
    from tinkex.types._tensor import (
        TensorData as TensorData,
    )
    from tinkex.types._tensor import (
        TensorDtype as TensorDtype,
    )
    from tinkex.types._training import (
        AdamOptimizerConfig as AdamOptimizerConfig,
    )
    from tinkex.types._training import (
        AdamParams as AdamParams,
    )
    from tinkex.types._training import (
        CreateCustomLossRequest as CreateCustomLossRequest,
    )
    from tinkex.types._training import (
        CreateCustomLossResponse as CreateCustomLossResponse,
    )
    from tinkex.types._training import (
        CreateModelRequest as CreateModelRequest,
    )
    from tinkex.types._training import (
        CreateModelResponse as CreateModelResponse,
    )
    from tinkex.types._training import (
        CustomLossGraph as CustomLossGraph,
    )
    from tinkex.types._training import (
        CustomLossInput as CustomLossInput,
    )
    from tinkex.types._training import (
        CustomLossInputRank as CustomLossInputRank,
    )
    from tinkex.types._training import (
        CustomLossNode as CustomLossNode,
    )
    from tinkex.types._training import (
        CustomLossNodeOp as CustomLossNodeOp,
    )
    from tinkex.types._training import (
        DimuonOptimizerConfig as DimuonOptimizerConfig,
    )
    from tinkex.types._training import (
        DimuonParams as DimuonParams,
    )
    from tinkex.types._training import (
        ForwardBackwardInput as ForwardBackwardInput,
    )
    from tinkex.types._training import (
        ForwardBackwardOutput as ForwardBackwardOutput,
    )
    from tinkex.types._training import (
        ForwardBackwardRequest as ForwardBackwardRequest,
    )
    from tinkex.types._training import (
        ForwardRequest as ForwardRequest,
    )
    from tinkex.types._training import (
        GetInfoRequest as GetInfoRequest,
    )
    from tinkex.types._training import (
        GetInfoResponse as GetInfoResponse,
    )
    from tinkex.types._training import (
        LoadWeightsRequest as LoadWeightsRequest,
    )
    from tinkex.types._training import (
        LoadWeightsResponse as LoadWeightsResponse,
    )
    from tinkex.types._training import (
        LoraConfig as LoraConfig,
    )
    from tinkex.types._training import (
        LossFnType as LossFnType,
    )
    from tinkex.types._training import (
        ModelData as ModelData,
    )
    from tinkex.types._training import (
        ModelID as ModelID,
    )
    from tinkex.types._training import (
        OptimizerConfig as OptimizerConfig,
    )
    from tinkex.types._training import (
        OptimizerConfigBase as OptimizerConfigBase,
    )
    from tinkex.types._training import (
        OptimParams as OptimParams,
    )
    from tinkex.types._training import (
        OptimParamsBase as OptimParamsBase,
    )
    from tinkex.types._training import (
        OptimStepRequest as OptimStepRequest,
    )
    from tinkex.types._training import (
        OptimStepResponse as OptimStepResponse,
    )
    from tinkex.types._training import (
        RequestID as RequestID,
    )
    from tinkex.types._training import (
        SamplingClientKind as SamplingClientKind,
    )
    from tinkex.types._training import (
        SaveWeightsExternalRequest as SaveWeightsExternalRequest,
    )
    from tinkex.types._training import (
        SaveWeightsExternalResponse as SaveWeightsExternalResponse,
    )
    from tinkex.types._training import (
        SaveWeightsExternalResponseInternal as SaveWeightsExternalResponseInternal,
    )
    from tinkex.types._training import (
        SaveWeightsForSamplerRequest as SaveWeightsForSamplerRequest,
    )
    from tinkex.types._training import (
        SaveWeightsForSamplerResponse as SaveWeightsForSamplerResponse,
    )
    from tinkex.types._training import (
        SaveWeightsForSamplerResponseInternal as SaveWeightsForSamplerResponseInternal,
    )
    from tinkex.types._training import (
        SaveWeightsRequest as SaveWeightsRequest,
    )
    from tinkex.types._training import (
        SaveWeightsResponse as SaveWeightsResponse,
    )
    from tinkex.types._training import (
        UnloadModelRequest as UnloadModelRequest,
    )
    from tinkex.types._training import (
        UnloadModelResponse as UnloadModelResponse,
    )

# name -> submodule defining it
_MODULES: dict[str, str] = {
    "ValidationError": "._model",
    "TensorData": "._tensor",
    "TensorDtype": "._tensor",
    "EncodedTextChunk": "._model_input",
    "ImageChunk": "._model_input",
    "ImageAssetPointerChunk": "._model_input",
    "DmelChunk": "._model_input",
    "ModelInputChunk": "._model_input",
    "ModelInput": "._model_input",
    "Datum": "._datum",
    "PromptProvenanceSpan": "._datum",
    "SampledProvenanceSpan": "._datum",
    "ProvenanceSpans": "._datum",
    "LossFnInputs": "._datum",
    "LossFnOutput": "._datum",
    "LossFnType": "._training",
    "ForwardBackwardInput": "._training",
    "ForwardBackwardRequest": "._training",
    "ForwardRequest": "._training",
    "ForwardBackwardOutput": "._training",
    "AdamParams": "._training",
    "OptimParamsBase": "._training",
    "DimuonParams": "._training",
    "OptimParams": "._training",
    "AdamOptimizerConfig": "._training",
    "DimuonOptimizerConfig": "._training",
    "OptimizerConfigBase": "._training",
    "OptimizerConfig": "._training",
    "LoraConfig": "._training",
    "OptimStepRequest": "._training",
    "OptimStepResponse": "._training",
    "CreateModelRequest": "._training",
    "CreateModelResponse": "._training",
    "GetInfoRequest": "._training",
    "GetInfoResponse": "._training",
    "ModelData": "._training",
    "SaveWeightsRequest": "._training",
    "SaveWeightsResponse": "._training",
    "SaveWeightsForSamplerRequest": "._training",
    "SaveWeightsForSamplerResponse": "._training",
    "SaveWeightsForSamplerResponseInternal": "._training",
    "SaveWeightsExternalRequest": "._training",
    "SaveWeightsExternalResponse": "._training",
    "SaveWeightsExternalResponseInternal": "._training",
    "LoadWeightsRequest": "._training",
    "LoadWeightsResponse": "._training",
    "UnloadModelRequest": "._training",
    "UnloadModelResponse": "._training",
    "SamplingClientKind": "._training",
    "CustomLossInputRank": "._training",
    "CustomLossInput": "._training",
    "CustomLossNode": "._training",
    "CustomLossNodeOp": "._training",
    "CustomLossGraph": "._training",
    "CreateCustomLossRequest": "._training",
    "CreateCustomLossResponse": "._training",
    "ModelID": "._training",
    "RequestID": "._training",
    "SamplingParams": "._sampling",
    "StopReason": "._sampling",
    "SampleRequest": "._sampling",
    "SampleResponse": "._sampling",
    "SampledSequence": "._sampling",
    "TopkLogprobs": "._sampling",
    "PromptAltTokens": "._sampling",
    "CreateSamplingSessionRequest": "._sampling",
    "CreateSamplingSessionResponse": "._sampling",
    "GetSamplerResponse": "._sampling",
    "JoinSamplingSessionRequest": "._sampling",
    "JoinSamplingSessionResponse": "._sampling",
    "CheckpointType": "._rest",
    "Checkpoint": "._rest",
    "ParsedCheckpointTinkerPath": "._rest",
    "Cursor": "._rest",
    "CheckpointsListResponse": "._rest",
    "TrainingRun": "._rest",
    "TrainingRunsResponse": "._rest",
    "WeightsInfoResponse": "._rest",
    "ExternalWeightsUrlsResponse": "._rest",
    "CopyWeightsRequest": "._rest",
    "CopyWeightsResponse": "._rest",
    "SupportedModel": "._rest",
    "GetServerCapabilitiesResponse": "._rest",
    "HealthResponse": "._rest",
    "WhoamiResponse": "._rest",
    "AuthTokenResponse": "._rest",
    "AuditLogEntry": "._rest",
    "AuditLogResponse": "._rest",
    "TrainingBillingEvent": "._rest",
    "SamplingPrefillBillingEvent": "._rest",
    "SamplingSampleBillingEvent": "._rest",
    "CheckpointBillingEvent": "._rest",
    "StorageBillingEvent": "._rest",
    "BillingEventInfo": "._rest",
    "BillingUsageEvent": "._rest",
    "BillingUsageSession": "._rest",
    "BillingUsageResponse": "._rest",
    "GetBillingUsageRequest": "._rest",
    "CurrentCheckpointStorageUsageItem": "._rest",
    "CurrentCheckpointStorageUsageResponse": "._rest",
    "GetCurrentCheckpointStorageUsageRequest": "._rest",
    "ClientConfigRequest": "._session",
    "ClientConfigResponse": "._session",
    "ClientDynamicConfigResponse": "._session",
    "CreateSessionRequest": "._session",
    "CreateSessionResponse": "._session",
    "SessionHeartbeatRequest": "._session",
    "SessionHeartbeatResponse": "._session",
    "GetSessionResponse": "._session",
    "ListSessionsResponse": "._session",
    "ClientSessionFinishReasonType": "._session",
    "ClientSessionFinishSuccess": "._session",
    "ClientSessionFinishErrored": "._session",
    "ClientSessionFinishInterrupted": "._session",
    "ClientSessionFinishReason": "._session",
    "ClientSessionFinished": "._session",
    "SessionFailedRequestReason": "._session",
    "SessionFailedTrainingRunReason": "._session",
    "SessionFailedSamplingSessionReason": "._session",
    "SessionFailedReason": "._session",
    "SessionFailed": "._session",
    "SessionCancelled": "._session",
    "SessionActive": "._session",
    "SessionStatus": "._session",
    "ActiveSessionStatusQuery": "._session",
    "CancelledSessionStatusQuery": "._session",
    "FailedSessionStatusQuery": "._session",
    "ClientFinishedSessionStatusQuery": "._session",
    "SessionStatusQuery": "._session",
    "OwnSearchOwner": "._session",
    "AccessibleSearchOwner": "._session",
    "UserSearchOwner": "._session",
    "SearchOwner": "._session",
    "SessionSearchCursor": "._session",
    "SessionSearchRequest": "._session",
    "SessionSummary": "._session",
    "SessionSearchResponse": "._session",
    "UntypedAPIFuture": "._session",
    "FutureRetrieveRequest": "._session",
    "TryAgainResponse": "._session",
    "RequestFailedResponse": "._session",
    "FutureRetrieveResponse": "._session",
    "SamplingSessionFuturesTarget": "._session",
    "FuturesRetrieveRequest": "._session",
    "FutureFinished": "._session",
    "FutureFailed": "._session",
    "FutureCompletion": "._session",
    "FuturesRetrieveResponse": "._session",
    "RequestErrorCategory": "._session",
    "EventType": "._session",
    "Severity": "._session",
    "GenericEvent": "._session",
    "SessionStartEvent": "._session",
    "SessionEndEvent": "._session",
    "UnhandledExceptionEvent": "._session",
    "TelemetryEvent": "._session",
    "TelemetryBatch": "._session",
    "TelemetrySendRequest": "._session",
    "TelemetryResponse": "._session",
}

__all__ = sorted(_MODULES)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _MODULES)
