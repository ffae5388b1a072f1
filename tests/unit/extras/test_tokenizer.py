"""tinkex.tokenizer: HF tokenizers files, tiktoken models, HF cache lookup, caching, errors."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tinkex.tokenizer import (
    BYTE_TOKENIZER_ID,
    ByteTokenizer,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    TokenizerNotFoundError,
    clear_cache,
    get_tokenizer,
    load_bpe_ranks,
    model_input_from_text,
    register_tokenizer,
    resolve_tokenizer_id,
    unregister_tokenizer,
)

CORPUS = ["hello world", "hello there", "the world says hello", "低资源 tokenizer test"] * 30


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    clear_cache()
    yield
    clear_cache()


def write_hf_tokenizer(directory: Path, *, with_config: bool = True) -> Path:
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    raw = RawTokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(CORPUS, trainer)
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", raw.token_to_id("<s>"))]
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenizer.json"
    raw.save(str(path))
    if with_config:
        config = {
            "bos_token": "<s>",
            "eos_token": {"content": "</s>"},
            "pad_token": "<pad>",
            "chat_template": "{{x}}",
        }
        (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return path


MERGES = [b"he", b"ll", b"hell", b"hello", b" w", b"or", b" wor", b"ld", b" world"]


def write_tiktoken_model(directory: Path, *, config: dict[str, object] | None = None) -> Path:
    ranks = [bytes([b]) for b in range(256)] + MERGES
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tiktoken.model"
    path.write_bytes(
        b"".join(
            base64.b64encode(tok) + b" " + str(i).encode() + b"\n" for i, tok in enumerate(ranks)
        )
    )
    if config is not None:
        (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def kimi_config(n: int) -> dict[str, object]:
    return {
        "added_tokens_decoder": {
            str(n): {"content": "[BOS]"},
            str(n + 1): {"content": "[EOS]"},
            str(n + 4): {"content": "<|im_end|>"},
        },
        "bos_token": "[BOS]",
        "eos_token": "[EOS]",
    }


def test_byte_tokenizer_by_id() -> None:
    tok = get_tokenizer(BYTE_TOKENIZER_ID)
    assert isinstance(tok, ByteTokenizer) and isinstance(tok, Tokenizer)
    assert tok.decode(tok.encode("héllo")) == "héllo"
    assert get_tokenizer(BYTE_TOKENIZER_ID) is tok


def test_hf_tokenizer_from_file_and_directory(tmp_path: Path) -> None:
    path = write_hf_tokenizer(tmp_path / "tok")
    by_file = get_tokenizer(str(path))
    by_dir = get_tokenizer(str(path.parent))
    for tok in (by_file, by_dir):
        assert isinstance(tok, HFTokenizer) and isinstance(tok, Tokenizer)
        ids = tok.encode("hello world")
        assert ids[0] == tok.bos_token_id  # post-processor adds <s>
        assert tok.encode("hello world", add_special_tokens=False) == ids[1:]
        assert tok.decode(ids, skip_special_tokens=True) == "hello world"
        assert tok.decode(ids).startswith("<s>")
        assert tok.eos_token_id == tok.token_to_id("</s>") and tok.pad_token_id == tok.token_to_id(
            "<pad>"
        )
        assert tok.vocab_size == len(tok) <= 320
        assert tok.convert_ids_to_tokens(ids[:1]) == ["<s>"]
        assert tok.chat_template == "{{x}}"
    assert len(tok.encode("hello world", add_special_tokens=False)) < len(
        "hello world"
    )  # merges learnt


def test_hf_tokenizer_without_config(tmp_path: Path) -> None:
    tok = get_tokenizer(str(write_hf_tokenizer(tmp_path / "bare", with_config=False)))
    assert tok.bos_token_id is None and tok.eos_token_id is None
    assert tok.decode(tok.encode("hello", add_special_tokens=False)) == "hello"


def test_tiktoken_model_with_kimi_style_specials(tmp_path: Path) -> None:
    n = 256 + len(MERGES)
    path = write_tiktoken_model(tmp_path / "kimi", config=kimi_config(n))
    tok = get_tokenizer(str(path.parent))
    assert isinstance(tok, TiktokenTokenizer) and isinstance(tok, Tokenizer)
    assert tok.vocab_size == n + 256
    ids = tok.encode("hello world")
    assert ids == [256 + MERGES.index(b"hello"), 256 + MERGES.index(b" world")]
    assert tok.decode(ids) == "hello world"
    assert (tok.bos_token_id, tok.eos_token_id) == (n, n + 1)
    assert tok.token_to_id("<|im_end|>") == n + 4
    assert tok.token_to_id(f"<|reserved_token_{n + 2}|>") == n + 2
    with_special = tok.encode("hello<|im_end|>")
    assert with_special[-1] == n + 4
    assert tok.decode(with_special, skip_special_tokens=True) == "hello"
    assert tok.encode("hi", add_special_tokens=True)[0] != n  # add_bos_token is off by default
    assert tok.convert_ids_to_tokens(ids) == ["hello", " world"]
    # Han runs are pre-tokenised on their own by the Kimi pattern; any UTF-8 round-trips.
    assert tok.decode(tok.encode("中文English混合")) == "中文English混合"


def test_tiktoken_bos_when_configured(tmp_path: Path) -> None:
    n = 256 + len(MERGES)
    path = write_tiktoken_model(tmp_path / "bos", config={**kimi_config(n), "add_bos_token": True})
    tok = TiktokenTokenizer.from_file(path)
    assert tok.encode("hello") == [n, 256 + MERGES.index(b"hello")]
    assert tok.encode("hello", add_special_tokens=False) == [256 + MERGES.index(b"hello")]


def test_tiktoken_long_runs_are_chunked(tmp_path: Path) -> None:
    tok = TiktokenTokenizer.from_file(write_tiktoken_model(tmp_path / "long"))
    text = "a" * 60_000 + " " * 30_000 + "hello"
    assert tok.decode(tok.encode(text)) == text


def test_bad_tiktoken_file(tmp_path: Path) -> None:
    bad = tmp_path / "tiktoken.model"
    bad.write_bytes(b"aGk= 0\nnot-base64 !!\n")
    with pytest.raises(ValueError, match=r"tiktoken.model:2"):
        load_bpe_ranks(bad)


def make_hf_cache_entry(root: Path, repo: str, files: str = "hf", *, ref: bool = True) -> Path:
    entry = root / "hub" / ("models--" + repo.replace("/", "--"))
    snapshot = entry / "snapshots" / "0123abcd"
    if files == "hf":
        write_hf_tokenizer(snapshot)
    else:
        write_tiktoken_model(snapshot, config=kimi_config(256 + len(MERGES)))
    if ref:
        (entry / "refs").mkdir(parents=True)
        (entry / "refs" / "main").write_text("0123abcd\n")
    return snapshot


def test_hf_cache_lookup(tmp_path: Path) -> None:
    make_hf_cache_entry(tmp_path / "hf-home", "org/tiny-model")
    tok = get_tokenizer("org/tiny-model")
    assert isinstance(tok, HFTokenizer) and tok.name_or_path == "org/tiny-model"
    assert get_tokenizer("org/tiny-model") is tok
    # ":suffix" and "org/model/variant" resolve to the same repository
    assert isinstance(get_tokenizer("org/tiny-model:lora"), HFTokenizer)
    assert isinstance(get_tokenizer("org/tiny-model/base"), HFTokenizer)


def test_hf_cache_lookup_tiktoken_without_refs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache" / "hub"))
    make_hf_cache_entry(
        tmp_path / "hub-cache", "moonshotai/Kimi-K2-Instruct", "tiktoken", ref=False
    )
    tok = get_tokenizer("moonshotai/Kimi-K2-Instruct")
    assert isinstance(tok, TiktokenTokenizer)


def test_default_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HOME")
    make_hf_cache_entry(tmp_path / "home" / ".cache" / "huggingface", "org/in-home")
    assert isinstance(get_tokenizer("org/in-home"), HFTokenizer)


def test_llama3_models_use_the_shared_tokenizer(tmp_path: Path) -> None:
    assert (
        resolve_tokenizer_id("meta-llama/Llama-3.1-8B")
        == "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"
    )
    assert resolve_tokenizer_id("Qwen/Qwen3-8B:peft:1") == "Qwen/Qwen3-8B"
    assert resolve_tokenizer_id("org/model/variant") == "org/model"
    make_hf_cache_entry(
        tmp_path / "hf-home", "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"
    )
    assert isinstance(get_tokenizer("meta-llama/Llama-3.1-8B-Instruct"), HFTokenizer)


def test_missing_tokenizer_error_explains_offline_options(tmp_path: Path) -> None:
    with pytest.raises(TokenizerNotFoundError) as info:
        get_tokenizer("Qwen/Qwen3-8B")
    message = str(info.value)
    assert "'Qwen/Qwen3-8B'" in message and "not available offline" in message
    assert str(tmp_path / "hf-home" / "hub" / "models--Qwen--Qwen3-8B") in message
    # `hf download` with huggingface_hub >= 0.34, `huggingface-cli download` before
    from tinkex.tokenizer._loader import _hf_download_command

    assert f"{_hf_download_command()} Qwen/Qwen3-8B" in message
    assert "register_tokenizer" in message
    assert info.value.tokenizer_id == "Qwen/Qwen3-8B" and info.value.searched
    assert isinstance(info.value, LookupError)


def test_directory_without_tokenizer_files(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"neither tokenizer\.json nor tiktoken\.model"):
        get_tokenizer(str(tmp_path / "empty"))


def test_register_tokenizer_sources(tmp_path: Path) -> None:
    path = write_hf_tokenizer(tmp_path / "reg")
    register_tokenizer("my/model", path)
    try:
        assert isinstance(get_tokenizer("my/model"), HFTokenizer)
        byte = ByteTokenizer()
        register_tokenizer("my/model", byte)
        assert get_tokenizer("my/model") is byte  # re-registering replaces the cached one
        register_tokenizer("my/model", ByteTokenizer)
        assert isinstance(get_tokenizer("my/model"), ByteTokenizer)
    finally:
        assert unregister_tokenizer("my/model")
    assert not unregister_tokenizer("my/model")


def test_concurrent_first_use_loads_once() -> None:
    calls = []

    def factory() -> ByteTokenizer:
        calls.append(1)
        time.sleep(0.01)
        return ByteTokenizer()

    register_tokenizer("slow/tok", factory)
    try:
        results: list[object] = []
        threads = [
            threading.Thread(target=lambda: results.append(get_tokenizer("slow/tok")))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        unregister_tokenizer("slow/tok")
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


def test_model_input_from_text() -> None:
    types = pytest.importorskip("tinkex.types")
    if not hasattr(types, "ModelInput"):
        pytest.skip("tinkex.types.ModelInput not available yet")
    model_input = model_input_from_text("hi", BYTE_TOKENIZER_ID)
    assert model_input.to_ints() == [104, 105]
    with_bos = model_input_from_text("hi", ByteTokenizer(), add_special_tokens=True)
    assert with_bos.to_ints()[0] == ByteTokenizer.bos_token_id


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tinkex.tokenizer; "
        "print([m for m in ('tokenizers', 'tiktoken', 'numpy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- Kimi K2: pinned revision, pattern override, special tokens as text ------------------------

KIMI_K2 = "moonshotai/Kimi-K2-Thinking"
KIMI_K2_PIN = "612681931a8c906ddb349f8ad0f582cb552189cd"
NEWER = "f" * 40


def make_kimi_snapshot(hf_home: Path, repo: str, revision: str, *, im_end_offset: int) -> Path:
    """A tiktoken snapshot of ``repo`` at ``revision`` (no refs); ``<|im_end|>`` is special id
    ``n + im_end_offset``, so two snapshots of one repo tell apart by that id."""
    n = 256 + len(MERGES)
    config = kimi_config(n)
    config["added_tokens_decoder"] = {
        str(n): {"content": "[BOS]"},
        str(n + 1): {"content": "[EOS]"},
        str(n + im_end_offset): {"content": "<|im_end|>"},
    }
    snapshot = hf_home / "hub" / ("models--" + repo.replace("/", "--")) / "snapshots" / revision
    write_tiktoken_model(snapshot, config=config)
    return snapshot


def set_ref(hf_home: Path, repo: str, name: str, revision: str) -> None:
    refs = hf_home / "hub" / ("models--" + repo.replace("/", "--")) / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / name).write_text(revision)


def test_kimi_k2_loads_the_pinned_revision_from_the_cache(tmp_path: Path) -> None:
    """refs/main names a newer snapshot; the Kimi K2 tokenizer is the one at the official pin."""
    hf_home = tmp_path / "hf-home"
    n = 256 + len(MERGES)
    make_kimi_snapshot(hf_home, KIMI_K2, KIMI_K2_PIN, im_end_offset=4)
    make_kimi_snapshot(hf_home, KIMI_K2, NEWER, im_end_offset=5)
    set_ref(hf_home, KIMI_K2, "main", NEWER)
    for name in (KIMI_K2, f"{KIMI_K2}:peft"):
        tok = get_tokenizer(name)
        assert isinstance(tok, TiktokenTokenizer)
        assert tok.encode("<|im_end|>") == [n + 4], name
    # An explicit revision (a commit or a ref name) picks that snapshot instead.
    assert get_tokenizer(KIMI_K2, revision=NEWER).encode("<|im_end|>") == [n + 5]
    assert get_tokenizer(KIMI_K2, revision="main").encode("<|im_end|>") == [n + 5]
    assert get_tokenizer(KIMI_K2) is get_tokenizer(KIMI_K2)  # cached per id and revision


def test_kimi_k2_5_text_only_reads_the_kimi_k2_5_repo_at_its_pin(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf-home"
    n = 256 + len(MERGES)
    make_kimi_snapshot(
        hf_home, "moonshotai/Kimi-K2.5", "4d01dfe0332d63057c186e0b262165819efb6611", im_end_offset=6
    )
    tok = get_tokenizer("moonshotai/Kimi-K2.5-Text-Only")
    assert tok.encode("<|im_end|>") == [n + 6]


def test_kimi_k2_at_another_revision_only_says_which_one_is_needed(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf-home"
    make_kimi_snapshot(hf_home, KIMI_K2, NEWER, im_end_offset=5)
    set_ref(hf_home, KIMI_K2, "main", NEWER)
    with pytest.raises(TokenizerNotFoundError) as info:
        get_tokenizer(KIMI_K2)
    message = str(info.value)
    assert f"at revision {KIMI_K2_PIN}" in message
    assert f"--revision {KIMI_K2_PIN}" in message
    assert f"the cache holds {KIMI_K2!r} at {NEWER} only" in message
    assert f"revision={NEWER!r}" in message  # how to use the cached one deliberately
    with pytest.raises(TokenizerNotFoundError, match="at revision 0123"):
        get_tokenizer("org/tiny-model", revision="0123")


def test_tiktoken_pattern_override(tmp_path: Path) -> None:
    hf_home = tmp_path / "hf-home"
    make_kimi_snapshot(hf_home, KIMI_K2, KIMI_K2_PIN, im_end_offset=4)
    words = r"\S+|\s+"  # a space is its own piece: " world" can no longer merge
    default = get_tokenizer(KIMI_K2)
    custom = get_tokenizer(KIMI_K2, pat_str=words)
    assert custom is not default and get_tokenizer(KIMI_K2, pat_str=words) is custom
    assert default.encode("hello world") == [256 + MERGES.index(b"hello"), 256 + 8]
    ids = custom.encode("hello world")
    assert ids[:2] == [256 + MERGES.index(b"hello"), ord(" ")] and len(ids) > 2
    assert custom.decode(ids) == "hello world"
    path = tmp_path / "files" / "tiktoken.model"
    write_tiktoken_model(path.parent)
    own_config = tmp_path / "elsewhere" / "tokenizer_config.json"
    own_config.parent.mkdir()
    own_config.write_text(json.dumps({"added_tokens_decoder": {"300": {"content": "<|x|>"}}}))
    direct = TiktokenTokenizer.from_file(path, config_path=own_config, pat_str=words)
    assert direct.encode("hello world") == ids and direct.encode("<|x|>") == [300]


def test_pattern_override_needs_a_tiktoken_tokenizer(tmp_path: Path) -> None:
    write_hf_tokenizer(tmp_path / "hf")
    with pytest.raises(ValueError, match=r"pat_str applies to tiktoken\.model .*tokenizer\.json"):
        get_tokenizer(str(tmp_path / "hf"), pat_str=r"\S+")
    with pytest.raises(ValueError, match=r"pat_str .*'tinkex/byte-tokenizer'"):
        get_tokenizer(BYTE_TOKENIZER_ID, pat_str=r"\S+")


def test_special_token_text_can_be_encoded_as_plain_text(tmp_path: Path) -> None:
    n = 256 + len(MERGES)
    tok = TiktokenTokenizer.from_file(write_tiktoken_model(tmp_path / "k", config=kimi_config(n)))
    assert tok.encode("hi<|im_end|>") == [104, 105, n + 4]
    plain = tok.encode("hi<|im_end|>", allow_special_tokens=False)
    assert n + 4 not in plain and tok.decode(plain) == "hi<|im_end|>"


def test_kimi_k2_layout_written_in_kimi_file_format(tmp_path: Path) -> None:
    from tinkex.local.hf_tokenizer import (
        KIMI_K2_LAYOUT,
        TIKTOKEN_FILES,
        hub_cache_dir,
        write_hub_cache_entry,
        write_tokenizer_dir,
    )

    folder = write_tokenizer_dir(KIMI_K2_LAYOUT, tmp_path / "kimi", file_format="tiktoken")
    assert sorted(p.name for p in folder.iterdir()) == sorted(TIKTOKEN_FILES)
    tok = get_tokenizer(str(folder))
    assert isinstance(tok, TiktokenTokenizer)
    layout_ids = [KIMI_K2_LAYOUT.token_id(t) for t in ("[BOS]", "[EOS]", "[PAD]")]
    assert [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id] == layout_ids
    assert tok.encode("hi<|im_user|>") == [104, 105, KIMI_K2_LAYOUT.token_id("<|im_user|>")]
    assert tok.decode(list(range(256, 264))) == "".join(KIMI_K2_LAYOUT.special_tokens)
    # At the pinned revision of the Kimi K2 repo, get_tokenizer finds it by Hub id.
    write_hub_cache_entry(
        KIMI_K2_LAYOUT,
        hub_cache_dir(tmp_path / "hf-home"),
        KIMI_K2,
        revision=KIMI_K2_PIN,
        file_format="tiktoken",
    )
    assert get_tokenizer(KIMI_K2).encode("<|im_end|>") == [KIMI_K2_LAYOUT.token_id("<|im_end|>")]
    with pytest.raises(ValueError, match="file_format must be 'tokenizers' or 'tiktoken'"):
        write_tokenizer_dir(KIMI_K2_LAYOUT, tmp_path / "x", file_format="sentencepiece")  # type: ignore[arg-type]


def test_registered_ids_also_answer_for_model_names_that_resolve_to_them() -> None:
    mine, other = ByteTokenizer(), ByteTokenizer()
    register_tokenizer("org/registered", mine)
    try:
        assert get_tokenizer("org/registered:peft") is mine
        assert get_tokenizer("org/registered/fp8") is mine
        register_tokenizer("org/registered", other)  # replaces what the model names loaded too
        assert get_tokenizer("org/registered:peft") is other
        register_tokenizer("org/registered:peft", mine)  # an exact registration wins
        assert get_tokenizer("org/registered:peft") is mine
    finally:
        unregister_tokenizer("org/registered")
        unregister_tokenizer("org/registered:peft")
    with pytest.raises(TokenizerNotFoundError):
        get_tokenizer("org/registered:peft")
