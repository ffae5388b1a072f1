"""Parity row 1.19: the Hugging Face token variables reach the Hub when tinkex downloads a
tokenizer. Without ``transformers``, ``tokenizer_for_model`` downloads the tokenizer files with
``huggingface_hub.snapshot_download``; here the Hub is a loopback stand-in (``HF_ENDPOINT``) that
records each request's ``Authorization`` header, so the test needs no network."""

from __future__ import annotations

import hashlib
import http.server
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _child import assert_ok, run_code
from _loopback import LoopbackServer, QuietHandler

from tinkex.local.hf_tokenizer import QWEN3_LAYOUT, write_tokenizer_dir

pytest.importorskip("huggingface_hub")

REPO = "someorg/private-model"
SHA = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "hf_standin_secret"


class StandinHub(LoopbackServer):
    """The Hub endpoints ``snapshot_download`` uses, serving the files of ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.files = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
        self.authorizations: list[tuple[str, str | None]] = []
        hub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                hub.answer(self)

            def do_HEAD(self) -> None:
                hub.answer(self)

        super().__init__(Handler, name="stand-in-hub")

    def answer(self, request: http.server.BaseHTTPRequestHandler) -> None:
        path = request.path
        if path.startswith(f"/api/models/{REPO}/") or path.startswith(f"/{REPO}/"):
            self.authorizations.append((path, request.headers.get("authorization")))
        headers = {"Content-Type": "application/json"}
        if path.startswith(f"/api/models/{REPO}/tree/"):
            body = json.dumps(
                [
                    {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
                    for name, data in self.files.items()
                ]
            ).encode()
        elif path.startswith(f"/api/models/{REPO}/revision/"):
            siblings = [{"rfilename": name} for name in self.files]
            body = json.dumps(
                {
                    "id": REPO,
                    "sha": SHA,
                    "private": True,
                    "siblings": siblings,
                    **{"downloads": 0, "likes": 0, "tags": []},  # read by older huggingface_hub
                }
            ).encode()
        elif path.startswith(f"/{REPO}/resolve/") and path.rsplit("/", 1)[-1] in self.files:
            body = self.files[path.rsplit("/", 1)[-1]]
            headers = {
                "Content-Type": "application/octet-stream",
                "X-Repo-Commit": SHA,
                "ETag": f'"{_oid(body)}"',
            }
        else:
            _send(request, 404, b"{}", {"X-Error-Code": "EntryNotFound"})
            return
        _send(request, 200, body, headers)


def _oid(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _send(
    request: http.server.BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
) -> None:
    request.send_response(status)
    for name, value in headers.items():
        request.send_header(name, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[StandinHub]:
    standin = StandinHub(write_tokenizer_dir(QWEN3_LAYOUT, tmp_path / "served"))
    yield standin
    standin.close()


DOWNLOAD = f"""
    import sys
    sys.modules["transformers"] = None  # as if transformers were not installed
    from tinkex.tokenizer import tokenizer_for_model
    print(tokenizer_for_model({REPO!r}).encode("hi"))
"""


@pytest.mark.parametrize("variable", ["HF_TOKEN", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN"])
def test_the_token_variable_reaches_the_hub(hub: StandinHub, tmp_path: Path, variable: str) -> None:
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TINKER_TELEMETRY": "0",
    }
    if variable == "HF_TOKEN_PATH":
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        env[variable] = str(token_file)
        probe = "import huggingface_hub.constants as c; print(c.HF_TOKEN_PATH)"
        if assert_ok(run_code(probe, env=env)).strip() != str(token_file):
            pytest.skip("this huggingface_hub reads only $HF_HOME/token (no HF_TOKEN_PATH)")
    else:
        env[variable] = TOKEN
    out = assert_ok(run_code(DOWNLOAD, env=env))
    assert out.strip() == "[104, 105]"  # the downloaded tokenizer works
    files = [path for path, _ in hub.authorizations if "/resolve/" in path]
    assert files, hub.authorizations
    assert {auth for _, auth in hub.authorizations} == {f"Bearer {TOKEN}"}
