"""Session, client-config, future-polling and telemetry wire types."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

import attrs

from tinkex._exceptions import RequestErrorCategory
from tinkex.types._model import Model, StrictModel, constraints

__all__ = [
    "ClientConfigRequest",
    "ClientConfigResponse",
    "ClientDynamicConfigResponse",
    "CreateSessionRequest",
    "CreateSessionResponse",
    "SessionHeartbeatRequest",
    "SessionHeartbeatResponse",
    "GetSessionResponse",
    "ListSessionsResponse",
    "ClientSessionFinishReasonType",
    "ClientSessionFinishSuccess",
    "ClientSessionFinishErrored",
    "ClientSessionFinishInterrupted",
    "ClientSessionFinishReason",
    "ClientSessionFinished",
    "SessionFailedRequestReason",
    "SessionFailedTrainingRunReason",
    "SessionFailedSamplingSessionReason",
    "SessionFailedReason",
    "SessionFailed",
    "SessionCancelled",
    "SessionActive",
    "SessionStatus",
    "ActiveSessionStatusQuery",
    "CancelledSessionStatusQuery",
    "FailedSessionStatusQuery",
    "ClientFinishedSessionStatusQuery",
    "SessionStatusQuery",
    "OwnSearchOwner",
    "AccessibleSearchOwner",
    "UserSearchOwner",
    "SearchOwner",
    "SessionSearchCursor",
    "SessionSearchRequest",
    "SessionSummary",
    "SessionSearchResponse",
    "UntypedAPIFuture",
    "FutureRetrieveRequest",
    "TryAgainResponse",
    "RequestFailedResponse",
    "FutureRetrieveResponse",
    "SamplingSessionFuturesTarget",
    "FuturesRetrieveRequest",
    "FutureFinished",
    "FutureFailed",
    "FutureCompletion",
    "FuturesRetrieveResponse",
    "RequestErrorCategory",
    "EventType",
    "Severity",
    "GenericEvent",
    "SessionStartEvent",
    "SessionEndEvent",
    "UnhandledExceptionEvent",
    "TelemetryEvent",
    "TelemetryBatch",
    "TelemetrySendRequest",
    "TelemetryResponse",
]


@attrs.frozen(kw_only=True, slots=False)
class ClientConfigRequest(StrictModel):
    """Body of ``POST /api/v1/client/config`` and ``/client/dynamic_config``."""

    sdk_version: str


@attrs.frozen(kw_only=True, slots=False)
class ClientConfigResponse(Model):
    """Server-chosen client settings (every field optional, defaults as the official SDK)."""

    pjwt_auth_enabled: bool = False
    credential_default_source: str = "api_key"
    sample_dispatch_bytes_semaphore_size: int = 10_485_760
    inflight_response_bytes_semaphore_size: int = 52_428_800
    parallel_fwdbwd_chunks: bool = True
    proto_compress_fwdbwd: bool = False
    fwdbwd_max_chunk_len: int = 1024
    fwdbwd_max_chunk_bytes_count: int = 5_000_000
    fwdbwd_dispatch_bytes_semaphore_size: int = 50_000_000
    # int | float, not tinker's int: a pause allowance may be fractional (tests use 0.05 s)
    billing_exception_max_pause_duration_sec: int | float = 3600
    sample_no_retries: bool = False
    sample_enable_stuck_detection: bool = True
    sample_max_concurrent_requests: int = 2000
    use_pyqwest_transport: bool = True
    sample_use_retrieve_futures: bool = False
    custom_loss_server_side: bool = False
    sample_join_sampling_session: bool = False


@attrs.frozen(kw_only=True, slots=False)
class ClientDynamicConfigResponse(Model):
    """Settings the server may change while a client runs."""

    refresh_interval_sec: int = 300
    sample_cancel_enabled: bool = False
    sample_cancel_max_batch_size: int = 64


@attrs.frozen(kw_only=True, slots=False)
class CreateSessionRequest(StrictModel):
    """Body of ``POST /api/v1/create_session``."""

    tags: list[str]
    user_metadata: dict[str, Any] | None
    sdk_version: str
    project_id: str | None = None
    display_name: str | None = None
    type: Literal["create_session"] = "create_session"


@attrs.frozen(kw_only=True, slots=False)
class CreateSessionResponse(Model):
    """The new session id and optional server messages."""

    type: Literal["create_session"] = "create_session"
    info_message: str | None = None
    warning_message: str | None = None
    error_message: str | None = None
    session_id: str


@attrs.frozen(kw_only=True, slots=False)
class SessionHeartbeatRequest(StrictModel):
    """Body of ``POST /api/v1/session_heartbeat``."""

    session_id: str
    type: Literal["session_heartbeat"] = "session_heartbeat"


@attrs.frozen(kw_only=True, slots=False)
class SessionHeartbeatResponse(Model):
    """Heartbeat acknowledgement."""

    type: Literal["session_heartbeat"] = "session_heartbeat"


@attrs.frozen(kw_only=True, slots=False)
class GetSessionResponse(Model):
    """Training runs and samplers of a session."""

    training_run_ids: list[str]
    sampler_ids: list[str]
    user_metadata: dict[str, str] | None = None
    display_name: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class ListSessionsResponse(Model):
    """Session ids."""

    sessions: list[str]


ClientSessionFinishReasonType = Literal["success", "errored", "interrupted"]


@attrs.frozen(kw_only=True, slots=False)
class ClientSessionFinishSuccess(Model):
    """The client finished the session normally."""

    type: Literal["success"] = "success"


@attrs.frozen(kw_only=True, slots=False)
class ClientSessionFinishErrored(Model):
    """The client finished the session after an error."""

    type: Literal["errored"] = "errored"


@attrs.frozen(kw_only=True, slots=False)
class ClientSessionFinishInterrupted(Model):
    """The client was interrupted (e.g. Ctrl-C)."""

    type: Literal["interrupted"] = "interrupted"


ClientSessionFinishReason = (
    ClientSessionFinishSuccess | ClientSessionFinishErrored | ClientSessionFinishInterrupted
)


@attrs.frozen(kw_only=True, slots=False)
class ClientSessionFinished(Model):
    """Session status: finished by the client."""

    type: Literal["client_finished"] = "client_finished"
    reason: ClientSessionFinishReason
    detail: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class SessionFailedRequestReason(Model):
    """A request made the session fail."""

    type: Literal["request"] = "request"
    request_id: str
    request_type: str


@attrs.frozen(kw_only=True, slots=False)
class SessionFailedTrainingRunReason(Model):
    """A training run made the session fail."""

    type: Literal["training_run"] = "training_run"
    training_run_id: str


@attrs.frozen(kw_only=True, slots=False)
class SessionFailedSamplingSessionReason(Model):
    """A sampling session made the session fail."""

    type: Literal["sampling_session"] = "sampling_session"
    sampling_session_id: str


SessionFailedReason = (
    SessionFailedRequestReason | SessionFailedTrainingRunReason | SessionFailedSamplingSessionReason
)


@attrs.frozen(kw_only=True, slots=False)
class SessionFailed(Model):
    """Session status: failed."""

    type: Literal["failed"] = "failed"
    category: Literal["user", "internal"]
    reason: SessionFailedReason
    message: str


@attrs.frozen(kw_only=True, slots=False)
class SessionCancelled(Model):
    """Session status: cancelled."""

    type: Literal["cancelled"] = "cancelled"
    detail: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class SessionActive(Model):
    """Session status: active."""

    type: Literal["active"] = "active"


SessionStatus = SessionFailed | SessionCancelled | ClientSessionFinished | SessionActive


@attrs.frozen(kw_only=True, slots=False)
class ActiveSessionStatusQuery(StrictModel):
    """Search filter: active sessions."""

    type: Literal["active"] = "active"


@attrs.frozen(kw_only=True, slots=False)
class CancelledSessionStatusQuery(StrictModel):
    """Search filter: cancelled sessions."""

    type: Literal["cancelled"] = "cancelled"


@attrs.frozen(kw_only=True, slots=False)
class FailedSessionStatusQuery(StrictModel):
    """Search filter: failed sessions."""

    type: Literal["failed"] = "failed"


@attrs.frozen(kw_only=True, slots=False)
class ClientFinishedSessionStatusQuery(StrictModel):
    """Search filter: sessions finished by the client (optionally only some reasons)."""

    type: Literal["client_finished"] = "client_finished"
    reasons: list[ClientSessionFinishReasonType] | None = attrs.field(
        default=None, metadata=constraints(min_length=1)
    )


SessionStatusQuery = (
    ActiveSessionStatusQuery
    | CancelledSessionStatusQuery
    | FailedSessionStatusQuery
    | ClientFinishedSessionStatusQuery
)


@attrs.frozen(kw_only=True, slots=False)
class OwnSearchOwner(StrictModel):
    """Search sessions the caller owns."""

    type: Literal["own"] = "own"


@attrs.frozen(kw_only=True, slots=False)
class AccessibleSearchOwner(StrictModel):
    """Search sessions the caller can access."""

    type: Literal["accessible"] = "accessible"


@attrs.frozen(kw_only=True, slots=False)
class UserSearchOwner(StrictModel):
    """Search sessions of given users."""

    type: Literal["user"] = "user"
    owner_urns: list[str] = attrs.field(metadata=constraints(min_length=1, max_length=10))


SearchOwner = OwnSearchOwner | AccessibleSearchOwner | UserSearchOwner


@attrs.frozen(kw_only=True, slots=False)
class SessionSearchCursor(Model):
    """Keyset cursor of session search."""

    last_created_at: dt.datetime = attrs.field(metadata=constraints(aware=True))
    last_session_id: str


@attrs.frozen(kw_only=True, slots=False)
class SessionSearchRequest(StrictModel):
    """Body of ``POST /api/v1/sessions/search``."""

    session_id: str | None = None
    project_ids: list[str] | None = None
    user_metadata: dict[str, str] = attrs.field(factory=dict)
    display_name: str | None = attrs.field(default=None, metadata=constraints(min_length=1))
    owner: SearchOwner = attrs.field(factory=OwnSearchOwner)
    statuses: list[SessionStatusQuery] | None = attrs.field(
        default=None, metadata=constraints(min_length=1)
    )
    limit: int = attrs.field(default=50, metadata=constraints(ge=1, le=200))
    cursor: SessionSearchCursor | None = None


@attrs.frozen(kw_only=True, slots=False)
class SessionSummary(Model):
    """One session found by a search."""

    session_id: str
    created_at: dt.datetime
    owner: str
    project_id: str
    status: SessionStatus | None = None
    checkpoints_count: int
    display_name: str | None = None
    user_metadata: dict[str, str] | None = None
    checkpoint_storage_bytes: int | None = None


@attrs.frozen(kw_only=True, slots=False)
class SessionSearchResponse(Model):
    """A page of sessions; ``next_cursor`` None at the end."""

    sessions: list[SessionSummary]
    next_cursor: SessionSearchCursor | None = None


# -- futures -------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True, slots=False)
class UntypedAPIFuture(Model):
    """Handle returned by future endpoints."""

    request_id: str
    model_id: str | None = None
    sample_sequence_ids: list[str] | None = None


@attrs.frozen(kw_only=True, slots=False)
class FutureRetrieveRequest(StrictModel):
    """Body of ``POST /api/v1/retrieve_future``."""

    request_id: str
    allow_metadata_only: bool = False


@attrs.frozen(kw_only=True, slots=False)
class TryAgainResponse(Model):
    """The future is still pending."""

    type: Literal["try_again"] = "try_again"
    request_id: str
    queue_state: str = "active"
    queue_state_reason: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class RequestFailedResponse(Model):
    """The future failed."""

    error: str
    category: RequestErrorCategory


FutureRetrieveResponse = TryAgainResponse | RequestFailedResponse | dict[str, Any]


@attrs.frozen(kw_only=True, slots=False)
class SamplingSessionFuturesTarget(StrictModel):
    """Whose completions ``retrieve_futures`` reports."""

    type: Literal["sampling_session"] = "sampling_session"
    sampling_session_id: str
    cloned_sampler_id: int = 0


@attrs.frozen(kw_only=True, slots=False)
class FuturesRetrieveRequest(StrictModel):
    """Body of ``POST /api/v1/retrieve_futures``."""

    target: SamplingSessionFuturesTarget
    prev_cursor: int = 0
    timeout: float | None = None
    retrieved_request_ids: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True, slots=False)
class FutureFinished(Model):
    """A completed future."""

    state: Literal["finished"] = "finished"
    request_id: str
    response_payload_uncompressed_size: int | None = None


@attrs.frozen(kw_only=True, slots=False)
class FutureFailed(Model):
    """A failed future."""

    state: Literal["failed"] = "failed"
    request_id: str


FutureCompletion = FutureFinished | FutureFailed


@attrs.frozen(kw_only=True, slots=False)
class FuturesRetrieveResponse(Model):
    """Completions since ``prev_cursor``."""

    completions: list[FutureCompletion]
    cursor: int


# -- telemetry -------------------------------------------------------------------------------------
EventType = Literal["SESSION_START", "SESSION_END", "UNHANDLED_EXCEPTION", "GENERIC_EVENT"]
Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@attrs.frozen(kw_only=True, slots=False)
class GenericEvent(Model):
    """A named event with arbitrary data."""

    event: EventType
    event_id: str
    event_name: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    event_data: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True, slots=False)
class SessionStartEvent(Model):
    """A session started."""

    event: EventType
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime


@attrs.frozen(kw_only=True, slots=False)
class SessionEndEvent(Model):
    """A session ended with a fatal error."""

    duration: str
    event: EventType
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime


@attrs.frozen(kw_only=True, slots=False)
class UnhandledExceptionEvent(Model):
    """An exception escaped the SDK."""

    error_message: str
    error_type: str
    event: EventType
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    traceback: str | None = None


TelemetryEvent = SessionStartEvent | SessionEndEvent | UnhandledExceptionEvent | GenericEvent


@attrs.frozen(kw_only=True, slots=False)
class TelemetryBatch(Model):
    """Events of one session."""

    events: list[TelemetryEvent]
    platform: str
    sdk_version: str
    session_id: str
    process_uuid: str


@attrs.frozen(kw_only=True, slots=False)
class TelemetrySendRequest(TelemetryBatch):
    """Body of ``POST /api/v1/telemetry``: a batch, with unknown arguments rejected."""

    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "forbid"}


@attrs.frozen(kw_only=True, slots=False)
class TelemetryResponse(Model):
    """Telemetry acknowledgement."""

    status: Literal["accepted"]
