"""The one converter between tinkex types and their data forms, in both directions.

* ``to_wire(obj)``: the JSON body of a request. For the model types it is exactly what the
  official SDK sends, ``model_dump(mode="json", exclude_none=True)``; the dataclass types
  (``Datum``, ``TensorData``, fwd/bwd input and output, sample results) have their JSON wire
  shapes (tinkex's JSON wire mode; the official SDK sends those as protobuf).
* ``dump(obj, options, include=, exclude=)``: what ``Model.model_dump`` returns.
* ``from_wire(data, cls, request=...)``: JSON values to ``cls``. Unknown fields are ignored; a
  missing required field or a wrong type raises ``APIResponseValidationError`` naming the class,
  the field path and the request.

Both directions are hooks of cattrs converters, all made by ``_build`` from the same pieces,
one module each: the model dump hooks and options (``_model_dump.py``, over the model plans of
``_model.model_plan``), the wire shapes of the dataclass types (``_wire_shapes.py``) and the
decoding hooks (``_structure.py``, with the union tables of ``_unions.py``). There is one
converter per set of dump options (``WIRE`` is the one that also decodes); cattrs is imported
on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from tinkex._exceptions import APIResponseValidationError
from tinkex.types._model import Model
from tinkex.types._model_dump import (
    WIRE,
    DumpOptions,
    dump_filtered,
    filter_spec,
    json_hooks,
    json_text,
    model_hook,
)
from tinkex.types._structure import parse_datetime, register_structure_hooks
from tinkex.types._wire_shapes import dataclass_hooks

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


# -- the converters ----------------------------------------------------------------------------


def _build(options: DumpOptions) -> cattrs.Converter:
    import cattrs

    conv = cattrs.Converter(forbid_extra_keys=False)
    if options == WIRE:
        register_structure_hooks(conv)
    if options.json:
        json_hooks(conv)
    conv.register_unstructure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, Model),
        lambda cls: model_hook(cls, conv, options),
    )
    for cls, hook in dataclass_hooks(conv, options).items():
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
    return dump_filtered(obj, conv, filter_spec(include), filter_spec(exclude))


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
