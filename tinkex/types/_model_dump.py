"""Dumping the model types: ``DumpOptions`` and the per-class unstructure hooks
(``model_dump``'s modes and ``exclude_*`` options), the JSON-mode hooks of plain values, the
include/exclude filtering, and JSON text as pydantic writes it.

The hooks are registered on the converters by ``_converter._build``; cattrs is only named in
annotations here.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import datetime as dt
import enum
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from tinkex.types._model import Model, model_plan

if TYPE_CHECKING:
    import cattrs

Hook = Callable[[Any], Any]


@attrs.frozen
class DumpOptions:
    """The options of ``model_dump`` that shape every level of the output."""

    mode: str = "python"  # "python" or "json"
    by_alias: bool = False
    exclude_unset: bool = False
    exclude_defaults: bool = False
    exclude_none: bool = False

    @property
    def json(self) -> bool:
        return self.mode == "json"


#: What requests send: tinker's ``model_dump(mode="json", exclude_none=True)``.
WIRE = DumpOptions(mode="json", exclude_none=True)


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 as pydantic writes it (``Z`` for UTC, naive datetimes without an offset)."""
    text = value.isoformat()
    offset = value.utcoffset()
    if offset is not None and offset == dt.timedelta(0):
        text = text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
    return text


_PRIMITIVES = (int, float, str, bool, type(None))


def _is_primitive(tp: Any) -> bool:
    """True when values of annotation ``tp`` dump as themselves in both modes."""
    if tp in _PRIMITIVES:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return all(isinstance(a, _PRIMITIVES) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return all(_is_primitive(a) for a in typing.get_args(tp))
    return False


def _field_dumper(
    tp: Any, serialize: str | None, conv: cattrs.Converter, options: DumpOptions
) -> Hook:
    """How one field's value is dumped (specialised for the hot shapes)."""
    if serialize == "base64":
        return lambda v: v if v is None else base64.b64encode(bytes(v)).decode("ascii")
    if options.json and tp in (float, float | None):  # pydantic writes 1 as 1.0 there
        return lambda v: float(v) if type(v) is int else v
    if _is_primitive(tp):
        return lambda v: v
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, cabc.Sequence) and args and _is_primitive(args[0]):
        # e.g. token lists: a copy (tuples stay tuples in python mode, as pydantic's)
        if options.json:
            return lambda v: v if v is None else list(v)
        return lambda v: v if v is None or isinstance(v, tuple) else list(v)
    if origin is dict and args and _is_primitive(args[0]) and _is_primitive(args[1]):
        return lambda v: v if v is None else dict(v)
    if origin is list and args and _model_classes(args[0]):
        # e.g. ModelInput.chunks: each element by its class's hook (no generic list walk)
        hooks: dict[type, Hook] = {}

        def each(v: Any) -> Any:
            if v is None:
                return None
            out = []
            for e in v:
                hook = hooks.get(type(e))
                if hook is None:
                    hook = hooks[type(e)] = conv.get_unstructure_hook(type(e))
                out.append(hook(e))
            return out

        return each
    return conv.unstructure


