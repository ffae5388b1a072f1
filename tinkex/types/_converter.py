"""The one converter between tinkex types and their data forms, in both directions.

* ``to_wire(obj)``: the JSON body of a request. For the model types it is exactly what the
  official SDK sends, ``model_dump(mode="json", exclude_none=True)``; the dataclass types
  (``Datum``, ``TensorData``, fwd/bwd input and output, sample results) have their JSON wire
  shapes (tinkex's JSON wire mode; the official SDK sends those as protobuf).
* ``dump(obj, options, include=, exclude=)``: what ``Model.model_dump`` returns.
* ``from_wire(data, cls, request=...)``: JSON values to ``cls``. Unknown fields are ignored; a
  missing required field or a wrong type raises ``APIResponseValidationError`` naming the class,
  the field path and the request.

Both directions are hooks of cattrs converters, all made by ``_build`` from the same pieces:
the model plans (``_model.model_plan``), the union tables (``_unions.py``) and the hooks of
the dataclass types below. There is one converter per set of dump options (``WIRE`` is the
one that also decodes); cattrs is imported on first use.
"""

from __future__ import annotations

import base64
import collections.abc as cabc
import dataclasses
import datetime as dt
import enum
import json
import math
import threading
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from tinkex._exceptions import APIResponseValidationError
from tinkex.types import _model_input as mi
from tinkex.types import _sampling as smp
from tinkex.types import _training as tr
from tinkex.types._coerce import Invalid, compile_coercer
from tinkex.types._coerce import parse_datetime as _parse_datetime
from tinkex.types._datum import Datum, PromptProvenanceSpan, SampledProvenanceSpan
from tinkex.types._model import Model, model_plan
from tinkex.types._tensor import TensorData
from tinkex.types._unions import union_tables

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "DumpOptions",
    "WIRE",
    "to_wire",
    "dump",
    "json_text",
    "from_wire",
    "converter",
    "parse_datetime",
]

T = TypeVar("T")
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


