"""Hugging Face ``tokenizers`` (``tokenizer.json``) behind the uniform tinkex interface."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinkex.tokenizer._base import read_tokenizer_config, special_token_text


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` with ``transformers``-style methods.

    ``encode`` adds the special tokens of the file's post-processor by default
    (``add_special_tokens=True``, as ``transformers`` does); ``decode`` keeps special tokens
    unless ``skip_special_tokens``. ``bos/eos/pad_token_id`` come from the
    ``tokenizer_config.json`` next to the file, when there is one.

    Args:
        tokenizer: the loaded ``tokenizers.Tokenizer``.
        name_or_path: the id or path it was loaded for.
        config: the parsed ``tokenizer_config.json`` (optional).
    """

    def __init__(
        self, tokenizer: Any, name_or_path: str, config: Mapping[str, Any] | None = None
    ) -> None:
        self._tokenizer = tokenizer
        self.name_or_path = name_or_path
        self.config: dict[str, Any] = dict(config or {})
        self.bos_token = special_token_text(self.config.get("bos_token"))
        self.eos_token = special_token_text(self.config.get("eos_token"))
        self.pad_token = special_token_text(self.config.get("pad_token"))
        self.bos_token_id = self._id_of(self.bos_token)
        self.eos_token_id = self._id_of(self.eos_token)
        self.pad_token_id = self._id_of(self.pad_token)
        self.chat_template: str | None = self.config.get("chat_template")

    @classmethod
    def from_file(cls, path: str | Path, name_or_path: str | None = None) -> HFTokenizer:
        """Load ``tokenizer.json`` (and the ``tokenizer_config.json`` beside it, if any).

        Raises:
            ValueError: the file is not a valid ``tokenizers`` file.
        """
        from tokenizers import Tokenizer as RawTokenizer

        file = Path(path)
        try:
            raw = RawTokenizer.from_file(str(file))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ValueError(f"cannot load Hugging Face tokenizer file {file}: {exc}") from exc
        return cls(raw, name_or_path or str(file), read_tokenizer_config(file.parent))

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name_or_path!r}, vocab_size={self.vocab_size})"

    @property
    def backend_tokenizer(self) -> Any:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``."""
        return list(self._tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``."""
        return str(
            self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)
        )

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """The vocabulary entry of each id (``""`` for unknown ids)."""
        return [self._tokenizer.id_to_token(int(i)) or "" for i in ids]

    def token_to_id(self, token: str) -> int | None:
        """The id of a vocabulary entry, or ``None``."""
        value = self._tokenizer.token_to_id(token)
        return None if value is None else int(value)

    def _id_of(self, token: str | None) -> int | None:
        return None if token is None else self.token_to_id(token)
