"""Training types: losses, forward/backward, optimizers, LoRA, model creation, checkpoints I/O."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

import attrs

from tinkex.types._datum import Datum
from tinkex.types._model import Model, StrictModel, constraints
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
LOSS_FNS: tuple[str, ...] = get_args(LossFnType)
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

    def __post_init__(self) -> None:
        # Copies: the output keeps its values when the caller's lists/dicts change later.
        object.__setattr__(self, "loss_fn_outputs", [dict(o) for o in self.loss_fn_outputs])
        object.__setattr__(self, "metrics", dict(self.metrics))


# -- optimizers --------------------------------------------------------------------------
@attrs.frozen(kw_only=True, slots=False)
class AdamParams(StrictModel):
    """AdamW hyper-parameters for one ``optim_step`` (decoupled weight decay)."""

    learning_rate: float = attrs.field(default=1e-4, validator=_finite(0.0))
    beta1: float = attrs.field(default=0.9, validator=_finite(0.0, 1.0, hi_open=True))
    beta2: float = attrs.field(default=0.95, validator=_finite(0.0, 1.0, hi_open=True))
    eps: float = attrs.field(default=1e-12, validator=_finite(0.0))
    weight_decay: float = attrs.field(default=0.0, validator=_finite(0.0))
    grad_clip_norm: float = attrs.field(default=0.0, validator=_finite(0.0))


@attrs.frozen(kw_only=True, slots=False)
class OptimParamsBase(Model):
    """Parameters of a non-Adam optimizer, discriminated by ``type``."""

    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "allow"}

    type: str


@attrs.frozen(kw_only=True, slots=False)
class DimuonParams(OptimParamsBase):
    """Parameters of the Dimuon optimizer."""

    model_config: ClassVar[dict[str, Any]] = {
        "frozen": True,
        "extra": "forbid",
        "allow_inf_nan": False,
    }

    type: Literal["dimuon"] = "dimuon"
    learning_rate: float = attrs.field(metadata=constraints(ge=0))
    grad_clip_norm: float = attrs.field(default=0.0, validator=_finite(0.0))
    beta1: float = attrs.field(default=0.9, metadata=constraints(ge=0, lt=1))


OptimParams = AdamParams | OptimParamsBase


@attrs.frozen(kw_only=True, slots=False)
class OptimizerConfigBase(Model):
    """Optimizer chosen at model creation, discriminated by ``type``."""

    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "allow"}

    type: str


@attrs.frozen(kw_only=True, slots=False)
class AdamOptimizerConfig(OptimizerConfigBase):
    """AdamW (the default)."""

    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "forbid"}

    type: Literal["adamw"] = "adamw"


@attrs.frozen(kw_only=True, slots=False)
class DimuonOptimizerConfig(OptimizerConfigBase):
    """Dimuon."""

    model_config: ClassVar[dict[str, Any]] = {"frozen": True, "extra": "forbid"}

    type: Literal["dimuon"] = "dimuon"
    version: Literal[1] = 1


OptimizerConfig = AdamOptimizerConfig | OptimizerConfigBase


def _rank(inst: object, attr: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"LoraConfig.rank must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True, slots=False)
class LoraConfig(StrictModel):
    """LoRA adapter settings of a training run."""

    rank: int = attrs.field(validator=_rank)
    seed: int | None = None
    train_unembed: bool = True
    train_mlp: bool = True
    train_attn: bool = True


@attrs.frozen(kw_only=True, slots=False)
class OptimStepRequest(StrictModel):
    """Body of ``POST /api/v1/optim_step``.

    The parameters may also be given as ``adam_params=`` or ``optimizer_params=`` (the wire
    names); they are sent as ``adam_params`` for ``AdamParams``, else ``optimizer_params``.
    """

    optim_params: OptimParams = attrs.field(
        metadata=constraints(aliases=("optim_params", "adam_params", "optimizer_params"))
    )
    model_id: str
    seq_id: int | None = None
    type: Literal["optim_step"] = "optim_step"

    def _wire_key(self) -> str:
        return "adam_params" if isinstance(self.optim_params, AdamParams) else "optimizer_params"

    def _dump_renames(self) -> dict[str, str]:
        """Field name -> key in dumps (read by the converter)."""
        return {"optim_params": self._wire_key()}

    def _finish_dump(self, data: dict[str, Any]) -> dict[str, Any]:
        """The dumped fields with ``optim_params`` under its wire name, last (as tinker)."""
        if "optim_params" in data:
            data[self._wire_key()] = data.pop("optim_params")
        return data


@attrs.frozen(kw_only=True, slots=False)
class OptimStepResponse(Model):
    """Result of an optimizer step."""

    metrics: dict[str, float] | None = None


# -- models ----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True, slots=False)
class CreateModelRequest(StrictModel):
    """Body of ``POST /api/v1/create_model``."""

    session_id: str
    model_seq_id: int
    base_model: str
    user_metadata: dict[str, Any] | None = None
    lora_config: LoraConfig | None = None
    optimizer_config: OptimizerConfig = attrs.field(factory=AdamOptimizerConfig)
    type: Literal["create_model"] = "create_model"


@attrs.frozen(kw_only=True, slots=False)
class CreateModelResponse(Model):
    """Result of ``create_model``."""

    model_id: str
    type: Literal["create_model"] = "create_model"


@attrs.frozen(kw_only=True, slots=False)
class GetInfoRequest(StrictModel):
    """Body of ``POST /api/v1/get_info``."""

    model_id: str
    type: Literal["get_info"] = "get_info"


@attrs.frozen(kw_only=True, slots=False)
class ModelData(Model):
    """Architecture facts of a model."""

    arch: str | None = None
    model_name: str | None = None
    tokenizer_id: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class GetInfoResponse(Model):
    """What the server knows about a training run's model."""

    type: Literal["get_info"] | None = None
    model_data: ModelData
    model_id: str
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


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsRequest(StrictModel):
    """Body of ``POST /api/v1/save_weights`` (training state incl. optimizer)."""

    model_id: str
    path: str | None = None
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    overwrite: bool = False
    user_metadata: dict[str, str] | None = None
    type: Literal["save_weights"] = "save_weights"


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsResponse(Model):
    """Result of ``save_state``: the ``tinker://`` path of the checkpoint."""

    path: str
    type: Literal["save_weights"] | None = None

    def get_console_url(self) -> str:
        """Web console page of this checkpoint."""
        return f"{_CONSOLE}/checkpoints/{self.path.removeprefix('tinker://')}"


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsForSamplerRequest(StrictModel):
    """Body of ``POST /api/v1/save_weights_for_sampler``."""

    model_id: str
    path: str | None = None
    sampling_session_seq_id: int | None = None
    kind: SamplingClientKind = "snapshot"
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    user_metadata: dict[str, str] | None = None
    type: Literal["save_weights_for_sampler"] = "save_weights_for_sampler"


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsForSamplerResponseInternal(Model):
    """Raw future result: ``path`` (named save) or ``sampling_session_id`` (unnamed)."""

    path: str | None = None
    sampling_session_id: str | None = None
    type: Literal["save_weights_for_sampler"] | None = None


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsForSamplerResponse(Model):
    """Result of ``save_weights_for_sampler``: the sampler checkpoint path."""

    path: str
    type: Literal["save_weights_for_sampler"] | None = None

    def get_console_url(self) -> str:
        """Web console page of this checkpoint."""
        return f"{_CONSOLE}/checkpoints/{self.path.removeprefix('tinker://')}"

    def get_playground_url(self) -> str:
        """Playground page that samples from this checkpoint."""
        return f"{_CONSOLE}/playground?model_path={self.path}"


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsExternalRequest(StrictModel):
    """Body of ``POST /api/v1/save_weights_external`` (HF-format export)."""

    model_id: str
    path: str
    seq_id: int | None = None
    ttl_seconds: int | None = attrs.field(default=None, validator=_ttl)
    age_encryption_recipients: list[str] | None = None
    type: Literal["save_weights_external"] = "save_weights_external"


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsExternalResponseInternal(Model):
    """Raw future result of an external save."""

    path: str | None = None
    size_bytes: int | None = None
    type: Literal["save_weights_external"] | None = None


