"""``TensorData``: a dense or CSR-sparse tensor of int64 or float32 values.

The tensor keeps a numpy array internally (numpy is imported on first use, not when
``tinkex`` is imported). ``data`` gives the values as a flat Python list, as in the official SDK.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["TensorData", "TensorDtype"]

TensorDtype = Literal["int64", "float32"]
_DTYPES: tuple[str, ...] = ("int64", "float32")
# numpy dtype strings that already are a wire dtype (native little-endian)
_EXACT: dict[str, TensorDtype] = {"<f4": "float32", "<i8": "int64"}


def _np() -> Any:
    import numpy

    return numpy


def _index_list(name: str, value: Any) -> list[int] | None:
    if value is None:
        return None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise TypeError(f"TensorData.{name} must be a list of ints, got {value!r:.80}")
    return list(value)


class TensorData:
    """A tensor on the wire: ``dtype`` ("int64" or "float32"), ``shape`` and values.

    Dense tensors hold ``prod(shape)`` values. Sparse tensors are 2-D CSR: ``data`` holds the
    stored values, ``sparse_crow_indices`` (rows + 1 entries) and ``sparse_col_indices`` (one per
    value) locate them; absent cells read as ``pad_value`` when densified.

    Example:
        >>> TensorData(data=[1, 2, 3], dtype="int64", shape=[3]).tolist()
        [1, 2, 3]
    """

    __slots__ = ("_values", "dtype", "shape", "sparse_col_indices", "sparse_crow_indices")

    dtype: TensorDtype
    shape: list[int] | None
    sparse_crow_indices: list[int] | None
    sparse_col_indices: list[int] | None

    def __init__(
        self,
        data: Any = None,
        dtype: TensorDtype | None = None,
        shape: Sequence[int] | None = None,
        sparse_crow_indices: Any = None,
        sparse_col_indices: Any = None,
    ) -> None:
        if dtype is None:
            raise TypeError("TensorData requires dtype ('int64' or 'float32')")
        if dtype not in _DTYPES:
            raise ValueError(f"TensorData.dtype must be 'int64' or 'float32', got {dtype!r}")
        np = _np()
        if data is None:
            data = []
        if isinstance(data, (list, tuple)) and data and isinstance(data[0], (list, tuple)):
            raise ValueError(
                "TensorData.data must be flat (pass shape=...) or a numpy array; got nested lists"
            )
        try:
            values = np.asarray(data, dtype=np.dtype(dtype))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"TensorData.data cannot be read as {dtype}: {exc}") from None
        crow = _index_list("sparse_crow_indices", sparse_crow_indices)
        col = _index_list("sparse_col_indices", sparse_col_indices)
        shape_list = None if shape is None else [int(s) for s in shape]
        if shape_list is not None and any(s < 0 for s in shape_list):
            raise ValueError(f"TensorData.shape must be non-negative, got {shape_list}")
        if (crow is None) != (col is None):
            raise ValueError("TensorData sparse tensors need both crow and col indices")
        if crow is not None and col is not None:
            values = values.reshape(-1)
            if shape_list is None or len(shape_list) != 2:
                raise ValueError(f"sparse TensorData must be 2-D with a shape, got {shape_list}")
            if len(crow) != shape_list[0] + 1 or len(col) != values.size:
                raise ValueError(
                    f"sparse TensorData indices do not match: {len(crow)} crow indices for "
                    f"{shape_list[0]} rows, {len(col)} col indices for {values.size} values"
                )
        else:
            if shape_list is None:
                shape_list = list(values.shape) if values.ndim != 1 else [values.size]
            elif math.prod(shape_list) != values.size:
                raise ValueError(
                    f"TensorData.shape {shape_list} needs {math.prod(shape_list)} values, "
                    f"got {values.size}"
                )
            values = values.reshape(-1)
        self.dtype = dtype
        self.shape = shape_list
        self.sparse_crow_indices = crow
        self.sparse_col_indices = col
        self._values = values

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, array: npt.ArrayLike) -> TensorData:
        """Wrap a numpy array: float kinds become float32, signed ints int64."""
        np = _np()
        arr = np.asarray(array)
        exact = _EXACT.get(arr.dtype.str)
        if exact is not None:  # already float32/int64: no conversion, nothing to check
            return cls._trusted(arr.reshape(-1), exact, list(arr.shape))
        if arr.dtype.kind == "f":
            dtype: TensorDtype = "float32"
        elif arr.dtype.kind == "i":
            dtype = "int64"
        else:
            raise ValueError(
                f"TensorData.from_numpy supports float and signed int arrays, got {arr.dtype}"
            )
        return cls(arr, dtype, list(arr.shape))

    @classmethod
    def from_torch(cls, tensor: Any) -> TensorData:
        """Wrap a torch tensor (bfloat16 widened to float32; bool/unsigned rejected)."""
        import torch

        t = tensor.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        if t.dtype == torch.bool or t.dtype == torch.uint8:
            raise ValueError(f"TensorData.from_torch does not support {t.dtype}")
        return cls.from_numpy(t.numpy())

    @classmethod
    def from_torch_sparse(cls, tensor: Any, pad_value: int = 0) -> TensorData:
        """Wrap a 2-D torch tensor, stored as CSR when that is smaller than dense."""
        dense = cls.from_torch(tensor)
        return dense.sparsify(pad_value)

    def sparsify(self, pad_value: int = 0) -> TensorData:
        """Return a CSR copy of a 2-D dense tensor when CSR is smaller, else ``self``."""
        _check_pad(pad_value)
        if self.is_sparse or self.shape is None or len(self.shape) != 2:
            return self
        np = _np()
        rows, cols = self.shape
        dense = self._values.reshape(rows, cols)
        mask = dense != pad_value
        nnz = int(mask.sum())
        if (rows + 1) + 2 * nnz >= rows * cols:
            return self
        crow = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
        col = np.nonzero(mask)[1].astype(np.int64)
        return TensorData(dense[mask], self.dtype, [rows, cols], crow, col)

    # -- access ----------------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        """True when stored in CSR form."""
        return self.sparse_crow_indices is not None

    @property
    def data(self) -> list[int] | list[float]:
        """The stored values as a flat Python list."""
        values: list[int] | list[float] = self._values.tolist()
        return values

    @property
    def nbytes(self) -> int:
        """Bytes this tensor takes on the wire: the stored values (+8 per sparse CSR index)."""
        size = int(self._values.nbytes)
        if self.sparse_crow_indices is not None:
            size += 8 * (len(self.sparse_crow_indices) + len(self.sparse_col_indices or ()))
        return size

    @classmethod
    def _trusted(
        cls, values: np.ndarray[Any, Any], dtype: TensorDtype, shape: list[int]
    ) -> TensorData:
        """A dense tensor from a flat array already of ``dtype`` whose size matches ``shape``.

        Skips the checks of ``__init__``; for decoders that have validated the data.
        """
        tensor = object.__new__(cls)
        object.__setattr__(tensor, "dtype", dtype)
        object.__setattr__(tensor, "shape", shape)
        object.__setattr__(tensor, "sparse_crow_indices", None)
        object.__setattr__(tensor, "sparse_col_indices", None)
        object.__setattr__(tensor, "_values", values)
        return tensor

    def values_array(self) -> np.ndarray[Any, Any]:
        """The stored values as a 1-D numpy array (no copy; do not mutate)."""
        values: np.ndarray[Any, Any] = self._values
        return values

    def to_numpy(self, pad_value: int = 0) -> np.ndarray[Any, Any]:
        """The dense array (CSR tensors are densified with ``pad_value``)."""
        _check_pad(pad_value)
        numpy = _np()
        shape = self.shape if self.shape is not None else [self._values.size]
        if not self.is_sparse:
            dense_view: np.ndarray[Any, Any] = self._values.reshape(shape)
            return dense_view
        assert self.sparse_crow_indices is not None and self.sparse_col_indices is not None
        rows, cols = shape
        dense = numpy.full((rows, cols), pad_value, dtype=self._values.dtype)
        crow = numpy.asarray(self.sparse_crow_indices, dtype=numpy.int64)
        row_of = numpy.repeat(numpy.arange(rows), numpy.diff(crow))
        dense[row_of, numpy.asarray(self.sparse_col_indices, dtype=numpy.int64)] = self._values
        result: np.ndarray[Any, Any] = dense
        return result

    def to_torch(self, pad_value: int = 0) -> Any:
        """The dense tensor as ``torch.Tensor``."""
        import torch

        return torch.from_numpy(self.to_numpy(pad_value).copy())

    def tolist(self, pad_value: int = 0) -> list[Any]:
        """The dense tensor as (nested) Python lists."""
        values: list[Any] = self.to_numpy(pad_value).tolist()
        return values

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __repr__(self) -> str:
        kind = "sparse " if self.is_sparse else ""
        preview = self._values[:8].tolist()
        more = ", ..." if self._values.size > 8 else ""
        return f"TensorData({kind}{self.dtype}, shape={self.shape}, data={preview}{more})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            TensorData,
            (
                self._values,
                self.dtype,
                self.shape,
                self.sparse_crow_indices,
                self.sparse_col_indices,
            ),
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_values"):
            raise AttributeError(f"TensorData is immutable; cannot set {name!r}")
        object.__setattr__(self, name, value)


def _check_pad(pad_value: object) -> None:
    if not isinstance(pad_value, int) or isinstance(pad_value, bool):
        raise TypeError(f"pad_value must be an int, got {pad_value!r}")
