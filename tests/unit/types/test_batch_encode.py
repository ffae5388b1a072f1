"""The batch writer of forward/backward bodies (tinkex.types._batch_encode) writes exactly the
bytes of the general message writer, on random batches and on the edge cases."""

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
    ForwardRequest,
    ImageChunk,
    ModelInput,
    PromptProvenanceSpan,
    TensorData,
    _batch_encode,
    _proto,
    _proto_request,
)

INT64 = np.iinfo(np.int64)
INT32_MAX = 2**31 - 1


def _reference(request: ForwardBackwardRequest | ForwardRequest) -> bytes:
    """The body as the general writer alone writes it (every datum through ``_write_datum``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_batch_encode, "datum_pieces", lambda datum: None)
        return _proto.encode_forward_backward_request(request)


def _assert_same_bytes(data: list[Datum], **config: Any) -> None:
    fb_input = ForwardBackwardInput(data, "cross_entropy", config or None)
    for request in (
        ForwardBackwardRequest(fb_input, "model-1", 7),
        ForwardRequest(fb_input, "model-1", 8),
    ):
        fast = _proto.encode_forward_backward_request(request)
        assert fast == _reference(request)
        decoded = _proto.decode_forward_backward_request(fast)
        assert type(decoded) is type(request)


def _random_datum(rng: np.random.Generator) -> Datum:
    chunks: list[Any] = [
        EncodedTextChunk(tokens=rng.integers(0, 200_000, int(rng.integers(0, 3000))).tolist())
        for _ in range(int(rng.integers(1, 4)))
    ]
    n = sum(len(c.tokens) for c in chunks)
    inputs: dict[str, Any] = {
        "target_tokens": TensorData.from_numpy(rng.integers(0, 200_000, n)),
        "counts": TensorData.from_numpy(rng.integers(INT64.min, INT64.max, n)),
        "weights": TensorData.from_numpy(rng.random(n, dtype=np.float32)),
    }
    if rng.random() < 0.5:
        inputs["advantages"] = TensorData.from_numpy(rng.standard_normal((n, 2)))
    return Datum(model_input=ModelInput(chunks=chunks), loss_fn_inputs=inputs)


@pytest.mark.parametrize("seed", range(5))
def test_random_batches_match_the_general_writer(seed: int) -> None:
    rng = np.random.default_rng(seed)
    _assert_same_bytes([_random_datum(rng) for _ in range(int(rng.integers(1, 40)))])


def test_empty_batch_and_empty_datums() -> None:
    _assert_same_bytes([])
    _assert_same_bytes(
        [
            Datum(model_input=ModelInput.empty()),
            Datum(model_input=ModelInput(chunks=[EncodedTextChunk(tokens=[])])),
            Datum(
                model_input=ModelInput.from_ints([1]),
                loss_fn_inputs={"w": TensorData(np.array([], dtype=np.float32), "float32", [0])},
            ),
        ]
    )


def test_extreme_values_and_special_floats() -> None:
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 3.4e38, 1e-45], dtype=np.float32)
    _assert_same_bytes(
        [
            Datum(
                model_input=ModelInput.from_ints([0, INT32_MAX, 1]),
                loss_fn_inputs={
                    "target_tokens": TensorData.from_numpy(np.array([0, 2**32 - 1, 1])),
                    "counts": TensorData.from_numpy(
                        np.array([INT64.min, INT64.max, -1, 0], dtype=np.int64)
                    ),
                    "weights": TensorData.from_numpy(specials),
                    "scalar": TensorData(np.array(2.5, dtype=np.float32), "float32", []),
                },
            )
        ]
    )


def test_array_layouts_and_shapes() -> None:
    base = np.arange(12, dtype=np.float32)
    _assert_same_bytes(
        [
            Datum(
                model_input=ModelInput.from_ints([1, 2, 3]),
                loss_fn_inputs={
                    "strided": TensorData.from_numpy(base[::4]),
                    "big_endian": TensorData(np.array([1, 2, 3], dtype=">i8"), "int64", [3]),
                    "float64": TensorData(np.arange(3, dtype=np.float64), "float32", [3]),
                    "matrix": TensorData.from_numpy(base.reshape(3, 4).T),
                    "wide": TensorData(np.zeros(300, dtype=np.int64), "int64", [3, 100]),
                },
            )
        ]
    )


@pytest.mark.parametrize("tokens", [31, 32, 4095, 4096, 4097, 2**20])
def test_lengths_around_varint_boundaries(tokens: int) -> None:
    # 32 int32 ids = 128 bytes and 4096 ids = 16384 bytes: the first 2- and 3-byte lengths.
    _assert_same_bytes(
        [
            Datum(
                model_input=ModelInput.from_ints([5] * tokens),
                loss_fn_inputs={"weights": TensorData.from_numpy(np.ones(tokens, np.float32))},
            )
        ]
    )


def test_mixed_chunks_spans_and_sparse_tensors_take_the_general_writer() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    sparse = np.zeros((4, 6), dtype=np.float32)
    sparse[1, 2] = 1.0
    plain = Datum(
        model_input=ModelInput.from_ints([1, 2]), loss_fn_inputs={"target_tokens": [2, 3]}
    )
    others = [
        Datum(
            model_input=ModelInput(
                chunks=[
                    EncodedTextChunk(tokens=[1, 2]),
                    ImageChunk(data=png, format="png", expected_tokens=4),
                    EncodedTextChunk(tokens=[3]),
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
    for datum in others:
        assert _batch_encode.datum_pieces(datum) is None
    _assert_same_bytes([plain, *others, plain], temperature=0.5, mode="mean")


def test_pieces_join_to_the_general_datum_message() -> None:
    cases = [
        Datum(
            model_input=ModelInput(
                chunks=[EncodedTextChunk(tokens=[1, 300, 70000]), EncodedTextChunk(tokens=[])]
            ),
            loss_fn_inputs={
                "target_tokens": [2, 3, 4],
                "weights": np.array([1.0, 0.5, 0.0]),
                "advantages": TensorData.from_numpy(np.zeros((3,), dtype=np.float64)),
            },
        ),
        Datum(model_input=ModelInput.from_ints([5] * 200), loss_fn_inputs={}),
        Datum(
            model_input=ModelInput.from_ints([1, 2]),
            loss_fn_inputs={"m": TensorData.from_numpy(np.ones((2, 3), dtype=np.int64))},
        ),
    ]
    for datum in cases:
        found = _batch_encode.datum_pieces(datum)
        assert found is not None
        pieces, size = found
        joined = b"".join(pieces)
        assert joined == _proto_request._write_datum(datum, "d").getvalue()
        assert size == len(joined)


def test_ids_beyond_int32_are_reported_by_the_general_writer() -> None:
    datum = Datum(model_input=ModelInput.from_ints([1, INT32_MAX + 1]))
    assert _batch_encode.datum_pieces(datum) is None
    request = ForwardBackwardRequest(ForwardBackwardInput([datum], "cross_entropy"), "m", 1)
    with pytest.raises(ValueError, match=r"data\[0\]\.model_input\[0\]\.tokens: tokens must be"):
        _proto.encode_forward_backward_request(request)
