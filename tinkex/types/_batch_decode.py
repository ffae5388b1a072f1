"""``Datum`` messages of the common shape read straight to arrays (the server's hot path).

The mirror of :mod:`tinkex.types._batch_encode`: a datum made of encoded-text chunks and dense
``float32``/``int64`` tensors, laid out as tinkex and the official SDK write it (each message's
fields in field-number order, each present once), is read by walking its bytes once (one
varint per tag and length, numpy for the payloads) instead of through the general field
iterator. Anything else (image or dmel chunks, other dtypes, sparse tensors, spans, unknown or
repeated fields, malformed bytes) gives None, and the general reader handles the datum, with
its error messages naming the field. Both give the same arrays
(``tests/unit/types/test_batch_decode.py``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from tinkex.types._proto_wire import _varint

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

__all__ = ["plain_datum_arrays"]

_LEN_1: Final = 0x0A  # field 1, LEN: Datum.model_input, Chunk.encoded_text, .tokens, key, dense
_LEN_2: Final = 0x12  # field 2, LEN: Datum.loss_fn_inputs, map entry value
_VARINT_3: Final = 0x18  # field 3, VARINT: Tensor.dtype
_LEN_4: Final = 0x22  # field 4, LEN: Tensor.shape (packed)
#: ``DType`` enum -> (wire numpy dtype, native one); int32 and bfloat16 are widened by the
#: general reader.
_DENSE: Final = {1: ("<f4", "float32"), 2: ("<i8", "int64")}


class _NotPlain(Exception):
    """The datum is not of the common shape (or not well formed): the general reader's."""


def _field(data: memoryview, pos: int, end: int, tag: int) -> tuple[int, int]:
    """(start, stop) of the LEN field ``tag`` at ``pos``, which must end by ``end``."""
    if pos >= end or data[pos] != tag:
        raise _NotPlain("not the expected field")
    size, start = _varint(data, pos + 1, end)
    if start + size > end:
        raise _NotPlain("field runs past its message")
    return start, start + size


def _text(data: memoryview, start: int, end: int) -> memoryview:
    """The int32 token bytes of a ``Chunk`` that is exactly one ``encoded_text``."""
    text, stop = _field(data, start, end, _LEN_1)
    if stop != end:
        raise _NotPlain("more than encoded_text")
    if text == stop:
        return data[text:text]
    tokens, stop = _field(data, text, end, _LEN_1)
    if stop != end or (stop - tokens) % 4:
        raise _NotPlain("not one whole tokens field")
    return data[tokens:stop]


def _tensor(np: Any, data: memoryview, start: int, end: int) -> NDArray:
    """A dense ``Tensor`` (dense bytes, dtype, optional packed shape) as a fresh array."""
    dense, pos = _field(data, start, end, _LEN_1)
    raw = data[dense:pos]
    if pos >= end or data[pos] != _VARINT_3:
        raise _NotPlain("no dtype")
    dtype, pos = _varint(data, pos + 1, end)
    codes = _DENSE.get(dtype)
    if codes is None:
        raise _NotPlain("not a float32/int64 tensor")
    shape: list[int] = []
    if pos < end:
        packed, pos = _field(data, pos, end, _LEN_4)
        while packed < pos:
            dim, packed = _varint(data, packed, pos)
            shape.append(dim)
    if pos != end:
        raise _NotPlain("more fields")
    # A copy in native byte order (owning its memory), as the general reader makes; a size
    # that is no multiple of the item size is a ValueError.
    values: NDArray = np.frombuffer(raw, dtype=codes[0]).astype(codes[1])
    if not shape:
        return values
    if math.prod(shape) != values.size:
        raise _NotPlain("shape does not match the values")
    reshaped: NDArray = values.reshape(shape)
    return reshaped


def plain_datum_arrays(data: memoryview) -> tuple[NDArray, dict[str, NDArray]] | None:
    """(int64 tokens, loss inputs) of a ``Datum`` message of the common shape, else None."""
    import numpy as np

    tokens: list[memoryview] = []
    inputs: dict[str, NDArray] = {}
    pos, end = 0, len(data)
    try:
        while pos < end:
            if data[pos] == _LEN_1:
                start, pos = _field(data, pos, end, _LEN_1)
                tokens.append(_text(data, start, pos))
            else:
                start, pos = _field(data, pos, end, _LEN_2)
                key_start, key_stop = _field(data, start, pos, _LEN_1)
                value_start, value_stop = _field(data, key_stop, pos, _LEN_2)
                key = str(data[key_start:key_stop], "utf-8")
                if value_stop != pos or key in inputs:
                    return None
                inputs[key] = _tensor(np, data, value_start, value_stop)
    except (_NotPlain, ValueError):  # ValueError: bad varints, UTF-8 or sizes
        return None
    raw = tokens[0] if len(tokens) == 1 else b"".join(tokens)
    return np.frombuffer(raw, dtype="<i4").astype(np.int64), inputs
