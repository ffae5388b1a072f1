"""Structuring (decoding) hooks: wire values to tinkex types, strictly typed.

Primitives are checked, not coerced (a string is not an int; an integral float is); unions
pick their member from the union tables (``_unions.py``); unions of plain values convert as the
constructors convert them (``_coerce.py``); the dataclass types decode through their wire
shapes (``_wire_shapes.py``). ``register_structure_hooks`` puts them all on a converter.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import types
import typing
from typing import TYPE_CHECKING, Any

from tinkex.types import _sampling as smp
from tinkex.types import _training as tr
from tinkex.types._coerce import Invalid, compile_coercer
from tinkex.types._coerce import parse_datetime as _parse_datetime
from tinkex.types._datum import Datum
from tinkex.types._model import Model
from tinkex.types._tensor import TensorData
from tinkex.types._unions import union_tables
from tinkex.types._wire_shapes import (
    datum_from_wire,
    fwdbwd_output_from_wire,
    sample_response_from_wire,
    tensor_from_wire,
)

if TYPE_CHECKING:
    import cattrs


def parse_datetime(value: Any) -> dt.datetime:
    """A wire datetime (ISO 8601, ``Z`` accepted, or epoch seconds) as an aware datetime."""
    parsed = _parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


def _strict_number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__} {value!r:.40}")
    return value


def _optional(hook: Any) -> Any:
    def structure(value: Any, type_: Any) -> Any:
        return None if value is None else hook(value, type_)

    return structure


def _union_hook(table: Any, conv: cattrs.Converter) -> Any:
    members = tuple(a for a in typing.get_args(table.union) if isinstance(a, type))

    def structure(data: Any, _type: Any) -> Any:
        if isinstance(data, members):
            return data
        if not isinstance(data, dict):
            raise TypeError(f"expected an object with {table.key!r}, got {type(data).__name__}")
        try:
            cls = table.class_for(data)
        except Invalid:
            cls = None
        if cls is None:
            raise ValueError(
                f"unknown {table.key} {data.get(table.key)!r}; expected one of "
                f"{sorted(table.classes)}"
            )
        return conv.structure(data, cls)

    return structure


def _is_plain_union(tp: Any) -> bool:
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    return not any(
        isinstance(a, type) and (issubclass(a, Model) or dataclasses.is_dataclass(a))
        for a in typing.get_args(tp)
    )


def _plain_union_hook(tp: Any) -> Any:
    coerce = compile_coercer(tp)

    def structure(value: Any, _type: Any) -> Any:
        try:
            return coerce(value)
        except Invalid as exc:
            raise TypeError(exc.describe()) from None

    return structure


def register_structure_hooks(conv: cattrs.Converter) -> None:
    """Register every decoding hook on ``conv`` (the ``WIRE`` converter)."""
    conv.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    conv.register_structure_hook(
        bytes, lambda v, _: base64.b64decode(v) if isinstance(v, str) else bytes(v)
    )
    conv.register_structure_hook(TensorData, lambda v, _: tensor_from_wire(v))
    conv.register_structure_hook(Datum, lambda v, _: datum_from_wire(v, conv))
    conv.register_structure_hook(tr.ForwardBackwardOutput, lambda v, _: fwdbwd_output_from_wire(v))
    conv.register_structure_hook(smp.SampleResponse, lambda v, _: sample_response_from_wire(v))
    conv.register_structure_hook(typing.Any, lambda v, _: v)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(int | float, lambda v, _: _strict_number(v))
    # Other unions of plain values (e.g. SamplingParams.stop: str | Sequence[str] |
    # Sequence[int] | None): converted as the constructors convert them.
    conv.register_structure_hook_factory(_is_plain_union, _plain_union_hook)
    for table in union_tables():
        hook = _union_hook(table, conv)
        conv.register_structure_hook(table.union, hook)
        conv.register_structure_hook(table.union | None, _optional(hook))
