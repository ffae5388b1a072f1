"""The Hugging Face tokenizer layouts of tinkex.local.hf_tokenizer, loaded the way real code
loads tokenizers: ``tokenizers`` on the file, ``transformers.AutoTokenizer`` from an offline
Hub cache entry, tinkex's own ``get_tokenizer``, and tinker-cookbook's renderer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tinkex.local.hf_tokenizer import (
    BYTE_LAYOUT,
    QWEN3_LAYOUT,
    TOKENIZER_FILES,
    TokenizerLayout,
    byte_to_unicode,
    hub_cache_dir,
    tokenizer_files,
    write_hub_cache_entry,
    write_tokenizer_dir,
)
from tinkex.local.model.spec import ARCHS
from tinkex.tokenizer.byte import ByteTokenizer

SAMPLES = [
    "",
    "hello world",
    "  leading and trailing  ",
    "tabs\tand\nnewlines\r\n",
    "héllo wörld — ünïcode ✓ 日本語 🙂",
    "".join(chr(value) for value in range(1, 128)),
    "<|user|>hi<|im_end|><|assistant|>",
    "<|begin_of_text|>text<|end_of_text|><|pad|>",
    "almost <|special|> but not",
]


def raw_tokenizer(layout: TokenizerLayout) -> Any:
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_str(tokenizer_files(layout)["tokenizer.json"])


def auto_tokenizer(hub_cache: Path, repo_id: str) -> Any:
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(
        repo_id, cache_dir=str(hub_cache), local_files_only=True
    )


def test_byte_to_unicode_is_a_printable_bijection() -> None:
    mapping = byte_to_unicode()
    assert sorted(mapping) == list(range(256))
    assert len(set(mapping.values())) == 256
    assert all(char.isprintable() and not char.isspace() for char in mapping.values())
    assert mapping[ord("A")] == "A"


@pytest.mark.parametrize("text", SAMPLES)
def test_byte_layout_encodes_like_the_byte_tokenizer(text: str) -> None:
    raw = raw_tokenizer(BYTE_LAYOUT)
    ids = raw.encode(text, add_special_tokens=False).ids
    assert ids == ByteTokenizer().encode(text)
    assert raw.decode(ids, skip_special_tokens=False) == text


def test_layouts_fit_the_local_model_vocabulary() -> None:
    for layout in (BYTE_LAYOUT, QWEN3_LAYOUT):
        raw = raw_tokenizer(layout)
        assert layout.vocab_size == raw.get_vocab_size(with_added_tokens=True)
        assert layout.vocab_size == ARCHS["tinkex/tiny"].vocab_size
        # every id the model can sample decodes
        for token_id in range(layout.vocab_size):
            assert raw.id_to_token(token_id) is not None


def test_qwen3_layout_special_and_added_tokens() -> None:
    raw = raw_tokenizer(QWEN3_LAYOUT)
    text = "<|im_start|>user\nhi <think>x</think><|im_end|>\n"
    ids = raw.encode(text, add_special_tokens=False).ids
    assert ids == [257, *b"user\nhi ", 259, ord("x"), 260, 258, ord("\n")]
    # skipping special tokens keeps the non-special <think> tags
    assert raw.decode(ids, skip_special_tokens=True) == "user\nhi <think>x</think>\n"


def test_hub_cache_entry_layout_and_revision(tmp_path: Path) -> None:
    hub = hub_cache_dir(tmp_path)
    snapshot = write_hub_cache_entry(QWEN3_LAYOUT, hub, "Qwen/Qwen3-8B")
    repo_dir = hub / "models--Qwen--Qwen3-8B"
    revision = (repo_dir / "refs" / "main").read_text()
    assert snapshot == repo_dir / "snapshots" / revision
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(TOKENIZER_FILES)
    # the same layout gets the same revision, another layout another one
    assert write_hub_cache_entry(QWEN3_LAYOUT, hub, "Qwen/Qwen3-8B") == snapshot
    other = write_hub_cache_entry(BYTE_LAYOUT, hub, "Qwen/Qwen3-8B")
    assert other != snapshot and (repo_dir / "refs" / "main").read_text() == other.name


def test_auto_tokenizer_loads_the_cache_entry_offline(tmp_path: Path) -> None:
    hub = hub_cache_dir(tmp_path)
    write_hub_cache_entry(QWEN3_LAYOUT, hub, "Qwen/Qwen3-8B")
    tokenizer = auto_tokenizer(hub, "Qwen/Qwen3-8B")
    assert len(tokenizer) == 264
    assert (tokenizer.eos_token, tokenizer.eos_token_id) == ("<|im_end|>", 258)
    assert (tokenizer.pad_token, tokenizer.pad_token_id) == ("<|endoftext|>", 256)
    assert tokenizer.bos_token_id is None
    assert set(tokenizer.all_special_ids) == {256, 257, 258, 263}
    text = "<|im_start|>assistant\nhé<|im_end|>"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer(text)["input_ids"] == ids  # nothing added by default
    assert tokenizer.decode(ids) == text
    assert tokenizer.batch_decode([ids, ids[:1]]) == [text, "<|im_start|>"]
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_auto_tokenizer_byte_layout_adds_bos_when_asked(tmp_path: Path) -> None:
    layout = TokenizerLayout(
        special_tokens=dict(BYTE_LAYOUT.special_tokens),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        add_bos_token=True,
    )
    hub = hub_cache_dir(tmp_path)
    write_hub_cache_entry(layout, hub, "tinkex/byte-tokenizer")
    tokenizer = auto_tokenizer(hub, "tinkex/byte-tokenizer")
    assert tokenizer("hi")["input_ids"] == [256, 104, 105]
    assert tokenizer.encode("hi", add_special_tokens=False) == [104, 105]


def test_tinkex_get_tokenizer_reads_the_tokenizer_dir(tmp_path: Path) -> None:
    from tinkex.tokenizer import load_tokenizer_path

    folder = write_tokenizer_dir(QWEN3_LAYOUT, tmp_path / "qwen3")
    tokenizer = load_tokenizer_path(folder, "Qwen/Qwen3-8B")
    assert tokenizer.encode("<|im_end|>a", add_special_tokens=False) == [258, 97]
    assert tokenizer.eos_token_id == 258
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["chat_template"] == QWEN3_LAYOUT.chat_template


def test_cookbook_qwen3_renderer_on_the_layout(tmp_path: Path) -> None:
    pytest.importorskip("tinker_cookbook", reason="run `make install-cookbook`")
    from tinker_cookbook.renderers import get_renderer

    hub = hub_cache_dir(tmp_path)
    write_hub_cache_entry(QWEN3_LAYOUT, hub, "Qwen/Qwen3-8B")
    renderer = get_renderer("qwen3", auto_tokenizer(hub, "Qwen/Qwen3-8B"))
    conversation = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
    ]
    model_input, weights = renderer.build_supervised_example(conversation)
    tokens = model_input.to_ints()
    assert max(tokens) < ARCHS["tinkex/tiny"].vocab_size
    assert tokens[0] == 257 and tokens[-1] == 258  # <|im_start|> ... <|im_end|>
    assert len(weights) == len(tokens) and float(weights.sum()) > 0
    assert renderer.get_stop_sequences() == [258]
    message, _ = renderer.parse_response([*b"<think>\nhm\n</think>\n\n4", 258])
    assert message["role"] == "assistant"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"special_tokens": {"<a>": 256, "<b>": 258}}, "must use the ids 256..257"),
        ({"special_tokens": {"<a>": 255}}, "must use the ids 256..256"),
        ({"special_tokens": {"<a>": 256}, "added_tokens": {"<a>": 257}}, "both special"),
        ({"special_tokens": {"<a>": 256}, "eos_token": "<b>"}, "eos_token='<b>' is not one"),
        ({"special_tokens": {"<a>": 256}, "add_bos_token": True}, "needs a bos_token"),
    ],
)
def test_layout_rejects_bad_tables(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TokenizerLayout(**kwargs)


@pytest.mark.parametrize("repo_id", ["Qwen3-8B", "a/b/c", "/x", "../x", "a/.."])
def test_cache_entry_rejects_bad_repo_ids(tmp_path: Path, repo_id: str) -> None:
    with pytest.raises(ValueError, match="repo_id must be 'ORG/NAME'"):
        write_hub_cache_entry(BYTE_LAYOUT, tmp_path, repo_id)


def test_cache_entry_rejects_bad_revision(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="40 lowercase hex digits"):
        write_hub_cache_entry(BYTE_LAYOUT, tmp_path, "a/b", revision="main")
