"""Hugging Face tokenizer files for the local tiny model, and offline Hub cache entries for them.

The local model's vocabulary is byte ids 0-255 plus a few special ids (see
:mod:`tinkex.tokenizer.byte`). Code written for real models (``transformers.AutoTokenizer``,
tinker-cookbook's renderers, the official SDK's ``get_tokenizer()``) loads tokenizers by Hub id
from the Hugging Face cache. This module writes a byte-level vocabulary in Hugging Face format
(``tokenizer.json`` built with ``tokenizers``, ``tokenizer_config.json`` with the special tokens
and a chat template) and lays it out as a cache entry
(``<hub cache>/models--ORG--NAME/snapshots/REV/`` plus ``refs/main``), so that with
``HF_HUB_OFFLINE=1`` such code gets a tokenizer whose ids fit the local model and nothing is
downloaded.

Three layouts are predefined: :data:`BYTE_LAYOUT` (the local server's own byte tokenizer, same
ids and names as :class:`~tinkex.tokenizer.byte.ByteTokenizer`), :data:`QWEN3_LAYOUT` (the
special and added tokens that the Qwen3 chat format uses, on the same 264 ids) and
:data:`KIMI_K2_LAYOUT` (Kimi K2's chat tokens on those ids; written in Kimi's own file format,
``tiktoken.model`` + ``tokenizer_config.json``, with ``file_format="tiktoken"``), for example::

    from tinkex.local.hf_tokenizer import QWEN3_LAYOUT, write_hub_cache_entry

    snapshot = write_hub_cache_entry(QWEN3_LAYOUT, hf_home / "hub", "Qwen/Qwen3-8B")
    # HF_HOME=hf_home HF_HUB_OFFLINE=1: AutoTokenizer.from_pretrained("Qwen/Qwen3-8B") works
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tinkex.tokenizer import byte

__all__ = [
    "BYTE_LAYOUT",
    "KIMI_K2_LAYOUT",
    "QWEN3_LAYOUT",
    "TIKTOKEN_FILES",
    "TOKENIZER_FILES",
    "TokenizerLayout",
    "byte_to_unicode",
    "hub_cache_dir",
    "tiktoken_files",
    "tokenizer_files",
    "write_hub_cache_entry",
    "write_tokenizer_dir",
]

#: Byte ids come first; the ids of special and added tokens start here.
FIRST_EXTRA_ID = 256

#: The files :func:`write_tokenizer_dir` writes.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "config.json",
)

#: The files ``file_format="tiktoken"`` writes (what Kimi K2's Hub repository ships instead of
#: a ``tokenizer.json``).
TIKTOKEN_FILES = ("tiktoken.model", "tokenizer_config.json")

FileFormat = Literal["tokenizers", "tiktoken"]


@dataclass(frozen=True)
class TokenizerLayout:
    """A byte-level vocabulary: ids 0-255 are bytes, then named tokens with fixed ids.

    Attributes:
        special_tokens: special tokens (``skip_special_tokens`` drops them; content text that
            spells one is split into bytes when a tokenizer encodes special tokens literally).
        added_tokens: non-special added tokens (always matched as one token, kept by
            ``skip_special_tokens``), such as Qwen3's ``<think>``.
        bos_token / eos_token / pad_token: names from ``special_tokens`` (or None).
        add_bos_token: whether encoding with ``add_special_tokens=True`` prepends ``bos_token``.
        chat_template: the Jinja chat template for ``apply_chat_template`` (or None).
        model_max_length: the longest input a model of this tokenizer takes.
        model_type: the ``model_type`` written to ``config.json`` (``transformers`` reads that
            file before it loads a tokenizer); None writes a config without one.

    Together ``special_tokens`` and ``added_tokens`` must use the ids 256, 257, ... without
    gaps (the order in which ``tokenizers`` assigns them).

    Raises:
        ValueError: the ids are not contiguous from 256, a name is used twice, or a
            bos/eos/pad name is not a special token.
    """

    special_tokens: Mapping[str, int]
    added_tokens: Mapping[str, int] = field(default_factory=dict)
    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    add_bos_token: bool = False
    chat_template: str | None = None
    model_max_length: int = 512
    model_type: str | None = None

    def __post_init__(self) -> None:
        both = set(self.special_tokens) & set(self.added_tokens)
        if both:
            raise ValueError(
                f"TokenizerLayout: {sorted(both)} are both special_tokens and added_tokens"
            )
        ids = sorted(self.extra_tokens.values())
        expected = list(range(FIRST_EXTRA_ID, FIRST_EXTRA_ID + len(ids)))
        if ids != expected:
            raise ValueError(
                f"TokenizerLayout: special_tokens and added_tokens must use the ids "
                f"{FIRST_EXTRA_ID}..{FIRST_EXTRA_ID + len(ids) - 1} once each, got {ids}"
            )
        for role in ("bos_token", "eos_token", "pad_token"):
            name = getattr(self, role)
            if name is not None and name not in self.special_tokens:
                raise ValueError(
                    f"TokenizerLayout.{role}={name!r} is not one of the special_tokens "
                    f"{sorted(self.special_tokens)}"
                )
        if self.add_bos_token and self.bos_token is None:
            raise ValueError("TokenizerLayout.add_bos_token=True needs a bos_token")

    @property
    def extra_tokens(self) -> dict[str, int]:
        """Special and added tokens together, name -> id."""
        return {**self.special_tokens, **self.added_tokens}

    @property
    def vocab_size(self) -> int:
        """Number of ids: 256 bytes plus the named tokens."""
        return FIRST_EXTRA_ID + len(self.extra_tokens)

    def token_id(self, name: str) -> int:
        """The id of a special or added token.

        Raises:
            KeyError: ``name`` is neither.
        """
        try:
            return self.extra_tokens[name]
        except KeyError:
            raise KeyError(
                f"{name!r} is not a token of this layout; it has {sorted(self.extra_tokens)}"
            ) from None


# A ChatML template (the `<|im_start|>role\ncontent<|im_end|>\n` turns the Qwen family uses):
# enough for apply_chat_template on plain-text messages, without Qwen3's tool-call and
# thinking rules.
_CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# The byte tokenizer's own turn markers.
_BYTE_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|' + message['role'] + '|>' + message['content'] + '<|im_end|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>' }}{%- endif %}"
)

#: The local server's byte tokenizer (``tinkex/byte-tokenizer``) in Hugging Face format.
BYTE_LAYOUT = TokenizerLayout(
    special_tokens=dict(byte.SPECIAL_TOKENS),
    bos_token="<|begin_of_text|>",
    eos_token="<|end_of_text|>",
    pad_token="<|pad|>",
    chat_template=_BYTE_CHAT_TEMPLATE,
)

#: The tokens of the Qwen3 chat format (``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``
#: special; ``<think>``/``<tool_call>`` tags added, non-special, as in Qwen3's own tokenizer)
#: on the local model's 264 ids. EOS is ``<|im_end|>`` and PAD ``<|endoftext|>``, as Qwen3's.
QWEN3_LAYOUT = TokenizerLayout(
    special_tokens={
        "<|endoftext|>": 256,
        "<|im_start|>": 257,
        "<|im_end|>": 258,
        "<|reserved|>": 263,
    },
    added_tokens={"<think>": 259, "</think>": 260, "<tool_call>": 261, "</tool_call>": 262},
    eos_token="<|im_end|>",
    pad_token="<|endoftext|>",
    chat_template=_CHATML_TEMPLATE,
    model_type="qwen3",
)


# Kimi K2's turn markers: <|im_system|>system<|im_middle|>...<|im_end|>, one turn per message.
_KIMI_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_' + message['role'] + '|>' + message['role'] + '<|im_middle|>'"
    " + message['content'] + '<|im_end|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_assistant|>assistant<|im_middle|>' }}{%- endif %}"
)

#: Kimi K2's chat tokens (``[BOS]``, ``[EOS]``, ``<|im_end|>``, ``<|im_user|>``, ...) on the
#: local model's 264 ids; EOS is ``[EOS]`` as in Kimi K2's tokenizer.
KIMI_K2_LAYOUT = TokenizerLayout(
    special_tokens={
        "[BOS]": 256,
        "[EOS]": 257,
        "<|im_end|>": 258,
        "<|im_user|>": 259,
        "<|im_assistant|>": 260,
        "<|im_system|>": 261,
        "<|im_middle|>": 262,
        "[PAD]": 263,
    },
    bos_token="[BOS]",
    eos_token="[EOS]",
    pad_token="[PAD]",
    chat_template=_KIMI_CHAT_TEMPLATE,
)


def byte_to_unicode() -> dict[int, str]:
    """The printable character that byte-level BPE vocabularies use for each byte value.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, ...) are moved
    to code points from 256 up, in byte order. This is the mapping ``tokenizers``'s
    ``ByteLevel`` pre-tokenizer and decoder apply.
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {value: chr(value) for value in printable}
    next_code_point = 256
    for value in range(256):
        if value not in mapping:
            mapping[value] = chr(next_code_point)
            next_code_point += 1
    return mapping


