"""Building the same objects with the official ``tinker`` 0.38 types and with tinkex's.

``arguments(name, types, full=...)`` derives constructor arguments for type ``name`` from the
official type's own field annotations (so every type is covered, none hand-picked), built with
the classes of ``types`` (``tinker.types`` or ``tinkex.types``) for nested models. The eleven
dataclass types take arrays and tensors, so ``DATACLASS_BUILDERS`` builds them by hand.
``normalize`` turns dumps, ``asdict`` results and field values into plain comparable data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import types as pytypes
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tinker = pytest.importorskip("tinker")
    import pydantic
    from pydantic_core import PydanticUndefined
    from tinker import types as official_types


WHEN = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
DMEL = b"\x01\x01\x02ab"  # a TensorContainer header: dtype 1, one dimension of 2

MODEL_NAMES = sorted(
    name
    for name in dir(official_types)
    if isinstance(cls := getattr(official_types, name), type)
    and issubclass(cls, pydantic.BaseModel)
)
DATACLASS_NAMES = sorted(
    name
    for name in dir(official_types)
    if isinstance(cls := getattr(official_types, name), type) and dataclasses.is_dataclass(cls)
)

# (type, field) -> a value both packages accept where the annotation alone gives a bad one.
_OVERRIDES: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("SampleRequest", "target_prompt_logprobs"): lambda types: {
        "data": [1, 2],
        "dtype": "int64",
        "shape": [1, 2],
    },
}


def official_fields(name: str) -> dict[str, Any]:
    cls = getattr(official_types, name)
    return dict(cls.model_fields)


def sample(annotation: Any, types: Any, name: str = "") -> Any:
    """A valid value of ``annotation`` built with ``types`` (nested models included)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return sample(args[0], types, name)
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, pytypes.UnionType):
        present = [a for a in args if a is not type(None)]
        return sample(present[0], types, name)
    if origin in (list, Sequence):
        return [sample(args[0], types, name)] if args else [1]
    if origin in (dict, Mapping):
        return {"k": sample(args[1], types, name)} if args else {"k": 1}
    if annotation in (typing.Any, object):
        return {"a": 1}
    if annotation is str:
        return f"{name}-v"
    if annotation is bool:
        return True
    if annotation is int:
        return 3
    if annotation is float:
        return 0.25
    if annotation is bytes:
        return DMEL
    if annotation is pydantic.AwareDatetime or (
        isinstance(annotation, type) and issubclass(annotation, dt.datetime)
    ):
        return WHEN
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return getattr(types, annotation.__name__)(next(iter(annotation)).value)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return build(annotation.__name__, types)
    raise AssertionError(f"no sample for {annotation!r}")


def arguments(name: str, types: Any, *, full: bool = True) -> dict[str, Any]:
    """Constructor arguments of type ``name``: every field (``full``) or the required ones."""
    kwargs = {}
    for field, info in official_fields(name).items():
        required = info.default is PydanticUndefined and info.default_factory is None
        if not (full or required):
            continue
        override = _OVERRIDES.get((name, field))
        kwargs[field] = override(types) if override else sample(info.annotation, types, field)
    return kwargs


def build(name: str, types: Any, *, full: bool = True) -> Any:
    """Type ``name`` of ``types`` built from ``arguments``."""
    return getattr(types, name)(**arguments(name, types, full=full))


def _tensor(types: Any, data: list[Any], dtype: str, shape: list[int]) -> Any:
    return types.TensorData(data=data, dtype=dtype, shape=shape)


def _datum(types: Any) -> Any:
    return types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": _tensor(types, [2, 3, 4], "int64", [3])},
        model_input_spans=[types.PromptProvenanceSpan(sequence_id="s", length=3)],
        loss_fn_input_spans=[types.SampledProvenanceSpan(sequence_id="s", offset=1, length=3)],
    )


def _fbi(types: Any) -> Any:
    return types.ForwardBackwardInput(
        data=[_datum(types)], loss_fn="importance_sampling", loss_fn_config={"kl": 0.5}
    )


def _sequence(types: Any) -> Any:
    return types.SampledSequence(
        stop_reason="stop",
        sequence_id="seq-1",
        tokens_np=np.array([5, 6], dtype=np.int32),
        logprobs_np=np.array([-0.5, -0.25], dtype=np.float32),
    )


DATACLASS_BUILDERS: dict[str, Callable[[Any], Any]] = {
    "TensorData": lambda types: _tensor(types, [1, 2, 3, 4], "int64", [2, 2]),
    "Datum": _datum,
    "PromptProvenanceSpan": lambda types: types.PromptProvenanceSpan(
        sequence_id="s", offset=1, length=2
    ),
    "SampledProvenanceSpan": lambda types: types.SampledProvenanceSpan(
        sequence_id="s", offset=1, length=2
    ),
    "ForwardBackwardInput": _fbi,
    "ForwardBackwardRequest": lambda types: types.ForwardBackwardRequest(
        forward_backward_input=_fbi(types), model_id="m", seq_id=3
    ),
    "ForwardRequest": lambda types: types.ForwardRequest(
        forward_input=_fbi(types), model_id="m", seq_id=3
    ),
    "ForwardBackwardOutput": lambda types: types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[{"logprobs": _tensor(types, [-0.5], "float32", [1])}],
        metrics={"loss:sum": 1.5},
    ),
    "PromptAltTokens": lambda types: types.PromptAltTokens(
        tokens=_tensor(types, [1, 2], "int64", [1, 2]),
        logprobs=_tensor(types, [-0.5, -1.5], "float32", [1, 2]),
    ),
    "SampledSequence": _sequence,
    "SampleResponse": lambda types: types.SampleResponse(
        sequences=[_sequence(types)],
        prompt_logprobs_np=np.array([math.nan, -1.0], dtype=np.float32),
        prompt_cache_hit_tokens=2,
    ),
}


def outcome(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or the exception type it raised (to compare behaviours)."""
    try:
        return ("returned", fn())
    except Exception as exc:
        return ("raised", type(exc).__name__)


def normalize(value: Any) -> Any:
    """Plain data to compare across packages: enums by value, arrays as lists (NaN as the
    string "nan"), models by their JSON dump, tensors by their fields and values."""
    if isinstance(value, enum.Enum):
        return ("enum", type(value).__name__, value.value)
    if isinstance(value, float):  # tagged: 1 and 1.0 must not compare equal here
        return ("float", "nan" if math.isnan(value) else value)
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), normalize(value.tolist()))
    if isinstance(value, np.generic):
        return normalize(value.item())
    if type(value).__name__ == "TensorData":
        return (
            "TensorData",
            value.dtype,
            normalize(value.shape),
            normalize(value.sparse_crow_indices),
            normalize(value.sparse_col_indices),
            normalize(value.to_numpy()),
        )
    if hasattr(value, "model_dump") and not isinstance(value, type):
        return (type(value).__name__, normalize(value.model_dump(mode="json")))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, normalize(dataclasses.asdict(value)))
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(normalize(v) for v in value)
    return value
