"""The ``Tensor`` message and the array helpers every message of the protobuf codec shares.

Arrays travel as raw little-endian bytes: :func:`raw_view` gives the bytes of an array without a
copy when its dtype and layout allow, :func:`from_wire` reads them back with ``np.frombuffer``
(widening int32 to int64 and bfloat16 to float32). numpy is imported on first use.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from tinkex.types._proto_wire import (
    Buffer,
    ProtoWriter,
    as_bytes,
    as_enum,
    as_message,
    as_packed_int64,
    iter_fields,
)
from tinkex.types._tensor import TensorData

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

# -- enums --------------------------------------------------------------------------------------
DTYPE_UNSPECIFIED: Final = 0
DTYPE_FLOAT32: Final = 1
DTYPE_INT64: Final = 2
DTYPE_INT32: Final = 3
DTYPE_BFLOAT16: Final = 4

DTYPE_TO_WIRE: Final[dict[str, int]] = {"float32": DTYPE_FLOAT32, "int64": DTYPE_INT64}
WIRE_NUMPY: Final[dict[int, str]] = {
    DTYPE_FLOAT32: "<f4",
    DTYPE_INT64: "<i8",
    DTYPE_INT32: "<i4",
    DTYPE_BFLOAT16: "<u2",
}
# Integer widths collapse to "int64" and bfloat16 to "float32" (TensorData's two dtypes).
WIRE_LABEL: Final[dict[int, str]] = {
    DTYPE_FLOAT32: "float32",
    DTYPE_INT64: "int64",
    DTYPE_INT32: "int64",
    DTYPE_BFLOAT16: "float32",
}
LABEL_NUMPY: Final[dict[str, str]] = {"float32": "<f4", "int64": "<i8"}
#: numpy dtype strings (native little-endian) of the two TensorData dtypes -> their label
NUMPY_LABEL: Final[dict[str, str]] = {"<f4": "float32", "<i8": "int64"}

# Field names per message, for error messages of the wire layer.
_TENSOR_FIELDS: Final = {1: "dense", 2: "sparse_csr", 3: "dtype", 4: "shape"}
_CSR_FIELDS: Final = {1: "values", 2: "crow_indices", 3: "col_indices"}


def lazy_numpy() -> Any:
    import numpy

    return numpy


def raw_view(arr: NDArray, wire: str) -> Buffer:
    """A zero-copy byte view of ``arr`` in the little-endian dtype ``wire`` (copies only when
    the dtype or layout differs)."""
    if arr.dtype.str != wire:
        arr = arr.astype(wire)
    if not arr.flags.c_contiguous:
        arr = lazy_numpy().ascontiguousarray(arr)
    return arr.data.cast("B") if arr.size else b""


def from_wire(where: str, raw: Buffer, wire_dtype: int) -> NDArray:
    """Copy a raw little-endian array into a fresh native array, widening int32 -> int64 and
    bfloat16 -> float32."""
    np = lazy_numpy()
    code = WIRE_NUMPY.get(wire_dtype)
    if code is None:
        raise ValueError(f"{where}: unsupported DType {wire_dtype}")
    itemsize = np.dtype(code).itemsize
    n = raw.nbytes if isinstance(raw, memoryview) else len(raw)
    if n % itemsize:
        raise ValueError(
            f"{where}: {n} bytes is not a multiple of the {code[1:]} item size {itemsize}"
        )
    arr = np.frombuffer(raw, dtype=code)
    out: NDArray
    if wire_dtype == DTYPE_BFLOAT16:
        out = (arr.astype(np.uint32) << 16).view(np.float32)
    elif wire_dtype == DTYPE_INT32:
        out = arr.astype(np.int64)
    else:
        out = arr.astype(_native(code))
    return out


def _native(code: str) -> Any:
    return lazy_numpy().dtype(code).newbyteorder("=")


def wrap_error(where: str, exc: Exception) -> ValueError:
    return ValueError(f"{where}: {exc}")


def write_tensor(td: TensorData, where: str) -> ProtoWriter:
    wire = DTYPE_TO_WIRE.get(td.dtype)
    if wire is None:
        raise ValueError(f"{where}.dtype: cannot encode TensorData dtype {td.dtype!r}")
    values = raw_view(td.values_array(), LABEL_NUMPY[td.dtype])
    w = ProtoWriter()
    if td.sparse_crow_indices is not None:
        np = lazy_numpy()
        csr = ProtoWriter()
        csr.bytes_field(1, values)
        csr.bytes_field(2, raw_view(np.asarray(td.sparse_crow_indices), "<i8"))
        csr.bytes_field(3, raw_view(np.asarray(td.sparse_col_indices, dtype=np.int64), "<i8"))
        w.message(2, csr)
    else:
        w.bytes_field(1, values, always=True)  # oneof member: present even when empty
    w.enum(3, wire)
    if td.shape is not None:
        w.packed_int64(4, td.shape)
    return w


def read_tensor(data: memoryview, where: str) -> TensorData:
    label, values, shape, crow, col = _read_tensor_parts(data, where)
    try:
        if crow is not None:
            return TensorData(values, label, shape, crow, col)  # type: ignore[arg-type]
        # An empty shape is a scalar only when there is exactly one value.
        return TensorData(
            values,
            label,  # type: ignore[arg-type]
            shape if shape or values.size == 1 else None,
        )
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise wrap_error(where, exc) from exc


def read_tensor_array(data: memoryview, where: str) -> NDArray:
    """A ``Tensor`` message as one dense numpy array (CSR densified with zeros)."""
    _label, values, shape, crow, col = _read_tensor_parts(data, where)
    np = lazy_numpy()
    if crow is None or col is None:
        if not shape:
            return values
        if math.prod(shape) != values.size:
            raise ValueError(f"{where}: shape {shape} does not match {values.size} values")
        reshaped: NDArray = values.reshape(shape)
        return reshaped
    if len(shape) != 2 or crow.size != shape[0] + 1 or col.size != values.size:
        raise ValueError(f"{where}: inconsistent sparse_csr indices for shape {shape}")
    if crow.size and (crow[0] != 0 or crow[-1] != values.size or np.any(np.diff(crow) < 0)):
        raise ValueError(f"{where}: sparse_csr crow_indices are not a valid CSR row index")
    if col.size and (col.min() < 0 or col.max() >= shape[1]):
        raise ValueError(f"{where}: sparse_csr col_indices out of range for shape {shape}")
    dense: NDArray = np.zeros(shape, dtype=values.dtype)
    dense[np.repeat(np.arange(shape[0]), np.diff(crow)), col] = values
    return dense


def _read_tensor_parts(
    data: memoryview, where: str
) -> tuple[str, NDArray, list[int], NDArray | None, NDArray | None]:
    """``(dtype label, values, shape, crow, col)`` of a ``Tensor``; crow/col None when dense."""
    dense: memoryview | None = None
    csr: memoryview | None = None
    dtype = DTYPE_UNSPECIFIED
    shape: list[int] = []
    for fn, wt, v in iter_fields(data, where, _TENSOR_FIELDS):
        if fn == 1:
            dense, csr = as_bytes(f"{where}.dense", wt, v), None
        elif fn == 2:
            csr, dense = as_message(f"{where}.sparse_csr", wt, v), None
        elif fn == 3:
            dtype = as_enum(f"{where}.dtype", wt, v)
        elif fn == 4:
            shape.extend(as_packed_int64(f"{where}.shape", wt, v))
    label = WIRE_LABEL.get(dtype)
    if label is None:
        raise ValueError(f"{where}.dtype: unsupported DType {dtype}")
    try:
        if csr is not None:
            values_raw: Buffer = b""
            crow_raw: Buffer = b""
            col_raw: Buffer = b""
            for fn, wt, v in iter_fields(csr, f"{where}.sparse_csr", _CSR_FIELDS):
                if fn == 1:
                    values_raw = as_bytes(f"{where}.sparse_csr.values", wt, v)
                elif fn == 2:
                    crow_raw = as_bytes(f"{where}.sparse_csr.crow_indices", wt, v)
                elif fn == 3:
                    col_raw = as_bytes(f"{where}.sparse_csr.col_indices", wt, v)
            values = from_wire(f"{where}.sparse_csr.values", values_raw, dtype)
            crow = from_wire(f"{where}.sparse_csr.crow_indices", crow_raw, DTYPE_INT64)
            col = from_wire(f"{where}.sparse_csr.col_indices", col_raw, DTYPE_INT64)
            return label, values, shape, crow, col
        values = from_wire(f"{where}.dense", dense if dense is not None else b"", dtype)
        return label, values, shape, None, None
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(where):
            raise
        raise wrap_error(where, exc) from exc
