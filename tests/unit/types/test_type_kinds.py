"""Type kinds match the official ``tinker`` 0.38 SDK: its dataclasses are dataclasses here too.

The official package is walked (``dataclasses.is_dataclass`` over ``tinker.types``), so a type
that changes kind upstream fails here. For each dataclass the class parameters (frozen, eq,
init, ...) and every field's flags (default, factory, init, repr, compare, kw_only) must match;
``dataclasses.replace/fields/asdict`` then behave the same way on both packages' objects.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from typing import Any

import numpy as np
import pytest

import tinkex.types as tinkex_types

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tinker = pytest.importorskip("tinker")
    from tinker import types as official_types

# (type, field) -> why tinkex's field differs on purpose.
DELIBERATE_FIELD_DIFFERENCES: dict[tuple[str, str], str] = {
    ("SampledSequence", "sequence_id"): "defaults to '': decoders build sequences before the "
    "sampling client attaches the ids of the asample answer (official: required)",
    ("ForwardBackwardOutput", "custom_loss_output"): "tinkex-only, keyword-only with a default: "
    "the structured result of forward_backward_custom (never sent, not compared)",
}


def _classes(module: Any) -> dict[str, type]:
    return {
        name: value
        for name in dir(module)
        if not name.startswith("_") and inspect.isclass(value := getattr(module, name))
    }


OFFICIAL_DATACLASSES = sorted(
    name for name, cls in _classes(official_types).items() if dataclasses.is_dataclass(cls)
)


def test_the_official_dataclasses_are_the_expected_eleven() -> None:
    # The list the issue names; if tinker changes it, this test says so first.
    assert OFFICIAL_DATACLASSES == [
        "Datum",
        "ForwardBackwardInput",
        "ForwardBackwardOutput",
        "ForwardBackwardRequest",
        "ForwardRequest",
        "PromptAltTokens",
        "PromptProvenanceSpan",
        "SampleResponse",
        "SampledProvenanceSpan",
        "SampledSequence",
        "TensorData",
    ]


@pytest.mark.parametrize("name", sorted(_classes(official_types)))
def test_same_kind_as_official(name: str) -> None:
    official = getattr(official_types, name)
    ours = getattr(tinkex_types, name)
    assert dataclasses.is_dataclass(ours) == dataclasses.is_dataclass(official), name


def _params(cls: type) -> dict[str, Any]:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    return {
        key: getattr(params, key)
        for key in ("init", "repr", "eq", "order", "unsafe_hash", "frozen")
    }


def _field_flags(f: dataclasses.Field[Any]) -> dict[str, Any]:
    return {
        "has_default": f.default is not dataclasses.MISSING,
        "default": None if f.default is dataclasses.MISSING else f.default,
        "has_factory": f.default_factory is not dataclasses.MISSING,
        "init": f.init,
        "repr": f.repr,
        "compare": f.compare,
        "hash": f.hash,
        "kw_only": f.kw_only,
    }


@pytest.mark.parametrize("name", OFFICIAL_DATACLASSES)
def test_dataclass_params_and_fields_match(name: str) -> None:
    official = getattr(official_types, name)
    ours = getattr(tinkex_types, name)
    assert _params(ours) == _params(official)
    theirs = {f.name: _field_flags(f) for f in dataclasses.fields(official)}
    # tinkex-only fields (deliberate, keyword-only with defaults) are left out.
    mine = {f.name: _field_flags(f) for f in dataclasses.fields(ours) if f.name in theirs}
    assert list(mine) == list(theirs), f"{name}: field order/names differ"
    extras = {f.name for f in dataclasses.fields(ours)} - set(theirs)
    assert extras <= {field for (cls, field) in DELIBERATE_FIELD_DIFFERENCES if cls == name}
    for field, flags in theirs.items():
        if (name, field) in DELIBERATE_FIELD_DIFFERENCES:
            continue
        assert mine[field] == flags, f"{name}.{field}"


def test_deliberate_field_differences_are_real() -> None:
    for name, field in DELIBERATE_FIELD_DIFFERENCES:
        assert field in {f.name for f in dataclasses.fields(getattr(tinkex_types, name))}


def test_topk_logprobs_is_a_slotted_frozen_dataclass_like_the_official_module() -> None:
    from tinker.types.topk_logprobs import TopkLogprobs as Official

    ours = tinkex_types.TopkLogprobs
    assert _params(ours) == _params(Official)
    assert hasattr(ours, "__slots__") == hasattr(Official, "__slots__")
    assert [f.name for f in dataclasses.fields(ours)] == [
        f.name for f in dataclasses.fields(Official)
    ]


# -- the dataclass functions user code calls ---------------------------------------------------


def test_replace_on_provenance_spans_revalidates() -> None:
    span = tinkex_types.SampledProvenanceSpan(sequence_id="seq-1", offset=2, length=5)
    # What tinker-cookbook does when it trims a span.
    trimmed = dataclasses.replace(span, offset=span.offset + 1, length=span.length - 1)
    assert trimmed == tinkex_types.SampledProvenanceSpan(sequence_id="seq-1", offset=3, length=4)
    assert span.length == 5
    with pytest.raises(ValueError, match=r"SampledProvenanceSpan.length must be an int >= 0"):
        dataclasses.replace(span, length=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        span.length = 3  # type: ignore[misc]


def test_replace_on_datum_converts_the_new_loss_inputs() -> None:
    datum = tinkex_types.Datum(
        model_input=tinkex_types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"target_tokens": [2, 3, 4]},
    )
    weighted = dataclasses.replace(
        datum, loss_fn_inputs={**datum.loss_fn_inputs, "weights": [1.0, 0.0, 1.0]}
    )
    assert isinstance(weighted.loss_fn_inputs["weights"], tinkex_types.TensorData)
    assert weighted.loss_fn_inputs["weights"].tolist() == [1.0, 0.0, 1.0]
    assert weighted.loss_fn_inputs["target_tokens"] is datum.loss_fn_inputs["target_tokens"]
    assert list(datum.loss_fn_inputs) == ["target_tokens"]


def test_asdict_and_fields_on_both_packages_agree() -> None:
    def build(types: Any) -> Any:
        return types.Datum(
            model_input=types.ModelInput.from_ints([1, 2]),
            loss_fn_inputs={},
            model_input_spans=[types.PromptProvenanceSpan(sequence_id="s", length=2)],
            loss_fn_input_spans=[types.SampledProvenanceSpan(sequence_id="s", offset=1, length=2)],
        )

    ours, theirs = (
        dataclasses.asdict(build(tinkex_types)),
        dataclasses.asdict(build(official_types)),
    )
    # The model input is a (pydantic-like) model on both sides: compare its dump.
    assert ours.pop("model_input").chunks[0].tokens == theirs.pop("model_input").chunks[0].tokens
    assert ours == theirs
    assert [f.name for f in dataclasses.fields(tinkex_types.Datum)] == [
        f.name for f in dataclasses.fields(official_types.Datum)
    ]


def test_tensor_data_dataclass_behaviour_matches() -> None:
    for types in (tinkex_types, official_types):
        td = types.TensorData(data=[1, 2, 3], dtype="int64")
        same = types.TensorData(data=[1, 2, 3], dtype="int64")
        assert td != same and td == td  # eq=False: identity, as tinker's
        assert hash(td) != hash(same)
        with pytest.raises(dataclasses.FrozenInstanceError):
            td.dtype = "float32"
    ours = tinkex_types.TensorData(data=[1, 2, 3], dtype="int64", shape=[3])
    theirs = official_types.TensorData(data=[1, 2, 3], dtype="int64", shape=[3])
    assert repr(ours) == repr(theirs)
    mine, official = dataclasses.asdict(ours), dataclasses.asdict(theirs)
    np.testing.assert_array_equal(mine.pop("_numpy"), official.pop("_numpy"))
    assert mine == official


def test_tensor_data_shape_is_kept_as_given() -> None:
    # tinker keeps shape=None for 1-D data given without one (the server reads it as 1-D).
    assert tinkex_types.TensorData(data=[1, 2], dtype="int64").shape is None
    assert official_types.TensorData(data=[1, 2], dtype="int64").shape is None
    # More dimensions: tinker keeps None too, and its wire message then has no shape (the
    # server would read 4 flat values); tinkex keeps the array's shape instead.
    two_d = tinkex_types.TensorData(data=np.zeros((2, 2)), dtype="float32")
    assert two_d.shape == [2, 2]
    assert two_d.to_numpy().shape == (2, 2)


# -- 10.6: no silent truncation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "dtype", "message"),
    [
        (
            [105.5],
            "int64",
            r"TensorData.data must hold whole numbers for an int64 tensor, got 105.5",
        ),
        (np.array([1.0, 2.25]), "int64", r"whole numbers .* got 2.25"),
        ([float("nan")], "int64", r"whole numbers .* got nan"),
        ([2**70], "int64", r"TensorData.data has 1180591620717411303424, outside int64"),
        (np.array([2**63], dtype=np.uint64), "int64", r"outside int64"),
        ([1e40], "float32", r"TensorData.data has 1e\+40, outside float32"),
        (["3"], "int64", r"TensorData.data must be int64 numbers"),
        ([None], "float32", r"TensorData.data must be float32 numbers"),
        ([1, [2]], "int64", r"TensorData.data must be numbers in a flat or rectangular list"),
    ],
)
def test_tensor_data_rejects_lossy_values(data: Any, dtype: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tinkex_types.TensorData(data=data, dtype=dtype)  # type: ignore[arg-type]


def test_tensor_data_accepts_exact_conversions() -> None:
    assert tinkex_types.TensorData(data=[1.0, 2.0], dtype="int64").data == [1, 2]
    assert tinkex_types.TensorData(data=[True, 3], dtype="int64").data == [1, 3]
    assert tinkex_types.TensorData(data=np.array([7], np.int32), dtype="int64").data == [7]
    assert tinkex_types.TensorData(data=[0.1], dtype="float32").data == [np.float32(0.1)]
    assert tinkex_types.TensorData(data=[float("inf")], dtype="float32").data == [float("inf")]


def test_datum_list_loss_inputs_are_not_truncated() -> None:
    with pytest.raises(
        ValueError, match=r"Datum.loss_fn_inputs\['target_tokens'\] must hold whole"
    ):
        tinkex_types.Datum(
            model_input=tinkex_types.ModelInput.from_ints([1]),
            loss_fn_inputs={"target_tokens": [1.5]},
        )


# -- 10.6: token ids and max_tokens ------------------------------------------------------------

MAX_ID = 2**32 - 1


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda t: t.EncodedTextChunk(tokens=[5, -1]),
            r"EncodedTextChunk.tokens\[1\] must be a token id in 0..4294967295, got -1",
        ),
        (
            lambda t: t.ModelInput.from_ints([2**32]),
            r"EncodedTextChunk.tokens\[0\] must be a token id in 0..4294967295, got 4294967296",
        ),
        (lambda t: t.ModelInput.from_ints([2**70]), r"tokens\[0\] must be a token id"),
        # (tinker rejects this one too; the others it accepts)
        (lambda t: t.EncodedTextChunk(tokens=[1.5]), r"tokens\[0\]: expected an integer"),
        (lambda t: t.SamplingParams(stop=[7, -3]), r"SamplingParams.stop\[1\] must be a token id"),
        (
            lambda t: t.Datum(
                model_input=t.ModelInput.from_ints([1]), loss_fn_inputs={"target_tokens": [-100]}
            ),
            r"Datum.loss_fn_inputs\['target_tokens'\] must hold token ids in 0..4294967295, "
            r"got -100",
        ),
        (
            lambda t: t.Datum(
                model_input=t.ModelInput.from_ints([1]),
                loss_fn_inputs={"target_tokens": np.array([2**40])},  # beyond 32 bits
            ),
            r"target_tokens'\] must hold token ids .* got 1099511627776",
        ),
        (
            lambda t: t.SampleRequest(
                prompt=t.ModelInput.from_ints([1, 2]),
                sampling_params=t.SamplingParams(max_tokens=1),
                target_prompt_logprobs={"data": [-2, 4], "dtype": "int64", "shape": [1, 2]},
            ),
            r"SampleRequest.target_prompt_logprobs must hold token ids in -1..4294967295, got -2",
        ),
        (lambda t: t.SamplingParams(max_tokens=0), r"SamplingParams.max_tokens must be >= 1"),
    ],
)
def test_bad_token_ids_and_max_tokens_are_rejected(build: Any, message: str) -> None:
    with pytest.raises(tinkex_types.ValidationError, match=message):
        build(tinkex_types)
    # The official SDK accepts these without a word (and fails later, or never).
    if "expected an integer" not in message:
        build(official_types)


def test_valid_token_ids_are_kept() -> None:
    chunk = tinkex_types.EncodedTextChunk(tokens=[0, MAX_ID])
    assert chunk.tokens == [0, MAX_ID]
    assert tinkex_types.EncodedTextChunk(tokens=np.array([3, 4])).tokens == [3, 4]
    assert tinkex_types.EncodedTextChunk(tokens=(1, 2)).tokens == (1, 2)  # tuples stay, as tinker's
    assert tinkex_types.SamplingParams(stop=[1, 2], max_tokens=1).stop == [1, 2]
    request = tinkex_types.SampleRequest(
        prompt=tinkex_types.ModelInput.from_ints([1, 2]),
        sampling_params=tinkex_types.SamplingParams(max_tokens=1),
        target_prompt_logprobs=tinkex_types.TensorData(data=[-1, 4], dtype="int64", shape=[1, 2]),
    )
    assert request.target_prompt_logprobs is not None
