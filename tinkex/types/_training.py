"""Training types: losses, forward/backward, optimizers, LoRA, model creation, checkpoints I/O."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from tinkex.types._datum import Datum
from tinkex.types._tensor import TensorData

__all__ = [
    "LossFnType",
    "ForwardBackwardInput",
    "ForwardBackwardRequest",
    "ForwardRequest",
    "ForwardBackwardOutput",
    "AdamParams",
    "OptimParamsBase",
    "DimuonParams",
    "OptimParams",
    "AdamOptimizerConfig",
    "DimuonOptimizerConfig",
    "OptimizerConfigBase",
    "OptimizerConfig",
    "LoraConfig",
    "OptimStepRequest",
    "OptimStepResponse",
    "CreateModelRequest",
    "CreateModelResponse",
    "GetInfoRequest",
    "GetInfoResponse",
    "ModelData",
    "SaveWeightsRequest",
    "SaveWeightsResponse",
    "SaveWeightsForSamplerRequest",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsForSamplerResponseInternal",
    "SaveWeightsExternalRequest",
    "SaveWeightsExternalResponse",
    "SaveWeightsExternalResponseInternal",
    "LoadWeightsRequest",
    "LoadWeightsResponse",
    "UnloadModelRequest",
    "UnloadModelResponse",
    "SamplingClientKind",
    "CustomLossInputRank",
    "CustomLossInput",
    "CustomLossNode",
    "CustomLossNodeOp",
    "CustomLossGraph",
    "CreateCustomLossRequest",
    "CreateCustomLossResponse",
    "ModelID",
    "RequestID",
]

ModelID = str
RequestID = str
LossFnType = Literal[
    "cross_entropy",
    "importance_sampling",
    "ppo",
    "cispo",
    "dro",
    "gspo",
    "stable_reinforce",
    "custom",
]
LOSS_FNS: tuple[str, ...] = (
    "cross_entropy",
    "importance_sampling",
    "ppo",
    "cispo",
    "dro",
    "gspo",
    "stable_reinforce",
    "custom",
)
SamplingClientKind = Literal["snapshot", "inflight"]
CustomLossInputRank = Literal[0, 1, 2]
#: The ``op`` values of a :class:`CustomLossNode` (the node kinds of a traced graph).
CustomLossNodeOp = Literal[
    "placeholder", "get_attr", "call_function", "call_method", "call_module", "output"
]

_CONSOLE = "https://tinker.thinkingmachines.ai"


def _finite(lo: float | None = None, hi: float | None = None, *, hi_open: bool = False) -> Any:
    def check(inst: object, attr: Any, value: float) -> None:
        name = f"{type(inst).__name__}.{attr.name}"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if lo is not None and value < lo:
            raise ValueError(f"{name} must be >= {lo}, got {value}")
        if hi is not None and (value >= hi if hi_open else value > hi):
            raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value}")

    return check


def _loss_fn(inst: object, attr: Any, value: str) -> None:
    if not isinstance(value, str) or value not in LOSS_FNS:
        raise ValueError(f"{type(inst).__name__}.loss_fn must be one of {LOSS_FNS}, got {value!r}")


def _loss_config(value: Mapping[str, float | str] | None) -> dict[str, float | str] | None:
    if value is None:
        return None
    out: dict[str, float | str] = {}
    for key, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise TypeError(
                f"ForwardBackwardInput.loss_fn_config[{key!r}] must be a float or str, got {v!r}"
            )
        out[str(key)] = v if isinstance(v, str) else float(v)
    return out


def _data(value: Any) -> list[Datum]:
    items = list(value)
    for i, datum in enumerate(items):
        if not isinstance(datum, Datum):
            raise TypeError(
                f"ForwardBackwardInput.data[{i}] must be a Datum, got {type(datum).__name__}"
            )
    return items


def _check_model_id(cls_name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{cls_name}.model_id must be a string, got {value!r:.60}")


def _check_seq_id(cls_name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"{cls_name}.seq_id must be an int or None, got {value!r:.60}")


@dataclasses.dataclass(frozen=True)
class ForwardBackwardInput:
    """Data, loss function and loss configuration of one forward(/backward) pass."""

    data: list[Datum]
    loss_fn: LossFnType
    loss_fn_config: dict[str, float | str] | None = None

    def __post_init__(self) -> None:
        # Frozen: the checked copies replace the given values once, here.
        object.__setattr__(self, "data", _data(self.data))
        _loss_fn(self, "loss_fn", self.loss_fn)
        object.__setattr__(self, "loss_fn_config", _loss_config(self.loss_fn_config))


def _check_input(cls_name: str, field: str, value: Any) -> None:
    if not isinstance(value, ForwardBackwardInput):
        raise TypeError(
            f"{cls_name}.{field} must be a ForwardBackwardInput, got {type(value).__name__}"
        )


@dataclasses.dataclass(frozen=True)
class ForwardBackwardRequest:
    """Body of ``POST /api/v1/forward_backward``."""

    forward_backward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None

    def __post_init__(self) -> None:
        name = "ForwardBackwardRequest"
        _check_input(name, "forward_backward_input", self.forward_backward_input)
        _check_model_id(name, self.model_id)
        _check_seq_id(name, self.seq_id)


@dataclasses.dataclass(frozen=True)
class ForwardRequest:
    """Body of a forward-only pass (legacy ``POST /api/v1/forward``)."""

    forward_input: ForwardBackwardInput
    model_id: str
    seq_id: int | None = None

    def __post_init__(self) -> None:
        _check_input("ForwardRequest", "forward_input", self.forward_input)
        _check_model_id("ForwardRequest", self.model_id)
        _check_seq_id("ForwardRequest", self.seq_id)


@dataclasses.dataclass(frozen=True)
class ForwardBackwardOutput:
    """Per-datum loss outputs (e.g. ``logprobs``) and metrics keyed ``name:reduction``."""

    loss_fn_output_type: str
    loss_fn_outputs: list[dict[str, TensorData]]
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    #: Client-side only (never sent): the structured result of ``forward_backward_custom``
    #: (``tinkex.regularizers.CustomLossOutput``: total, base, per-regularizer terms).
    custom_loss_output: Any = dataclasses.field(
        default=None, compare=False, repr=False, kw_only=True
    )


# -- optimizers --------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class AdamParams:
    """AdamW hyper-parameters for one ``optim_step`` (decoupled weight decay)."""

    learning_rate: float = attrs.field(default=1e-4, validator=_finite(0.0))
    beta1: float = attrs.field(default=0.9, validator=_finite(0.0, 1.0, hi_open=True))
    beta2: float = attrs.field(default=0.95, validator=_finite(0.0, 1.0, hi_open=True))
    eps: float = attrs.field(default=1e-12, validator=_finite(0.0))
    weight_decay: float = attrs.field(default=0.0, validator=_finite(0.0))
    grad_clip_norm: float = attrs.field(default=0.0, validator=_finite(0.0))


@attrs.frozen(kw_only=True)
class OptimParamsBase:
    """Parameters of a non-Adam optimizer, discriminated by ``type``."""

    type: str


@attrs.frozen(kw_only=True)
class DimuonParams(OptimParamsBase):
    """Parameters of the Dimuon optimizer."""

    type: str = "dimuon"
    learning_rate: float = attrs.field(validator=_finite(0.0))
    grad_clip_norm: float = attrs.field(default=0.0, validator=_finite(0.0))
    beta1: float = attrs.field(default=0.9, validator=_finite(0.0, 1.0, hi_open=True))


OptimParams = AdamParams | OptimParamsBase


@attrs.frozen(kw_only=True)
class OptimizerConfigBase:
    """Optimizer chosen at model creation, discriminated by ``type``."""

    type: str


@attrs.frozen(kw_only=True)
class AdamOptimizerConfig(OptimizerConfigBase):
    """AdamW (the default)."""

    type: str = "adamw"


@attrs.frozen(kw_only=True)
class DimuonOptimizerConfig(OptimizerConfigBase):
    """Dimuon."""

    type: str = "dimuon"
    version: int = 1


OptimizerConfig = AdamOptimizerConfig | OptimizerConfigBase


def _rank(inst: object, attr: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"LoraConfig.rank must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class LoraConfig:
    """LoRA adapter settings of a training run."""

    rank: int = attrs.field(validator=_rank)
    seed: int | None = None
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True


@attrs.frozen(kw_only=True)
class OptimStepRequest:
    """Body of ``POST /api/v1/optim_step`` (Adam params go out as ``adam_params``)."""

    optim_params: OptimParams
    model_id: str
    seq_id: int | None = None
    type: Literal["optim_step"] = "optim_step"


@attrs.frozen(kw_only=True)
class OptimStepResponse:
    """Result of an optimizer step."""

    metrics: dict[str, float] | None = None


# -- models ----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class CreateModelRequest:
    """Body of ``POST /api/v1/create_model``."""

    session_id: str
    model_seq_id: int
    base_model: str
    user_metadata: dict[str, str] | None = None
    lora_config: LoraConfig | None = None
    optimizer_config: OptimizerConfig = attrs.field(factory=AdamOptimizerConfig)
    type: Literal["create_model"] = "create_model"


@attrs.frozen(kw_only=True)
class CreateModelResponse:
    """Result of ``create_model``."""

    model_id: str
    type: str | None = "create_model"


@attrs.frozen(kw_only=True)
class GetInfoRequest:
    """Body of ``POST /api/v1/get_info``."""

    model_id: str
    type: Literal["get_info"] = "get_info"


@attrs.frozen(kw_only=True)
class ModelData:
    """Architecture facts of a model."""

    arch: str | None = None
    model_name: str | None = None
    tokenizer_id: str | None = None


@attrs.frozen(kw_only=True)
class GetInfoResponse:
    """What the server knows about a training run's model."""

    model_id: str
    model_data: ModelData
    type: str | None = None
    optimizer_config: OptimizerConfig = attrs.field(factory=AdamOptimizerConfig)
    is_lora: bool | None = None
    lora_rank: int | None = None
    model_name: str | None = None