@attrs.frozen(kw_only=True, slots=False)
class SaveWeightsExternalResponse(Model):
    """Result of ``save_weights_external``."""

    path: str
    type: Literal["save_weights_external"] | None = None


@attrs.frozen(kw_only=True, slots=False)
class LoadWeightsRequest(StrictModel):
    """Body of ``POST /api/v1/load_weights`` (create-via-load or legacy load)."""

    model_id: str | None = None
    seq_id: int | None = None
    session_id: str | None = None
    model_seq_id: int | None = None
    base_model: str | None = None
    user_metadata: dict[str, Any] | None = None
    path: str
    optimizer: bool
    optimizer_config: OptimizerConfig | None = None
    weights_access_token: str | None = None
    type: Literal["load_weights"] = "load_weights"


@attrs.frozen(kw_only=True, slots=False)
class LoadWeightsResponse(Model):
    """Result of a load."""

    path: str | None = None
    model_id: str | None = None
    type: Literal["load_weights"] | None = None


@attrs.frozen(kw_only=True, slots=False)
class UnloadModelRequest(StrictModel):
    """Body of the legacy ``POST /api/v1/unload_model``."""

    model_id: str
    type: Literal["unload_model"] = "unload_model"


@attrs.frozen(kw_only=True, slots=False)
class UnloadModelResponse(Model):
    """Result of ``unload_model``."""

    model_id: str
    type: Literal["unload_model"] | None = None


# -- server-side custom losses ------------------------------------------------------------------
@attrs.frozen(kw_only=True, slots=False)
class CustomLossInput(StrictModel):
    """One named input of a custom loss and its rank (0 scalar, 1 [T], 2 [T, K])."""

    name: str
    rank: CustomLossInputRank


@attrs.frozen(kw_only=True, slots=False)
class CustomLossNode(StrictModel):
    """One node of a traced loss graph."""

    op: Literal["placeholder", "get_attr", "call_function", "call_method", "call_module", "output"]
    name: str
    target: str
    args: list[Any] = attrs.field(factory=list)
    kwargs: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True, slots=False)
class CustomLossGraph(StrictModel):
    """A traced per-datum loss function."""

    format: Literal[1] = 1
    nodes: list[CustomLossNode]


@attrs.frozen(kw_only=True, slots=False)
class CreateCustomLossRequest(StrictModel):
    """Body of ``POST /api/v1/create_custom_loss``."""

    session_id: str
    custom_loss_seq_id: int
    name: str
    inputs: list[CustomLossInput]
    graph: CustomLossGraph
    type: Literal["create_custom_loss"] = "create_custom_loss"


@attrs.frozen(kw_only=True, slots=False)
class CreateCustomLossResponse(Model):
    """Result of ``create_custom_loss``."""

    loss_id: str
    type: Literal["create_custom_loss"] = "create_custom_loss"