def _tokenizer_json(layout: TokenizerLayout) -> str:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = {char: value for value, char in byte_to_unicode().items()}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = set(layout.special_tokens)
    # tokenizers numbers added tokens in the order they are added: add them by id.
    for name, _ in sorted(layout.extra_tokens.items(), key=lambda item: item[1]):
        token = AddedToken(name, special=name in special, normalized=False)
        if name in special:
            tokenizer.add_special_tokens([token])
        else:
            tokenizer.add_tokens([token])
    for name, token_id in layout.extra_tokens.items():
        if tokenizer.token_to_id(name) != token_id:
            raise RuntimeError(
                f"tokenizers gave {name!r} the id {tokenizer.token_to_id(name)}, not {token_id}"
            )
    if layout.add_bos_token and layout.bos_token is not None:
        bos, bos_id = layout.bos_token, layout.token_id(layout.bos_token)
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    text: str = tokenizer.to_str(pretty=True)
    return text + "\n"


def _additional_special_tokens(layout: TokenizerLayout) -> list[str]:
    roles = (layout.bos_token, layout.eos_token, layout.pad_token)
    return [name for name in layout.special_tokens if name not in roles]


def _tokenizer_config(layout: TokenizerLayout) -> dict[str, Any]:
    special = set(layout.special_tokens)
    decoder = {
        str(token_id): {
            "content": name,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": name in special,
        }
        for name, token_id in sorted(layout.extra_tokens.items(), key=lambda item: item[1])
    }
    return {
        # The generic fast tokenizer reads tokenizer.json as it is; model-specific classes
        # (Qwen2Tokenizer, ...) may rebuild the pre-tokenizer for their real vocabulary.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": decoder,
        "bos_token": layout.bos_token,
        "eos_token": layout.eos_token,
        "pad_token": layout.pad_token,
        "additional_special_tokens": _additional_special_tokens(layout),
        "add_bos_token": layout.add_bos_token,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": layout.model_max_length,
        "chat_template": layout.chat_template,
    }


