"""``TensorData``: a dense or CSR-sparse tensor of int64 or float32 values.

A frozen dataclass (as in the official SDK) that keeps a numpy array internally (numpy is
imported on first use, not when ``tinkex`` is imported). ``data`` gives the values as a flat
Python list, as in the official SDK.
"""

from __future__ import annotations

import dataclasses
import math
import operator
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


def _shape_list(shape: Any) -> list[int] | None:
    if shape is None:
        return None
    try:
        dims = [operator.index(s) for s in shape]
    except TypeError:
        raise TypeError(f"TensorData.shape must be a list of ints, got {shape!r:.80}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"TensorData.shape must be non-negative, got {dims}")
    return dims


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def as_values(
    data: Any, dtype: TensorDtype, where: str = "TensorData.data"
) -> np.ndarray[Any, Any]:
    """``data`` (list, nested list or array) as a numpy array of ``dtype``, never lossy.

    An array already of ``dtype`` is used as is (no copy). Otherwise the values are converted,
    and a value that would change is rejected naming ``where``: a fraction, NaN/inf or an int
    outside int64 for int64 tensors, a finite number that overflows float32 for float32
    tensors, and anything that is not a number (strings, None, ragged lists).
    """
    numpy = _np()
    target = numpy.dtype(dtype)
    source: np.ndarray[Any, Any]
    if data is None:
        source = numpy.empty(0, dtype=target)
    elif isinstance(data, numpy.ndarray):
        source = data
    else:
        if dtype == "float32":  # the common case in one conversion; anything odd re-checked
            with numpy.errstate(over="ignore", invalid="ignore"):
                try:
                    direct: np.ndarray[Any, Any] = numpy.asarray(data, dtype=target)
                except (TypeError, ValueError, OverflowError):
                    direct = None  # type: ignore[assignment]
            if direct is not None and direct.dtype == target and numpy.isfinite(direct).all():
                return direct
        try:
            source = numpy.asarray(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{where} must be numbers in a flat or rectangular list: {exc}"
            ) from None
    if source.dtype == target:
        return source
    kind = source.dtype.kind
    if kind == "O" and dtype == "float32":  # e.g. ints beyond int64: fine as float32
        flat = source.reshape(-1).tolist()
        if all(isinstance(v, (int, float)) for v in flat):
            source = numpy.asarray(flat, dtype=numpy.float64).reshape(source.shape)
            kind = "f"
    if kind not in "biuf":
        raise ValueError(f"{where} {_not_numbers(source, dtype)}, got {_preview(data)}")
    if kind == "f" and dtype == "int64":
        whole = numpy.isfinite(source) & (numpy.floor(source) == source)
        bad = ~(whole & (source >= _INT64_MIN) & (source < 2.0**63))
        if bad.any():
            raise ValueError(
                f"{where} must hold whole numbers for an int64 tensor, got {_first(source, bad)!r}"
                " (round it yourself, or use dtype='float32')"
            )
    elif kind == "u" and dtype == "int64" and source.size and int(source.max()) > _INT64_MAX:
        raise ValueError(f"{where} has {int(source.max())}, outside int64")
    with numpy.errstate(over="ignore"):
        values: np.ndarray[Any, Any] = source.astype(target)
    if dtype == "float32" and kind == "f" and numpy.isinf(values).any():
        overflow = numpy.isinf(values) & numpy.isfinite(source)
        if overflow.any():
            raise ValueError(
                f"{where} has {_first(source, overflow)!r}, outside float32 (it would become inf)"
            )
    return values


def _first(source: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> Any:
    """The first value of ``source`` where ``mask`` is set, as a Python number."""
    return source.reshape(-1)[int(mask.reshape(-1).argmax())].item()


def _not_numbers(source: np.ndarray[Any, Any], dtype: str) -> str:
    """Why an array of non-numeric dtype (object, str, ...) cannot be a ``dtype`` tensor."""
    if source.dtype.kind == "O" and dtype == "int64":
        for value in source.reshape(-1).tolist():
            if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
                return f"has {value}, outside int64"
    return f"must be {dtype} numbers (a flat or rectangular list or array)"


def _preview(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 80 else text[:77] + "..."


# slots: no attribute dict per tensor (a forward/backward output holds two per datum, and the
# cyclic GC walks each object that outlives a step); the weakref slot keeps what a plain class has.
@dataclasses.dataclass(frozen=True, eq=False, init=False, slots=True, weakref_slot=True)
class TensorData:
    """A tensor on the wire: ``dtype`` ("int64" or "float32"), ``shape`` and values.

    Dense tensors hold ``prod(shape)`` values. Sparse tensors are 2-D CSR: ``data`` holds the
    stored values, ``sparse_crow_indices`` (rows + 1 entries) and ``sparse_col_indices`` (one per
    value) locate them; absent cells read as ``pad_value`` when densified. Values are converted
    to ``dtype`` without loss or rejected (``[105.5]`` is not an int64 tensor). ``shape`` stays
    ``None`` when not given for 1-D data (the server reads it as 1-D), and is taken from the
    data when it has more dimensions. A frozen dataclass, compared by identity (as tinker's).

    Example:
        >>> TensorData(data=[1, 2, 3], dtype="int64", shape=[3]).tolist()
        [1, 2, 3]
    """

    dtype: TensorDtype
    shape: list[int] | None = None
    sparse_crow_indices: list[int] | None = None
    sparse_col_indices: list[int] | None = None
    # No default, as tinker's (init=False, so no generated __init__ cares).
    _numpy: np.ndarray[Any, Any] = dataclasses.field(repr=False)  # type: ignore[misc]

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
        values = as_values(data, dtype)
        crow = _index_list("sparse_crow_indices", sparse_crow_indices)
        col = _index_list("sparse_col_indices", sparse_col_indices)
        shape_list = _shape_list(shape)
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
        elif shape_list is None:
            if values.ndim > 1:  # tinker would send these values flat, without their shape
                shape_list = list(values.shape)
        elif math.prod(shape_list) != values.size:
            raise ValueError(
                f"TensorData.shape {shape_list} needs {math.prod(shape_list)} values, "
                f"got {values.size}"
            )
        else:
            values = values.reshape(shape_list)
        _set_fields(self, dtype, shape_list, crow, col, values)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, array: npt.ArrayLike) -> TensorData:
        """Wrap a numpy array: float kinds become float32, signed ints int64."""
        np = _np()
        arr = np.asarray(array)
        exact = _EXACT.get(arr.dtype.str)
        if exact is not None:  # already float32/int64: no conversion, nothing to check
            return cls._trusted(arr, exact, list(arr.shape))
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
        dense = self._numpy.reshape(rows, cols)
        mask = dense != pad_value
        nnz = int(mask.sum())
        if (rows + 1) + 2 * nnz >= rows * cols:
            return self
        crow = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int64)
        col = np.nonzero(mask)[1].astype(np.int64)
        return TensorData(dense[mask], self.dtype, [rows, cols], crow, col)

    @classmethod
    def _trusted(
        cls, values: np.ndarray[Any, Any], dtype: TensorDtype, shape: list[int]
    ) -> TensorData:
        """A dense tensor from an array already of ``dtype`` whose size matches ``shape``.

        Skips the checks of ``__init__``; for decoders that have validated the data.
        """
        tensor = object.__new__(cls)
        if values.ndim != 1 or len(shape) != 1:
            values = values.reshape(shape)
        _set_fields(tensor, dtype, shape, None, None, values)
        return tensor

    # -- access ----------------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        """True when stored in CSR form."""
        return self.sparse_crow_indices is not None

    @property
    def data(self) -> list[int] | list[float]:
        """The stored values as a flat Python list."""
        values: list[int] | list[float] = self.values_array().tolist()
        return values

    @property
    def nbytes(self) -> int:
        """Bytes this tensor takes on the wire: the stored values (+8 per sparse CSR index)."""
        size = int(self._numpy.nbytes)
        if self.sparse_crow_indices is not None:
            size += 8 * (len(self.sparse_crow_indices) + len(self.sparse_col_indices or ()))
        return size

    def values_array(self) -> np.ndarray[Any, Any]:
        """The stored values as a 1-D numpy array (no copy; do not mutate)."""
        values: np.ndarray[Any, Any] = self._numpy
        return values if values.ndim == 1 else values.reshape(-1)

    def to_numpy(self, pad_value: int = 0) -> np.ndarray[Any, Any]:
        """The dense array (CSR tensors are densified with ``pad_value``; no copy when dense)."""
        _check_pad(pad_value)
        if not self.is_sparse:
            dense_view: np.ndarray[Any, Any] = self._numpy
            return dense_view
        assert self.shape is not None
        assert self.sparse_crow_indices is not None and self.sparse_col_indices is not None
        numpy = _np()
        rows, cols = self.shape
        dense = numpy.full((rows, cols), pad_value, dtype=self._numpy.dtype)
        crow = numpy.asarray(self.sparse_crow_indices, dtype=numpy.int64)
        row_of = numpy.repeat(numpy.arange(rows), numpy.diff(crow))
        dense[row_of, numpy.asarray(self.sparse_col_indices, dtype=numpy.int64)] = self._numpy
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


def _refuse_setattr(self: TensorData, name: str, value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delattr(self: TensorData, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


# slots=True makes a new class, and on Python 3.11 the frozen guards dataclass generated still
# name the old one: any other name failed with a bare TypeError from super(). Set here, after
# the class exists, so every assignment or deletion says that the tensor is frozen.
TensorData.__setattr__ = _refuse_setattr  # type: ignore[method-assign,assignment]
TensorData.__delattr__ = _refuse_delattr  # type: ignore[method-assign,assignment]


def _set_fields(
    tensor: TensorData,
    dtype: TensorDtype,
    shape: list[int] | None,
    crow: list[int] | None,
    col: list[int] | None,
    values: np.ndarray[Any, Any],
) -> None:
    # A frozen dataclass: fields are set once, here, bypassing the frozen __setattr__.
    object.__setattr__(tensor, "dtype", dtype)
    object.__setattr__(tensor, "shape", shape)
    object.__setattr__(tensor, "sparse_crow_indices", crow)
    object.__setattr__(tensor, "sparse_col_indices", col)
    object.__setattr__(tensor, "_numpy", values)


def _check_pad(pad_value: object) -> None:
    if isinstance(pad_value, bool) or not hasattr(pad_value, "__index__"):
        raise TypeError(f"pad_value must be an int, got {pad_value!r}")
