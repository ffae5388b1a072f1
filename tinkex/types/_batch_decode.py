"""``Datum`` messages of the common shape read straight to arrays (the server's hot path).

The mirror of :mod:`tinkex.types._batch_encode`: a datum made of encoded-text chunks and dense
``float32``/``int64`` tensors, laid out as tinkex and the official SDK write it (each message's
fields in field-number order, each present once), is read by walking its bytes once (one
varint per tag and length, numpy for the payloads) instead of through the general field
iterator. Anything else (image or dmel chunks, other dtypes, sparse tensors, spans, unknown or
repeated fields, malformed bytes) gives None, and the general reader handles the datum, with
its error messages naming the field. Both give the same arrays
(``tests/unit/types/test_batch_decode.py``).

:func:`plain_columns` reads a whole batch of such datums as *columns*: every datum's token ids
back to back in one array, and the same for each loss input, each built by one join of the
payload bytes and one numpy conversion, so no array is made per datum. It applies when every
datum is of the common shape, all have the same loss inputs (names and dtypes) and each input
holds one value per token (the shape of every valid forward/backward datum).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from tinkex.types._proto_wire import _varint

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np

    NDArray: TypeAlias = np.ndarray[Any, Any]

__all__ = ["Columns", "plain_columns", "plain_datum_arrays"]

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


Span = tuple[int, int]


def _text(data: memoryview, start: int, end: int) -> Span:
    """Where the int32 token bytes are of a ``Chunk`` that is exactly one ``encoded_text``."""
    text, stop = _field(data, start, end, _LEN_1)
    if stop != end:
        raise _NotPlain("more than encoded_text")
    if text == stop:
        return text, text
    tokens, stop = _field(data, text, end, _LEN_1)
    if stop != end or (stop - tokens) % 4:
        raise _NotPlain("not one whole tokens field")
    return tokens, stop


class _Tensor(NamedTuple):
    """A dense ``Tensor``'s parts: its ``DType`` enum, where its raw value bytes are, shape."""

    dtype: int
    raw: Span
    shape: list[int]


def _tensor_parts(data: memoryview, start: int, end: int) -> _Tensor:
    """A dense float32/int64 ``Tensor`` (dense bytes, dtype, optional packed shape)."""
    dense, pos = _field(data, start, end, _LEN_1)
    raw = (dense, pos)
    if pos >= end or data[pos] != _VARINT_3:
        raise _NotPlain("no dtype")
    dtype, pos = _varint(data, pos + 1, end)
    if dtype not in _DENSE:
        raise _NotPlain("not a float32/int64 tensor")
    shape: list[int] = []
    if pos < end:
        packed, pos = _field(data, pos, end, _LEN_4)
        while packed < pos:
            dim, packed = _varint(data, packed, pos)
            shape.append(dim)
    if pos != end:
        raise _NotPlain("more fields")
    return _Tensor(dtype, raw, shape)


def _tensor(np: Any, data: memoryview, parts: _Tensor) -> NDArray:
    """A tensor's values as a fresh array of its shape."""
    # A copy in native byte order (owning its memory), as the general reader makes; a size
    # that is no multiple of the item size is a ValueError.
    wire, native = _DENSE[parts.dtype]
    values: NDArray = np.frombuffer(data[parts.raw[0] : parts.raw[1]], dtype=wire).astype(native)
    if not parts.shape:
        return values
    if math.prod(parts.shape) != values.size:
        raise _NotPlain("shape does not match the values")
    reshaped: NDArray = values.reshape(parts.shape)
    return reshaped


def _datum_parts(data: memoryview) -> tuple[list[Span], dict[str, _Tensor]]:
    """(where its token byte runs are, loss inputs) of a ``Datum`` of the common shape.

    Raises:
        _NotPlain: it is not (or not well formed); ValueError: bad varints or UTF-8.
    """
    tokens: list[Span] = []
    inputs: dict[str, _Tensor] = {}
    pos, end = 0, len(data)
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
                raise _NotPlain("a repeated or malformed loss input")
            inputs[key] = _tensor_parts(data, value_start, value_stop)
    return tokens, inputs