def _special_tokens_map(layout: TokenizerLayout) -> dict[str, Any]:
    roles = {"bos_token": layout.bos_token, "eos_token": layout.eos_token}
    roles["pad_token"] = layout.pad_token
    mapping: dict[str, Any] = {role: name for role, name in roles.items() if name is not None}
    mapping["additional_special_tokens"] = _additional_special_tokens(layout)
    return mapping


def _model_config(layout: TokenizerLayout) -> dict[str, Any]:
    config: dict[str, Any] = {"vocab_size": layout.vocab_size}
    config["max_position_embeddings"] = layout.model_max_length
    if layout.model_type is not None:
        config["model_type"] = layout.model_type
    return config


def tokenizer_files(layout: TokenizerLayout) -> dict[str, str]:
    """The contents of :data:`TOKENIZER_FILES` for ``layout``, file name -> text."""
    return {
        "tokenizer.json": _tokenizer_json(layout),
        "tokenizer_config.json": json.dumps(_tokenizer_config(layout), indent=2) + "\n",
        "special_tokens_map.json": json.dumps(_special_tokens_map(layout), indent=2) + "\n",
        "config.json": json.dumps(_model_config(layout), indent=2) + "\n",
    }


def tiktoken_files(layout: TokenizerLayout) -> dict[str, str]:
    """The contents of :data:`TIKTOKEN_FILES` for ``layout``, file name -> text: the byte ids
    as tiktoken ranks (``<base64 byte> <rank>`` lines) and the named tokens as the
    ``added_tokens_decoder`` of ``tokenizer_config.json``, as Kimi K2's repository lays them
    out (without its ``tokenization_kimi.py``: only tinkex's own tiktoken tokenizer reads it)."""
    ranks = "".join(
        f"{base64.b64encode(bytes([value])).decode('ascii')} {value}\n" for value in range(256)
    )
    config = _tokenizer_config(layout)
    del config["tokenizer_class"]  # no transformers class reads these files without Kimi's code
    return {
        "tiktoken.model": ranks,
        "tokenizer_config.json": json.dumps(config, indent=2) + "\n",
    }


