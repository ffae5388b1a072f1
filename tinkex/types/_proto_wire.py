"""Low-level protobuf wire format (proto3), stdlib only.

Just enough of https://protobuf.dev/programming-guides/encoding/ for the ``tinker_public``
messages: varints (int32/int64/uint32/bool/enum), doubles, length-delimited fields
(string/bytes/sub-messages/packed repeated int64) and map entries.

Encoding goes through :class:`ProtoWriter`, which collects the pieces of a message in a list and
joins them once at the end, so a large ``bytes`` payload is copied exactly once (into the final
message).  Decoding walks a ``memoryview`` with offsets (:func:`iter_fields`) and hands out
zero-copy slices for length-delimited fields.  Malformed input raises ``ValueError`` naming the
message and, when known, the field.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Final, TypeAlias

__all__ = [
    "I32",
    "I64",
    "LEN",
    "VARINT",
    "Buffer",
    "FieldValue",
    "ProtoWriter",
    "as_bool",
    "as_bytes",
    "as_double",
    "as_enum",
    "as_int32",
    "as_int64",
    "as_message",
    "as_string",
    "as_uint32",
    "as_uint64",
    "as_packed_int64",
    "encode_varint",
    "iter_fields",
    "map_entry",
]

VARINT: Final = 0
I64: Final = 1
LEN: Final = 2
SGROUP: Final = 3
EGROUP: Final = 4
I32: Final = 5

WIRE_TYPE_NAMES: Final[dict[int, str]] = {
    VARINT: "VARINT",
    I64: "I64",
    LEN: "LEN",
    SGROUP: "SGROUP",
    EGROUP: "EGROUP",
    I32: "I32",
}

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Anything the writer can append without copying."""

FieldValue: TypeAlias = int | memoryview
"""A decoded raw field value: ``int`` for VARINT/I64/I32, ``memoryview`` for LEN."""

_U64: Final = (1 << 64) - 1
_U32: Final = (1 << 32) - 1
_DOUBLE: Final = struct.Struct("<d")
_U64_LE: Final = struct.Struct("<Q")
_U32_LE: Final = struct.Struct("<I")

# Single-byte varints are by far the most common (tags, small lengths, enums).
_SMALL_VARINTS: Final[tuple[bytes, ...]] = tuple(bytes((i,)) for i in range(128))


def encode_varint(value: int) -> bytes:
    """Encode ``value`` as a base-128 varint; negatives use 64-bit two's complement (10 bytes)."""
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if 0 < value < 16384:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 0:
        if value < -(1 << 63):
            raise ValueError(f"varint value {value} does not fit in 64 bits")
        value &= _U64
    elif value > _U64:
        raise ValueError(f"varint value {value} does not fit in 64 bits")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field_number: int, wire_type: int) -> bytes:
    return encode_varint((field_number << 3) | wire_type)


class ProtoWriter:
    """Builds one message as a list of byte pieces; :meth:`getvalue` joins them once.

    Scalar setters skip proto3 default values unless ``always=True`` (use it for members of a
    ``oneof``, ``optional`` fields and map entries, whose presence is meaningful).

    Example::

        w = ProtoWriter()
        w.string(1, "model-0")
        w.int32(2, 7)
        payload = w.getvalue()
    """

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[Buffer] = []
        self._size = 0

    def __len__(self) -> int:
        """Encoded size in bytes so far."""
        return self._size

    def _raw(self, piece: Buffer) -> None:
        self._parts.append(piece)
        self._size += len(piece)

    def _len_header(self, field_number: int, length: int) -> None:
        key = (field_number << 3) | LEN
        header = (_SMALL_VARINTS[key] if key < 128 else encode_varint(key)) + (
            _SMALL_VARINTS[length] if length < 128 else encode_varint(length)
        )
        self._parts.append(header)
        self._size += len(header)

    def varint(self, field_number: int, value: int, *, always: bool = False) -> None:
        """Write a VARINT field (int32/int64/uint32/uint64/enum)."""
        if value or always:
            self._raw(_tag(field_number, VARINT) + encode_varint(value))

    int32 = varint
    int64 = varint
    uint32 = varint
    enum = varint

    def boolean(self, field_number: int, value: bool, *, always: bool = False) -> None:
        """Write a bool field."""
        if value or always:
            self._raw(_tag(field_number, VARINT) + (b"\x01" if value else b"\x00"))

    def double(self, field_number: int, value: float, *, always: bool = False) -> None:
        """Write a double (I64) field; ``-0.0`` counts as non-default like in protobuf."""
        packed = _DOUBLE.pack(value)
        if always or packed != b"\x00" * 8:
            self._raw(_tag(field_number, I64) + packed)

    def bytes_field(self, field_number: int, value: Buffer, *, always: bool = False) -> None:
        """Write a bytes field; ``value`` is referenced, not copied, until :meth:`getvalue`."""
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        if n or always:
            self._len_header(field_number, n)
            self._parts.append(value)
            self._size += n

    def bytes_parts(
        self, field_number: int, parts: Iterable[Buffer], *, always: bool = False
    ) -> None:
        """Write one bytes field whose content is the concatenation of ``parts`` (no copy)."""
        pieces = [p if not isinstance(p, memoryview) else p.cast("B") for p in parts]
        n = sum(len(p) for p in pieces)
        if n or always:
            self._len_header(field_number, n)
            self._parts.extend(pieces)
            self._size += n

    def pieces(self, field_number: int, pieces: Iterable[Buffer], size: int) -> None:
        """Write one LEN field (always) whose content is ``pieces``, byte buffers of ``size``
        bytes in all (trusted; no copy until :meth:`getvalue`)."""
        self._len_header(field_number, size)
        self._parts.extend(pieces)
        self._size += size

    def string(self, field_number: int, value: str, *, always: bool = False) -> None:
        """Write a string field (UTF-8)."""
        if value or always:
            self.bytes_field(field_number, value.encode("utf-8"), always=True)

    def message(self, field_number: int, sub: ProtoWriter) -> None:
        """Write ``sub`` as an embedded message; always written (sub-message presence)."""
        self._len_header(field_number, sub._size)
        self._parts.extend(sub._parts)
        self._size += sub._size

    def packed_int64(self, field_number: int, values: Iterable[int]) -> None:
        """Write a packed ``repeated int64`` field; nothing when empty."""
        payload = b"".join(map(encode_varint, map(int, values)))
        if payload:
            self.bytes_field(field_number, payload)

    def getvalue(self) -> bytes:
        """The encoded message (the one and only copy of the collected pieces)."""
        return b"".join(self._parts)


