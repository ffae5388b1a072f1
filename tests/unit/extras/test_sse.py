"""Incremental SSE decoding on tricky inputs."""

from __future__ import annotations

import pytest

from tinkex._sse import ServerSentEvent, SSEDecoder, iter_events

STREAM = (
    "\ufeff: a comment to ignore\r\n"
    "retry: 3000\r\n"
    "id: 1\r\n"
    "event: progress\r\n"
    'data: {"step": 1}\r\n'
    "\r\n"
    "data: line one\n"
    "data:line two\n"
    "data\n"
    ": interleaved comment\n"
    "data:  two leading spaces\n"
    "\n"
    "id: 2\r"
    "event: done\r"
    "data: café ☕\r"
    "\r"
    "data: never terminated"
).encode()

EXPECTED = [
    ServerSentEvent(event="progress", data='{"step": 1}', id="1", retry=3000),
    ServerSentEvent(data="line one\nline two\n\n two leading spaces", id="1"),
    ServerSentEvent(event="done", data="café ☕", id="2"),
]


def decode_in_chunks(data: bytes, size: int) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for start in range(0, len(data), size):
        events.extend(decoder.feed(data[start : start + size]))
    events.extend(decoder.close())
    return events


def test_whole_stream() -> None:
    assert decode_in_chunks(STREAM, len(STREAM)) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    assert decode_in_chunks(STREAM, size) == EXPECTED


def test_every_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = SSEDecoder()
        events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.close()
        assert events == EXPECTED, cut


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF completes the CRLF, it is not a blank line
    assert decoder.feed(b"\r") == [ServerSentEvent(data="a")]  # CR alone ends the event


def test_cr_then_blank_line_dispatches_at_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [ServerSentEvent(data="x")]


def test_multibyte_utf8_split() -> None:
    data = "data: 日本語\n\n".encode()
    decoder = SSEDecoder()
    events = [event for byte in data for event in decoder.feed(bytes([byte]))]
    assert events == [ServerSentEvent(data="日本語")]


def test_comments_callback_and_comment_only_blocks() -> None:
    comments: list[str] = []
    decoder = SSEDecoder(on_comment=comments.append)
    assert decoder.feed(b": keep-alive\n\n:x\n\n") == []
    assert comments == ["keep-alive", "x"]


def test_id_persists_and_nul_ids_are_ignored() -> None:
    events = list(
        iter_events(
            [b"id: a\ndata: 1\n\n", b"data: 2\n\n", b"id: b\0c\ndata: 3\n\n", b"id\ndata: 4\n\n"]
        )
    )
    assert [(e.data, e.id) for e in events] == [("1", "a"), ("2", "a"), ("3", "a"), ("4", "")]


def test_retry_must_be_digits_and_id_only_block_updates_state() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 10s\nretry: 1500\nid: 7\n\n") == []
    assert decoder.retry == 1500 and decoder.last_event_id == "7"
    (event,) = decoder.feed(b"data: x\n\n")
    assert event.id == "7" and event.retry is None


def test_event_type_resets_after_each_event() -> None:
    events = list(iter_events(["event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n"]))
    assert [e.event for e in events] == ["a", "message", "message"]


def test_unknown_fields_and_empty_data() -> None:
    events = list(iter_events([b"foo: bar\ndata\n\ndata:\ndata:\n\n"]))
    assert [e.data for e in events] == ["", "\n"]


def test_unterminated_event_is_discarded_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: partial\n") == []
    assert decoder.close() == []


def test_json_helper_and_text_chunks() -> None:
    (event,) = iter_events(['data: {"a": [1, 2]}', "\n\n"])
    assert event.json() == {"a": [1, 2]}


def test_invalid_utf8_is_replaced() -> None:
    (event,) = iter_events([b"data: \xff\xfe ok\n\n"])
    assert event.data == "\ufffd\ufffd ok"