def _files(layout: TokenizerLayout, file_format: FileFormat) -> dict[str, str]:
    if file_format == "tokenizers":
        return tokenizer_files(layout)
    if file_format == "tiktoken":
        return tiktoken_files(layout)
    raise ValueError(f"file_format must be 'tokenizers' or 'tiktoken', got {file_format!r}")


def write_tokenizer_dir(
    layout: TokenizerLayout,
    directory: str | os.PathLike[str],
    *,
    file_format: FileFormat = "tokenizers",
) -> Path:
    """Write :data:`TOKENIZER_FILES` for ``layout`` into ``directory`` (created if missing),
    a folder ``AutoTokenizer.from_pretrained(directory)`` loads; with
    ``file_format="tiktoken"``, :data:`TIKTOKEN_FILES` instead. Returns the folder."""
    files = _files(layout, file_format)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def hub_cache_dir(hf_home: str | os.PathLike[str]) -> Path:
    """The Hub cache folder under ``HF_HOME`` (``$HF_HOME/hub``, as ``huggingface_hub`` uses)."""
    return Path(hf_home) / "hub"


def write_hub_cache_entry(
    layout: TokenizerLayout,
    hub_cache: str | os.PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    file_format: FileFormat = "tokenizers",
) -> Path:
    """Lay out ``layout``'s files as the cached ``main`` revision of model repo ``repo_id``.

    Writes ``<hub_cache>/models--ORG--NAME/snapshots/<revision>/`` (the files:
    :data:`TOKENIZER_FILES`, or :data:`TIKTOKEN_FILES` with ``file_format="tiktoken"``) and
    ``refs/main`` (naming the revision), which ``huggingface_hub`` resolves offline. The
    revision defaults to a digest of the files, so the same layout always gets the same one.
    An existing entry for the same revision is overwritten. Returns the snapshot folder.

    Raises:
        ValueError: ``repo_id`` is not of the form ``ORG/NAME``, ``revision`` is not 40
            hex digits, or ``file_format`` is unknown.
    """
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(part in (".", "..") for part in parts):
        raise ValueError(f"repo_id must be 'ORG/NAME' (a Hub model id), got {repo_id!r}")
    files = _files(layout, file_format)
    if revision is None:
        digest = hashlib.sha1(usedforsecurity=False)
        for name, text in sorted(files.items()):
            digest.update(name.encode() + b"\0" + text.encode() + b"\0")
        revision = digest.hexdigest()
    elif len(revision) != 40 or any(c not in "0123456789abcdef" for c in revision):
        raise ValueError(f"revision must be 40 lowercase hex digits, got {revision!r}")
    repo_dir = Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (snapshot / name).write_text(text, encoding="utf-8")
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision, encoding="utf-8")
    return snapshot
