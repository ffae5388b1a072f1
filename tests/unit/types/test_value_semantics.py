"""Value semantics: a type keeps its values when the caller later changes the list it passed.

``EncodedTextChunk(tokens=lst)`` then ``lst.clear()`` must leave the chunk intact, as tinker's
pydantic models copy what they validate. The sweep is generated from the official package:
every field of every type whose annotation is a list, sequence, dict or mapping (optional or
not) gets a fresh container, the container is mutated after construction, and the object is
compared with its state before. tinkex must be intact wherever tinker is; where tinker's
dataclasses keep the caller's container (they do not copy), tinkex copies anyway, and those
fields are listed below so a change upstream shows here.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import pkgutil
import sys
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinkex.types as tinkex_types

from .official import (
    DATACLASS_BUILDERS,
    DATACLASS_NAMES,
    MODEL_NAMES,
    arguments,
    normalize,
    official_fields,
    official_types,
    outcome,
    sample,
)

_CONTAINERS = (list, dict, cabc.Sequence, cabc.Mapping, cabc.MutableSequence)

#: Fields where tinker keeps the caller's container (its dataclasses do not copy) and tinkex
#: copies it: changing the list afterwards changes tinker's object, not tinkex's.
TINKER_SHARES: set[tuple[str, str]] = {
    ("Datum", "model_input_spans"),
    ("Datum", "loss_fn_input_spans"),
    ("ForwardBackwardInput", "data"),
    ("ForwardBackwardInput", "loss_fn_config"),
    ("ForwardBackwardOutput", "loss_fn_outputs"),
    ("ForwardBackwardOutput", "metrics"),
    ("SampleResponse", "sequences"),
    ("TensorData", "shape"),
    ("TensorData", "sparse_crow_indices"),
    ("TensorData", "sparse_col_indices"),
}
#: Fields neither package copies, by design: a numpy array of the tensor's exact dtype is
#: used as is (zero-copy, as tinker does), so it is the caller's array.
BOTH_SHARE: set[tuple[str, str]] = {("TensorData", "data (ndarray)")}


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, pytypes.UnionType):
        return any(_is_container(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_container(typing.get_args(annotation)[0])
    return origin in _CONTAINERS


def _container_arm(annotation: Any) -> Any:
    """The first container member of a union annotation."""
    return next(a for a in typing.get_args(annotation) if _is_container(a))


def _mutate(container: Any) -> None:
    if isinstance(container, np.ndarray):
        container[...] = 0
    elif isinstance(container, (list, dict)) and container:
        container.clear()
    elif isinstance(container, list):
        container.append(1)
    else:
        raise AssertionError(f"cannot mutate {container!r}")


def _intact(make: Callable[[], Any], container: Any) -> bool:
    """Whether the object ``make()`` builds from ``container`` survives its mutation."""
    obj = make()
    before = normalize(obj)
    _mutate(container)
    return outcome(lambda: normalize(obj)) == ("returned", before)  # broken: not intact


def _model_cases() -> list[Any]:
    return [
        pytest.param(name, field, id=f"{name}.{field}")
        for name in MODEL_NAMES
        for field, info in official_fields(name).items()
        if _is_container(info.annotation)
    ]


@pytest.mark.parametrize(("name", "field"), _model_cases())
def test_models_keep_their_values(name: str, field: str) -> None:
    annotation = official_fields(name)[field].annotation
    results = {}
    for types in (official_types, tinkex_types):
        kwargs = arguments(name, types)
        if not isinstance(kwargs[field], (list, dict)):  # e.g. ``str | list[str]``: the list
            kwargs[field] = sample(_container_arm(annotation), types, field)
        container = kwargs[field]
        assert isinstance(container, (list, dict)), (name, field, container)
        results[types] = _intact(lambda t=types, kw=kwargs: getattr(t, name)(**kw), container)
    assert results[official_types], f"tinker's {name}.{field} changed (update TINKER_SHARES)"
    assert results[tinkex_types], f"tinkex's {name}.{field} changed with the caller's container"


def _official_names() -> dict[str, Any]:
    """Every name of tinker.types' modules (some import annotation names only for typing)."""
    names: dict[str, Any] = {**vars(typing), "np": np}
    for info in pkgutil.iter_modules(official_types.__path__):
        module = sys.modules.get(f"{official_types.__name__}.{info.name}")
        if module is not None:
            names.update(vars(module))
    return names


def _dataclass_fields() -> list[Any]:
    cases = []
    for name in DATACLASS_NAMES:
        cls = getattr(official_types, name)
        hints = typing.get_type_hints(cls, localns=_official_names())
        for f in dataclasses.fields(cls):
            # private fields (``_tokens_list`` ...) are not part of the constructor's API
            if f.init and not f.name.startswith("_") and _is_container(hints.get(f.name)):
                cases.append(pytest.param(name, f.name, id=f"{name}.{f.name}"))
    return cases


