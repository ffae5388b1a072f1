"""``get_tokenizer()`` returns what the official SDK returns: a ``transformers`` tokenizer from
the Hugging Face cache when ``transformers`` is installed, tinkex's own wrapper otherwise.

Nothing is downloaded: tokenizers are laid out as offline cache entries in a temporary
``HF_HOME`` (``tinkex.local.hf_tokenizer``) and children run with ``HF_HUB_OFFLINE=1``; the
download path without ``transformers`` is exercised against a stand-in ``huggingface_hub``.
Checks that depend on ``HF_HOME`` run in a fresh interpreter (``huggingface_hub`` reads it at
import time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _child import assert_ok, run_code

from tinkex.local.hf_tokenizer import (
    BYTE_LAYOUT,
    KIMI_K2_LAYOUT,
    QWEN3_LAYOUT,
    hub_cache_dir,
    write_hub_cache_entry,
)
from tinkex.tokenizer import ByteTokenizer, register_tokenizer, tokenizer_for_model
from tinkex.tokenizer import unregister_tokenizer as unregister

transformers = pytest.importorskip("transformers")


def _offline(hf_home: Path, **extra: str) -> dict[str, str]:
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TINKER_TELEMETRY": "0", **extra}


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    """An HF_HOME whose hub cache holds a Qwen3-shaped tokenizer for ``Qwen/Qwen3-8B``."""
    home = tmp_path / "hf-home"
    write_hub_cache_entry(QWEN3_LAYOUT, hub_cache_dir(home), "Qwen/Qwen3-8B")
    return home


MODEL_NAMES: list[tuple[str, str | None]] = [
    ("Qwen/Qwen3-8B", None),
    ("Qwen/Qwen3-8B:peft", None),
    ("Qwen/Qwen3-30B-A3B/fp8", None),
    ("meta-llama/Llama-3.1-8B-Instruct", None),
    ("meta-llama/Llama-3.3-70B-Instruct:lora", None),
    ("deepseek-ai/DeepSeek-V3.1", None),
    ("some/model", "other-org/its-tokenizer"),
    ("moonshotai/Kimi-K2-Thinking", None),
    ("moonshotai/Kimi-K2.5-Text-Only", None),
    ("anything", "moonshotai/Kimi-K2.5"),
    ("moonshotai/Kimi-K2.6", None),
    ("moonshotai/Kimi-K3", None),
]


@pytest.mark.parametrize(("model_name", "tokenizer_id"), MODEL_NAMES)
def test_asks_transformers_for_what_the_official_sdk_asks(
    model_name: str, tokenizer_id: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same repository and keyword arguments as tinker 0.38 passes to AutoTokenizer."""
    official_sampling = pytest.importorskip("tinker.lib.public_interfaces.sampling_client")
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    from tinkex.tokenizer import clear_cache

    calls: list[tuple[str, dict[str, Any]]] = []

    def record(repo: str, **kwargs: Any) -> ByteTokenizer:
        kwargs.pop("fast", None)  # tinker passes fast=True, which transformers ignores
        if kwargs.get("local_files_only") is False:
            del kwargs["local_files_only"]  # the default
        calls.append((repo, kwargs))
        return ByteTokenizer()

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", record)
    official_sampling._load_tokenizer_from_model_info.__wrapped__(model_name, tokenizer_id)
    clear_cache()
    try:
        tokenizer_for_model(model_name, tokenizer_id)
    finally:
        clear_cache()  # forget the stand-in tokenizer
    official, ours = calls
    assert ours == official


def test_transformers_tokenizer_from_the_offline_cache(hf_home: Path) -> None:
    code = """
        import json, transformers
        from tinkex.tokenizer import tokenizer_for_model
        from tinker.lib.public_interfaces.sampling_client import _load_tokenizer_from_model_info

        tok = tokenizer_for_model("Qwen/Qwen3-8B:peft")
        official = _load_tokenizer_from_model_info("Qwen/Qwen3-8B")
        chat = [{"role": "user", "content": "hi"}]
        print(json.dumps({
            "transformers": isinstance(tok, transformers.PreTrainedTokenizerBase),
            "same_class": type(tok) is type(official),
            "call": tok("hello")["input_ids"],
            "official_call": official("hello")["input_ids"],
            "chat": tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
            "official_chat": official.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=True),
            "batch_decode": tok.batch_decode([[104, 105], [257, 258]]),
            "special": [tok.eos_token, tok.eos_token_id, tok.pad_token, tok.pad_token_id],
            "cached": tokenizer_for_model("Qwen/Qwen3-8B") is tok,
        }))
    """
    seen = json.loads(assert_ok(run_code(code, env=_offline(hf_home))))
    assert seen.pop("call") == seen.pop("official_call") == [104, 101, 108, 108, 111]
    assert (
        seen.pop("chat")
        == seen.pop("official_chat")
        == ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    )
    assert seen == {
        "transformers": True,
        "same_class": True,
        "batch_decode": ["hi", "<|im_start|><|im_end|>"],
        "special": ["<|im_end|>", 258, "<|endoftext|>", 256],
        "cached": True,
    }


