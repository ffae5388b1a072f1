"""tiktoken BPE models shipped as a ``tiktoken.model`` file (Kimi K2 style)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tinkex.tokenizer._base import read_tokenizer_config, special_token_text

#: The pre-tokenisation pattern of Moonshot's Kimi K2/K3 tokenizers (``tokenization_kimi.py``).
KIMI_PATTERN = "|".join(
    [
        r"[\p{Han}]+",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*"
        r"[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+"
        r"[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)
#: Ids reserved for special tokens right after the BPE ranks.
NUM_RESERVED_SPECIAL_TOKENS = 256
# tiktoken is slow on huge inputs and on very long runs of (non-)whitespace; encode in pieces,
# as the reference tokenizer does.
_MAX_ENCODE_CHARS = 400_000
_MAX_RUN_CHARS = 25_000
_RUN = re.compile(rf"\s{{{_MAX_RUN_CHARS},}}|\S{{{_MAX_RUN_CHARS},}}")


def load_bpe_ranks(path: str | Path) -> dict[bytes, int]:
    """Read a tiktoken BPE file: one ``<base64 token> <rank>`` per line.

    Same format as ``tiktoken.load.load_tiktoken_bpe``, read directly so a local file is never
    copied into (or served stale from) tiktoken's download cache.

    Raises:
        ValueError: a malformed line (its number is in the message).
        OSError: the file cannot be read.
    """
    ranks: dict[bytes, int] = {}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token, validate=True)] = int(rank)
            except (ValueError, binascii.Error) as exc:
                raise ValueError(
                    f"{path}:{number}: not a tiktoken BPE line (expected '<base64> <rank>'): "
                    f"{line[:60]!r}"
                ) from exc
    if not ranks:
        raise ValueError(f"{path}: empty tiktoken BPE file")
    return ranks


def _pieces(text: str) -> Iterator[str]:
    for start in range(0, len(text), _MAX_ENCODE_CHARS):
        chunk = text[start : start + _MAX_ENCODE_CHARS]
        if len(chunk) < _MAX_RUN_CHARS:
            yield chunk
            continue
        position = 0
        for match in _RUN.finditer(chunk):
            if match.start() > position:
                yield chunk[position : match.start()]
            run = match.group()
            for offset in range(0, len(run), _MAX_RUN_CHARS):
                yield run[offset : offset + _MAX_RUN_CHARS]
            position = match.end()
        if position < len(chunk):
            yield chunk[position:]


class TiktokenTokenizer:
    """A tiktoken ``Encoding`` built from a local ``tiktoken.model`` file.

    Special tokens take the ids right after the BPE ranks: names from
    ``special_tokens`` or the ``added_tokens_decoder`` of ``tokenizer_config.json``, the rest of
    the ``num_reserved_special_tokens`` block as ``<|reserved_token_{id}|>``. Special-token
    text in the input is encoded as the special id (as ``transformers`` does).
    ``encode(add_special_tokens=True)`` prepends BOS only when the config says
    ``add_bos_token: true``.

    Args:
        model_path: the ``tiktoken.model`` file.
        pat_str: pre-tokenisation regex (default: Kimi K2's).
        special_tokens: explicit ``{text: id}`` specials (override the config's).
        config: parsed ``tokenizer_config.json`` (read from beside the file by
            :meth:`from_file`).
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        name_or_path: str | None = None,
        pat_str: str = KIMI_PATTERN,
        special_tokens: Mapping[str, int] | None = None,
        num_reserved_special_tokens: int = NUM_RESERVED_SPECIAL_TOKENS,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        import tiktoken

        self.name_or_path = name_or_path or str(model_path)
        self.config: dict[str, Any] = dict(config or {})
        ranks = load_bpe_ranks(model_path)
        self.num_base_tokens = len(ranks)
        names: dict[int, str] = {}
        for key, entry in (self.config.get("added_tokens_decoder") or {}).items():
            text = special_token_text(entry)
            if text is not None:
                names[int(key)] = text
        specials: dict[str, int] = {}
        for token_id in range(
            self.num_base_tokens, self.num_base_tokens + num_reserved_special_tokens
        ):
            specials[names.get(token_id, f"<|reserved_token_{token_id}|>")] = token_id
        for text, token_id in (special_tokens or {}).items():
            specials = {k: v for k, v in specials.items() if v != token_id}
            specials[text] = int(token_id)
        self.special_tokens = specials
        self._special_ids = frozenset(specials.values())
        try:
            self._encoding = tiktoken.Encoding(
                name=Path(self.name_or_path).name or "tiktoken",
                pat_str=pat_str,
                mergeable_ranks=ranks,
                special_tokens=specials,
            )
        except ValueError as exc:
            raise ValueError(f"cannot build tiktoken encoding from {model_path}: {exc}") from exc
        self.bos_token = special_token_text(self.config.get("bos_token"))
        self.eos_token = special_token_text(self.config.get("eos_token"))
        self.pad_token = special_token_text(self.config.get("pad_token"))
        self.bos_token_id = specials.get(self.bos_token) if self.bos_token else None
        self.eos_token_id = specials.get(self.eos_token) if self.eos_token else None
        self.pad_token_id = specials.get(self.pad_token) if self.pad_token else None
        self.add_bos_token = bool(self.config.get("add_bos_token", False))
        self.chat_template: str | None = self.config.get("chat_template")

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        name_or_path: str | None = None,
        *,
        config_path: str | Path | None = None,
        pat_str: str = KIMI_PATTERN,
    ) -> TiktokenTokenizer:
        """Load ``path`` with its ``tokenizer_config.json``: ``config_path``, else the one
        beside it (if any). ``pat_str`` overrides the pre-tokenisation regex.

        Raises:
            FileNotFoundError: ``config_path`` does not exist.
            ValueError: either file cannot be parsed, or ``pat_str`` does not compile.
        """
        file = Path(path)
        if config_path is None:
            config = read_tokenizer_config(file.parent)
        else:
            config_file = Path(config_path)
            if not config_file.is_file():
                raise FileNotFoundError(f"tokenizer config {config_file} does not exist")
            config = read_tokenizer_config(config_file.parent, config_file.name)
        return cls(file, name_or_path=name_or_path, pat_str=pat_str, config=config)

    def __repr__(self) -> str:
        return f"TiktokenTokenizer({self.name_or_path!r}, vocab_size={self.vocab_size})"

    @property
    def vocab_size(self) -> int:
        """BPE ranks plus special tokens."""
        return int(self._encoding.n_vocab)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def encoding(self) -> Any:
        """The underlying ``tiktoken.Encoding``."""
        return self._encoding

    def encode(
        self, text: str, add_special_tokens: bool = True, *, allow_special_tokens: bool = True
    ) -> list[int]:
        """Token ids of ``text``. Special-token text becomes the special id, or with
        ``allow_special_tokens=False`` is encoded as the plain text it is."""
        ids: list[int] = []
        if add_special_tokens and self.add_bos_token and self.bos_token_id is not None:
            ids.append(self.bos_token_id)
        allowed: Any = "all" if allow_special_tokens else set()
        for piece in _pieces(text):
            ids.extend(self._encoding.encode(piece, allowed_special=allowed, disallowed_special=()))
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids`` (invalid UTF-8 replaced)."""
        values = [int(i) for i in ids]
        if skip_special_tokens:
            values = [i for i in values if i not in self._special_ids]
        return str(self._encoding.decode(values, errors="replace"))

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Each id's bytes as text (invalid UTF-8 replaced)."""
        return [
            self._encoding.decode_single_token_bytes(int(i)).decode("utf-8", errors="replace")
            for i in ids
        ]

    def token_to_id(self, token: str) -> int | None:
        """The id of a special token or of a single BPE token, or ``None``."""
        if token in self.special_tokens:
            return self.special_tokens[token]
        try:
            return int(self._encoding.encode_single_token(token.encode("utf-8")))
        except KeyError:
            return None
