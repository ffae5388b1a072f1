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
)

INT64 = np.iinfo(np.int64)


def _general(body: bytes) -> _proto.ArrayForwardBackward:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_proto, "plain_datum_arrays", lambda data: None)
        return _proto.decode_forward_backward_arrays(body)


def _assert_same_arrays(body: bytes) -> _proto.ArrayForwardBackward:
    fast, general = _proto.decode_forward_backward_arrays(body), _general(body)
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
    return fast


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
