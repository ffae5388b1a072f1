"""``Datum``: one training example (model input + loss inputs), and provenance spans.

Frozen stdlib dataclasses, as in the official SDK (``dataclasses.replace`` works on them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinkex.types._model_input import ModelInput, check_token_tensor
from tinkex.types._tensor import TensorData, as_values

__all__ = [
    "Datum",
    "PromptProvenanceSpan",
    "SampledProvenanceSpan",
    "ProvenanceSpans",
    "LossFnInputs",
    "LossFnOutput",
]

LossFnInputs = dict[str, TensorData]
LossFnOutput = dict[str, TensorData]

# Loss inputs given as Python lists are cast by key; other keys must be tensors or arrays.
_LIST_DTYPES: dict[str, str] = {
    "target_tokens": "int64",
    "weights": "float32",
    "advantages": "float32",
    "logprobs": "float32",
    "clip_low_threshold": "float32",
    "clip_high_threshold": "float32",
    "sequence_ratio_mask": "float32",
}
_SPARSE_KEYS = ("target_tokens", "weights")


def _check_span(span: PromptProvenanceSpan | SampledProvenanceSpan) -> None:
    name = type(span).__name__
    if not isinstance(span.sequence_id, str) or not span.sequence_id:
        raise ValueError(f"{name}.sequence_id must be a non-empty string, got {span.sequence_id!r}")
    for field in ("offset", "length"):
        value = getattr(span, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name}.{field} must be an int >= 0, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PromptProvenanceSpan:
    """Tokens that came from a prompt of the sampled sequence ``sequence_id``."""

    sequence_id: str
    offset: int = 0
    length: int

    def __post_init__(self) -> None:
        _check_span(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampledProvenanceSpan:
    """Tokens that were sampled as part of sequence ``sequence_id``."""

    sequence_id: str
    offset: int = 0
    length: int

    def __post_init__(self) -> None:
        _check_span(self)


ProvenanceSpans = list[PromptProvenanceSpan | SampledProvenanceSpan]


def to_tensor_data(key: str, value: Any) -> TensorData:
    """Convert one loss input (TensorData, numpy, torch or list) to ``TensorData``."""
    if isinstance(value, TensorData):
        return value
    module = type(value).__module__
    if module.startswith("torch"):
        tensor = TensorData.from_torch(value)
        return (
            tensor.sparsify()
            if key in _SPARSE_KEYS and tensor.shape and len(tensor.shape) == 2
            else tensor
        )
    if module.startswith("numpy"):
        return TensorData.from_numpy(value)
    if isinstance(value, (list, tuple)):
        dtype = _LIST_DTYPES.get(key)
        if dtype is None:
            raise KeyError(
                f"Datum.loss_fn_inputs[{key!r}] was given as a list, but lists are only accepted "
                f"for {sorted(_LIST_DTYPES)}; pass a numpy array or TensorData instead"
            )
        array = as_values(value, dtype, where=f"Datum.loss_fn_inputs[{key!r}]")  # type: ignore[arg-type]
        return TensorData._trusted(array, dtype, list(array.shape))  # type: ignore[arg-type]
    raise TypeError(
        f"Datum.loss_fn_inputs[{key!r}] must be TensorData, a numpy array, a torch tensor or a "
        f"list, got {type(value).__name__}"
    )


def _loss_inputs(value: Any) -> dict[str, TensorData]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"Datum.loss_fn_inputs must be a dict, got {type(value).__name__}")
    inputs = {key: to_tensor_data(key, v) for key, v in value.items()}
    targets = inputs.get("target_tokens")
    if targets is not None:
        check_token_tensor("Datum.loss_fn_inputs['target_tokens']", targets, lowest=0)
    return inputs


def _check_model_input(value: Any) -> None:
    if not isinstance(value, ModelInput):
        raise TypeError(f"Datum.model_input must be a ModelInput, got {type(value).__name__}")


def _spans(field: str, value: Any) -> ProvenanceSpans | None:
    if value is None:
        return None
    spans = list(value)
    for i, span in enumerate(spans):
        if not isinstance(span, (PromptProvenanceSpan, SampledProvenanceSpan)):
            raise TypeError(
                f"Datum.{field}[{i}] must be a PromptProvenanceSpan or SampledProvenanceSpan, "
                f"got {span!r:.60}"
            )
    return spans


@dataclasses.dataclass(frozen=True)
class Datum:
    """One example: ``model_input`` plus the loss inputs keyed by name.

    Lists in ``loss_fn_inputs`` are converted by key (``target_tokens`` -> int64, ``weights``,
    ``advantages``, ``logprobs`` ... -> float32); numpy arrays and torch tensors are wrapped.

    Example:
        >>> datum = Datum(
        ...     model_input=ModelInput.from_ints([1, 2]),
        ...     loss_fn_inputs={"target_tokens": [2, 3], "weights": [1.0, 1.0]},
        ... )
    """

    model_input: ModelInput
    loss_fn_inputs: dict[str, TensorData] = dataclasses.field(default_factory=dict)
    model_input_spans: ProvenanceSpans | None = None
    loss_fn_input_spans: ProvenanceSpans | None = None

    if TYPE_CHECKING:  # what the generated __init__ accepts (lists/arrays are converted)

        def __init__(
            self,
            model_input: ModelInput,
            loss_fn_inputs: Mapping[str, Any] | None = None,
            model_input_spans: ProvenanceSpans | None = None,
            loss_fn_input_spans: ProvenanceSpans | None = None,
        ) -> None: ...

    def __post_init__(self) -> None:
        _check_model_input(self.model_input)
        # Frozen: the converted values replace the given ones once, here.
        object.__setattr__(self, "loss_fn_inputs", _loss_inputs(self.loss_fn_inputs))
        object.__setattr__(
            self, "model_input_spans", _spans("model_input_spans", self.model_input_spans)
        )
        object.__setattr__(
            self, "loss_fn_input_spans", _spans("loss_fn_input_spans", self.loss_fn_input_spans)
        )
        if (self.model_input_spans is None) != (self.loss_fn_input_spans is None):
            raise ValueError(
                "Datum.model_input_spans and Datum.loss_fn_input_spans must be given together"
            )

    def with_provenance(
        self, model_input: ProvenanceSpans, loss_fn_inputs: ProvenanceSpans
    ) -> Datum:
        """A copy with provenance spans; span lengths must tile the input and the targets."""
        mi_total = sum(s.length for s in model_input)
        if mi_total != self.model_input.length:
            raise ValueError(
                f"model_input spans cover {mi_total} tokens but model_input.length is "
                f"{self.model_input.length}"
            )
        targets = self.loss_fn_inputs.get("target_tokens")
        dims = None if targets is None else targets.shape or list(targets.to_numpy().shape)
        if dims is not None and len(dims) == 1:  # spans tile a 1-D target_tokens
            lf_total = sum(s.length for s in loss_fn_inputs)
            if lf_total != dims[0]:
                raise ValueError(
                    f"loss_fn_inputs spans cover {lf_total} tokens but target_tokens has {dims[0]}"
                )
        return dataclasses.replace(
            self, model_input_spans=model_input, loss_fn_input_spans=loss_fn_inputs
        )
