"""Checkpoint, training-run, capability and account types used by RestClient/AdminClient."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from tinkex.types._training import AdamOptimizerConfig, OptimizerConfig

__all__ = [
    "CheckpointType",
    "Checkpoint",
    "ParsedCheckpointTinkerPath",
    "Cursor",
    "CheckpointsListResponse",
    "TrainingRun",
    "TrainingRunsResponse",
    "WeightsInfoResponse",
    "ExternalWeightsUrlsResponse",
    "CopyWeightsRequest",
    "CopyWeightsResponse",
    "SupportedModel",
    "GetServerCapabilitiesResponse",
    "HealthResponse",
    "WhoamiResponse",
    "AuthTokenResponse",
    "AuditLogEntry",
    "AuditLogResponse",
    "TrainingBillingEvent",
    "SamplingPrefillBillingEvent",
    "SamplingSampleBillingEvent",
    "CheckpointBillingEvent",
    "StorageBillingEvent",
    "BillingEventInfo",
    "BillingUsageEvent",
    "BillingUsageSession",
    "BillingUsageResponse",
    "GetBillingUsageRequest",
    "CurrentCheckpointStorageUsageItem",
    "CurrentCheckpointStorageUsageResponse",
    "GetCurrentCheckpointStorageUsageRequest",
]

CheckpointType = Literal["training", "sampler", "external"]
_KIND_TO_TYPE: dict[str, CheckpointType] = {
    "weights": "training",
    "sampler_weights": "sampler",
    "external_weights": "external",
}


@attrs.frozen(kw_only=True)
class Checkpoint:
    """A saved checkpoint of a training run."""

    checkpoint_id: str
    checkpoint_type: CheckpointType
    time: dt.datetime
    tinker_path: str
    size_bytes: int | None = None
    public: bool = False
    user_metadata: dict[str, str] | None = None
    expires_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class ParsedCheckpointTinkerPath:
    """The parts of ``tinker://<training_run_id>/<kind>/<name>``."""

    tinker_path: str
    training_run_id: str
    checkpoint_type: CheckpointType
    checkpoint_id: str

    @classmethod
    def from_tinker_path(cls, tinker_path: str) -> ParsedCheckpointTinkerPath:
        """Parse a checkpoint path; ValueError names what is wrong.

        Example:
            >>> ParsedCheckpointTinkerPath.from_tinker_path("tinker://run:train:0/weights/s1").checkpoint_id
            'weights/s1'
        """
        if not isinstance(tinker_path, str) or not tinker_path.startswith("tinker://"):
            raise ValueError(f"checkpoint path must start with 'tinker://', got {tinker_path!r}")
        parts = tinker_path.removeprefix("tinker://").split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(
                "checkpoint path must look like tinker://<training_run_id>/<weights|"
                f"sampler_weights|external_weights>/<name>, got {tinker_path!r}"
            )
        run_id, kind, name = parts
        if kind not in _KIND_TO_TYPE:
            raise ValueError(
                f"checkpoint kind must be 'weights', 'sampler_weights' or 'external_weights', "
                f"got {kind!r} in {tinker_path!r}"
            )
        return cls(
            tinker_path=tinker_path,
            training_run_id=run_id,
            checkpoint_type=_KIND_TO_TYPE[kind],
            checkpoint_id=f"{kind}/{name}",
        )


@attrs.frozen(kw_only=True)
class Cursor:
    """Offset pagination state."""

    offset: int
    limit: int
    total_count: int


@attrs.frozen(kw_only=True)
class CheckpointsListResponse:
    """A page of checkpoints."""

    checkpoints: list[Checkpoint]
    cursor: Cursor | None = None


@attrs.frozen(kw_only=True)
class TrainingRun:
    """A training run (one LoRA model) and its latest checkpoints."""

    training_run_id: str
    base_model: str
    model_owner: str
    is_lora: bool
    last_request_time: dt.datetime
    corrupted: bool = False
    lora_rank: int | None = None
    last_checkpoint: Checkpoint | None = None
    last_sampler_checkpoint: Checkpoint | None = None
    user_metadata: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class TrainingRunsResponse:
    """A page of training runs."""

    training_runs: list[TrainingRun]
    cursor: Cursor


@attrs.frozen(kw_only=True)
class WeightsInfoResponse:
    """Base model and LoRA settings behind a checkpoint."""

    base_model: str
    is_lora: bool
    optimizer_config: OptimizerConfig = attrs.field(factory=AdamOptimizerConfig)
    lora_rank: int | None = None
    train_unembed: bool | None = None
    train_mlp: bool | None = None
    train_attn: bool | None = None


