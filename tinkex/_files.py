"""``multipart/form-data`` encoding (RFC 7578) for file uploads.

Files may be given as paths, bytes or binary file objects, optionally with a filename, a
content type and extra part headers, in the ``requests``/``httpx`` shapes::

    form = MultipartForm(
        data={"purpose": "checkpoint"},
        files={
            "archive": Path("weights.tar"),                       # path: streamed from disk
            "meta": ("meta.json", b'{"step": 3}', "application/json"),
            "log": open("train.log", "rb"),                       # file object
        },
    )
    body = form.to_bytes()                 # or iterate form.iter_bytes() to stream
    headers = form.headers                 # Content-Type with boundary, Content-Length
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeAlias

__all__ = [
    "DataValue",
    "FileContent",
    "FileTypes",
    "MultipartForm",
    "encode_multipart",
]

FileContent: TypeAlias = "bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes]"
FileTypes: TypeAlias = (
    "FileContent"
    " | tuple[str | None, FileContent]"
    " | tuple[str | None, FileContent, str | None]"
    " | tuple[str | None, FileContent, str | None, Mapping[str, str]]"
)
DataValue: TypeAlias = "str | bytes | int | float | bool | None"

DEFAULT_FILENAME = "upload"
_CHUNK = 64 * 1024
_BOUNDARY_OK = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_CRLF = b"\r\n"


def _quote(value: str) -> str:
    # WHATWG HTML form encoding of names and filenames in Content-Disposition.
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _check_header(name: str, value: str, field: str) -> None:
    if any(ch in name + value for ch in "\r\n") or ":" in name:
        raise ValueError(f"multipart field {field!r}: invalid part header {name!r}: {value!r}")


class _Part:
    """One part: its header block, and a body from memory, a path or a seekable file."""

    def __init__(
        self,
        headers: bytes,
        *,
        content: bytes | None = None,
        path: Path | None = None,
        fileobj: IO[bytes] | None = None,
    ) -> None:
        self.headers = headers
        self.content = content
        self.path = path
        self.fileobj = fileobj
        self.start = fileobj.tell() if fileobj is not None else 0

    def size(self) -> int:
        if self.content is not None:
            return len(self.content)
        if self.path is not None:
            return os.path.getsize(self.path)
        assert self.fileobj is not None
        end = self.fileobj.seek(0, io.SEEK_END)
        self.fileobj.seek(self.start)
        return end - self.start

    def chunks(self, chunk_size: int) -> Iterator[bytes]:
        if self.content is not None:
            for offset in range(0, len(self.content), chunk_size):
                yield self.content[offset : offset + chunk_size]
            return
        if self.path is not None:
            with open(self.path, "rb") as handle:
                yield from iter(lambda: handle.read(chunk_size), b"")
            return
        assert self.fileobj is not None
        self.fileobj.seek(self.start)  # re-encodable (e.g. on retry)
        while True:
            block = self.fileobj.read(chunk_size)
            if not block:
                return
            yield block


def _data_items(
    data: Mapping[str, Any] | Sequence[tuple[str, Any]] | None,
) -> list[tuple[str, Any]]:
    if data is None:
        return []
    pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
    items: list[tuple[str, Any]] = []
    for name, value in pairs:
        if isinstance(value, list | tuple):
            items.extend((name, item) for item in value)
        else:
            items.append((name, value))
    return items


def _field_bytes(name: str, value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, int | float):
        return str(value).encode("ascii")
    raise TypeError(
        f"multipart field {name!r}: values must be str, bytes, int, float, bool or None, "
        f"got {type(value).__name__}"
    )


class MultipartForm:
    """A ``multipart/form-data`` body built from form fields and files.

    Args:
        data: plain fields, a mapping or ``(name, value)`` pairs; a list value repeats the
            field; ``None`` values are skipped.
        files: a mapping or ``(name, file)`` pairs where ``file`` is a path (``str`` or
            ``os.PathLike``: streamed from disk, must exist), bytes, a binary file object, or a
            tuple ``(filename, content[, content_type[, headers]])``. The filename defaults to
            the path's or file object's base name (``"upload"`` for bytes); ``filename=None``
            in a tuple omits it. The content type defaults to a guess from the filename, else
            ``application/octet-stream``. Seekable file objects are streamed from their current
            position (and rewound there for every encoding); others are read at construction.
        boundary: the boundary (1-70 characters of RFC 2046 ``bchars``); random by default.

    Raises:
        FileNotFoundError: a path does not exist (the message names the field).
        TypeError: a text-mode file object or an unsupported value.
        ValueError: an invalid boundary, a boundary found inside in-memory content, or a part
            header with CR/LF.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        boundary: str | bytes | None = None,
    ) -> None:
        if boundary is None:
            self.boundary = secrets.token_hex(16)
        else:
            text = boundary.decode("ascii") if isinstance(boundary, bytes) else boundary
            if not _BOUNDARY_OK.match(text):
                raise ValueError(
                    "multipart boundary must be 1-70 characters of [0-9A-Za-z'()+_,-./:=? ] "
                    f"not ending in a space, got {text!r}"
                )
            self.boundary = text
        self._parts: list[_Part] = []
        for name, value in _data_items(data):
            content = _field_bytes(name, value)
            if content is not None:
                header = f'Content-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'
                self._parts.append(_Part(header.encode("utf-8"), content=content))
        file_pairs = list(files.items()) if isinstance(files, Mapping) else list(files or [])
        for name, spec in file_pairs:
            self._parts.append(self._file_part(name, spec))
        if boundary is not None:
            marker = b"--" + self.boundary.encode("ascii")
            for part in self._parts:
                if part.content is not None and marker in part.content:
                    raise ValueError(
                        f"multipart boundary {self.boundary!r} occurs inside the content; "
                        f"choose another boundary"
                    )

    def _file_part(self, name: str, spec: Any) -> _Part:
        filename: str | None
        content_type: str | None = None
        extra: Mapping[str, str] = {}
        if isinstance(spec, tuple):
            if not 2 <= len(spec) <= 4:
                raise TypeError(
                    f"multipart file {name!r}: tuples are (filename, content[, content_type"
                    f"[, headers]]), got {len(spec)} items"
                )
            filename, content = spec[0], spec[1]
            if len(spec) >= 3:
                content_type = spec[2]
            if len(spec) == 4:
                extra = spec[3]
        else:
            content = spec
            filename = self._default_filename(content)
        part_kwargs: dict[str, Any] = {}
        if isinstance(content, str | os.PathLike):
            path = Path(content)
            if not path.is_file():
                raise FileNotFoundError(f"multipart file {name!r}: no such file {str(path)!r}")
            part_kwargs["path"] = path
        elif isinstance(content, bytes | bytearray | memoryview):
            part_kwargs["content"] = bytes(content)
        elif isinstance(content, io.TextIOBase):
            raise TypeError(
                f"multipart file {name!r}: file objects must be opened in binary mode ('rb')"
            )
        elif hasattr(content, "read"):
            if getattr(content, "seekable", lambda: False)():
                part_kwargs["fileobj"] = content
            else:
                raw = content.read()
                if isinstance(raw, str):
                    raise TypeError(
                        f"multipart file {name!r}: file objects must be opened in binary mode"
                    )
                part_kwargs["content"] = bytes(raw)
        else:
            raise TypeError(
                f"multipart file {name!r}: expected a path, bytes or a binary file object, "
                f"got {type(content).__name__}"
            )
        if content_type is None:
            guessed = mimetypes.guess_type(filename)[0] if filename else None
            content_type = guessed or "application/octet-stream"
        lines = [f'Content-Disposition: form-data; name="{_quote(name)}"']
        if filename is not None:
            lines[0] += f'; filename="{_quote(filename)}"'
        lines.append(f"Content-Type: {content_type}")
        _check_header("Content-Type", content_type, name)
        for header, value in extra.items():
            _check_header(header, value, name)
            lines.append(f"{header}: {value}")
        header_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        return _Part(header_bytes, **part_kwargs)

    @staticmethod
    def _default_filename(content: Any) -> str:
        if isinstance(content, str | os.PathLike):
            return Path(content).name
        name = getattr(content, "name", None)
        if isinstance(name, str) and name and not name.startswith("<"):
            return os.path.basename(name)
        return DEFAULT_FILENAME

    @property
    def content_type(self) -> str:
        """``multipart/form-data; boundary=...``."""
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        """Size of the encoded body in bytes (without reading file contents)."""
        delimiter = len(self.boundary) + 4  # "--" boundary CRLF
        total = sum(delimiter + len(part.headers) + part.size() + 2 for part in self._parts)
        return total + len(self.boundary) + 6  # "--" boundary "--" CRLF

    @property
    def headers(self) -> dict[str, str]:
        """``Content-Type`` and ``Content-Length`` for the request."""
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}

    def iter_bytes(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """The body in pieces (files are read ``chunk_size`` bytes at a time)."""
        marker = b"--" + self.boundary.encode("ascii")
        for part in self._parts:
            yield marker + _CRLF + part.headers
            yield from part.chunks(chunk_size)
            yield _CRLF
        yield marker + b"--" + _CRLF

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_bytes()

    def to_bytes(self) -> bytes:
        """The whole body."""
        return b"".join(self.iter_bytes())


def encode_multipart(
    data: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
    boundary: str | bytes | None = None,
) -> tuple[bytes, str]:
    """``(body, content_type)`` of a :class:`MultipartForm` built from the same arguments."""
    form = MultipartForm(data, files, boundary)
    return form.to_bytes(), form.content_type
