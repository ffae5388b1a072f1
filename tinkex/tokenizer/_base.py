"""What every tinkex tokenizer offers, and the error raised when one cannot be found."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tinkex._exceptions import TinkerError


@runtime_checkable
class Tokenizer(Protocol):
    """The uniform surface of :class:`ByteTokenizer`, :class:`HFTokenizer` and
    :class:`TiktokenTokenizer` (a subset of ``transformers.PreTrainedTokenizer``)."""

    @property
    def name_or_path(self) -> str:
        """The id or path the tokenizer was loaded for."""
        ...

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        ...

    @property
    def bos_token_id(self) -> int | None:
        """Beginning-of-sequence id, if the tokenizer has one."""
        ...

    @property
    def eos_token_id(self) -> int | None:
        """End-of-sequence id, if the tokenizer has one."""
        ...

    @property
    def pad_token_id(self) -> int | None:
        """Padding id, if the tokenizer has one."""
        ...

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]:
        """Token ids of ``text``."""
        ...

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``."""
        ...

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """One printable piece per id."""
        ...


class TokenizerNotFoundError(TinkerError, LookupError):
    """No tokenizer could be loaded for an id (no local files, and no download possible).

    Attributes:
        tokenizer_id: the id that was asked for.
        searched: the places looked at.
    """

    def __init__(self, tokenizer_id: str, searched: Sequence[str], message: str) -> None:
        self.tokenizer_id = tokenizer_id
        self.searched = list(searched)
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.tokenizer_id, self.searched, self.message))


def read_tokenizer_config(
    directory: Path, filename: str = "tokenizer_config.json"
) -> dict[str, Any]:
    """``directory/filename`` (the ``tokenizer_config.json``) as a dict (empty when absent).

    Raises:
        ValueError: the file exists but is not a JSON object.
    """
    path = directory / filename
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read tokenizer config {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"tokenizer config {path} must hold a JSON object")
    return config


def special_token_text(value: Any) -> str | None:
    """The text of a special token entry: ``"<s>"`` or ``{"content": "<s>", ...}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None
