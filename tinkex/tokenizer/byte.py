"""The built-in byte-level tokenizer of the local server's tiny model.

Token ids 0-255 are raw UTF-8 bytes; ids 256 and up are special tokens. Its id is
``tinkex/byte-tokenizer``; it needs no files, so it works offline everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TOKENIZER_ID = "tinkex/byte-tokenizer"

BOS_ID = 256
EOS_ID = 257
PAD_ID = 258
SPECIAL_TOKENS: dict[str, int] = {
    "<|begin_of_text|>": BOS_ID,
    "<|end_of_text|>": EOS_ID,
    "<|pad|>": PAD_ID,
    "<|system|>": 259,
    "<|user|>": 260,
    "<|assistant|>": 261,
    "<|im_end|>": 262,
    "<|reserved|>": 263,
}
VOCAB_SIZE = 264
_ID_TO_SPECIAL = {token_id: text for text, token_id in SPECIAL_TOKENS.items()}


class ByteTokenizer:
    """Encodes text as UTF-8 bytes; special-token ids render as their names when decoded.

    >>> ByteTokenizer().encode("hi")
    [104, 105]
    >>> ByteTokenizer().decode([104, 105, EOS_ID])
    'hi<|end_of_text|>'
    """

    name_or_path = TOKENIZER_ID
    vocab_size = VOCAB_SIZE
    bos_token_id = BOS_ID
    eos_token_id = EOS_ID
    pad_token_id = PAD_ID

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``; a BOS token is prepended when ``add_special_tokens``."""
        ids: list[int] = []
        if add_special_tokens:
            ids.append(BOS_ID)
        start = 0
        # Special-token names in the text map to their ids, the rest to bytes.
        while start < len(text):
            next_pos, next_name = len(text), ""
            for name in SPECIAL_TOKENS:
                found = text.find(name, start)
                if found != -1 and found < next_pos:
                    next_pos, next_name = found, name
            ids.extend(text[start:next_pos].encode("utf-8"))
            if next_name:
                ids.append(SPECIAL_TOKENS[next_name])
                next_pos += len(next_name)
            start = next_pos
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; invalid UTF-8 is replaced, never raised.

        Raises:
            ValueError: an id is outside ``[0, VOCAB_SIZE)``.
        """
        parts: list[str] = []
        pending = bytearray()
        for token_id in ids:
            token_id = int(token_id)
            if 0 <= token_id < 256:
                pending.append(token_id)
                continue
            if token_id not in _ID_TO_SPECIAL:
                raise ValueError(
                    f"token id {token_id} is outside the {TOKENIZER_ID} vocabulary "
                    f"[0, {VOCAB_SIZE})"
                )
            parts.append(pending.decode("utf-8", errors="replace"))
            pending.clear()
            if not skip_special_tokens:
                parts.append(_ID_TO_SPECIAL[token_id])
        parts.append(pending.decode("utf-8", errors="replace"))
        return "".join(parts)

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """One printable piece per id (bytes as ``<0xNN>`` when not printable ASCII)."""
        pieces = []
        for token_id in ids:
            if token_id in _ID_TO_SPECIAL:
                pieces.append(_ID_TO_SPECIAL[token_id])
            elif 32 <= token_id < 127:
                pieces.append(chr(token_id))
            else:
                pieces.append(f"<0x{token_id:02X}>")
        return pieces
