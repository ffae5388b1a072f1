"""Session, client-config, future-polling and telemetry wire types."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from tinkex._exceptions import RequestErrorCategory

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


@attrs.frozen(kw_only=True)
class ClientConfigRequest:
    """Body of ``POST /api/v1/client/config`` and ``/client/dynamic_config``."""

    sdk_version: str


@attrs.frozen(kw_only=True)
class ClientConfigResponse:
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
    billing_exception_max_pause_duration_sec: float = 3600.0
    sample_no_retries: bool = False
    sample_enable_stuck_detection: bool = True
    sample_max_concurrent_requests: int = 2000
    use_pyqwest_transport: bool = True
    sample_use_retrieve_futures: bool = False
    custom_loss_server_side: bool = False
    sample_join_sampling_session: bool = False


@attrs.frozen(kw_only=True)
class ClientDynamicConfigResponse:
    """Settings the server may change while a client runs."""

    refresh_interval_sec: float = 300.0
    sample_cancel_enabled: bool = False
    sample_cancel_max_batch_size: int = 64


@attrs.frozen(kw_only=True)
class CreateSessionRequest:
    """Body of ``POST /api/v1/create_session``."""

    tags: list[str]
    user_metadata: dict[str, str]
    sdk_version: str
    project_id: str | None = None
    display_name: str | None = None
    type: Literal["create_session"] = "create_session"


@attrs.frozen(kw_only=True)
class CreateSessionResponse:
    """The new session id and optional server messages."""

    session_id: str
    type: str | None = "create_session"
    info_message: str | None = None
    warning_message: str | None = None
    error_message: str | None = None


@attrs.frozen(kw_only=True)
class SessionHeartbeatRequest:
    """Body of ``POST /api/v1/session_heartbeat``."""

    session_id: str
    type: Literal["session_heartbeat"] = "session_heartbeat"


@attrs.frozen(kw_only=True)
class SessionHeartbeatResponse:
    """Heartbeat acknowledgement."""

    type: str | None = "session_heartbeat"


@attrs.frozen(kw_only=True)
class GetSessionResponse:
    """Training runs and samplers of a session."""

    training_run_ids: list[str]
    sampler_ids: list[str]
    user_metadata: dict[str, str] | None = None
    display_name: str | None = None


@attrs.frozen(kw_only=True)
class ListSessionsResponse:
    """Session ids."""

    sessions: list[str]


ClientSessionFinishReasonType = Literal["success", "errored", "interrupted"]


@attrs.frozen(kw_only=True)
class ClientSessionFinishSuccess:
    """The client finished the session normally."""

    type: Literal["success"] = "success"


@attrs.frozen(kw_only=True)
class ClientSessionFinishErrored:
    """The client finished the session after an error."""

    type: Literal["errored"] = "errored"


@attrs.frozen(kw_only=True)
class ClientSessionFinishInterrupted:
    """The client was interrupted (e.g. Ctrl-C)."""

    type: Literal["interrupted"] = "interrupted"


ClientSessionFinishReason = (
    ClientSessionFinishSuccess | ClientSessionFinishErrored | ClientSessionFinishInterrupted
)


@attrs.frozen(kw_only=True)
class ClientSessionFinished:
    """Session status: finished by the client."""

    reason: ClientSessionFinishReason
    detail: str | None = None
    type: Literal["client_finished"] = "client_finished"


@attrs.frozen(kw_only=True)
class SessionFailedRequestReason:
    """A request made the session fail."""

    request_id: str
    request_type: str
    type: Literal["request"] = "request"


@attrs.frozen(kw_only=True)
class SessionFailedTrainingRunReason:
    """A training run made the session fail."""

    training_run_id: str
    type: Literal["training_run"] = "training_run"


@attrs.frozen(kw_only=True)
class SessionFailedSamplingSessionReason:
    """A sampling session made the session fail."""

    sampling_session_id: str
    type: Literal["sampling_session"] = "sampling_session"


SessionFailedReason = (
    SessionFailedRequestReason | SessionFailedTrainingRunReason | SessionFailedSamplingSessionReason
)


@attrs.frozen(kw_only=True)
class SessionFailed:
    """Session status: failed."""

    category: Literal["user", "internal"]
    reason: SessionFailedReason
    message: str
    type: Literal["failed"] = "failed"


@attrs.frozen(kw_only=True)
class SessionCancelled:
    """Session status: cancelled."""

    detail: str | None = None
    type: Literal["cancelled"] = "cancelled"


@attrs.frozen(kw_only=True)
class SessionActive:
    """Session status: active."""

    type: Literal["active"] = "active"


SessionStatus = ClientSessionFinished | SessionFailed | SessionCancelled | SessionActive


@attrs.frozen(kw_only=True)
class ActiveSessionStatusQuery:
    """Search filter: active sessions."""

    type: Literal["active"] = "active"


@attrs.frozen(kw_only=True)
class CancelledSessionStatusQuery:
    """Search filter: cancelled sessions."""

    type: Literal["cancelled"] = "cancelled"


@attrs.frozen(kw_only=True)
class FailedSessionStatusQuery:
    """Search filter: failed sessions."""

    type: Literal["failed"] = "failed"


@attrs.frozen(kw_only=True)
class ClientFinishedSessionStatusQuery:
    """Search filter: sessions finished by the client (optionally only some reasons)."""

    reasons: list[ClientSessionFinishReasonType] | None = None
    type: Literal["client_finished"] = "client_finished"


SessionStatusQuery = (
    ActiveSessionStatusQuery
    | CancelledSessionStatusQuery
    | FailedSessionStatusQuery
    | ClientFinishedSessionStatusQuery
)


@attrs.frozen(kw_only=True)
class OwnSearchOwner:
    """Search sessions the caller owns."""

    type: Literal["own"] = "own"


@attrs.frozen(kw_only=True)
class AccessibleSearchOwner:
    """Search sessions the caller can access."""

    type: Literal["accessible"] = "accessible"


def _owner_urns(inst: object, attr: Any, value: list[str]) -> None:
    if not 1 <= len(value) <= 10:
        raise ValueError(f"UserSearchOwner.owner_urns needs 1..10 entries, got {len(value)}")


@attrs.frozen(kw_only=True)
class UserSearchOwner:
    """Search sessions of given users."""

    owner_urns: list[str] = attrs.field(validator=_owner_urns)
    type: Literal["user"] = "user"


SearchOwner = OwnSearchOwner | AccessibleSearchOwner | UserSearchOwner


@attrs.frozen(kw_only=True)
class SessionSearchCursor:
    """Keyset cursor of session search."""

    last_created_at: dt.datetime
    last_session_id: str


def _limit(inst: object, attr: Any, value: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= 200:
        raise ValueError(f"SessionSearchRequest.limit must be in 1..200, got {value!r}")


def _display_name(inst: object, attr: Any, value: str | None) -> None:
    if value is not None and not value:
        raise ValueError("SessionSearchRequest.display_name must not be empty")


@attrs.frozen(kw_only=True)
class SessionSearchRequest:
    """Body of ``POST /api/v1/sessions/search``."""

    session_id: str | None = None
    project_ids: list[str] | None = None
    user_metadata: dict[str, str] = attrs.field(factory=dict)
    display_name: str | None = attrs.field(default=None, validator=_display_name)
    owner: SearchOwner = attrs.field(factory=OwnSearchOwner)
    statuses: list[SessionStatusQuery] | None = None
    limit: int = attrs.field(default=50, validator=_limit)
    cursor: SessionSearchCursor | None = None


@attrs.frozen(kw_only=True)
class SessionSummary:
    """One session found by a search."""

    session_id: str
    created_at: dt.datetime
    owner: str
    project_id: str
    checkpoints_count: int
    status: SessionStatus | None = None
    display_name: str | None = None
    user_metadata: dict[str, str] | None = None
    checkpoint_storage_bytes: int | None = None


@attrs.frozen(kw_only=True)
class SessionSearchResponse:
    """A page of sessions; ``next_cursor`` None at the end."""

    sessions: list[SessionSummary]
    next_cursor: SessionSearchCursor | None = None


# -- futures -------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class UntypedAPIFuture:
    """Handle returned by future endpoints."""

    request_id: str
    model_id: str | None = None
    sample_sequence_ids: list[str] | None = None


@attrs.frozen(kw_only=True)
class FutureRetrieveRequest:
    """Body of ``POST /api/v1/retrieve_future``."""

    request_id: str
    allow_metadata_only: bool = False


@attrs.frozen(kw_only=True)
class TryAgainResponse:
    """The future is still pending."""

    request_id: str
    queue_state: str = "active"
    queue_state_reason: str | None = None
    type: Literal["try_again"] = "try_again"


@attrs.frozen(kw_only=True)
class RequestFailedResponse:
    """The future failed."""

    error: str
    category: RequestErrorCategory


FutureRetrieveResponse = TryAgainResponse | RequestFailedResponse | dict[str, Any]


@attrs.frozen(kw_only=True)
class SamplingSessionFuturesTarget:
    """Whose completions ``retrieve_futures`` reports."""

    sampling_session_id: str
    cloned_sampler_id: int = 0
    type: Literal["sampling_session"] = "sampling_session"


@attrs.frozen(kw_only=True)
class FuturesRetrieveRequest:
    """Body of ``POST /api/v1/retrieve_futures``."""

    target: SamplingSessionFuturesTarget
    prev_cursor: int = 0
    timeout: float | None = None
    retrieved_request_ids: list[str] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class FutureFinished:
    """A completed future."""

    request_id: str
    response_payload_uncompressed_size: int | None = None
    state: Literal["finished"] = "finished"


@attrs.frozen(kw_only=True)
class FutureFailed:
    """A failed future."""

    request_id: str
    state: Literal["failed"] = "failed"


FutureCompletion = FutureFinished | FutureFailed


@attrs.frozen(kw_only=True)
class FuturesRetrieveResponse:
    """Completions since ``prev_cursor``."""

    completions: list[FutureCompletion]
    cursor: int


# -- telemetry -------------------------------------------------------------------------------------
EventType = Literal["SESSION_START", "SESSION_END", "UNHANDLED_EXCEPTION", "GENERIC_EVENT"]
Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


@attrs.frozen(kw_only=True)
class GenericEvent:
    """A named event with arbitrary data."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    event_name: str
    event_data: dict[str, Any] = attrs.field(factory=dict)
    event: Literal["GENERIC_EVENT"] = "GENERIC_EVENT"


@attrs.frozen(kw_only=True)
class SessionStartEvent:
    """A session started."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    event: Literal["SESSION_START"]


@attrs.frozen(kw_only=True)
class SessionEndEvent:
    """A session ended with a fatal error."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    duration: str
    event: Literal["SESSION_END"]


@attrs.frozen(kw_only=True)
class UnhandledExceptionEvent:
    """An exception escaped the SDK."""

    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    error_type: str
    error_message: str
    traceback: str | None = None
    event: Literal["UNHANDLED_EXCEPTION"]


TelemetryEvent = GenericEvent | SessionStartEvent | SessionEndEvent | UnhandledExceptionEvent


@attrs.frozen(kw_only=True)
class TelemetryBatch:
    """Events of one session."""

    events: list[TelemetryEvent]
    platform: str
    sdk_version: str
    session_id: str
    process_uuid: str


TelemetrySendRequest = TelemetryBatch


@attrs.frozen(kw_only=True)
class TelemetryResponse:
    """Telemetry acknowledgement."""

    status: Literal["accepted"]