@attrs.frozen(kw_only=True)
class ExternalWeightsUrlsResponse:
    """Signed download URLs (relative file path -> URL) of an external-weights export."""

    urls: dict[str, str]
    expires: dt.datetime


@attrs.frozen(kw_only=True)
class CopyWeightsRequest:
    """Body of ``POST /api/v1/copy_weights``."""

    source_path: str
    destination_project_id: str | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    ttl_seconds: int | None = None
    weights_access_token: str | None = None


@attrs.frozen(kw_only=True)
class CopyWeightsResponse:
    """The ``tinker://`` path of the copy."""

    tinker_path: str


@attrs.frozen(kw_only=True)
class SupportedModel:
    """One model the server can train and/or sample."""

    model_name: str | None = None
    max_context_length: int | None = None
    trainable: bool | None = None
    sampleable: bool | None = None


@attrs.frozen(kw_only=True)
class GetServerCapabilitiesResponse:
    """Models offered by the server."""

    supported_models: list[SupportedModel]


@attrs.frozen(kw_only=True)
class HealthResponse:
    """``GET /api/v1/healthz``."""

    status: Literal["ok"]


@attrs.frozen(kw_only=True)
class WhoamiResponse:
    """The authenticated principal."""

    user_urn: str
    org_urn: str
    email: str | None = None


@attrs.frozen(kw_only=True)
class AuthTokenResponse:
    """A short-lived JWT."""

    jwt: str


@attrs.frozen(kw_only=True)
class AuditLogEntry:
    """One audit-log event."""

    timestamp: dt.datetime
    event: str
    event_details: dict[str, Any] = attrs.field(factory=dict)
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None


@attrs.frozen(kw_only=True)
class AuditLogResponse:
    """Audit-log entries."""

    entries: list[AuditLogEntry]


@attrs.frozen(kw_only=True)
class TrainingBillingEvent:
    """Billing detail: training tokens."""

    token_count: int
    type: Literal["training"] = "training"


@attrs.frozen(kw_only=True)
class SamplingPrefillBillingEvent:
    """Billing detail: prefill tokens."""

    token_count: int
    cached: bool
    type: Literal["sampling_prefill"] = "sampling_prefill"


@attrs.frozen(kw_only=True)
class SamplingSampleBillingEvent:
    """Billing detail: sampled tokens."""

    token_count: int
    type: Literal["sampling_sample"] = "sampling_sample"


@attrs.frozen(kw_only=True)
class CheckpointBillingEvent:
    """Billing detail: checkpoints."""

    count: int
    type: Literal["checkpoint"] = "checkpoint"


@attrs.frozen(kw_only=True)
class StorageBillingEvent:
    """Billing detail: storage."""

    gigabyte_hours: float
    free: bool = False
    type: Literal["storage"] = "storage"


BillingEventInfo = (
    TrainingBillingEvent
    | SamplingPrefillBillingEvent
    | SamplingSampleBillingEvent
    | CheckpointBillingEvent
    | StorageBillingEvent
)


@attrs.frozen(kw_only=True)
class BillingUsageEvent:
    """Usage aggregated over one time bucket."""

    bucket_start: dt.datetime
    bucket_end: dt.datetime
    event_info: BillingEventInfo
    base_model: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    session_id: str | None = None
    project_id: str | None = None
    estimated_cost_usd: float | None = None
    effective_rate_usd_per_million_tokens: float | None = None
    effective_rate_usd_per_gigabyte_month: float | None = None


@attrs.frozen(kw_only=True)
class BillingUsageSession:
    """Session details referenced by usage events."""

    user_metadata: dict[str, str] | None = None


@attrs.frozen(kw_only=True)
class BillingUsageResponse:
    """Usage events in a time window."""

    data: list[BillingUsageEvent]
    sessions: dict[str, BillingUsageSession] = attrs.field(factory=dict)
    cost_data_through: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class GetBillingUsageRequest:
    """Query of ``GET /api/v1/billing/usage/events``."""

    starting_on: dt.datetime
    ending_before: dt.datetime


@attrs.frozen(kw_only=True)
class CurrentCheckpointStorageUsageItem:
    """Checkpoint storage of one project/user."""

    project_id: str | None = None
    org_user_urn: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    checkpoint_count: int
    size_bytes: int
    size_gigabytes: float
    estimated_monthly_cost_usd: float | None = None


@attrs.frozen(kw_only=True)
class CurrentCheckpointStorageUsageResponse:
    """Current checkpoint storage usage."""

    data: list[CurrentCheckpointStorageUsageItem]
    effective_rate_usd_per_gigabyte_month: float | None = None


@attrs.frozen(kw_only=True)
class GetCurrentCheckpointStorageUsageRequest:
    """Query of ``GET /api/v1/billing/usage/checkpoints/current``."""

    project_id: str | None = None
