"""The server's fast datum reader (tinkex.types._batch_decode) gives exactly the arrays of the
general reader, on random batches, on bodies the official SDK writes and on the edge cases; and
leaves everything else (and every malformed datum) to the general reader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinkex.types import (
    Datum,
    DmelChunk,
    EncodedTextChunk,
    ForwardBackwardInput,
    ForwardBackwardRequest,
    ImageChunk,
    ModelInput,
    PromptProvenanceSpan,
    TensorData,
    _batch_decode,
    _proto,
    _proto_request,
)

INT64 = np.iinfo(np.int64)


def _general(body: bytes) -> _proto.ArrayForwardBackward:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_proto_request, "plain_datum_arrays", lambda data: None)
        patch.setattr(_proto_request, "plain_columns", lambda datums: None)
        return _proto.decode_forward_backward_arrays(body)


def _without_columns(body: bytes) -> _proto.ArrayForwardBackward:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_proto_request, "plain_columns", lambda datums: None)
        return _proto.decode_forward_backward_arrays(body)


def _assert_same_arrays(body: bytes) -> _proto.ArrayForwardBackward:
    fast = _proto.decode_forward_backward_arrays(body)
    for slower in (_without_columns(body), _general(body)):
        _assert_same_request(fast, slower)
    if fast.columns is not None:  # the per-datum arrays are the columns' runs
        columns = fast.columns
        assert columns.lengths.tolist() == [d.tokens.size for d in fast.data]
        np.testing.assert_array_equal(columns.tokens, np.concatenate([d.tokens for d in fast.data]))
        for name, values in columns.loss_fn_inputs.items():
            joined = np.concatenate([d.loss_fn_inputs[name] for d in fast.data])
            assert values.dtype == joined.dtype
            np.testing.assert_array_equal(values, joined)
    return fast


def _assert_same_request(
    fast: _proto.ArrayForwardBackward, general: _proto.ArrayForwardBackward
) -> None:
    assert (fast.model_id, fast.seq_id, fast.loss_fn, fast.loss_fn_config) == (
        general.model_id,
        general.seq_id,
        general.loss_fn,
        general.loss_fn_config,
    )
    assert len(fast.data) == len(general.data)
    for a, b in zip(fast.data, general.data, strict=True):
        assert (a.non_text, a.model_input_spans, a.loss_fn_input_spans) == (
            b.non_text,
            b.model_input_spans,
            b.loss_fn_input_spans,
        )
        for x, y in [(a.tokens, b.tokens)] + [
            (a.loss_fn_inputs[k], b.loss_fn_inputs[k]) for k in b.loss_fn_inputs
        ]:
            assert (x.dtype, x.shape, x.flags.writeable) == (y.dtype, y.shape, y.flags.writeable)
            np.testing.assert_array_equal(x, y)
        assert list(a.loss_fn_inputs) == list(b.loss_fn_inputs)


def _body(data: list[Datum]) -> bytes:
    request = ForwardBackwardRequest(ForwardBackwardInput(data, "cross_entropy"), "m-1", 3)
    return _proto.encode_forward_backward_request(request)


def _random_datum(rng: np.random.Generator) -> Datum:
    chunks: list[Any] = [
        EncodedTextChunk(tokens=rng.integers(0, 200_000, int(rng.integers(0, 2000))).tolist())
        for _ in range(int(rng.integers(1, 4)))
    ]
    n = sum(len(c.tokens) for c in chunks)
    inputs: dict[str, Any] = {
        "target_tokens": TensorData.from_numpy(rng.integers(0, 200_000, n)),
        "weights": TensorData.from_numpy(rng.random(n, dtype=np.float32)),
        "counts": TensorData.from_numpy(rng.integers(INT64.min, INT64.max, (n, 2))),
    }
    return Datum(model_input=ModelInput(chunks=chunks), loss_fn_inputs=inputs)


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_read_the_same(seed: int) -> None:
    rng = np.random.default_rng(seed)
    _assert_same_arrays(_body([_random_datum(rng) for _ in range(int(rng.integers(1, 30)))]))


def test_edge_cases_read_the_same() -> None:
    specials = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32)
    got = _assert_same_arrays(
        _body(
            [
                Datum(model_input=ModelInput.empty()),
                Datum(model_input=ModelInput(chunks=[EncodedTextChunk(tokens=[])])),
                Datum(
                    model_input=ModelInput.from_ints([0, 2**31 - 1]),
                    loss_fn_inputs={
                        "weights": TensorData.from_numpy(specials),
                        "scalar": TensorData(np.array(2.5, dtype=np.float32), "float32", []),
                        "empty": TensorData(np.array([], dtype=np.float32), "float32", [0]),
                        "matrix": TensorData.from_numpy(np.arange(6).reshape(2, 3)),
                    },
                ),
            ]
        )
    )
    assert got.data[2].loss_fn_inputs["matrix"].shape == (2, 3)
    assert got.data[2].tokens.dtype == np.int64


def test_other_datums_are_left_to_the_general_reader() -> None:
    sparse = np.zeros((4, 6), dtype=np.float32)
    sparse[1, 2] = 1.0
    others = [
        Datum(
            model_input=ModelInput(
                chunks=[
                    EncodedTextChunk(tokens=[1, 2]),
                    ImageChunk(data=b"\x89PNG", format="png", expected_tokens=4),
                    DmelChunk(dmel=b"\x01\x01\x05abcde"),
                ]
            ),
        ),
        Datum(
            model_input=ModelInput.from_ints([1, 2, 3]),
            loss_fn_inputs={"weights": TensorData.from_numpy(sparse).sparsify()},
        ),
        Datum(
            model_input=ModelInput.from_ints([1, 2, 3]),
            model_input_spans=[PromptProvenanceSpan(sequence_id="s", offset=0, length=3)],
            loss_fn_input_spans=[],
        ),
    ]
    got = _assert_same_arrays(_body(others))
    assert got.data[0].non_text == "image"
    for datum in others:
        message = _datum_message(_body([datum]))
        assert _batch_decode.plain_datum_arrays(memoryview(message)) is None


def _datum_message(body: bytes) -> bytes:
    """The first ``data`` entry of a request body (field 3)."""
    from tinkex.types._proto_wire import iter_fields

    for number, _, value in iter_fields(body, "ForwardBackwardRequest"):
        if number == 3:
            assert isinstance(value, memoryview)
            return bytes(value)
    raise AssertionError("no datum")


@pytest.mark.parametrize(
    "tail",
    [
        b"\x18\x01",  # a second dtype field: the general reader's "last one wins"
        b"\x20\x03",  # an unpacked shape dimension
        b"\x28\x01",  # an unknown field
    ],
)
def test_unusual_tensor_layouts_read_the_same(tail: bytes) -> None:
    datum = Datum(
        model_input=ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={"w": TensorData.from_numpy(np.ones(3, dtype=np.float32))},
    )
    message = _datum_message(_body([datum]))
    # Rebuild the datum with ``tail`` appended to its tensor (the entry's last field).
    chunk_size = message[1] + 2
    entry = message[chunk_size + 2 :]
    tensor = entry[5:] + tail
    entry = b"\x0a\x01w\x12" + bytes([len(tensor)]) + tensor
    changed = message[:chunk_size] + b"\x12" + bytes([len(entry)]) + entry
    assert _batch_decode.plain_datum_arrays(memoryview(changed)) is None
    body = b"\x0a\x03m-1\x1a" + bytes([len(changed)]) + changed
    if tail == b"\x20\x03":
        with pytest.raises(ValueError, match="shape"):
            _general(body)
    else:
        _assert_same_arrays(body)


def test_official_sdk_bodies_read_the_same() -> None:
    pb: Any = pytest.importorskip("tinker.proto.tinker_public_pb2")
    rng = np.random.default_rng(7)
    msg = pb.ForwardBackwardRequest(model_id="m", seq_id=2, loss_fn="cross_entropy")
    for _ in range(5):
        d = msg.data.add()
        d.model_input.add().encoded_text.tokens = rng.integers(0, 1000, 50, "<i4").tobytes()
        d.model_input.add().encoded_text.tokens = rng.integers(0, 1000, 7, "<i4").tobytes()
        for name, values, dtype in [
            ("target_tokens", rng.integers(0, 1000, 57, "<i8"), pb.DTYPE_INT64),
            ("weights", rng.random(57, dtype=np.float32), pb.DTYPE_FLOAT32),
            ("ids", rng.integers(0, 9, 57, "<i4"), pb.DTYPE_INT32),
        ]:
            tensor = d.loss_fn_inputs[name]
            tensor.dense, tensor.dtype = values.tobytes(), dtype
            tensor.shape.append(57)
    got = _assert_same_arrays(msg.SerializeToString())
    assert got.data[0].loss_fn_inputs["ids"].dtype == np.int64  # widened by the general reader


def _plain_datum(tokens: list[int], **inputs: np.ndarray) -> Datum:
    return Datum(
        model_input=ModelInput.from_ints(tokens),
        loss_fn_inputs={name: TensorData.from_numpy(v) for name, v in inputs.items()},
    )


def test_a_batch_of_plain_datums_is_read_as_columns() -> None:
    rng = np.random.default_rng(3)
    data = []
    for n in (5, 0, 300, 1):
        data.append(
            Datum(
                # two text chunks: their tokens join in the datum's run
                model_input=ModelInput(
                    chunks=[
                        EncodedTextChunk(tokens=rng.integers(0, 2**31 - 1, n).tolist()),
                        EncodedTextChunk(tokens=[7]),
                    ]
                ),
                loss_fn_inputs={
                    "target_tokens": TensorData.from_numpy(rng.integers(0, 2**32, n + 1)),
                    "weights": TensorData.from_numpy(rng.random(n + 1, dtype=np.float32)),
                },
            )
        )
    got = _assert_same_arrays(_body(data))
    assert got.columns is not None
    assert got.columns.lengths.tolist() == [6, 1, 301, 2]
    assert list(got.columns.loss_fn_inputs) == ["target_tokens", "weights"]
    assert got.columns.tokens.dtype == np.int64


@pytest.mark.parametrize(
    "second",
    [
        _plain_datum([1, 2], target_tokens=np.array([2, 3])),  # other input names
        _plain_datum([1, 2], w=np.array([2, 3])),  # int64 where the first has float32
        _plain_datum([1, 2], w=np.ones(3, dtype=np.float32)),  # not one value per token
        _plain_datum([1, 2], w=np.ones((2, 1), dtype=np.float32)),  # not 1-D
        Datum(
            model_input=ModelInput.from_ints([1, 2]),
            model_input_spans=[PromptProvenanceSpan(sequence_id="s", offset=0, length=2)],
            loss_fn_input_spans=[],
        ),
    ],
)
def test_batches_that_are_not_uniform_are_read_per_datum(second: Datum) -> None:
    first = _plain_datum([5, 6, 7], w=np.ones(3, dtype=np.float32))
    got = _assert_same_arrays(_body([first, second]))
    assert got.columns is None


def test_datums_of_a_seen_layout_read_the_same() -> None:
    rng = np.random.default_rng(11)
    data = [
        _plain_datum(
            rng.integers(0, 1000, n).tolist(),
            target_tokens=rng.integers(0, 1000, n),
            weights=rng.random(n, dtype=np.float32),
        )
        for n in (3, 3, 5, 3, 5, 1024, 1024)
    ]
    got = _assert_same_arrays(_body(data))
    assert got.columns is not None
    assert got.columns.lengths.tolist() == [3, 3, 5, 3, 5, 1024, 1024]


def test_a_datum_of_the_same_size_but_other_framing_is_read_again() -> None:
    # same byte size as the first, but another input name: not the first datum's layout
    first = _plain_datum([1, 2, 3], wa=np.ones(3, dtype=np.float32))
    second = _plain_datum([4, 5, 6], wb=np.ones(3, dtype=np.float32))
    assert len(_datum_message(_body([first]))) == len(_datum_message(_body([second])))
    assert _assert_same_arrays(_body([first, second])).columns is None
    again = _plain_datum([4, 5, 6], wa=np.zeros(3, dtype=np.float32))
    got = _assert_same_arrays(_body([first, again]))
    assert got.columns is not None and got.columns.lengths.tolist() == [3, 3]