def parse_datetime(value: Any) -> dt.datetime:
    """A wire datetime (ISO 8601, ``Z`` accepted, or epoch seconds) as an aware datetime."""
    parsed = _parse_datetime(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """ISO 8601 as pydantic writes it (``Z`` for UTC, naive datetimes without an offset)."""
    text = value.isoformat()
    offset = value.utcoffset()
    if offset is not None and offset == dt.timedelta(0):
        text = text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text
    return text


# -- dataclass wire shapes (both directions) ---------------------------------------------------


def tensor_to_wire(t: TensorData, options: DumpOptions = WIRE) -> dict[str, Any]:
    """``TensorData`` as the JSON object tinker's tensor model dumps (None fields kept unless
    ``exclude_none``)."""
    out: dict[str, Any] = {"data": t.values_array().tolist(), "dtype": t.dtype}
    keep_none = not (options.exclude_none or options.exclude_defaults)
    if t.shape is not None:
        out["shape"] = list(t.shape)
    elif keep_none:
        out["shape"] = None
    if t.sparse_crow_indices is not None:
        out["sparse_crow_indices"] = list(t.sparse_crow_indices)
        out["sparse_col_indices"] = list(t.sparse_col_indices or ())
    elif keep_none:
        out["sparse_crow_indices"] = out["sparse_col_indices"] = None
    return out


def tensor_from_wire(data: Any) -> TensorData:
    """JSON to ``TensorData`` (validating dtype and shape)."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a TensorData object, got {type(data).__name__}")
    return TensorData(
        data.get("data"),
        data.get("dtype"),
        data.get("shape"),
        data.get("sparse_crow_indices"),
        data.get("sparse_col_indices"),
    )


def _span_to_wire(span: PromptProvenanceSpan | SampledProvenanceSpan) -> dict[str, Any]:
    kind = "prompt_tokens" if isinstance(span, PromptProvenanceSpan) else "sampled_tokens"
    return {
        "sequence_id": span.sequence_id,
        "offset": span.offset,
        "length": span.length,
        "type": kind,
    }


def _span_from_wire(data: Any) -> PromptProvenanceSpan | SampledProvenanceSpan:
    cls = PromptProvenanceSpan if data.get("type") == "prompt_tokens" else SampledProvenanceSpan
    return cls(sequence_id=data["sequence_id"], offset=data.get("offset", 0), length=data["length"])


def _datum_from_wire(data: Any, conv: cattrs.Converter) -> Datum:
    spans = data.get("model_input_spans")
    return Datum(
        model_input=conv.structure(data["model_input"], mi.ModelInput),
        loss_fn_inputs={
            k: tensor_from_wire(v) for k, v in (data.get("loss_fn_inputs") or {}).items()
        },
        model_input_spans=None if spans is None else [_span_from_wire(s) for s in spans],
        loss_fn_input_spans=None
        if spans is None
        else [_span_from_wire(s) for s in data.get("loss_fn_input_spans") or []],
    )


def _fwdbwd_output_from_wire(data: Any) -> tr.ForwardBackwardOutput:
    return tr.ForwardBackwardOutput(
        loss_fn_output_type=data.get("loss_fn_output_type") or "ArrayRecord",
        loss_fn_outputs=[
            {k: tensor_from_wire(v) for k, v in o.items()} for o in data["loss_fn_outputs"]
        ],
        metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
    )


def _topk_to_wire(topk: smp.TopkLogprobs | None) -> list[Any] | None:
    if topk is None:
        return None
    return [None if row is None else [list(p) for p in row] for row in topk.to_lists()]


def _topk_from_wire(rows: Any) -> smp.TopkLogprobs | None:
    if rows is None:
        return None
    import numpy as np

    k = max((len(r) for r in rows if r), default=0)
    ids = np.zeros((len(rows), k), dtype=np.int32)
    lps = np.full((len(rows), k), smp.TOPK_EMPTY_LOGPROB, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, (tok, lp) in enumerate(row or []):
            ids[i, j] = tok
            lps[i, j] = lp
    return smp.TopkLogprobs(ids, lps)


def _sequence_to_wire(s: smp.SampledSequence) -> dict[str, Any]:
    out: dict[str, Any] = {"stop_reason": s.stop_reason, "tokens": s.tokens, "logprobs": s.logprobs}
    if s.topk_logprobs_np is not None:
        out["topk_logprobs"] = _topk_to_wire(s.topk_logprobs_np)
    if s.sequence_id:
        out["sequence_id"] = s.sequence_id
    return out


def _alt_tokens_to_wire(alt: smp.PromptAltTokens) -> dict[str, Any]:
    return {"tokens": tensor_to_wire(alt.tokens), "logprobs": tensor_to_wire(alt.logprobs)}


def _sample_response_to_wire(resp: smp.SampleResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "sample",
        "sequences": [_sequence_to_wire(s) for s in resp.sequences],
        "prompt_logprobs": resp.prompt_logprobs,
        "topk_prompt_logprobs": _topk_to_wire(resp.topk_prompt_logprobs_np),
        "prompt_cache_hit_tokens": resp.prompt_cache_hit_tokens,
    }
    if resp.target_prompt_logprobs is not None:
        out["target_prompt_logprobs"] = tensor_to_wire(resp.target_prompt_logprobs)
    if resp.prompt_alt_tokens is not None:
        out["prompt_alt_tokens"] = _alt_tokens_to_wire(resp.prompt_alt_tokens)
    return out


def _sample_response_from_wire(data: Any) -> smp.SampleResponse:
    import numpy as np

    sequences = []
    for s in data["sequences"]:
        stop_reason = s["stop_reason"]
        if stop_reason not in ("stop", "length"):
            raise ValueError(f"stop_reason must be 'stop' or 'length', got {stop_reason!r}")
        logprobs = s.get("logprobs")
        sequences.append(
            smp.decoded(
                smp.SampledSequence,
                stop_reason=stop_reason,
                tokens_np=np.asarray(s["tokens"], dtype=np.int32),
                logprobs_np=None if logprobs is None else np.asarray(logprobs, dtype=np.float32),
                topk_logprobs_np=_topk_from_wire(s.get("topk_logprobs")),
                sequence_id=s.get("sequence_id") or "",
            )
        )
    alt = data.get("prompt_alt_tokens")
    target = data.get("target_prompt_logprobs")
    return smp.decoded(
        smp.SampleResponse,
        sequences=sequences,
        prompt_logprobs_np=smp.float_array(data.get("prompt_logprobs")),
        topk_prompt_logprobs_np=_topk_from_wire(data.get("topk_prompt_logprobs")),
        target_prompt_logprobs=None if target is None else tensor_from_wire(target),
        prompt_cache_hit_tokens=int(data.get("prompt_cache_hit_tokens") or 0),
        prompt_alt_tokens=None
        if alt is None
        else smp.PromptAltTokens(
            tensor_from_wire(alt["tokens"]), tensor_from_wire(alt["logprobs"])
        ),
    )


def _dataclass_to_wire(conv: cattrs.Converter) -> Callable[[Any], dict[str, Any]]:
    """Plain dataclasses (fwd/bwd input and requests): public fields in order, None omitted."""

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if value is not None and not f.name.startswith("_"):
                out[f.name] = conv.unstructure(value)
        return out

    return unstructure


def _dataclass_hooks(conv: cattrs.Converter, options: DumpOptions) -> dict[type, Hook]:
    """Unstructure hooks of the dataclass types (their JSON wire shapes)."""
    return {
        TensorData: lambda t: tensor_to_wire(t, options),
        PromptProvenanceSpan: _span_to_wire,
        SampledProvenanceSpan: _span_to_wire,
        Datum: lambda d: _datum_to_wire(d, conv),
        tr.ForwardBackwardInput: _dataclass_to_wire(conv),
        tr.ForwardBackwardRequest: _dataclass_to_wire(conv),
        tr.ForwardRequest: _dataclass_to_wire(conv),
        tr.ForwardBackwardOutput: lambda out: {
            "loss_fn_output_type": out.loss_fn_output_type,
            "loss_fn_outputs": [
                {k: tensor_to_wire(v) for k, v in o.items()} for o in out.loss_fn_outputs
            ],
            "metrics": dict(out.metrics),
        },
        smp.TopkLogprobs: _topk_to_wire,
        smp.SampledSequence: _sequence_to_wire,
        smp.PromptAltTokens: _alt_tokens_to_wire,
        smp.SampleResponse: _sample_response_to_wire,
    }


def _datum_to_wire(datum: Datum, conv: cattrs.Converter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model_input": conv.unstructure(datum.model_input),
        "loss_fn_inputs": {k: tensor_to_wire(v) for k, v in datum.loss_fn_inputs.items()},
    }
    if datum.model_input_spans is not None:
        out["model_input_spans"] = [_span_to_wire(s) for s in datum.model_input_spans]
        out["loss_fn_input_spans"] = [_span_to_wire(s) for s in datum.loss_fn_input_spans or []]
    return out


# -- models: dumping -----------------------------------------------------------------------------

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


def _model_hook(cls: type, conv: cattrs.Converter, options: DumpOptions) -> Hook:
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


def _json_hooks(conv: cattrs.Converter) -> None:
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


# -- structuring ---------------------------------------------------------------------------------


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


def _structure_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(dt.datetime, lambda v, _: parse_datetime(v))
    conv.register_structure_hook(
        bytes, lambda v, _: base64.b64decode(v) if isinstance(v, str) else bytes(v)
    )
    conv.register_structure_hook(TensorData, lambda v, _: tensor_from_wire(v))
    conv.register_structure_hook(Datum, lambda v, _: _datum_from_wire(v, conv))
    conv.register_structure_hook(tr.ForwardBackwardOutput, lambda v, _: _fwdbwd_output_from_wire(v))
    conv.register_structure_hook(smp.SampleResponse, lambda v, _: _sample_response_from_wire(v))
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


# -- the converters ----------------------------------------------------------------------------


def _build(options: DumpOptions) -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=False)
    if options == WIRE:
        _structure_hooks(conv)
    if options.json:
        _json_hooks(conv)
    conv.register_unstructure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, Model),
        lambda cls: _model_hook(cls, conv, options),
    )
    for cls, hook in _dataclass_hooks(conv, options).items():
        conv.register_unstructure_hook(cls, hook)
    return conv


_lock = threading.Lock()
_converters: dict[DumpOptions, cattrs.Converter] = {}
_wire: cattrs.Converter | None = None  # converter(WIRE), the hot one, without a dict lookup


def converter(options: DumpOptions = WIRE) -> cattrs.Converter:
    """The process-wide converter for ``options`` (built on first use)."""
    global _wire
    if options is WIRE and _wire is not None:
        return _wire
    conv = _converters.get(options)
    if conv is None:
        with _lock:
            conv = _converters.get(options)
            if conv is None:
                conv = _converters[options] = _build(options)
    if options is WIRE:
        _wire = conv
    return conv


def to_wire(obj: Any) -> Any:
    """A tinkex type (or a list/dict of them) as its JSON wire value."""
    return converter(WIRE).unstructure(obj)


def dump(obj: Any, options: DumpOptions, *, include: Any = None, exclude: Any = None) -> Any:
    """``obj`` dumped with ``options``; ``include``/``exclude`` as pydantic takes them."""
    conv = converter(options)
    if include is None and exclude is None:
        return conv.unstructure(obj)
    return _dump_filtered(obj, conv, _spec(include), _spec(exclude))


def _spec(value: Any) -> Any:
    """An include/exclude argument as ``{key: True | nested spec}`` (None: no filter)."""
    if value is None or value is True:
        return value
    if isinstance(value, Mapping):
        return {k: _spec(v) for k, v in value.items()}
    return {k: True for k in value}


def _dump_filtered(value: Any, conv: cattrs.Converter, include: Any, exclude: Any) -> Any:
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
                out[key] = _dump_filtered(getattr(value, name), conv, sub_in, sub_ex)
        return out
    if isinstance(value, (list, tuple)):
        items = []
        for i, item in enumerate(value):
            sub_in = _index_spec(include, i)
            sub_ex = _index_spec(exclude, i)
            if (include is not None and sub_in is None) or sub_ex is True:
                continue
            items.append(_dump_filtered(item, conv, sub_in, sub_ex))
        return items
    if isinstance(value, Mapping):
        return {
            k: _dump_filtered(
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


# -- decoding ------------------------------------------------------------------------------------


def from_wire(data: Any, cls: type[T], *, request: str | None = None) -> T:
    """Build ``cls`` from a JSON wire value; APIResponseValidationError names the bad field."""
    try:
        return converter(WIRE).structure(data, cls)
    except Exception as exc:
        import cattrs

        if isinstance(exc, cattrs.BaseValidationError):
            details = "; ".join(cattrs.transform_error(exc, path=cls.__name__))
            raise _validation_error(cls, details, data, request) from exc
        if isinstance(exc, (KeyError, TypeError, ValueError, AttributeError)):
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise _validation_error(cls, detail, data, request) from exc
        raise


def _validation_error(cls: type, details: str, data: Any, request: str | None) -> Exception:
    where = f" from {request}" if request else ""
    return APIResponseValidationError(
        message=f"invalid {cls.__name__}{where}: {details}", body=data, request=request
    )