def _ttl(inst: object, attr: Any, value: int | None) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{type(inst).__name__}.ttl_seconds must be a positive int or None, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class SaveWeightsRequest:
    """Body of ``POST /api/v1/save_weights`` (training state incl. optimizer)."""

    model_id: str
    path: str | None = None
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    overwrite: bool = False
    user_metadata: dict[str, str] | None = None
    type: Literal["save_weights"] = "save_weights"


@attrs.frozen(kw_only=True)
class SaveWeightsResponse:
    """Result of ``save_state``: the ``tinker://`` path of the checkpoint."""

    path: str
    type: str | None = None

    def get_console_url(self) -> str:
        """Web console page of this checkpoint."""
        return f"{_CONSOLE}/checkpoints/{self.path.removeprefix('tinker://')}"


@attrs.frozen(kw_only=True)
class SaveWeightsForSamplerRequest:
    """Body of ``POST /api/v1/save_weights_for_sampler``."""

    model_id: str
    path: str | None = None
    sampling_session_seq_id: int | None = None
    kind: SamplingClientKind = "snapshot"
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    user_metadata: dict[str, str] | None = None
    type: Literal["save_weights_for_sampler"] = "save_weights_for_sampler"


@attrs.frozen(kw_only=True)
class SaveWeightsForSamplerResponseInternal:
    """Raw future result: ``path`` (named save) or ``sampling_session_id`` (unnamed)."""

    path: str | None = None
    sampling_session_id: str | None = None
    type: str | None = None


