"""Incremental decoder for ``text/event-stream`` (Server-Sent Events, WHATWG HTML §9.2).

Feed it bytes as they arrive, in chunks of any size; it returns the events completed so far::

    decoder = SSEDecoder()
    for chunk in response.iter_content(chunk_size=None):
        for event in decoder.feed(chunk):
            handle(event.event, event.json())

Lines may end in CRLF, LF or CR (also when a CRLF is split across chunks), multi-byte UTF-8
characters may be split across chunks, a leading BOM is dropped, comment lines (``:``) are
skipped (or passed to ``on_comment``), ``data`` lines accumulate with ``\\n``, ``id`` persists
across events (ids containing NUL are ignored), ``retry`` takes only ASCII digits. As the
standard says, an event not terminated by a blank line before the stream ends is discarded.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEDecoder", "ServerSentEvent", "iter_events"]

_LINE_END = re.compile(r"[\r\n]")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    Attributes:
        event: the event type (``"message"`` when the stream gave none).
        data: the data lines joined with ``"\\n"``.
        id: the last event id seen on the stream so far (``None`` if none).
        retry: the reconnection time (ms) set in this event's block, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """``data`` parsed as JSON."""
        return json.loads(self.data)


class SSEDecoder:
    """Turns a stream of byte (or text) chunks into :class:`ServerSentEvent` s.

    Args:
        on_comment: called with the text of each comment line (after the ``:``).

    Attributes:
        last_event_id: the id to send as ``Last-Event-ID`` when reconnecting.
        retry: the latest reconnection time (ms) announced by the server.
    """

    def __init__(self, on_comment: Callable[[str], None] | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._on_comment = on_comment
        self._pending = ""  # an unterminated line
        self._skip_lf = False  # the previous chunk ended with CR; a leading LF belongs to it
        self._started = False
        self._data: list[str] = []
        self._event_type = ""
        self._block_retry: int | None = None
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes | bytearray | str) -> list[ServerSentEvent]:
        """Consume ``chunk``; return the events it completed (possibly none)."""
        text = chunk if isinstance(chunk, str) else self._decoder.decode(bytes(chunk))
        return self._consume(text)

    def close(self) -> list[ServerSentEvent]:
        """End of stream: flush the UTF-8 decoder. An unterminated line or event is
        discarded, so this returns an empty list (kept for symmetry with :meth:`feed`)."""
        events = self._consume(self._decoder.decode(b"", final=True))
        self._pending = ""
        self._data = []
        self._event_type = ""
        self._block_retry = None
        return events

    def _consume(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
                if not text:
                    return []
        events: list[ServerSentEvent] = []
        position = 0
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                position = 1
        buffer = self._pending + text[position:] if self._pending else text[position:]
        position = 0
        length = len(buffer)
        while True:
            match = _LINE_END.search(buffer, position)
            if match is None:
                break
            end = match.start()
            line = buffer[position:end]
            if buffer[end] == "\r":
                if end + 1 < length:
                    position = end + 2 if buffer[end + 1] == "\n" else end + 1
                else:
                    position = end + 1
                    self._skip_lf = True
            else:
                position = end + 1
            self._line(line, events)
        self._pending = buffer[position:]
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(":"):
            if self._on_comment is not None:
                self._on_comment(line[1:].removeprefix(" "))
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._block_retry = self.retry = int(value)
        # other field names are ignored

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        retry, self._block_retry = self._block_retry, None
        if not self._data:
            self._event_type = ""
            return
        events.append(
            ServerSentEvent(
                event=self._event_type or "message",
                data="\n".join(self._data),
                id=self.last_event_id,
                retry=retry,
            )
        )
        self._data = []
        self._event_type = ""


def iter_events(chunks: Iterable[bytes | bytearray | str]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of chunks (e.g. ``response.iter_content(None)``) into events."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