def plain_datum_arrays(data: memoryview) -> tuple[NDArray, dict[str, NDArray]] | None:
    """(int64 tokens, loss inputs) of a ``Datum`` message of the common shape, else None."""
    import numpy as np

    try:
        tokens, parts = _datum_parts(data)
        inputs = {key: _tensor(np, data, tensor) for key, tensor in parts.items()}
    except (_NotPlain, ValueError):  # ValueError: bad varints, UTF-8 or sizes
        return None
    runs = [data[a:b] for a, b in tokens]
    raw = runs[0] if len(runs) == 1 else b"".join(runs)
    return np.frombuffer(raw, dtype="<i4").astype(np.int64), inputs


class Columns(NamedTuple):
    """A batch of datums as columns: ``lengths[i]`` tokens of datum ``i``, every datum's int64
    token ids back to back in ``tokens``, and each loss input's values likewise."""

    lengths: NDArray
    tokens: NDArray
    loss_fn_inputs: dict[str, NDArray]


class _Layout:
    """Where a plain datum's payloads are (token runs, each loss input's values), and the
    bytes around them (tags, lengths, keys, dtypes, shapes).

    Reading a message depends only on those framing bytes (payloads are skipped by their
    lengths), so a datum of the same size with the same framing bytes has the same layout:
    :meth:`fits` checks that with a few byte comparisons instead of reading it again (datums
    of one length in a batch: fixed-length or packed sequences).
    """

    __slots__ = ("dtypes", "framing", "inputs", "length", "size", "tokens")

    def __init__(self, data: memoryview) -> None:
        tokens, inputs = _datum_parts(data)
        self.size = len(data)
        self.tokens = tokens
        self.inputs = {key: tensor.raw for key, tensor in inputs.items()}
        self.dtypes = {key: tensor.dtype for key, tensor in inputs.items()}
        self.length = sum(b - a for a, b in tokens) // 4
        for tensor in inputs.values():  # one value per token
            count = (tensor.raw[1] - tensor.raw[0]) // (4 if tensor.dtype == 1 else 8)
            if tensor.shape not in ([], [self.length]) or count != self.length:
                raise _NotPlain("a loss input that is not one value per token")
            if (tensor.raw[1] - tensor.raw[0]) % (4 if tensor.dtype == 1 else 8):
                raise _NotPlain("a loss input of a partial value")
        spans = sorted([*tokens, *self.inputs.values()])
        ends = [0, *(b for _, b in spans)]
        starts = [*(a for a, _ in spans), self.size]
        self.framing = [(a, b, bytes(data[a:b])) for a, b in zip(ends, starts, strict=True)]

    def fits(self, data: memoryview) -> bool:
        """Whether ``data`` has this layout (see the class docstring)."""
        return len(data) == self.size and all(data[a:b] == raw for a, b, raw in self.framing)


def plain_columns(datums: list[memoryview]) -> Columns | None:
    """The ``Datum`` messages ``datums`` as :class:`Columns`, or None when they are not all
    of the common shape with the same loss inputs, one value per token (module docstring)."""
    import numpy as np

    if not datums:
        return None
    token_runs: list[memoryview] = []
    lengths: list[int] = []
    layouts: dict[int, _Layout] = {}
    try:
        first = _Layout(datums[0])
        values: dict[str, list[memoryview]] = {key: [] for key in first.inputs}
        for data in datums:
            layout = layouts.get(len(data))
            if layout is None or not layout.fits(data):
                layout = layouts[len(data)] = _Layout(data)
                if layout.dtypes != first.dtypes:
                    return None
            token_runs += [data[a:b] for a, b in layout.tokens]
            for key, (a, b) in layout.inputs.items():
                values[key].append(data[a:b])
            lengths.append(layout.length)
    except (_NotPlain, ValueError):  # ValueError: bad varints or UTF-8
        return None
    return Columns(
        np.array(lengths, dtype=np.int64),
        np.frombuffer(b"".join(token_runs), dtype="<i4").astype(np.int64),
        {
            key: np.frombuffer(b"".join(runs), dtype=_DENSE[first.dtypes[key]][0]).astype(
                _DENSE[first.dtypes[key]][1]
            )
            for key, runs in values.items()
        },
    )
