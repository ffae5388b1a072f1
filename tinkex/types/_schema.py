"""``Model.model_json_schema()``: JSON schemas in pydantic's layout, from the model plans.

The layout follows pydantic 2 (what the official SDK's types return): the model's fields under
``properties`` with ``title`` ("Max Tokens") and ``default``, ``required``, nested models and
enums under ``$defs`` referenced by ``$ref``, ``X | None`` as ``anyOf`` with ``{"type":
"null"}``, literals as ``const``/``enum``, bounds from the field constraints
(``minimum``, ``exclusiveMaximum``, ``minItems`` ...), ``additionalProperties`` from the
model's extra policy, and the class docstring as ``description``.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import datetime as dt
import enum
import inspect
import types
import typing
from typing import Any

from tinkex.types._model import UNDEFINED, Model
from tinkex.types._tensor import TensorData, TensorDtype

__all__ = ["json_schema"]

#: The official SDK's JSON tensor model (``SampleRequest.target_prompt_logprobs``).
_TENSOR_FIELDS: list[tuple[str, Any, Any, bool, dict[str, Any]]] = [
    ("data", list[int] | list[float], UNDEFINED, True, {}),
    ("dtype", TensorDtype, UNDEFINED, True, {}),
    ("shape", list[int] | None, None, False, {}),
    ("sparse_crow_indices", list[int] | None, None, False, {}),
    ("sparse_col_indices", list[int] | None, None, False, {}),
]

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    bytes: {"type": "string", "format": "binary"},
    dt.datetime: {"type": "string", "format": "date-time"},
    type(None): {"type": "null"},
}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


class _Builder:
    def __init__(self, ref_template: str) -> None:
        self.ref_template = ref_template
        self.defs: dict[str, dict[str, Any]] = {}

    def ref(self, name: str) -> dict[str, Any]:
        return {"$ref": self.ref_template.format(model=name)}

    def model(self, cls: type) -> dict[str, Any]:
        from tinkex.types._model import model_plan

        plan = model_plan(cls)
        fields = [
            (
                f.name,
                f.annotation,
                UNDEFINED if f.info.default_factory is not None else f.info.default,
                f.info.is_required(),
                f.limits,
            )
            for f in plan.fields
        ]
        schema = self.fields(cls.__name__, fields, plan.extra)
        doc = cls.__dict__.get("__doc__")
        if doc:
            schema["description"] = inspect.cleandoc(doc)
        return schema

    def fields(
        self, title: str, fields: list[tuple[str, Any, Any, bool, dict[str, Any]]], extra: str
    ) -> dict[str, Any]:
        """An object schema: fields as ``(name, annotation, default, required, limits)``."""
        from tinkex.types._converter import DumpOptions, dump

        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, annotation, default, is_required, limits in fields:
            prop = self.annotation(annotation)
            if _titled(annotation):
                prop["title"] = name.replace("_", " ").title()
            if limits:  # on the non-null arm of ``X | None``, as pydantic puts them
                arms = prop.get("anyOf", [prop])
                target = next((a for a in arms if a.get("type") != "null"), prop)
                target.update(_limits(limits, _strip_none(annotation)))
            if is_required:
                required.append(name)
            elif default is not UNDEFINED:
                prop["default"] = dump(default, DumpOptions(mode="json"))
            properties[name] = prop
        schema: dict[str, Any] = {"properties": properties, "title": title, "type": "object"}
        if required:
            schema["required"] = required
        if extra == "forbid":
            schema["additionalProperties"] = False
        elif extra == "allow":
            schema["additionalProperties"] = True
        return schema

    def annotation(self, tp: Any) -> dict[str, Any]:
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return dict(scalar)
        if tp is Any or tp is object:
            return {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.annotation(args[0])
        if origin is typing.Literal:
            kinds = {_JSON_TYPES.get(type(a)) for a in args}
            out: dict[str, Any] = {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
            if len(kinds) == 1 and None not in kinds:
                out["type"] = kinds.pop()
            return out
        if origin in (typing.Union, types.UnionType):
            from tinkex.types._unions import union_table

            table = union_table(tp)
            if table is not None and table.declared and type(None) not in args:
                refs = {tag: self.annotation(cls)["$ref"] for tag, cls in table.classes.items()}
                return {
                    "discriminator": {"mapping": refs, "propertyName": table.key},
                    "oneOf": [self.annotation(a) for a in args],
                }
            return {"anyOf": [self.annotation(a) for a in args]}
        if origin in (list, cabc.Sequence, cabc.MutableSequence, set, frozenset, tuple):
            item = self.annotation(args[0]) if args else {}
            return {"items": item, "type": "array"}
        if origin in (dict, cabc.Mapping, cabc.MutableMapping):
            value = self.annotation(args[1]) if args else {}
            return {"additionalProperties": value if value else True, "type": "object"}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            self.defs.setdefault(
                tp.__name__,
                {
                    "enum": [m.value for m in tp],
                    "title": tp.__name__,
                    "type": "string" if issubclass(tp, str) else "integer",
                },
            )
            return self.ref(tp.__name__)
        if isinstance(tp, type) and issubclass(tp, Model):
            if tp.__name__ not in self.defs:
                self.defs[tp.__name__] = {}  # a placeholder, for recursive types
                self.defs[tp.__name__] = self.model(tp)
            return self.ref(tp.__name__)
        if tp is TensorData:  # inside a model: the official SDK's tensor model
            if "TensorData" not in self.defs:
                self.defs["TensorData"] = self.fields("TensorData", _TENSOR_FIELDS, "forbid")
            return self.ref("TensorData")
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return {"type": "object"}
        return {}


def _titled(tp: Any) -> bool:
    """pydantic titles a field unless it is (optionally) one model, dataclass or enum."""
    inner = _strip_none(tp)
    return not (
        isinstance(inner, type)
        and (issubclass(inner, (Model, enum.Enum)) or dataclasses.is_dataclass(inner))
    )


def _limits(limits: dict[str, Any], tp: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sized = "Items" if typing.get_origin(tp) is not None else "Length"
    for key, value in limits.items():
        if key == "ge":
            out["minimum"] = value
        elif key == "le":
            out["maximum"] = value
        elif key == "lt":
            out["exclusiveMaximum"] = value
        elif key == "min_length":
            out[f"min{sized}"] = value
        elif key == "max_length":
            out[f"max{sized}"] = value
    return out


def _strip_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        present = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(present) == 1:
            return present[0]
    return tp


def json_schema(
    cls: type, *, ref_template: str = "#/$defs/{model}", mode: str = "validation"
) -> dict[str, Any]:
    """The JSON schema of model class ``cls``."""
    builder = _Builder(ref_template)
    schema = builder.model(cls)
    builder.defs.pop(cls.__name__, None)
    if builder.defs:
        schema["$defs"] = dict(sorted(builder.defs.items()))
    return schema
