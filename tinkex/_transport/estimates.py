"""Byte estimates used to chunk forward/backward batches and to fill the bytes semaphores.

The estimators duck-type on the documented attributes of :mod:`tinkex.types` values, so they
work with any object shaped like them:

* ``model_input.chunks``; a chunk has ``tokens`` (text), ``data`` (image bytes), ``dmel``
  (bytes) or ``location`` (image asset pointer), else a ``length``;
* ``datum.model_input`` and ``datum.loss_fn_inputs`` (a mapping of ``TensorData``-like values
  with ``dtype``, ``shape``, ``data``, ``sparse_crow_indices``, ``sparse_col_indices``,
  ``to_numpy()``), or plain arrays with ``nbytes``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "FWDBWD_BYTES_PER_TOKEN",
    "SAMPLE_BYTES_PER_TOKEN",
    "SPARSE_INDEX_BYTES",
    "estimate_datum_bytes",
    "estimate_model_input_bytes",
    "estimate_sample_bytes",
    "estimate_tensor_bytes",
]

#: forward/backward bodies carry tokens as int32 (docs/protocol.md, "Forward/backward").
FWDBWD_BYTES_PER_TOKEN = 4
#: sampling estimate per prompt token (docs/protocol.md, "Sampling").
SAMPLE_BYTES_PER_TOKEN = 10
#: sparse CSR indices are int64.
SPARSE_INDEX_BYTES = 8

_ITEMSIZE = {
    "int64": 8,
    "float32": 4,
    "int32": 4,
    "float64": 8,
    "bfloat16": 2,
    "float16": 2,
}


def _chunk_bytes(chunk: Any, per_token: int) -> int:
    tokens = getattr(chunk, "tokens", None)
    if tokens is not None:
        return per_token * len(tokens)
    dmel = getattr(chunk, "dmel", None)
    if dmel is not None:
        return len(dmel)
    location = getattr(chunk, "location", None)
    if location is not None:
        return len(location)
    data = getattr(chunk, "data", None)
    if data is not None:
        return len(data)
    return per_token * int(chunk.length)


def estimate_model_input_bytes(model_input: Any, per_token: int) -> int:
    """Sum of chunk estimates: ``per_token`` per text token, raw length for other chunks."""
    return sum(_chunk_bytes(chunk, per_token) for chunk in model_input.chunks)


def _itemsize(dtype: Any) -> int | None:
    name = getattr(dtype, "value", dtype)
    return _ITEMSIZE.get(str(name)) if name is not None else None


def estimate_tensor_bytes(tensor: Any) -> int:
    """Bytes of one loss input as sent: dense array bytes (+8 per sparse CSR index)."""
    nbytes = getattr(tensor, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    crow = getattr(tensor, "sparse_crow_indices", None)
    col = getattr(tensor, "sparse_col_indices", None)
    itemsize = _itemsize(getattr(tensor, "dtype", None))
    total: int
    if crow is not None or col is not None:
        # Sparse: only the stored values travel, plus the int64 index arrays.
        values = tensor.data
        total = len(values) * (itemsize or 8)
        total += SPARSE_INDEX_BYTES * (len(crow or ()) + len(col or ()))
        return total
    shape = getattr(tensor, "shape", None)
    if shape is not None and itemsize is not None:
        # Dense: computed from the shape so no array has to be materialised.
        return math.prod(int(dim) for dim in shape) * itemsize
    to_numpy = getattr(tensor, "to_numpy", None)
    if to_numpy is not None:
        return int(to_numpy().nbytes)
    return len(tensor.data) * (itemsize or 8)


def estimate_datum_bytes(datum: Any) -> int:
    """Estimated protobuf bytes of one ``Datum`` (docs/protocol.md, "Forward/backward").

    4 bytes per text token, raw length of image/dmel data (pointer chunks: length of the
    location), plus every loss input's array bytes (+8 per sparse index).
    """
    total = 0
    for chunk in datum.model_input.chunks:
        tokens = getattr(chunk, "tokens", None)
        if tokens is not None:  # the common case, inlined: this runs for every datum
            total += FWDBWD_BYTES_PER_TOKEN * len(tokens)
        else:
            total += _chunk_bytes(chunk, FWDBWD_BYTES_PER_TOKEN)
    inputs = getattr(datum, "loss_fn_inputs", None) or {}
    for tensor in inputs.values():
        nbytes = getattr(tensor, "nbytes", None)
        total += nbytes if type(nbytes) is int else estimate_tensor_bytes(tensor)
    return total


def estimate_sample_bytes(model_input: Any) -> int:
    """Estimated bytes of a sampling prompt (docs/protocol.md, "Sampling").

    10 bytes per text token, raw length of image/dmel data, length of pointer locations.
    """
    return estimate_model_input_bytes(model_input, SAMPLE_BYTES_PER_TOKEN)
