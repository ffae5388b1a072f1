"""Tokenizers: Hugging Face ``tokenizers`` files, tiktoken models and the byte tokenizer.

>>> from tinkex.tokenizer import get_tokenizer
>>> tok = get_tokenizer("tinkex/byte-tokenizer")
>>> tok.decode(tok.encode("hi"))
'hi'

:func:`get_tokenizer` resolves ids offline only: file or directory paths, ids registered with
:func:`register_tokenizer`, and the local Hugging Face cache (Kimi K2 at the revision the
official SDK pins, :data:`PINNED_TOKENIZERS`). ``tokenizers`` and ``tiktoken`` are imported
when a tokenizer of that kind is first loaded.

:func:`tokenizer_for_model` is what the clients' ``get_tokenizer()`` return, as the official
SDK does: a ``transformers`` tokenizer when ``transformers`` is installed (Hugging Face cache
offline, the Hub online), tinkex's own otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinkex._lazy import lazy_exports
from tinkex.tokenizer._base import Tokenizer, TokenizerNotFoundError
from tinkex.tokenizer.byte import TOKENIZER_ID as BYTE_TOKENIZER_ID
from tinkex.tokenizer.byte import ByteTokenizer

if TYPE_CHECKING:  # pragma: no cover
    from tinkex.tokenizer._for_model import hub_arguments, tokenizer_for_model
    from tinkex.tokenizer._hf import HFTokenizer
    from tinkex.tokenizer._loader import (
        LLAMA3_TOKENIZER,
        PINNED_TOKENIZERS,
        clear_cache,
        get_tokenizer,
        hf_cache_dirs,
        load_tokenizer_path,
        model_input_from_text,
        pinned_revision,
        register_tokenizer,
        resolve_tokenizer_id,
        unregister_tokenizer,
    )
    from tinkex.tokenizer._tiktoken import KIMI_PATTERN, TiktokenTokenizer, load_bpe_ranks

__all__ = [
    "BYTE_TOKENIZER_ID",
    "KIMI_PATTERN",
    "LLAMA3_TOKENIZER",
    "PINNED_TOKENIZERS",
    "ByteTokenizer",
    "HFTokenizer",
    "TiktokenTokenizer",
    "Tokenizer",
    "TokenizerNotFoundError",
    "clear_cache",
    "get_tokenizer",
    "hf_cache_dirs",
    "hub_arguments",
    "load_bpe_ranks",
    "load_tokenizer_path",
    "model_input_from_text",
    "pinned_revision",
    "register_tokenizer",
    "resolve_tokenizer_id",
    "tokenizer_for_model",
    "unregister_tokenizer",
]

_LAZY: dict[str, str] = {
    "HFTokenizer": "tinkex.tokenizer._hf",
    "KIMI_PATTERN": "tinkex.tokenizer._tiktoken",
    "TiktokenTokenizer": "tinkex.tokenizer._tiktoken",
    "load_bpe_ranks": "tinkex.tokenizer._tiktoken",
    "hub_arguments": "tinkex.tokenizer._for_model",
    "tokenizer_for_model": "tinkex.tokenizer._for_model",
    **dict.fromkeys(
        (
            "LLAMA3_TOKENIZER",
            "PINNED_TOKENIZERS",
            "clear_cache",
            "get_tokenizer",
            "hf_cache_dirs",
            "load_tokenizer_path",
            "model_input_from_text",
            "pinned_revision",
            "register_tokenizer",
            "resolve_tokenizer_id",
            "unregister_tokenizer",
        ),
        "tinkex.tokenizer._loader",
    ),
}


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
