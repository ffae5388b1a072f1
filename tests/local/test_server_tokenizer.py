"""The official SDK's get_tokenizer() works offline against the local server: the tokenizer id
the server answers is the path of its tokenizer in Hugging Face format."""

from __future__ import annotations

from pathlib import Path

import pytest
import tinker

import tinkex
from tinkex.local import LocalServer
from tinkex.tokenizer.byte import EOS_ID, ByteTokenizer

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
