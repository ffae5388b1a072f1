"""tinkex's types give the same results as the official ``tinker`` 0.38 types.

For every type, both packages' objects are built from the same arguments (derived from the
official annotations, see ``official.py``) and compared: for the pydantic models every
``model_dump`` variant, ``model_dump_json``, what requests send (``to_wire`` against tinker's
``model_dump(mode="json", exclude_none=True)``), ``repr``, equality and hashing,
``model_fields``/``model_fields_set``, ``model_copy``, ``model_validate(_json)`` of the
official dump, ``model_construct`` and ``model_json_schema``; for the dataclasses
``dataclasses.asdict``, ``repr``, equality and hashing. Deliberate differences are listed
below, each with its reason.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from typing import Any

import pytest

import tinkex.types as tinkex_types
from tinkex.types._converter import to_wire

from .official import (
    DATACLASS_BUILDERS,
    DATACLASS_NAMES,
    MODEL_NAMES,
    arguments,
    build,
    normalize,
    official_fields,
    official_types,
    outcome,
    sample,
)
from .test_type_kinds import DELIBERATE_FIELD_DIFFERENCES

# (type, check) -> why tinkex differs from tinker there on purpose.
_TENSOR = (
    "target_prompt_logprobs holds tinkex's TensorData (a dataclass compared by identity, as "
    "tinker's own TensorData); tinker's SampleRequest holds a separate JSON tensor model"
)
DELIBERATE: dict[tuple[str, str], str] = {
    ("ClientConfigResponse", "schema"): "billing_exception_max_pause_duration_sec is int | "
    "float, not int: the pause allowance may be fractional",
    ("SampleRequest", "repr"): _TENSOR,
    ("SampleRequest", "eq"): _TENSOR,
    ("SampleRequest", "exclude_unset"): _TENSOR + " that records which tensor fields were given",
}


def same(name: str, check: str, ours: Any, theirs: Any) -> None:
    """``ours == theirs``, or ``!=`` where the difference is listed as deliberate."""
    if (name, check) in DELIBERATE:
        assert ours != theirs, f"{name}: {check} is listed as deliberate but matches"
    else:
        assert ours == theirs, f"{name}: {check}"


def _both(name: str, *, full: bool) -> tuple[Any, Any]:
    return build(name, tinkex_types, full=full), build(name, official_types, full=full)


def _cases() -> list[Any]:
    return [
        pytest.param(name, full, id=f"{name}-{'full' if full else 'required'}")
        for name in MODEL_NAMES
        for full in (True, False)
    ]


DUMP_VARIANTS: list[dict[str, Any]] = [
    {},
    {"mode": "json"},
    {"exclude_none": True},
    {"mode": "json", "exclude_none": True},
    {"exclude_unset": True},
    {"exclude_defaults": True},
    {"by_alias": True},
    {"mode": "json", "exclude_unset": True, "exclude_defaults": True},
]


@pytest.mark.parametrize(("name", "full"), _cases())
def test_model_dumps_match(name: str, full: bool) -> None:
    ours, theirs = _both(name, full=full)
    for variant in DUMP_VARIANTS:
        unset_only = variant.get("exclude_unset") and not variant.get("exclude_defaults")
        check = "exclude_unset" if unset_only and full else "dump"
        same(
            name,
            check,
            normalize(ours.model_dump(**variant)),
            normalize(theirs.model_dump(**variant)),
        )
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.model_dump_json(indent=2, exclude_none=True) == theirs.model_dump_json(
        indent=2, exclude_none=True
    )


@pytest.mark.parametrize(("name", "full"), _cases())
def test_wire_body_is_what_tinker_sends(name: str, full: bool) -> None:
    ours, theirs = _both(name, full=full)
    official = theirs.model_dump(mode="json", exclude_none=True)
    assert normalize(to_wire(ours)) == normalize(official)
    assert json.dumps(to_wire(ours)) == json.dumps(official)


@pytest.mark.parametrize(("name", "full"), _cases())
def test_repr_eq_and_hash_match(name: str, full: bool) -> None:
    ours, theirs = _both(name, full=full)
    again, theirs_again = _both(name, full=full)
    check = "repr" if full else "dump"
    same(name, check, repr(ours), repr(theirs))
    same(name, check, str(ours), str(theirs))
    same(name, "eq" if full else "dump", ours == again, theirs == theirs_again)
    try:
        theirs_hash: bool | None = hash(theirs) == hash(theirs_again)
    except TypeError:
        theirs_hash = None
    try:
        ours_hash: bool | None = hash(ours) == hash(again)
    except TypeError:
        ours_hash = None
    assert ours_hash == theirs_hash, f"{name}: hashable {ours_hash} vs official {theirs_hash}"
    assert ours != object()
    assert (ours == theirs_again) is False  # another package's object is never equal


@pytest.mark.parametrize(("name", "full"), _cases())
def test_fields_and_fields_set_match(name: str, full: bool) -> None:
    ours, theirs = _both(name, full=full)
    assert ours.model_fields_set == theirs.model_fields_set
    cls = getattr(tinkex_types, name)
    theirs_fields = official_fields(name)
    assert list(cls.model_fields) == list(theirs_fields)
    for field, info in cls.model_fields.items():
        official = theirs_fields[field]
        assert info.is_required() == official.is_required(), f"{name}.{field}"
        if not info.is_required():
            assert normalize(info.get_default(call_default_factory=True)) == normalize(
                official.get_default(call_default_factory=True)
            ), f"{name}.{field}"
    assert dict(ours) == {k: getattr(ours, k) for k in cls.model_fields}  # iteration
    assert vars(ours) == {k: getattr(ours, k) for k in cls.model_fields}


@pytest.mark.filterwarnings("ignore::UserWarning:pydantic")  # tinker's model_construct of a dict
@pytest.mark.parametrize(("name", "full"), _cases())
def test_copy_validate_and_construct_match(name: str, full: bool) -> None:
    ours, theirs = _both(name, full=full)
    field = next(iter(official_fields(name)))
    update = {field: sample(official_fields(name)[field].annotation, tinkex_types, "new")}
    theirs_update = {field: sample(official_fields(name)[field].annotation, official_types, "new")}
    copied, theirs_copied = ours.model_copy(update=update), theirs.model_copy(update=theirs_update)
    assert normalize(copied.model_dump()) == normalize(theirs_copied.model_dump())
    assert copied.model_fields_set == theirs_copied.model_fields_set
    assert normalize(ours.model_copy(deep=True).model_dump()) == normalize(ours.model_dump())
    cls = getattr(tinkex_types, name)
    dumped = theirs.model_dump(mode="json")
    official_cls = getattr(official_types, name)
    validated = cls.model_validate(dumped)
    same(name, "eq" if full else "dump", validated == ours, True)
    official_validated = official_cls.model_validate(dumped)
    assert normalize(validated.model_dump()) == normalize(official_validated.model_dump())
    assert validated.model_fields_set == official_validated.model_fields_set
    text = theirs.model_dump_json()
    from_json = cls.model_validate_json(text)
    official_from_json = official_cls.model_validate_json(text)
    assert normalize(from_json.model_dump()) == normalize(official_from_json.model_dump())
    assert cls.model_validate(ours) is ours
    kwargs = arguments(name, tinkex_types, full=full)
    theirs_kwargs = arguments(name, official_types, full=full)
    constructed = cls.model_construct(**kwargs)
    theirs_constructed = getattr(official_types, name).model_construct(**theirs_kwargs)
    assert normalize(constructed.model_dump()) == normalize(theirs_constructed.model_dump())
    assert constructed.model_fields_set == theirs_constructed.model_fields_set
    restored = pickle.loads(pickle.dumps(ours))
    assert normalize(restored.model_dump()) == normalize(ours.model_dump())
    assert restored.model_fields_set == ours.model_fields_set
    assert normalize(copy.copy(ours).model_dump()) == normalize(ours.model_dump())


def _strip_descriptions(schema: Any) -> Any:
    # Descriptions come from the classes' docstrings, which are each package's own words.
    if isinstance(schema, dict):
        return {k: _strip_descriptions(v) for k, v in schema.items() if k != "description"}
    if isinstance(schema, list):
        return [_strip_descriptions(v) for v in schema]
    return schema


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_json_schema_matches(name: str) -> None:
    ours = _strip_descriptions(getattr(tinkex_types, name).model_json_schema())
    theirs = _strip_descriptions(getattr(official_types, name).model_json_schema())
    if (name, "schema") in DELIBERATE:
        assert ours != theirs, f"{name}: listed as a deliberate difference but matches"
        return
    assert ours == theirs


# -- dataclasses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATACLASS_NAMES)
def test_dataclass_asdict_repr_eq_and_hash_match(name: str) -> None:
    make = DATACLASS_BUILDERS[name]
    ours, theirs = make(tinkex_types), make(official_types)
    mine = dataclasses.asdict(ours)
    for cls_name, field in DELIBERATE_FIELD_DIFFERENCES:
        if cls_name == name and field not in {f.name for f in dataclasses.fields(theirs)}:
            mine.pop(field)  # a tinkex-only field
    assert normalize(mine) == normalize(dataclasses.asdict(theirs))
    assert repr(ours) == repr(theirs)
    other, theirs_other = make(tinkex_types), make(official_types)
    assert outcome(lambda: ours == other) == outcome(lambda: theirs == theirs_other)
    assert outcome(lambda: ours == ours) == outcome(lambda: theirs == theirs)
    assert outcome(lambda: hash(ours) and None) == outcome(lambda: hash(theirs) and None)


def test_every_type_is_compared() -> None:
    assert set(DATACLASS_NAMES) == set(DATACLASS_BUILDERS)
    assert len(MODEL_NAMES) > 100
    for name, _check in DELIBERATE:
        assert name in MODEL_NAMES or name in DATACLASS_NAMES
