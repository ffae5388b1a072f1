"""Tests of the stdlib protobuf wire layer (tinkex.types._proto_wire)."""

from __future__ import annotations

import struct

import pytest

from tinkex.types._proto_wire import (
    I32,
    I64,
    LEN,
    VARINT,
    ProtoWriter,
    as_bool,
    as_bytes,
    as_double,
    as_enum,
    as_int32,
    as_int64,
    as_packed_int64,
    as_string,
    as_uint32,
    encode_varint,
    iter_fields,
    map_entry,
)


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    return [
        (fn, wt, bytes(v) if isinstance(v, memoryview) else v)
        for fn, wt, v in iter_fields(data, "Test")
    ]


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
        (-1, b"\xff" * 9 + b"\x01"),
        (-(2**63), b"\x80" * 9 + b"\x01"),
        (2**64 - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_encode_varint_known_vectors(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_encode_varint_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match=str(value)):
        encode_varint(value)


@pytest.mark.parametrize("value", [0, 1, -1, 5, -5, 2**31 - 1, -(2**31)])
def test_int32_round_trip(value: int) -> None:
    w = ProtoWriter()
    w.int32(2, value, always=True)
    [(fn, wt, v)] = list(iter_fields(w.getvalue(), "M"))
    assert (fn, wt) == (2, VARINT)
    assert as_int32("M.x", wt, v) == value
    assert as_enum("M.x", wt, v) == value


@pytest.mark.parametrize("value", [0, 1, -1, 2**62, -(2**63), 2**63 - 1])
def test_int64_round_trip(value: int) -> None:
    w = ProtoWriter()
    w.int64(3, value, always=True)
    [(_, wt, v)] = list(iter_fields(w.getvalue(), "M"))
    assert as_int64("M.x", wt, v) == value


def test_uint32_and_bool() -> None:
    w = ProtoWriter()
    w.uint32(1, 2**32 - 1)
    w.boolean(2, True)
    w.boolean(3, False, always=True)
    got = list(iter_fields(w.getvalue(), "M"))
    assert as_uint32("M.k", got[0][1], got[0][2]) == 2**32 - 1
    assert as_bool("M.b", got[1][1], got[1][2]) is True
    assert as_bool("M.c", got[2][1], got[2][2]) is False


def test_defaults_are_skipped_unless_always() -> None:
    w = ProtoWriter()
    w.varint(1, 0)
    w.boolean(2, False)
    w.double(3, 0.0)
    w.string(4, "")
    w.bytes_field(5, b"")
    w.packed_int64(6, [])
    assert w.getvalue() == b""
    assert len(w) == 0
    w.varint(1, 0, always=True)
    w.double(3, 0.0, always=True)
    w.string(4, "", always=True)
    w.bytes_field(5, b"", always=True)
    assert w.getvalue() == b"\x08\x00\x19" + b"\x00" * 8 + b"\x22\x00\x2a\x00"
    assert len(w) == len(w.getvalue())


def test_negative_zero_double_is_written() -> None:
    w = ProtoWriter()
    w.double(1, -0.0)
    [(_, wt, v)] = list(iter_fields(w.getvalue(), "M"))
    assert struct.pack("<d", as_double("M.d", wt, v)) == struct.pack("<d", -0.0)


def test_double_string_bytes_round_trip() -> None:
    w = ProtoWriter()
    w.double(1, 0.8)
    w.string(2, "héllo ✓")
    w.bytes_field(3, b"\x00\x01\xff")
    got = list(iter_fields(w.getvalue(), "M"))
    assert as_double("M.a", got[0][1], got[0][2]) == 0.8
    assert as_string("M.b", got[1][1], got[1][2]) == "héllo ✓"
    assert bytes(as_bytes("M.c", got[2][1], got[2][2])) == b"\x00\x01\xff"


def test_nested_messages_and_sizes() -> None:
    inner = ProtoWriter()
    inner.string(1, "k")
    inner.double(2, 1.5)
    outer = ProtoWriter()
    outer.message(5, inner)
    outer.message(5, ProtoWriter())  # empty sub-message still present
    data = outer.getvalue()
    assert len(outer) == len(data)
    got = _fields(data)
    assert got[1] == (5, LEN, b"")
    key, val = map_entry(memoryview(got[0][2]), "M.m")  # type: ignore[arg-type]
    assert key == "k"
    assert val is not None
    assert as_double("M.m.value", *val) == 1.5


def test_map_entry_defaults() -> None:
    assert map_entry(memoryview(b""), "M.m") == ("", None)


def test_large_bytes_are_referenced_not_copied() -> None:
    big = bytes(1 << 20)
    view = memoryview(bytearray(b"abcdefgh")).cast("B")
    w = ProtoWriter()
    w.bytes_field(1, big)
    w.bytes_parts(2, [view[:4], b"", view[4:]])
    assert any(p is big for p in w._parts)
    out = w.getvalue()
    got = _fields(out)
    assert got[0] == (1, LEN, big)
    assert got[1] == (2, LEN, b"abcdefgh")


def test_bytes_field_accepts_typed_memoryview() -> None:
    arr = memoryview(struct.pack("<3i", 1, 2, 3)).cast("i")
    w = ProtoWriter()
    w.bytes_field(1, arr)
    assert _fields(w.getvalue()) == [(1, LEN, struct.pack("<3i", 1, 2, 3))]


def test_decoded_bytes_are_zero_copy_views() -> None:
    data = bytearray(b"\x0a\x03abc")
    [(_, _, v)] = list(iter_fields(data, "M"))
    assert isinstance(v, memoryview)
    data[2] = ord("X")
    assert bytes(v) == b"Xbc"


def test_packed_int64_packed_and_unpacked() -> None:
    w = ProtoWriter()
    w.packed_int64(4, [3, -2, 2**40, 0])
    w.varint(4, 7)  # one unpacked occurrence of the same field
    w.varint(4, -9)
    values: list[int] = []
    for _, wt, v in iter_fields(w.getvalue(), "Tensor"):
        values.extend(as_packed_int64("Tensor.shape", wt, v))
    assert values == [3, -2, 2**40, 0, 7, -9]


def test_packed_int64_wrong_wire_type() -> None:
    with pytest.raises(ValueError, match=r"Tensor\.shape: expected wire type LEN"):
        as_packed_int64("Tensor.shape", I64, 5)


def test_packed_int64_truncated() -> None:
    with pytest.raises(ValueError, match=r"Tensor\.shape: truncated varint"):
        as_packed_int64("Tensor.shape", LEN, memoryview(b"\x01\x80"))


def test_unknown_fields_of_every_wire_type_are_yielded_or_skipped() -> None:
    data = (
        b"\x08\x96\x01"  # 1: varint 150
        + b"\x11"
        + struct.pack("<d", 2.5)  # 2: I64
        + b"\x1a\x02hi"  # 3: LEN
        + b"\x25"
        + struct.pack("<I", 7)  # 4: I32
        + b"\x2b"
        + b"\x08\x01"
        + b"\x33\x38\x01\x34"
        + b"\x2c"  # 5: group with nested group
        + b"\x30\x05"  # 6: varint 5
    )
    got = _fields(data)
    assert [g[:2] for g in got] == [(1, VARINT), (2, I64), (3, LEN), (4, I32), (6, VARINT)]
    assert got[0][2] == 150
    assert as_double("M.x", I64, got[1][2]) == 2.5  # type: ignore[arg-type]
    assert got[2][2] == b"hi"
    assert got[3][2] == 7
    assert got[4][2] == 5


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"\x08", r"Msg\.seq_id: truncated varint"),
        (b"\x08\x80\x80", r"Msg\.seq_id: truncated varint"),
        (b"\x08" + b"\xff" * 11, r"Msg\.seq_id: varint longer than 10 bytes"),
        (b"\x12\x05abc", r"Msg\.name: length 5 at offset 2 runs past the end"),
        (b"\x12", r"Msg\.name: truncated varint"),
        (b"\x19\x00\x00", r"Msg field 3: truncated 64-bit value"),
        (b"\x1d\x00", r"Msg field 3: truncated 32-bit value"),
        (b"\x1e", r"Msg field 3: invalid wire type 6"),
        (b"\x1f", r"Msg field 3: invalid wire type 7"),
        (b"\x00\x00", r"Msg: invalid field number 0"),
        (b"\x80", r"Msg: field tag: truncated varint"),
        (b"\x1b\x08\x01", r"Msg group 3: truncated varint"),
        (b"\x1b\x24", r"end-group tag 4 does not match start-group 3"),
        (b"\x1b\x22\x09ab\x1c", r"Msg field 4: value runs past the end"),
        (b"\x24", r"Msg field 4: invalid wire type 4"),
    ],
)
def test_malformed_input_raises_value_error(data: bytes, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        list(iter_fields(data, "Msg", {1: "seq_id", 2: "name"}))


@pytest.mark.parametrize(
    ("fn", "wt", "value", "pattern"),
    [
        (as_int32, LEN, memoryview(b""), r"M\.f: expected wire type VARINT \(0\), got LEN \(2\)"),
        (as_double, VARINT, 1, r"M\.f: expected wire type I64 \(1\), got VARINT \(0\)"),
        (as_string, VARINT, 1, r"M\.f: expected wire type LEN \(2\), got VARINT \(0\)"),
        (as_bytes, I32, 1, r"M\.f: expected wire type LEN \(2\), got I32 \(5\)"),
        (as_bool, I64, 1, r"M\.f: expected wire type VARINT"),
    ],
)
def test_wrong_wire_type_raises(fn: object, wt: int, value: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        fn("M.f", wt, value)  # type: ignore[operator]


def test_invalid_utf8_string() -> None:
    with pytest.raises(ValueError, match=r"M\.s: invalid UTF-8"):
        as_string("M.s", LEN, memoryview(b"\xff\xfe"))


def test_iter_fields_accepts_typed_memoryview() -> None:
    data = memoryview(b"\x08\x01\x10\x02\x18\x03\x20\x04").cast("H")
    assert [fn for fn, _, _ in iter_fields(data, "M")] == [1, 2, 3, 4]


def test_cross_check_with_google_protobuf() -> None:
    pb = pytest.importorskip("tinker.proto.tinker_public_pb2")
    w = ProtoWriter()
    w.bytes_field(1, b"\x01\x00\x00\x00")
    w.enum(3, 2)
    w.packed_int64(4, [4, -1])
    ours = w.getvalue()
    theirs = pb.Tensor(dense=b"\x01\x00\x00\x00", dtype=2, shape=[4, -1]).SerializeToString()
    assert ours == theirs
    msg = pb.ForwardBackwardRequest(model_id="m", seq_id=-3, forward_only=True)
    msg.loss_fn_config["x"] = 0.25
    got = list(iter_fields(msg.SerializeToString(), "ForwardBackwardRequest"))
    assert as_string("r.model_id", got[0][1], got[0][2]) == "m"
    assert as_int32("r.seq_id", got[1][1], got[1][2]) == -3
    entry = got[2][2]
    assert isinstance(entry, memoryview)
    key, val = map_entry(entry, "r.loss_fn_config")
    assert key == "x"
    assert val is not None
    assert as_double("r.loss_fn_config.value", *val) == 0.25
    assert as_bool("r.forward_only", got[3][1], got[3][2]) is True
