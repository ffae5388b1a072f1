"""Argument conversion of the model types, compiled from their annotations.

The official SDK builds its models with pydantic in lax mode: ``"3"`` is accepted for an
``int`` field, ``1`` for a ``float`` field (and becomes ``1.0``), a dict for a nested model, a
tuple for a list (copied into a new list). tinkex's attrs types accept the same values and
convert them the same way, without importing pydantic: ``compile_coercer(annotation)`` returns
a function that converts one value or raises :class:`Invalid` saying what was expected.
``Invalid.path`` locates the bad element inside containers (``[3]``, ``['key']``).
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import enum
import re
import types
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["Coercer", "Invalid", "compile_coercer", "parse_datetime", "to_int"]

Coercer = Callable[[Any], Any]

_INT_TEXT = re.compile(r"^\s*[+-]?\d+(?:\.0*)?\s*$")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
# Unix times above this are milliseconds (pydantic's rule).
_MS_THRESHOLD = 2e10


class Invalid(Exception):
    """A value the annotation does not accept; ``path`` is filled in by enclosing containers."""

    def __init__(self, expected: str, value: Any, *, nested: bool = False) -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.nested = nested  # ``expected`` is the full message of a nested model's error
        self.path = ""

    def at(self, step: str) -> Invalid:
        """This error, one container level further out."""
        self.path = step + self.path
        return self

    def describe(self) -> str:
        """``"expected an integer, got 'x' (str)"``."""
        if self.nested:
            return self.expected
        shown = repr(self.value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return f"{self.expected}, got {shown} ({type(self.value).__name__})"


def parse_datetime(value: Any) -> dt.datetime:
    """A datetime from a datetime, a date, unix seconds/milliseconds or ISO 8601 text."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > _MS_THRESHOLD else value
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_datetime(float(text))
        except ValueError:
            pass
        try:
            return dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            pass
    raise Invalid("expected a datetime (ISO 8601 text, unix time or datetime)", value)


# -- scalars ------------------------------------------------------------------------------------


