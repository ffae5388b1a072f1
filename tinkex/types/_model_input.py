"""Model input: a sequence of chunks (encoded text, images, dmel audio)."""

from __future__ import annotations

import base64
import operator
from collections.abc import Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "EncodedTextChunk",
    "ImageChunk",
    "ImageAssetPointerChunk",
    "DmelChunk",
    "ModelInputChunk",
    "ModelInput",
]


def _tokens(value: Any) -> Sequence[int]:
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"EncodedTextChunk.tokens must be a sequence of ints, got {value!r:.80}")
    if not value:
        return value
    # Fast path in C: every element exactly an int and none negative.
    if set(map(type, value)) == {int} and min(value) >= 0:
        return value
    out: list[int] = []
    for i, tok in enumerate(value):
        if isinstance(tok, bool) or not hasattr(tok, "__index__"):
            raise TypeError(f"EncodedTextChunk.tokens[{i}] must be an int, got {tok!r}")
        tok = operator.index(tok)
        if tok < 0:
            raise ValueError(f"EncodedTextChunk.tokens[{i}] must be >= 0, got {tok}")
        out.append(tok)
    return out


@attrs.frozen(kw_only=True)
class EncodedTextChunk:
    """Token ids of already-tokenized text."""

    tokens: Sequence[int] = attrs.field(converter=_tokens)
    type: Literal["encoded_text"] = "encoded_text"

    @property
    def length(self) -> int:
        """Number of tokens."""
        return len(self.tokens)


def _image_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("image data must be bytes or a base64 string") from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"image data must be bytes, got {type(value).__name__}")
    return bytes(value)


def _check_expected(name: str) -> Any:
    def check(_inst: object, _attr: object, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}.expected_tokens must be a non-negative int, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class ImageChunk:
    """An inline image; ``data`` is raw bytes (base64 text is accepted and decoded)."""

    data: bytes = attrs.field(converter=_image_bytes)
    format: Literal["png", "jpeg"] = attrs.field(validator=attrs.validators.in_(("png", "jpeg")))
    expected_tokens: int | None = attrs.field(default=None, validator=_check_expected("ImageChunk"))
    type: Literal["image"] = "image"

    @property
    def length(self) -> int:
        """Tokens the image occupies (requires ``expected_tokens``)."""
        if self.expected_tokens is None:
            raise ValueError("ImageChunk.length needs expected_tokens to be set")
        return self.expected_tokens


@attrs.frozen(kw_only=True)
class ImageAssetPointerChunk:
    """An image stored elsewhere, referenced by ``location``."""

    format: Literal["png", "jpeg"] = attrs.field(validator=attrs.validators.in_(("png", "jpeg")))
    location: str
    expected_tokens: int | None = attrs.field(
        default=None, validator=_check_expected("ImageAssetPointerChunk")
    )
    type: Literal["image_asset_pointer"] = "image_asset_pointer"

    @property
    def length(self) -> int:
        """Tokens the image occupies (requires ``expected_tokens``)."""
        if self.expected_tokens is None:
            raise ValueError("ImageAssetPointerChunk.length needs expected_tokens to be set")
        return self.expected_tokens


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("DmelChunk.dmel header is truncated")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


@attrs.frozen(kw_only=True)
class DmelChunk:
    """Discretised mel audio features in the TensorContainer byte format."""

    dmel: bytes = attrs.field(converter=_image_bytes)
    type: Literal["dmel"] = "dmel"

    @property
    def length(self) -> int:
        """Dimension 0 of the container (the number of audio tokens)."""
        buf = self.dmel
        pos = 1 if buf[:1] == b"\xfe" else 0
        pos += 1  # dtype byte
        ndim, pos = _read_varint(buf, pos)
        if ndim < 1:
            raise ValueError("DmelChunk.dmel has no dimensions")
        dim0, _ = _read_varint(buf, pos)
        return dim0


ModelInputChunk = EncodedTextChunk | ImageChunk | ImageAssetPointerChunk | DmelChunk
_CHUNK_TYPES = (EncodedTextChunk, ImageChunk, ImageAssetPointerChunk, DmelChunk)


def _chunks(value: Any) -> list[ModelInputChunk]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"ModelInput.chunks must be a list of chunks, got {type(value).__name__}")
    for i, chunk in enumerate(value):
        if not isinstance(chunk, _CHUNK_TYPES):
            raise TypeError(
                f"ModelInput.chunks[{i}] must be a chunk (e.g. EncodedTextChunk), "
                f"got {type(chunk).__name__}"
            )
    return list(value)


@attrs.frozen(kw_only=True)
class ModelInput:
    """The input of a model: a list of chunks.

    Example:
        >>> ModelInput.from_ints([1, 2, 3]).length
        3
    """

    chunks: list[ModelInputChunk] = attrs.field(converter=_chunks)

    @classmethod
    def from_ints(cls, tokens: Sequence[int]) -> ModelInput:
        """A model input made of one text chunk with these token ids."""
        return cls(chunks=[EncodedTextChunk(tokens=tokens)])

    @classmethod
    def empty(cls) -> ModelInput:
        """A model input with no chunks."""
        return cls(chunks=[])

    @classmethod
    def from_text(cls, text: str, tokenizer: Any) -> ModelInput:
        """Tokenize ``text`` with ``tokenizer`` (anything with ``encode``) into a model input."""
        tokens = tokenizer.encode(text)
        return cls.from_ints(list(tokens))

    def to_ints(self) -> list[int]:
        """All token ids; ValueError if a chunk is not text."""
        out: list[int] = []
        for chunk in self.chunks:
            if not isinstance(chunk, EncodedTextChunk):
                raise ValueError(f"ModelInput.to_ints: chunk of type {chunk.type!r} is not text")
            out.extend(chunk.tokens)
        return out

    @property
    def length(self) -> int:
        """Total length in tokens."""
        return sum(chunk.length for chunk in self.chunks)

    def append(self, chunk: ModelInputChunk) -> ModelInput:
        """A new model input with ``chunk`` added at the end."""
        return ModelInput(chunks=[*self.chunks, chunk])

    def append_int(self, token: int) -> ModelInput:
        """A new model input with one more token (merged into a trailing text chunk)."""
        if self.chunks and isinstance(self.chunks[-1], EncodedTextChunk):
            last = self.chunks[-1]
            return ModelInput(
                chunks=[*self.chunks[:-1], EncodedTextChunk(tokens=[*last.tokens, token])]
            )
        return self.append(EncodedTextChunk(tokens=[token]))