def _container_like(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else dict(value)


@pytest.mark.parametrize(("name", "field"), _dataclass_fields())
def test_dataclasses_keep_their_values(name: str, field: str) -> None:
    results = {}
    for types in (official_types, tinkex_types):
        base = _sparse(types) if field.startswith("sparse_") else DATACLASS_BUILDERS[name](types)
        value = getattr(base, field)
        assert value is not None, f"{name}.{field}: the builder must set it"
        container = _container_like(value)
        if name == "TensorData":
            kwargs = {
                "data": base.data,  # the stored values (dense or CSR)
                "dtype": base.dtype,
                "shape": base.shape,
                "sparse_crow_indices": base.sparse_crow_indices,
                "sparse_col_indices": base.sparse_col_indices,
            } | {field: container}
            results[types] = _intact(lambda t=types, kw=kwargs: t.TensorData(**kw), container)
        else:
            results[types] = _intact(
                lambda b=base, c=container: dataclasses.replace(b, **{field: c}), container
            )
    assert results[tinkex_types], f"tinkex's {name}.{field} changed with the caller's container"
    assert results[official_types] == ((name, field) not in TINKER_SHARES), (
        f"tinker's {name}.{field}: intact={results[official_types]} (update TINKER_SHARES)"
    )


def _sparse(types: Any) -> Any:
    return types.TensorData(
        data=[5, 7],
        dtype="int64",
        shape=[2, 2],
        sparse_crow_indices=[0, 1, 2],
        sparse_col_indices=[1, 0],
    )


def test_tensor_data_lists_and_arrays() -> None:
    for types in (official_types, tinkex_types):
        values = [1, 2, 3]
        td = types.TensorData(data=values, dtype="int64")
        values.clear()
        assert td.data == [1, 2, 3]  # a list is always copied (into an array)
        array = np.array([1, 2, 3], dtype=np.int64)
        td = types.TensorData(data=array, dtype="int64")
        array[0] = 9
        assert td.data[0] == 9, ("TensorData", "data (ndarray)") in BOTH_SHARE  # zero-copy
        other = np.array([1, 2, 3], dtype=np.int32)  # converted: a copy
        td = types.TensorData(data=other, dtype="int64")
        other[0] = 9
        assert td.data[0] == 1
    for types in (official_types, tinkex_types):
        crow = [0, 1, 2]
        td = types.TensorData(
            data=[5, 7],
            dtype="int64",
            shape=[2, 2],
            sparse_crow_indices=crow,
            sparse_col_indices=[1, 0],
        )
        crow.append(3)
        assert (td.sparse_crow_indices == [0, 1, 2]) == (types is tinkex_types)


def test_the_issue_example() -> None:
    tokens = [1, 2, 3]
    chunk = tinkex_types.EncodedTextChunk(tokens=tokens)
    tokens.clear()
    assert chunk.tokens == [1, 2, 3] and chunk.length == 3
    model_input = tinkex_types.ModelInput.from_ints(ids := [4, 5])
    ids.append(6)
    assert model_input.to_ints() == [4, 5]
    datum = tinkex_types.Datum(
        model_input=model_input, loss_fn_inputs=(inputs := {"target_tokens": [5, 6]})
    )
    inputs["weights"] = [1.0, 1.0]
    assert list(datum.loss_fn_inputs) == ["target_tokens"]


def test_sweep_covers_the_container_fields() -> None:
    assert len(_model_cases()) > 30
    names = {p.values[0] for p in _dataclass_fields()}
    assert {"Datum", "ForwardBackwardInput", "TensorData", "SampleResponse"} <= names
    for name, field in TINKER_SHARES:
        assert field in {f.name for f in dataclasses.fields(getattr(official_types, name))}


def test_tensor_data_is_frozen_for_every_name_and_still_pickles() -> None:
    import copy
    import pickle
    import weakref

    from tinkex.types import TensorData

    tensor = TensorData.from_numpy(np.arange(6, dtype=np.int64).reshape(2, 3))
    for change in (
        lambda: setattr(tensor, "shape", [6]),
        lambda: setattr(tensor, "not_a_field", 1),
        lambda: delattr(tensor, "dtype"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError, match="field"):
            change()
    for twin in (pickle.loads(pickle.dumps(tensor)), copy.copy(tensor), copy.deepcopy(tensor)):
        assert (twin.dtype, twin.shape, twin.tolist()) == ("int64", [2, 3], tensor.tolist())
    assert weakref.ref(tensor)() is tensor