def to_int(value: Any) -> int:
    """``value`` as an int, converting as pydantic's lax mode does (``3.0``, ``"3"``, ``True``)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):  # IntEnum, other int subclasses
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Invalid("expected a finite number", value)
        if not value.is_integer():
            raise Invalid("expected an integer, got a number with a fractional part", value)
        return int(value)
    if isinstance(value, (str, bytes, bytearray)):
        text = value.decode("utf-8", "replace") if not isinstance(value, str) else value
        if _INT_TEXT.match(text):
            return int(text.strip().split(".")[0])
        raise Invalid("expected an integer", value)
    if hasattr(value, "__index__") and not isinstance(value, (list, tuple)):  # numpy ints
        index: int = value.__index__()
        return index
    raise Invalid("expected an integer", value)


def _to_float(value: Any) -> float:
    if type(value) is float:
        return value
    if isinstance(value, (int, float)):  # bool and numpy floats included
        return float(value)
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return float(value)
        except ValueError:
            raise Invalid("expected a number", value) from None
    if hasattr(value, "__float__") and not isinstance(value, (list, tuple)):
        result: float = value.__float__()
        return result
    raise Invalid("expected a number", value)


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("expected UTF-8 text", value) from None
    raise Invalid("expected a string", value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (str, bytes, bytearray)):
        text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
        text = text.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise Invalid("expected a boolean", value)


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise Invalid("expected bytes", value)


def _to_datetime(value: Any) -> dt.datetime:
    return parse_datetime(value)


def _to_none(value: Any) -> None:
    if value is not None:
        raise Invalid("expected None", value)


def _identity(value: Any) -> Any:
    return value


_SCALARS: dict[Any, Coercer] = {
    int: to_int,
    float: _to_float,
    str: _to_str,
    bool: _to_bool,
    bytes: _to_bytes,
    dt.datetime: _to_datetime,
    type(None): _to_none,
    Any: _identity,
    object: _identity,
}


# -- composites ---------------------------------------------------------------------------------


def _literal(values: tuple[Any, ...]) -> Coercer:
    # By equality, as pydantic matches literals (True is 1); the literal's own value is kept.
    allowed = {v: v for v in values}
    shown = " or ".join(repr(v) for v in values)

    def coerce(value: Any) -> Any:
        try:
            if value in allowed:
                return allowed[value]
        except TypeError:  # unhashable
            pass
        if isinstance(value, enum.Enum) and value.value in allowed:
            return value.value
        raise Invalid(f"expected {shown}", value)

    return coerce


def _enum(cls: type[enum.Enum]) -> Coercer:
    def coerce(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in cls)
            raise Invalid(f"expected one of {choices}", value) from None

    return coerce


def _list(item: Coercer, keep_tuple: bool, exact: frozenset[type] = frozenset()) -> Coercer:
    """Lists of ``item``; elements whose class is in ``exact`` are taken as they are (a copy
    of a list of chunks is made in C, without a call per element)."""

    def coerce(value: Any) -> Any:
        if exact and type(value) is list and exact.issuperset(map(type, value)):
            return list(value)
        if isinstance(value, (str, bytes, bytearray, cabc.Mapping)) or not isinstance(
            value, cabc.Iterable
        ):
            raise Invalid("expected a list", value)
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                raise exc.at(f"[{i}]") from None
        return tuple(out) if keep_tuple and isinstance(value, tuple) else out

    return coerce


def _dict(key: Coercer, item: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        if not isinstance(value, cabc.Mapping):
            raise Invalid("expected a dict", value)
        out = {}
        for k, v in value.items():
            try:
                out[key(k)] = item(v)
            except Invalid as exc:
                raise exc.at(f"[{k!r}]") from None
        return out

    return coerce


def _optional(arm: Coercer) -> Coercer:
    def coerce(value: Any) -> Any:
        return None if value is None else arm(value)

    return coerce


def _union(arms: tuple[Any, ...], tp: Any) -> Coercer:
    from tinkex.types._unions import union_table

    present = tuple(a for a in arms if a is not type(None))
    if len(present) == 1:  # X | None
        return _optional(compile_coercer(present[0]))

    coercers = [compile_coercer(arm) for arm in arms]
    classes = tuple(a for a in arms if isinstance(a, type))
    table = union_table(tp)
    shown = " or ".join(_name(a) for a in arms)

    def coerce(value: Any) -> Any:
        if value is None and type(None) in arms:
            return None
        if type(value) in classes:  # an exact match wins (pydantic's smart mode)
            return value
        if table is not None and isinstance(value, cabc.Mapping):
            member = table.class_for(value)
            if member is not None:
                return compile_coercer(member)(value)
        # no discriminator to go by: the first member that takes it (pydantic's smart mode)
        for arm in coercers:
            try:
                return arm(value)
            except Invalid:
                continue
        raise Invalid(f"expected {shown}", value)

    return coerce


def _instance(cls: type) -> Coercer:
    # Models validate a dict like pydantic does; dataclasses (TensorData) take it as kwargs.
    builder = getattr(cls, "model_validate", None)
    if builder is None and dataclasses.is_dataclass(cls):
        builder = lambda data: cls(**data)  # noqa: E731

    def coerce(value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if builder is not None and isinstance(value, cabc.Mapping):
            try:
                return builder(value)
            except (TypeError, ValueError) as exc:
                raise Invalid(str(exc), value, nested=True) from None
        raise Invalid(f"expected a {cls.__name__}", value)

    return coerce


def _classes(tp: Any) -> frozenset[type]:
    """The model classes an annotation is (one class, or a union of them), else empty."""
    arms = (
        typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    )
    if all(isinstance(a, type) and hasattr(a, "model_validate") for a in arms):
        return frozenset(arms)
    return frozenset()


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


_CACHE: dict[Any, Coercer] = {}


def compile_coercer(tp: Any) -> Coercer:
    """The conversion function of annotation ``tp`` (cached)."""
    try:
        cached = _CACHE.get(tp)
    except TypeError:  # an unhashable annotation
        cached = None
    if cached is not None:
        return cached
    coercer = _compile(tp)
    try:
        _CACHE[tp] = coercer
    except TypeError:
        pass
    return coercer


def _compile(tp: Any) -> Coercer:
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return scalar
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return compile_coercer(args[0])
    if origin is typing.Literal:
        return _literal(args)
    if origin in (typing.Union, types.UnionType):
        return _union(args, tp)
    if origin in (list, cabc.MutableSequence):
        item = args[0] if args else Any
        return _list(compile_coercer(item), keep_tuple=False, exact=_classes(item))
    if origin is cabc.Sequence:
        return _list(compile_coercer(args[0] if args else Any), keep_tuple=True)
    if origin in (dict, cabc.Mapping, cabc.MutableMapping):
        key, item = args if args else (Any, Any)
        return _dict(compile_coercer(key), compile_coercer(item))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    if isinstance(tp, type):
        return _instance(tp)
    return _identity
