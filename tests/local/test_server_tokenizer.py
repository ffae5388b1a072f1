"""The official SDK's get_tokenizer() works offline against the local server: the tokenizer id
the server answers a client on its machine is the path of its tokenizer in Hugging Face format;
a client elsewhere gets tinkex/byte-tokenizer, unless the server was given one id for all."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tinker

import tinkex
from tinkex.local import LocalServer
from tinkex.local.cli import add_serve_parser
from tinkex.local.http import Request
from tinkex.tokenizer.byte import EOS_ID, TOKENIZER_ID, ByteTokenizer

from .conftest import Api

pytest.importorskip("transformers")


def test_tokenizer_id_is_a_hugging_face_folder(server: LocalServer) -> None:
    folder = Path(server.tokenizer_id)
    assert folder.is_absolute() and folder.is_relative_to(Path(server.data_dir))
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in folder.iterdir()}


def test_official_get_tokenizer_works_offline(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # an empty Hugging Face cache and offline mode: only the server's folder can answer
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    byte = ByteTokenizer()
    with tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(base_model="Qwen/Qwen3-8B", rank=4)
        training = training.result() if hasattr(training, "result") else training
        assert training.get_info().model_data.tokenizer_id == server.tokenizer_id
        tokenizer = training.get_tokenizer()
    text = "Hello, tiny model!"
    assert tokenizer.encode(text, add_special_tokens=False) == byte.encode(text)
    assert tokenizer.eos_token_id == EOS_ID and len(tokenizer) == 264
    assert tokenizer.decode([104, 105, EOS_ID]) == byte.decode([104, 105, EOS_ID])
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "hi" in chat and all(0 <= t < 264 for t in byte.encode(chat))


def test_tinkex_get_tokenizer_reads_the_same_folder(server: LocalServer) -> None:
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(base_model="tinkex/tiny", rank=4)
        training = training.result() if hasattr(training, "result") else training
        tokenizer = training.get_tokenizer()
    assert tokenizer.encode("hi there") == ByteTokenizer().encode("hi there")


def _as_if_from(server: LocalServer, peer: str, method: str, path: str, body: Any = None) -> Any:
    """The answer to a request arriving from IP address ``peer`` (the server listens on loopback
    only, so another machine's connection is simulated at the HTTP layer's hand-off)."""
    assert server.app is not None
    request = Request(
        method=method,
        path="/api/v1/" + path,
        query={},
        headers={"x-api-key": server.api_key, "content-type": "application/json"},
        body=b"" if body is None else json.dumps(body).encode(),
        peer=peer,
    )
    answer = asyncio.run_coroutine_threadsafe(server.app.handle(request), server._loop)
    response = answer.result(10)
    assert response.status == 200, response.body
    return json.loads(response.body)


def test_a_client_on_another_machine_is_answered_an_id_it_can_resolve() -> None:
    """The folder's path names nothing on another machine: clients there get
    tinkex/byte-tokenizer (tinkex resolves it without files; the official SDK through a cache
    entry, see the next test); loopback clients keep getting the path."""
    with LocalServer(long_poll_seconds=0.5) as server:
        api = Api(server)
        session = api.session()
        model_id = api.model(session=session)
        sampler = api.ok(
            "create_sampling_session",
            {"session_id": session, "sampling_session_seq_id": 0, "base_model": "tinkex/tiny"},
        )
        assert (
            sampler["tokenizer_id"]
            == server.tokenizer_id
            == api.ok("get_info", {"model_id": model_id})["model_data"]["tokenizer_id"]
        )
        assert Path(server.tokenizer_id).is_dir()
        sampler_id = sampler["sampling_session_id"]
        for peer in ("192.0.2.7", "2001:db8::5", "::ffff:10.1.2.3"):
            info = _as_if_from(server, peer, "POST", "get_info", {"model_id": model_id})
            assert info["model_data"]["tokenizer_id"] == TOKENIZER_ID
            get = _as_if_from(server, peer, "GET", f"samplers/{sampler_id}")
            assert get["tokenizer_id"] == TOKENIZER_ID
            created = _as_if_from(
                server,
                peer,
                "POST",
                "create_sampling_session",
                {"session_id": session, "sampling_session_seq_id": 1, "base_model": "tinkex/tiny"},
            )
            assert created["tokenizer_id"] == TOKENIZER_ID
        for peer in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"):
            info = _as_if_from(server, peer, "POST", "get_info", {"model_id": model_id})
            assert info["model_data"]["tokenizer_id"] == server.tokenizer_id
    tokenizer = tinkex.tokenizer.tokenizer_for_model("Qwen/Qwen3-8B", TOKENIZER_ID)
    assert tokenizer.encode("hi there") == ByteTokenizer().encode("hi there")


def test_the_official_sdk_elsewhere_loads_the_remote_id_from_a_cache_entry(
    tmp_path: Path,
) -> None:
    """What the docs tell a user of the official SDK on another machine: lay the byte tokenizer
    out once as a Hub cache entry; AutoTokenizer.from_pretrained(id) then loads it offline."""
    code = (
        "import os, sys\n"
        "from transformers import AutoTokenizer\n"
        "from tinkex.local.hf_tokenizer import BYTE_LAYOUT, hub_cache_dir, write_hub_cache_entry\n"
        "write_hub_cache_entry(BYTE_LAYOUT, hub_cache_dir(os.environ['HF_HOME']), sys.argv[1])\n"
        "tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "print(tokenizer.encode('hi', add_special_tokens=False), len(tokenizer))\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code, TOKENIZER_ID],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[104,", "105]", "264"]


def test_a_configured_tokenizer_id_is_answered_to_everyone() -> None:
    with LocalServer(tokenizer_id="/shared/tokenizers/byte", long_poll_seconds=0.5) as server:
        api = Api(server)
        session = api.session()
        model_id = api.model(session=session)
        assert server.tokenizer_id == "/shared/tokenizers/byte"
        for peer in ("127.0.0.1", "192.0.2.7"):
            info = _as_if_from(server, peer, "POST", "get_info", {"model_id": model_id})
            assert info["model_data"]["tokenizer_id"] == "/shared/tokenizers/byte"
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "--tokenizer-id", "x/y"]).tokenizer_id == "x/y"