# ---------------------------------------------------------------------------------------------
# Decoding


def _field_label(message: str, field_number: int, names: Mapping[int, str] | None) -> str:
    name = names.get(field_number) if names else None
    return f"{message}.{name}" if name else f"{message} field {field_number}"


class _VarintError(ValueError):
    """A malformed varint; the caller adds the message/field label."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise _VarintError(f"truncated varint at offset {pos}")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= end:
            raise _VarintError(f"truncated varint at offset {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise _VarintError(f"varint longer than 10 bytes at offset {pos}")


def _read_varint(buf: memoryview, pos: int, end: int, where: str) -> tuple[int, int]:
    try:
        return _varint(buf, pos, end)
    except _VarintError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _skip_group(
    buf: memoryview, pos: int, end: int, field_number: int, message: str, depth: int
) -> int:
    if depth > 64:
        raise ValueError(f"{message}: groups nested too deeply")
    while True:
        key, pos = _read_varint(buf, pos, end, f"{message} group {field_number}")
        fn, wt = key >> 3, key & 7
        if wt == EGROUP:
            if fn != field_number:
                raise ValueError(
                    f"{message}: end-group tag {fn} does not match start-group {field_number}"
                )
            return pos
        pos = _skip_value(buf, pos, end, fn, wt, message, depth + 1)


def _skip_value(
    buf: memoryview, pos: int, end: int, fn: int, wt: int, message: str, depth: int
) -> int:
    where = f"{message} field {fn}"
    if wt == VARINT:
        return _read_varint(buf, pos, end, where)[1]
    if wt == I64:
        pos += 8
    elif wt == I32:
        pos += 4
    elif wt == LEN:
        n, pos = _read_varint(buf, pos, end, where)
        pos += n
    elif wt == SGROUP:
        return _skip_group(buf, pos, end, fn, message, depth)
    else:
        raise ValueError(f"{where}: invalid wire type {wt}")
    if pos > end:
        raise ValueError(f"{where}: value runs past the end of the buffer ({end} bytes)")
    return pos


def iter_fields(
    data: Buffer, message: str, names: Mapping[int, str] | None = None
) -> Iterator[tuple[int, int, FieldValue]]:
    """Yield ``(field_number, wire_type, value)`` for every field of one encoded message.

    ``value`` is an ``int`` for VARINT, I64 and I32 (raw unsigned little-endian bits; see
    :func:`as_double`), a zero-copy ``memoryview`` for LEN.  Groups (deprecated) are skipped.
    ``message``/``names`` (field number -> name) only serve error messages.
    Raises ``ValueError`` on truncated or otherwise malformed input.
    """
    buf = data if isinstance(data, memoryview) else memoryview(data)
    if buf.format != "B" or buf.ndim != 1:
        buf = buf.cast("B")
    pos = 0
    end = len(buf)
    fn = 0  # 0 while a tag is being read (for error labels)
    try:
        while pos < end:
            fn = 0
            key = buf[pos]
            if key < 0x80:
                pos += 1
            else:
                key, pos = _varint(buf, pos, end)
            fn = key >> 3
            wt = key & 7
            if fn == 0:
                raise ValueError(f"{message}: invalid field number 0 at offset {pos}")
            if wt == LEN:
                n = buf[pos] if pos < end else 0x80
                if n < 0x80:
                    pos += 1
                else:
                    n, pos = _varint(buf, pos, end)
                stop = pos + n
                if stop > end:
                    raise ValueError(
                        f"{_field_label(message, fn, names)}: length {n} at offset {pos} runs "
                        f"past the end of the buffer ({end} bytes)"
                    )
                yield fn, wt, buf[pos:stop]
                pos = stop
            elif wt == VARINT:
                v, pos = _varint(buf, pos, end)
                yield fn, wt, v
            elif wt == I64:
                if pos + 8 > end:
                    raise ValueError(f"{_field_label(message, fn, names)}: truncated 64-bit value")
                yield fn, wt, _U64_LE.unpack_from(buf, pos)[0]
                pos += 8
            elif wt == I32:
                if pos + 4 > end:
                    raise ValueError(f"{_field_label(message, fn, names)}: truncated 32-bit value")
                yield fn, wt, _U32_LE.unpack_from(buf, pos)[0]
                pos += 4
            elif wt == SGROUP:
                pos = _skip_group(buf, pos, end, fn, message, 0)
            else:
                raise ValueError(
                    f"{_field_label(message, fn, names)}: invalid wire type {wt} at offset {pos}"
                )
    except _VarintError as exc:
        label = _field_label(message, fn, names) if fn else f"{message}: field tag"
        raise ValueError(f"{label}: {exc}") from None


def _wrong_type(where: str, expected: int, got: int) -> ValueError:
    return ValueError(
        f"{where}: expected wire type {WIRE_TYPE_NAMES[expected]} ({expected}), "
        f"got {WIRE_TYPE_NAMES.get(got, str(got))} ({got})"
    )


def _varint_value(where: str, wire_type: int, value: FieldValue) -> int:
    if wire_type != VARINT or not isinstance(value, int):
        raise _wrong_type(where, VARINT, wire_type)
    return value


def as_uint64(where: str, wire_type: int, value: FieldValue) -> int:
    """A ``uint64`` field value; ``where`` (``"Message.field"``) names it in errors."""
    return _varint_value(where, wire_type, value)


def as_int64(where: str, wire_type: int, value: FieldValue) -> int:
    """A signed ``int64`` field value."""
    v = _varint_value(where, wire_type, value)
    return v - (1 << 64) if v >> 63 else v


def as_int32(where: str, wire_type: int, value: FieldValue) -> int:
    """A signed ``int32`` field value (protobuf truncates wider varints to 32 bits)."""
    v = _varint_value(where, wire_type, value) & _U32
    return v - (1 << 32) if v >> 31 else v


def as_uint32(where: str, wire_type: int, value: FieldValue) -> int:
    """A ``uint32`` field value."""
    return _varint_value(where, wire_type, value) & _U32


def as_enum(where: str, wire_type: int, value: FieldValue) -> int:
    """An enum field value (an int32 on the wire)."""
    return as_int32(where, wire_type, value)


def as_bool(where: str, wire_type: int, value: FieldValue) -> bool:
    """A ``bool`` field value."""
    return _varint_value(where, wire_type, value) != 0


def as_double(where: str, wire_type: int, value: FieldValue) -> float:
    """A ``double`` field value."""
    if wire_type != I64 or not isinstance(value, int):
        raise _wrong_type(where, I64, wire_type)
    result: float = _DOUBLE.unpack(_U64_LE.pack(value))[0]
    return result


def as_bytes(where: str, wire_type: int, value: FieldValue) -> memoryview:
    """A ``bytes`` field value as a zero-copy view into the decoded buffer."""
    if wire_type != LEN or not isinstance(value, memoryview):
        raise _wrong_type(where, LEN, wire_type)
    return value


as_message = as_bytes
"""An embedded message's encoded bytes (feed them to :func:`iter_fields`)."""


