"""multipart/form-data encoding: paths, bytes, file objects, names, types, boundaries."""

from __future__ import annotations

import email.parser
import email.policy
import io
from pathlib import Path
from typing import Any

import pytest

from tinkex._files import MultipartForm, encode_multipart


def parse(body: bytes, content_type: str) -> list[Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    return list(message.iter_parts())


def disposition(part: Any) -> dict[str, str]:
    header = part["Content-Disposition"]
    return {"name": header.params.get("name"), "filename": header.params.get("filename")}


def test_fields_and_files_round_trip(tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 300)  # binary, larger than one chunk
    log = io.BytesIO(b"prefix|line 1\nline 2\n")
    log.seek(7)  # streamed from the current position
    form = MultipartForm(
        data={
            "purpose": "checkpoint",
            "step": 3,
            "flags": [True, False],
            "skip": None,
            "raw": b"\x00\x01",
        },
        files=[
            ("archive", weights),
            ("meta", ("meta.json", b'{"step": 3}', "application/json", {"X-Checksum": "abc"})),
            ("log", ("train.log", log)),
            ("blob", b"plain bytes"),
            ("str_path", str(weights)),
        ],
        boundary="test-boundary-123",
    )
    body = form.to_bytes()
    assert len(body) == form.content_length
    assert form.headers == {
        "Content-Type": "multipart/form-data; boundary=test-boundary-123",
        "Content-Length": str(len(body)),
    }
    parts = parse(body, form.content_type)
    summary = [
        (disposition(p)["name"], disposition(p)["filename"], p.get_content_type()) for p in parts
    ]
    assert summary == [
        ("purpose", None, "text/plain"),
        ("step", None, "text/plain"),
        ("flags", None, "text/plain"),
        ("flags", None, "text/plain"),
        ("raw", None, "text/plain"),
        ("archive", "weights.bin", "application/octet-stream"),
        ("meta", "meta.json", "application/json"),
        ("log", "train.log", "application/octet-stream"),
        ("blob", "upload", "application/octet-stream"),
        ("str_path", "weights.bin", "application/octet-stream"),
    ]
    payloads = [p.get_payload(decode=True) for p in parts]
    assert payloads[:5] == [b"checkpoint", b"3", b"true", b"false", b"\x00\x01"]
    assert payloads[5] == weights.read_bytes() == payloads[9]
    assert payloads[6] == b'{"step": 3}' and parts[6]["X-Checksum"] == "abc"
    assert payloads[7] == b"line 1\nline 2\n"
    assert payloads[8] == b"plain bytes"
    assert body.endswith(b"--test-boundary-123--\r\n")
    assert form.to_bytes() == body  # re-encodable (file objects are rewound), e.g. on retry


def test_exact_wire_layout() -> None:
    body, content_type = encode_multipart({"a": "1"}, {"f": ("x.txt", b"hi")}, boundary="B")
    assert content_type == "multipart/form-data; boundary=B"
    assert body == (
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b'--B\r\nContent-Disposition: form-data; name="f"; filename="x.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhi\r\n"
        b"--B--\r\n"
    )


def test_filename_escaping_and_unicode() -> None:
    body, _ = encode_multipart(
        files={'fi"eld': ('we"ird\r\nname.txt', b"x"), "u": ("résumé.pdf", b"y")}, boundary="B"
    )
    assert b'name="fi%22eld"; filename="we%22ird%0D%0Aname.txt"' in body
    assert 'filename="résumé.pdf"'.encode() in body
    assert b"Content-Type: application/pdf" in body


def test_none_filename_and_file_object_name(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    with open(path, "rb") as handle:
        body, _ = encode_multipart(
            files={"f": handle, "g": (None, b"v", "text/plain")}, boundary="B"
        )
    assert b'name="f"; filename="data.csv"\r\nContent-Type: text/csv' in body
    assert b'Content-Disposition: form-data; name="g"\r\nContent-Type: text/plain' in body


def test_non_seekable_stream_is_read_once() -> None:
    class Stream(io.RawIOBase):
        def __init__(self) -> None:
            self.blocks = [b"abc", b"def"]

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            data = b"".join(self.blocks)
            self.blocks = []
            return data

    form = MultipartForm(files={"s": ("s.bin", Stream())}, boundary="B")
    assert b"\r\n\r\nabcdef\r\n" in form.to_bytes()
    assert form.to_bytes() == form.to_bytes()


def test_streaming_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"z" * 200_000)
    form = MultipartForm(files={"f": path})
    chunks = list(form.iter_bytes(chunk_size=65_536))
    assert max(len(c) for c in chunks) <= 65_536 + 200
    assert b"".join(chunks) == form.to_bytes() and len(b"".join(chunks)) == form.content_length
    assert len(form.boundary) == 32  # random


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"'f'.*missing\.bin"):
        MultipartForm(files={"f": tmp_path / "missing.bin"})
    with open(tmp_path / "t.txt", "w") as handle, pytest.raises(TypeError, match="binary mode"):
        MultipartForm(files={"f": handle})
    with pytest.raises(TypeError, match=r"'n'.*dict"):
        MultipartForm(data={"n": {"a": 1}})
    with pytest.raises(ValueError, match="boundary"):
        MultipartForm(boundary="bad boundary ")
    with pytest.raises(ValueError, match="boundary"):
        MultipartForm(boundary="x" * 71)
    with pytest.raises(ValueError, match="occurs inside"):
        MultipartForm(files={"f": b"...--B..."}, boundary="B")
    with pytest.raises(ValueError, match="part header"):
        MultipartForm(files={"f": ("a", b"x", "text/plain", {"X-Bad": "a\r\nInjected: 1"})})
    with pytest.raises(TypeError, match="tuples are"):
        MultipartForm(files={"f": ("a",)})
    with pytest.raises(TypeError, match="expected a path"):
        MultipartForm(files={"f": 42})
