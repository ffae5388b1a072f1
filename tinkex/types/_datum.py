"""``Datum``: one training example (model input + loss inputs), and provenance spans."""

from __future__ import annotations

from typing import Any

import attrs

from tinkex.types._model_input import ModelInput
from tinkex.types._tensor import TensorData

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


def _non_negative(name: str) -> Any:
    def check(inst: object, attr: Any, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"{type(inst).__name__}.{attr.name} must be an int >= 0, got {value!r}"
            )

    return check


def _non_empty(inst: object, attr: Any, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{type(inst).__name__}.{attr.name} must be a non-empty string, got {value!r}"
        )


@attrs.frozen(kw_only=True)
class PromptProvenanceSpan:
    """Tokens that came from a prompt of the sampled sequence ``sequence_id``."""

    sequence_id: str = attrs.field(validator=_non_empty)
    offset: int = attrs.field(default=0, validator=_non_negative("offset"))
    length: int = attrs.field(validator=_non_negative("length"))


@attrs.frozen(kw_only=True)
class SampledProvenanceSpan:
    """Tokens that were sampled as part of sequence ``sequence_id``."""

    sequence_id: str = attrs.field(validator=_non_empty)
    offset: int = attrs.field(default=0, validator=_non_negative("offset"))
    length: int = attrs.field(validator=_non_negative("length"))


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
        import numpy as np

        try:
            array = np.asarray(value, dtype=dtype)
        except ValueError as exc:
            raise ValueError(
                f"Datum.loss_fn_inputs[{key!r}] is ragged or not numeric: {exc}"
            ) from None
        return TensorData(array, dtype, list(array.shape))  # type: ignore[arg-type]
    raise TypeError(
        f"Datum.loss_fn_inputs[{key!r}] must be TensorData, a numpy array, a torch tensor or a "
        f"list, got {type(value).__name__}"
    )


def _loss_inputs(value: Any) -> dict[str, TensorData]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"Datum.loss_fn_inputs must be a dict, got {type(value).__name__}")
    return {key: to_tensor_data(key, v) for key, v in value.items()}


def _check_model_input(_inst: object, _attr: object, value: Any) -> None:
    if not isinstance(value, ModelInput):
        raise TypeError(f"Datum.model_input must be a ModelInput, got {type(value).__name__}")


def _spans(value: Any) -> ProvenanceSpans | None:
    if value is None:
        return None
    spans = list(value)
    for i, span in enumerate(spans):
        if not isinstance(span, (PromptProvenanceSpan, SampledProvenanceSpan)):
            raise TypeError(f"provenance span {i} must be a ProvenanceSpan, got {span!r:.60}")
    return spans


@attrs.frozen
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

    model_input: ModelInput = attrs.field(validator=_check_model_input)
    loss_fn_inputs: dict[str, TensorData] = attrs.field(factory=dict, converter=_loss_inputs)
    model_input_spans: ProvenanceSpans | None = attrs.field(default=None, converter=_spans)
    loss_fn_input_spans: ProvenanceSpans | None = attrs.field(default=None, converter=_spans)

    def __attrs_post_init__(self) -> None:
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
        if targets is not None:
            target_len = targets.shape[0] if targets.shape else 0
            lf_total = sum(s.length for s in loss_fn_inputs)
            if lf_total != target_len:
                raise ValueError(
                    f"loss_fn_inputs spans cover {lf_total} tokens but target_tokens has "
                    f"{target_len}"
                )
        return attrs.evolve(self, model_input_spans=model_input, loss_fn_input_spans=loss_fn_inputs)