CLIENTS = """
    import json, sys
    if sys.argv[1] == "without":
        sys.modules["transformers"] = None      # as if transformers were not installed
    import tinkex
    from tinkex.local import LocalServer

    with LocalServer() as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            training = service.create_lora_training_client("tinkex/tiny", rank=4).result()
            sampling = training.save_weights_and_get_sampling_client("s").result()
            tokenizers = [training.get_tokenizer(), sampling.get_tokenizer()]
            seen = {
                "types": [type(t).__name__ for t in tokenizers],
                "hi": [t.encode("hi") for t in tokenizers],
                "shared": tokenizers[0] is tokenizers[1],
            }
            if sys.argv[1] == "with":
                from transformers import AutoTokenizer
                official = AutoTokenizer.from_pretrained(server.tokenizer_id)  # what tinker does
                seen["official_type"] = type(official).__name__
            print(json.dumps(seen))
"""


def _clients(variant: str, hf_home: Path) -> dict[str, Any]:
    from _child import run_python

    code = CLIENTS.replace("\n    ", "\n")
    seen: dict[str, Any] = json.loads(
        assert_ok(run_python(["-c", code, variant], env=_offline(hf_home)))
    )
    return seen


def test_clients_against_the_local_server_return_what_tinker_returns(tmp_path: Path) -> None:
    """The server answers its tokenizer folder; both clients load it as the official SDK does."""
    seen = _clients("with", tmp_path / "empty-hf-home")
    official = seen.pop("official_type")
    assert seen == {"types": [official, official], "hi": [[104, 105], [104, 105]], "shared": True}
    assert official != "ByteTokenizer"


def test_clients_without_transformers_return_tinkex_tokenizers(tmp_path: Path) -> None:
    seen = _clients("without", tmp_path / "empty-hf-home")
    assert seen == {
        "types": ["HFTokenizer", "HFTokenizer"],
        "hi": [[104, 105], [104, 105]],
        "shared": True,
    }


def test_tinkex_ids_never_go_to_the_hub(tmp_path: Path) -> None:
    """``tinkex/byte-tokenizer``: tinkex's own tokenizer (without importing transformers),
    or the cache entry laid out for it."""
    code = """
        import sys
        from tinkex.tokenizer import tokenizer_for_model
        tok = tokenizer_for_model("tinkex/tiny", "tinkex/byte-tokenizer")
        print(type(tok).__name__, tok.encode("hi"), "transformers" in sys.modules)
    """
    empty = assert_ok(run_code(code, env=_offline(tmp_path / "empty", HF_HUB_OFFLINE="0")))
    assert empty.split() == ["ByteTokenizer", "[104,", "105]", "False"]
    home = tmp_path / "laid-out"
    write_hub_cache_entry(BYTE_LAYOUT, hub_cache_dir(home), "tinkex/byte-tokenizer")
    laid_out = assert_ok(run_code(code, env=_offline(home, HF_HUB_OFFLINE="0"))).split()
    assert laid_out[0] != "ByteTokenizer" and laid_out[1:] == ["[104,", "105]", "True"]


NO_TRANSFORMERS = """
    import json, sys, types
    sys.modules["transformers"] = None          # as if transformers were not installed
    calls = []

    def snapshot_download(repo, revision=None, allow_patterns=None):
        from tinkex.local.hf_tokenizer import QWEN3_LAYOUT, write_tokenizer_dir
        calls.append([repo, revision, allow_patterns])
        return str(write_tokenizer_dir(QWEN3_LAYOUT, sys.argv[1]))

    sys.modules["huggingface_hub"] = types.SimpleNamespace(snapshot_download=snapshot_download)
    from tinkex.tokenizer import TokenizerNotFoundError, tokenizer_for_model

    results = {}
    for model in sys.argv[2:]:
        try:
            tok = tokenizer_for_model(model)
            results[model] = [type(tok).__name__, tok.encode("hi"), tok.eos_token_id]
        except TokenizerNotFoundError as exc:
            results[model] = ["TokenizerNotFoundError", str(exc).splitlines()[0]]
    print(json.dumps({"results": results, "downloads": calls}))
"""


def _without_transformers(
    hf_home: Path, download_dir: Path, models: list[str], env: dict[str, str]
) -> dict[str, Any]:
    from _child import run_python

    args = ["-c", NO_TRANSFORMERS.replace("\n    ", "\n"), str(download_dir), *models]
    seen: dict[str, Any] = json.loads(assert_ok(run_python(args, env=env)))
    return seen


