"""Checkpoint, training-run, capability and account types used by RestClient/AdminClient."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

from tinkex.types._model import Model, StrictModel
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


@attrs.frozen(kw_only=True, slots=False)
class Checkpoint(Model):
    """A saved checkpoint of a training run."""

    checkpoint_id: str
    checkpoint_type: CheckpointType
    time: dt.datetime
    tinker_path: str
    size_bytes: int | None = None
    public: bool = False
    user_metadata: dict[str, str] | None = None
    expires_at: dt.datetime | None = None


@attrs.frozen(kw_only=True, slots=False)
class ParsedCheckpointTinkerPath(Model):
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


@attrs.frozen(kw_only=True, slots=False)
class Cursor(Model):
    """Offset pagination state."""

    offset: int
    limit: int
    total_count: int


@attrs.frozen(kw_only=True, slots=False)
class CheckpointsListResponse(Model):
    """A page of checkpoints."""

    checkpoints: list[Checkpoint]
    cursor: Cursor | None = None


@attrs.frozen(kw_only=True, slots=False)
class TrainingRun(Model):
    """A training run (one LoRA model) and its latest checkpoints."""

    training_run_id: str
    base_model: str
    model_owner: str
    is_lora: bool
    corrupted: bool = False
    lora_rank: int | None = None
    last_request_time: dt.datetime
    last_checkpoint: Checkpoint | None = None
    last_sampler_checkpoint: Checkpoint | None = None
    user_metadata: dict[str, str] | None = None


@attrs.frozen(kw_only=True, slots=False)
class TrainingRunsResponse(Model):
    """A page of training runs."""

    training_runs: list[TrainingRun]
    cursor: Cursor


@attrs.frozen(kw_only=True, slots=False)
class WeightsInfoResponse(Model):
    """Base model and LoRA settings behind a checkpoint."""

    base_model: str
    optimizer_config: OptimizerConfig = attrs.field(factory=AdamOptimizerConfig)
    is_lora: bool
    lora_rank: int | None = None
    train_unembed: bool | None = None
    train_mlp: bool | None = None
    train_attn: bool | None = None


@attrs.frozen(kw_only=True, slots=False)
class ExternalWeightsUrlsResponse(Model):
    """Signed download URLs (relative file path -> URL) of an external-weights export."""

    urls: dict[str, str]
    expires: dt.datetime


@attrs.frozen(kw_only=True, slots=False)
class CopyWeightsRequest(StrictModel):
    """Body of ``POST /api/v1/copy_weights``."""

    session_id: str | None = None
    model_seq_id: int | None = None
    destination_project_id: str | None = None
    source_path: str
    ttl_seconds: int | None = None
    weights_access_token: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class CopyWeightsResponse(Model):
    """The ``tinker://`` path of the copy."""

    tinker_path: str


@attrs.frozen(kw_only=True, slots=False)
class SupportedModel(Model):
    """One model the server can train and/or sample."""

    model_name: str | None = None
    max_context_length: int | None = None
    trainable: bool | None = None
    sampleable: bool | None = None


@attrs.frozen(kw_only=True, slots=False)
class GetServerCapabilitiesResponse(Model):
    """Models offered by the server."""

    supported_models: list[SupportedModel]


@attrs.frozen(kw_only=True, slots=False)
class HealthResponse(Model):
    """``GET /api/v1/healthz``."""

    status: Literal["ok"]


@attrs.frozen(kw_only=True, slots=False)
class WhoamiResponse(Model):
    """The authenticated principal."""

    user_urn: str
    org_urn: str
    email: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class AuthTokenResponse(Model):
    """A short-lived JWT."""

    jwt: str


@attrs.frozen(kw_only=True, slots=False)
class AuditLogEntry(Model):
    """One audit-log event."""

    timestamp: dt.datetime
    event: str
    event_details: dict[str, Any] = attrs.field(factory=dict)
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class AuditLogResponse(Model):
    """Audit-log entries."""

    entries: list[AuditLogEntry]


@attrs.frozen(kw_only=True, slots=False)
class TrainingBillingEvent(Model):
    """Billing detail: training tokens."""

    type: Literal["training"] = "training"
    token_count: int


@attrs.frozen(kw_only=True, slots=False)
class SamplingPrefillBillingEvent(Model):
    """Billing detail: prefill tokens."""

    type: Literal["sampling_prefill"] = "sampling_prefill"
    cached: bool
    token_count: int


@attrs.frozen(kw_only=True, slots=False)
class SamplingSampleBillingEvent(Model):
    """Billing detail: sampled tokens."""

    type: Literal["sampling_sample"] = "sampling_sample"
    token_count: int


@attrs.frozen(kw_only=True, slots=False)
class CheckpointBillingEvent(Model):
    """Billing detail: checkpoints."""

    type: Literal["checkpoint"] = "checkpoint"
    count: int


@attrs.frozen(kw_only=True, slots=False)
class StorageBillingEvent(Model):
    """Billing detail: storage."""

    type: Literal["storage"] = "storage"
    free: bool = False
    gigabyte_hours: float


BillingEventInfo = (
    TrainingBillingEvent
    | SamplingPrefillBillingEvent
    | SamplingSampleBillingEvent
    | CheckpointBillingEvent
    | StorageBillingEvent
)


@attrs.frozen(kw_only=True, slots=False)
class BillingUsageEvent(Model):
    """Usage aggregated over one time bucket."""

    bucket_start: dt.datetime
    bucket_end: dt.datetime
    base_model: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    session_id: str | None = None
    project_id: str | None = None
    estimated_cost_usd: float | None = None
    effective_rate_usd_per_million_tokens: float | None = None
    effective_rate_usd_per_gigabyte_month: float | None = None
    event_info: BillingEventInfo


@attrs.frozen(kw_only=True, slots=False)
class BillingUsageSession(Model):
    """Session details referenced by usage events."""

    user_metadata: dict[str, str] | None = None


@attrs.frozen(kw_only=True, slots=False)
class BillingUsageResponse(Model):
    """Usage events in a time window."""

    data: list[BillingUsageEvent]
    sessions: dict[str, BillingUsageSession] = attrs.field(factory=dict)
    cost_data_through: dt.datetime | None = None


@attrs.frozen(kw_only=True, slots=False)
class GetBillingUsageRequest(StrictModel):
    """Query of ``GET /api/v1/billing/usage/events``."""

    starting_on: dt.datetime
    ending_before: dt.datetime


@attrs.frozen(kw_only=True, slots=False)
class CurrentCheckpointStorageUsageItem(Model):
    """Checkpoint storage of one project/user."""

    project_id: str | None = None
    org_user_urn: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    checkpoint_count: int
    size_bytes: int
    size_gigabytes: float
    estimated_monthly_cost_usd: float | None = None


@attrs.frozen(kw_only=True, slots=False)
class CurrentCheckpointStorageUsageResponse(Model):
    """Current checkpoint storage usage."""

    effective_rate_usd_per_gigabyte_month: float | None = None
    data: list[CurrentCheckpointStorageUsageItem]


@attrs.frozen(kw_only=True, slots=False)
class GetCurrentCheckpointStorageUsageRequest(StrictModel):
    """Query of ``GET /api/v1/billing/usage/checkpoints/current``."""

    project_id: str | None = None