def _model_classes(tp: Any) -> bool:
    """Whether ``tp`` is a model class or a union of model classes."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return all(_model_classes(a) for a in typing.get_args(tp))
    return isinstance(tp, type) and issubclass(tp, Model)


def model_hook(cls: type, conv: cattrs.Converter, options: DumpOptions) -> Hook:
    plan = model_plan(cls)
    steps = []
    for f in plan.fields:
        default = f.info.default
        if f.info.default_factory is not None:
            default = f.info.default_factory()
        has_default = not f.info.is_required()
        dumper = _field_dumper(f.annotation, f.serialize, conv, options)
        steps.append((f.name, dumper, has_default, default))
    keep_extra = plan.extra == "allow"
    finish = getattr(cls, "_finish_dump", None)
    exclude_none = options.exclude_none
    exclude_unset = options.exclude_unset
    exclude_defaults = options.exclude_defaults

    def unstructure(obj: Any) -> dict[str, Any]:
        values = obj.__dict__
        given = obj._fields_set if exclude_unset else None
        out: dict[str, Any] = {}
        for name, dumper, has_default, default in steps:
            value = values[name]
            if value is None and exclude_none:
                continue
            if given is not None and name not in given:
                continue
            if exclude_defaults and has_default and value == default:
                continue
            out[name] = dumper(value)
        if keep_extra and obj._extra:
            for key, value in obj._extra.items():
                if not (value is None and exclude_none):
                    out[key] = conv.unstructure(value)
        return finish(obj, out) if finish is not None else out

    return unstructure


def json_hooks(conv: cattrs.Converter) -> None:
    """JSON mode: only JSON values (pydantic's ``mode="json"``)."""
    conv.register_unstructure_hook(dt.datetime, format_datetime)
    conv.register_unstructure_hook(dt.date, lambda d: d.isoformat())
    conv.register_unstructure_hook(bytes, lambda b: b.decode("utf-8", "replace"))
    # Direct hooks: a StrEnum's MRO has ``str`` before ``Enum``.
    for kind in (enum.Enum, enum.StrEnum, enum.IntEnum):
        conv.register_unstructure_hook(kind, lambda e: conv.unstructure(e.value))
    for seq in (tuple, set, frozenset):
        conv.register_unstructure_hook(seq, lambda s: [conv.unstructure(x) for x in s])
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and t.__module__ == "numpy" and hasattr(t, "tolist"),
        lambda a: a.tolist(),
    )


def filter_spec(value: Any) -> Any:
    """An include/exclude argument as ``{key: True | nested spec}`` (None: no filter)."""
    if value is None or value is True:
        return value
    if isinstance(value, Mapping):
        return {k: filter_spec(v) for k, v in value.items()}
    return {k: True for k in value}


def dump_filtered(value: Any, conv: cattrs.Converter, include: Any, exclude: Any) -> Any:
    """``value`` dumped keeping only what ``include`` names and dropping what ``exclude`` names
    (field names for models, keys for dicts, indexes or ``"__all__"`` for lists)."""
    if include is True:
        include = None
    if include is None and exclude is None:
        return conv.unstructure(value)
    if isinstance(value, Model):
        full = conv.unstructure(value)
        keys = {f.name: f.name for f in model_plan(type(value)).fields}
        out_keys = _renamed_keys(value, full, keys)
        out: dict[str, Any] = {}
        for name, key in out_keys.items():
            sub_in = None if include is None else include.get(name)
            sub_ex = None if exclude is None else exclude.get(name)
            if (include is not None and sub_in is None) or sub_ex is True:
                continue
            if sub_in is None and sub_ex is None:
                out[key] = full[key]
            else:
                out[key] = dump_filtered(getattr(value, name), conv, sub_in, sub_ex)
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            sub_in = _index_spec(include, i)
            sub_ex = _index_spec(exclude, i)
            if (include is not None and sub_in is None) or sub_ex is True:
                continue
            items.append(dump_filtered(item, conv, sub_in, sub_ex))
        return items
    if isinstance(value, Mapping):
        return {
            k: dump_filtered(
                v,
                conv,
                None if include is None else include.get(k),
                None if exclude is None else exclude.get(k),
            )
            for k, v in value.items()
            if (include is None or k in include)
            and not (exclude is not None and exclude.get(k) is True)
        }
    return conv.unstructure(value)


def _index_spec(spec: Any, index: int) -> Any:
    if spec is None:
        return None
    own = spec.get(index)
    every = spec.get("__all__")
    return own if own is not None else every


def _renamed_keys(obj: Model, full: dict[str, Any], keys: dict[str, str]) -> dict[str, str]:
    """Field name -> key in the dump, for the fields present (a model may rename a field in
    ``_finish_dump``, as ``OptimStepRequest`` does)."""
    renames = getattr(type(obj), "_dump_renames", None)
    mapping = renames(obj) if renames is not None else {}
    return {name: mapping.get(name, name) for name in keys if mapping.get(name, name) in full}


def json_text(data: Any, *, indent: int | None = None, ensure_ascii: bool = False) -> str:
    """JSON text as pydantic writes it: compact, non-finite floats as null."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        _finite(data), indent=indent, ensure_ascii=ensure_ascii, separators=separators
    )


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite(v) for v in data]
    return data