def test_without_transformers_tinkex_wrapper_from_cache_or_the_hub(
    hf_home: Path, tmp_path: Path
) -> None:
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0", "TINKER_TELEMETRY": "0"}
    models = ["Qwen/Qwen3-8B", "Qwen/Qwen3-4B:peft", "moonshotai/Kimi-K2.5-Text-Only"]
    seen = _without_transformers(hf_home, tmp_path / "download", models, env)
    assert seen["results"] == {
        "Qwen/Qwen3-8B": ["HFTokenizer", [104, 105], 258],  # from the cache, no download
        "Qwen/Qwen3-4B:peft": ["HFTokenizer", [104, 105], 258],
        "moonshotai/Kimi-K2.5-Text-Only": ["HFTokenizer", [104, 105], 258],
    }
    patterns = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    assert [call[:2] for call in seen["downloads"]] == [
        ["Qwen/Qwen3-4B", None],
        ["moonshotai/Kimi-K2.5", "4d01dfe0332d63057c186e0b262165819efb6611"],
    ]
    assert all(set(patterns) <= set(call[2]) for call in seen["downloads"])


def test_without_transformers_offline_never_downloads(hf_home: Path, tmp_path: Path) -> None:
    seen = _without_transformers(
        hf_home, tmp_path / "download", ["Qwen/Qwen3-4B"], _offline(hf_home)
    )
    assert seen["downloads"] == []
    assert seen["results"]["Qwen/Qwen3-4B"] == [
        "TokenizerNotFoundError",
        "cannot load the tokenizer of model 'Qwen/Qwen3-4B' (Hub id 'Qwen/Qwen3-4B').",
    ]


def test_missing_tokenizer_names_model_and_repo(tmp_path: Path) -> None:
    code = """
        from tinkex.tokenizer import TokenizerNotFoundError, tokenizer_for_model
        try:
            tokenizer_for_model("nobody/no-such-model/fp8")
        except TokenizerNotFoundError as exc:
            print(exc.tokenizer_id)
            print(str(exc))
    """
    out = assert_ok(run_code(code, env=_offline(tmp_path / "empty"))).splitlines()
    assert out[0] == "nobody/no-such-model"
    assert out[1] == (
        "cannot load the tokenizer of model 'nobody/no-such-model/fp8' (Hub id "
        "'nobody/no-such-model')."
    )
    assert out[2].startswith("transformers: ")
    # the download command the installed huggingface_hub ships (hf since 0.34; issue 12.5)
    from tinkex.tokenizer._loader import _hf_download_command

    assert f"{_hf_download_command()} nobody/no-such-model" in "\n".join(out)


def test_registered_tokenizer_wins() -> None:
    mine = ByteTokenizer()
    register_tokenizer("org/registered", mine)
    try:
        assert tokenizer_for_model("org/registered/variant:peft") is mine
        assert tokenizer_for_model("whatever", "org/registered") is mine
    finally:
        unregister("org/registered")


def test_thinking_machines_models_need_tml_tokenizers() -> None:
    with pytest.raises(RuntimeError, match="needs the tml-tokenizers package"):
        tokenizer_for_model("TML/some-model")


@pytest.mark.parametrize("variant", ["with", "without"])
def test_kimi_k2_tokenizer_is_read_at_the_pinned_revision(variant: str, tmp_path: Path) -> None:
    """Offline, with or without transformers: the snapshot tinker 0.38 pins, not refs/main.

    Both snapshots hold Kimi's file format (``tiktoken.model`` + ``tokenizer_config.json``,
    no remote code, so transformers cannot build them and tinkex's tiktoken tokenizer reads
    them); ``<|im_end|>`` has another id in each.
    """
    from _child import run_python

    home = tmp_path / "hf-home"
    pin = "612681931a8c906ddb349f8ad0f582cb552189cd"
    for layout, revision in ((KIMI_K2_LAYOUT, pin), (BYTE_LAYOUT, "f" * 40)):  # main: the last
        write_hub_cache_entry(
            layout,
            hub_cache_dir(home),
            "moonshotai/Kimi-K2-Thinking",
            revision=revision,
            file_format="tiktoken",
        )
    code = """
        import sys
        if sys.argv[1] == "without":
            sys.modules["transformers"] = None
        from tinkex.tokenizer import tokenizer_for_model
        tok = tokenizer_for_model("moonshotai/Kimi-K2-Thinking")
        print(type(tok).__name__, tok.encode("hi<|im_end|>"))
    """
    args = ["-c", code.replace("\n        ", "\n"), variant]
    out = assert_ok(run_python(args, env=_offline(home))).split(maxsplit=1)
    assert out == ["TiktokenTokenizer", f"[104, 105, {KIMI_K2_LAYOUT.token_id('<|im_end|>')}]\n"]