def as_string(where: str, wire_type: int, value: FieldValue) -> str:
    """A ``string`` field value; invalid UTF-8 raises ``ValueError``."""
    raw = as_bytes(where, wire_type, value)
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: invalid UTF-8 in string field: {exc}") from None


def as_packed_int64(where: str, wire_type: int, value: FieldValue) -> list[int]:
    """Values of one ``repeated int64`` occurrence: packed (LEN) or a single unpacked VARINT.

    Callers extend their list with the result for every occurrence of the field.
    """
    if wire_type == VARINT and isinstance(value, int):
        return [as_int64(where, wire_type, value)]
    if wire_type != LEN or not isinstance(value, memoryview):
        raise _wrong_type(where, LEN, wire_type)
    out: list[int] = []
    pos = 0
    end = len(value)
    while pos < end:
        v, pos = _read_varint(value, pos, end, where)
        out.append(v - (1 << 64) if v >> 63 else v)
    return out


def map_entry(data: memoryview, where: str) -> tuple[str, tuple[int, FieldValue] | None]:
    """Decode one ``map<string, X>`` entry: ``(key, (wire_type, raw value) | None)``.

    A missing key means ``""``; a missing value is returned as ``None`` (the caller applies the
    value type's default).  Later occurrences of key/value win, like in protobuf.
    """
    key = ""
    val: tuple[int, FieldValue] | None = None
    for fn, wt, v in iter_fields(data, where, {1: "key", 2: "value"}):
        if fn == 1:
            key = as_string(f"{where}.key", wt, v)
        elif fn == 2:
            val = (wt, v)
    return key, val
