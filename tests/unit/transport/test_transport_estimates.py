"""Byte estimators (docs/protocol.md, "Forward/backward" and "Sampling"), duck-typed."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import numpy as np
import pytest

from tinkex._transport import (
    estimate_datum_bytes,
    estimate_sample_bytes,
    estimate_tensor_bytes,
)


def text(*tokens: int) -> Any:
    return NS(tokens=list(tokens), type="encoded_text")


def tensor(data: list[Any], dtype: str, shape: list[int] | None = None, **sparse: Any) -> Any:
    return NS(
        data=data,
        dtype=dtype,
        shape=shape,
        sparse_crow_indices=sparse.get("crow"),
        sparse_col_indices=sparse.get("col"),
    )


def test_sample_estimate_is_10_bytes_per_token_and_raw_length_otherwise() -> None:
    prompt = NS(
        chunks=[
            text(1, 2, 3),
            NS(data=b"\x89PNG" + bytes(96), format="png", type="image"),
            NS(location="s3://bucket/img.png", format="png", type="image_asset_pointer"),
            NS(dmel=bytes(40), type="dmel"),
        ]
    )
    assert estimate_sample_bytes(prompt) == 30 + 100 + len("s3://bucket/img.png") + 40


def test_datum_estimate_is_4_bytes_per_token_plus_loss_input_bytes() -> None:
    datum = NS(
        model_input=NS(chunks=[text(*range(10)), text(1, 2)]),
        loss_fn_inputs={
            "target_tokens": tensor(list(range(12)), "int64", [12]),
            "weights": tensor([1.0] * 12, "float32", [12]),
        },
    )
    assert estimate_datum_bytes(datum) == 4 * 12 + 8 * 12 + 4 * 12


def test_dense_tensor_bytes_come_from_shape_without_materialising() -> None:
    class Lazy:
        dtype = "float32"
        shape = (3, 4)
        sparse_crow_indices = None
        sparse_col_indices = None

        @property
        def data(self) -> list[float]:
            raise AssertionError("estimate must not build the flat list")

    assert estimate_tensor_bytes(Lazy()) == 48


def test_sparse_tensor_counts_values_and_int64_indices() -> None:
    sparse = tensor([5, 9], "int64", [4, 2], crow=[0, 0, 0, 1, 2], col=[0, 1])
    assert estimate_tensor_bytes(sparse) == 2 * 8 + 8 * (5 + 2)


def test_fallbacks_to_numpy_and_flat_data() -> None:
    via_numpy = NS(dtype=None, shape=None, to_numpy=lambda: np.zeros(5, dtype=np.float32))
    assert estimate_tensor_bytes(via_numpy) == 20
    no_shape = tensor([1, 2, 3], "int64")
    no_shape.to_numpy = lambda: np.array([1, 2, 3], dtype=np.int64)
    assert estimate_tensor_bytes(no_shape) == 24
    assert estimate_tensor_bytes(NS(data=[1.0, 2.0], dtype="float32", shape=None)) == 8
    assert estimate_tensor_bytes(np.zeros((2, 3), dtype=np.int64)) == 48  # plain arrays: nbytes


def test_enum_dtypes_and_chunk_length_fallback() -> None:
    class Dtype:
        value = "int64"

    assert estimate_tensor_bytes(tensor([0] * 3, Dtype(), [3])) == 24  # type: ignore[arg-type]
    assert estimate_sample_bytes(NS(chunks=[NS(length=7)])) == 70


def test_datum_without_loss_inputs() -> None:
    assert estimate_datum_bytes(NS(model_input=NS(chunks=[text(1)]), loss_fn_inputs={})) == 4


def test_real_tinkex_types_when_available() -> None:
    types = pytest.importorskip("tinkex.types")
    if not hasattr(types, "Datum"):
        pytest.skip("tinkex.types not written yet")
    datum = types.Datum(
        model_input=types.ModelInput.from_ints([1, 2, 3]),
        loss_fn_inputs={
            "target_tokens": types.TensorData.from_numpy(np.array([2, 3, 4], dtype=np.int64)),
            "weights": types.TensorData.from_numpy(np.ones(3, dtype=np.float32)),
        },
    )
    assert estimate_datum_bytes(datum) == 12 + 24 + 12
    assert estimate_sample_bytes(datum.model_input) == 30