@attrs.frozen(kw_only=True)
class SaveWeightsForSamplerResponse:
    """Result of ``save_weights_for_sampler``: the sampler checkpoint path."""

    path: str
    type: str | None = None

    def get_console_url(self) -> str:
        """Web console page of this checkpoint."""
        return f"{_CONSOLE}/checkpoints/{self.path.removeprefix('tinker://')}"

    def get_playground_url(self) -> str:
        """Playground page that samples from this checkpoint."""
        return f"{_CONSOLE}/playground?model_path={self.path}"


@attrs.frozen(kw_only=True)
class SaveWeightsExternalRequest:
    """Body of ``POST /api/v1/save_weights_external`` (HF-format export)."""

    model_id: str
    path: str
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    age_encryption_recipients: list[str] | None = None
    type: Literal["save_weights_external"] = "save_weights_external"


@attrs.frozen(kw_only=True)
class SaveWeightsExternalResponseInternal:
    """Raw future result of an external save."""

    path: str | None = None
    size_bytes: int | None = None
    type: str | None = None


@attrs.frozen(kw_only=True)
class SaveWeightsExternalResponse:
    """Result of ``save_weights_external``."""

    path: str
    type: str | None = None


@attrs.frozen(kw_only=True)
class LoadWeightsRequest:
    """Body of ``POST /api/v1/load_weights`` (create-via-load or legacy load)."""

    path: str
    model_id: str | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    seq_id: int | None = None
    optimizer: bool
    base_model: str | None = None
    optimizer_config: OptimizerConfig | None = None
    weights_access_token: str | None = None
    user_metadata: dict[str, str] | None = None
    type: Literal["load_weights"] = "load_weights"


@attrs.frozen(kw_only=True)
class LoadWeightsResponse:
    """Result of a load."""

    path: str | None = None
    model_id: str | None = None
    type: str | None = None


@attrs.frozen(kw_only=True)
class UnloadModelRequest:
    """Body of the legacy ``POST /api/v1/unload_model``."""

    model_id: str
    type: Literal["unload_model"] = "unload_model"


@attrs.frozen(kw_only=True)
class UnloadModelResponse:
    """Result of ``unload_model``."""

    model_id: str
    type: str | None = None


# -- server-side custom losses ------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class CustomLossInput:
    """One named input of a custom loss and its rank (0 scalar, 1 [T], 2 [T, K])."""

    name: str
    rank: CustomLossInputRank


@attrs.frozen(kw_only=True)
class CustomLossNode:
    """One node of a traced loss graph."""

    op: str
    name: str
    target: str
    args: list[Any] = attrs.field(factory=list)
    kwargs: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class CustomLossGraph:
    """A traced per-datum loss function."""

    nodes: list[CustomLossNode]
    format: int = 1


@attrs.frozen(kw_only=True)
class CreateCustomLossRequest:
    """Body of ``POST /api/v1/create_custom_loss``."""

    session_id: str
    custom_loss_seq_id: int
    name: str
    inputs: list[CustomLossInput]
    graph: CustomLossGraph
    type: Literal["create_custom_loss"] = "create_custom_loss"


@attrs.frozen(kw_only=True)
class CreateCustomLossResponse:
    """Result of ``create_custom_loss``."""

    loss_id: str
    type: str | None = "create_custom_loss"
