"""The ``data`` field of a ``ForwardBackwardRequest``, written a batch at a time.

Nearly all bytes of a forward/backward body are the datums' token ids and loss-input values,
so this is the client's hot path (docs/protocol.md, "Protobuf messages"). The general message
writer (``_proto_request._write_datum``) builds each datum from nested sub-messages, copying every
payload once per nesting level. Here a datum of the common shape (encoded-text chunks, dense
``float32``/``int64`` tensors, no provenance spans) is a flat list of *pieces*: small framing
headers (tags and lengths, computed from the payload sizes), the chunk's token ids packed to
int32 in one C call, and zero-copy byte views of the tensors' numpy arrays. The whole body is
then joined once, so each payload byte is copied once into it (token ids twice: packed, then
joined). No Python code runs per token or per value.

Any other datum (image or dmel chunks, sparse tensors, spans, ids beyond int32) goes to the
general writer, which also reports what cannot be encoded, naming the field. The bytes are the
same either way (``tests/unit/types/test_batch_encode.py`` compares them on random batches).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Final

from tinkex.types._datum import Datum
from tinkex.types._model_input import EncodedTextChunk
from tinkex.types._proto_wire import Buffer, ProtoWriter
from tinkex.types._proto_wire import encode_varint as _varint

__all__ = ["datum_pieces", "write_data"]

_TEXT_FIELD: Final = b"\x0a"  # field 1, LEN: Datum.model_input, Chunk.encoded_text, .tokens
_INPUT_FIELD: Final = b"\x12"  # field 2, LEN: Datum.loss_fn_inputs, map entry value
_KEY_FIELD: Final = b"\x0a"  # field 1, LEN: map entry key, Tensor.dense
_DTYPE_FIELD: Final = b"\x18"  # field 3, VARINT: Tensor.dtype
_SHAPE_FIELD: Final = b"\x22"  # field 4, LEN: Tensor.shape (packed)
_EMPTY_TEXT_CHUNK: Final = b"\x0a\x02\x0a\x00"  # a Chunk whose encoded_text has no tokens
#: TensorData dtype -> (little-endian numpy dtype, ``DType`` enum byte).
_DENSE_DTYPES: Final = {"float32": ("<f4", b"\x01"), "int64": ("<i8", b"\x02")}


def _text_chunk(tokens: Sequence[int]) -> tuple[bytes, bytes] | None:
    """(framing header, int32 token bytes) of one ``Datum.model_input`` text chunk; None when
    an id does not fit int32 (the general writer names it)."""
    count = len(tokens)
    if not count:
        return _EMPTY_TEXT_CHUNK, b""
    try:
        raw = struct.pack(f"<{count}i", *tokens)
    except struct.error:
        return None
    size = _varint(4 * count)
    text = 1 + len(size) + 4 * count  # EncodedText: tokens field
    text_size = _varint(text)
    chunk = 1 + len(text_size) + text  # Chunk: encoded_text field
    header = _TEXT_FIELD + _varint(chunk) + _TEXT_FIELD + text_size + _TEXT_FIELD + size
    return header, raw


@functools.lru_cache(maxsize=256)
def _tensor_framing(
    name: str, dtype: str, nbytes: int, shape: tuple[int, ...]
) -> tuple[bytes, bytes]:
    """(framing header, tail) of one dense ``loss_fn_inputs`` entry around its value bytes.

    A pure function of the entry's name, dtype, size and shape, which the datums of a batch
    nearly always share: cached, so most datums skip the varints and joins.
    """
    spec = _DENSE_DTYPES[dtype]
    packed = b"".join(map(_varint, shape))
    tail = _DTYPE_FIELD + spec[1]
    if packed:
        tail += _SHAPE_FIELD + _varint(len(packed)) + packed
    dense_size = _varint(nbytes)
    value_size = 1 + len(dense_size) + nbytes + len(tail)  # the Tensor message
    value_prefix = _varint(value_size)
    key = name.encode("utf-8")
    key_size = _varint(len(key))
    entry = 1 + len(key_size) + len(key) + 1 + len(value_prefix) + value_size
    header = b"".join(
        (_INPUT_FIELD, _varint(entry), _KEY_FIELD, key_size, key, _INPUT_FIELD, value_prefix)
    )
    return header + _KEY_FIELD + dense_size, tail


def datum_pieces(datum: Datum) -> tuple[list[Buffer], int] | None:
    """The ``Datum`` message as pieces to join, and its size; None for a datum that is not of
    the common shape (the general writer encodes it)."""
    if datum.model_input_spans is not None or datum.loss_fn_input_spans is not None:
        return None
    pieces: list[Buffer] = []
    size = 0
    for chunk in datum.model_input.chunks:
        if type(chunk) is not EncodedTextChunk:
            return None
        text = _text_chunk(chunk.tokens)
        if text is None:
            return None
        pieces += text
        size += len(text[0]) + len(text[1])
    for name, tensor in datum.loss_fn_inputs.items():
        spec = _DENSE_DTYPES.get(tensor.dtype)
        if spec is None or tensor.sparse_crow_indices is not None:
            return None
        values = tensor.values_array()
        if values.dtype.str != spec[0] or not values.flags.c_contiguous:
            values = values.astype(spec[0], order="C")
        nbytes = values.nbytes
        shape = tensor.shape
        header, tail = _tensor_framing(name, tensor.dtype, nbytes, tuple(shape) if shape else ())
        pieces += (header, values.data.cast("B") if nbytes else b"", tail)
        size += len(header) + nbytes + len(tail)
    return pieces, size


def write_data(
    w: ProtoWriter,
    field_number: int,
    data: Sequence[Datum],
    general: Callable[[Datum, str], ProtoWriter],
) -> None:
    """Write ``data`` as the repeated ``Datum`` field ``field_number`` of ``w``.

    ``general(datum, where)`` writes a datum that is not of the common shape (``where`` is its
    path for error messages, e.g. ``ForwardBackwardRequest.data[3]``).
    """
    for i, datum in enumerate(data):
        found = datum_pieces(datum)
        if found is None:
            w.message(field_number, general(datum, f"ForwardBackwardRequest.data[{i}]"))
        else:
            w.pieces(field_number, *found)
