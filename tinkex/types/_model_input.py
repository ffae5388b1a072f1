"""Model input: a sequence of chunks (encoded text, images, dmel audio)."""

from __future__ import annotations

import array
import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinkex.types._coerce import Invalid
from tinkex.types._coerce import to_int as to_int
from tinkex.types._model import StrictModel, ValidationError, constraints

if TYPE_CHECKING:
    from tinkex.types._tensor import TensorData

__all__ = [
    "EncodedTextChunk",
    "ImageChunk",
    "ImageAssetPointerChunk",
    "DmelChunk",
    "ModelInputChunk",
    "ModelInput",
]


#: Largest token id a type accepts. Ids travel as int32 in protobuf bodies (``tokens`` bytes,
#: wire §8), whose encoder rejects ids above 2**31 - 1 naming the field; construction checks
#: the unsigned 32-bit range, which one pass in C can (real vocabularies are far smaller).
MAX_TOKEN_ID = 2**32 - 1


def token_id(where: str, value: Any) -> int:
    """``value`` as a token id (an int in 0..MAX_TOKEN_ID; ``3.0`` and ``"3"`` convert, as
    pydantic converts them for tinker's ``Sequence[int]``); ValidationError naming ``where``."""
    try:
        token = to_int(value)
    except Invalid as exc:
        raise ValidationError(f"{where}: {exc.describe()}") from None
    if not 0 <= token <= MAX_TOKEN_ID:
        raise ValidationError(f"{where} must be a token id in 0..{MAX_TOKEN_ID}, got {token}")
    return token


def _plain_ids(items: list[Any] | tuple[Any, ...]) -> bool:
    """True when every item is a plain int in 0..MAX_TOKEN_ID, checked in C: exactly ``int``
    (not bool or numpy ints, which are converted), and an unsigned 32-bit array takes them."""
    if set(map(type, items)) != {int}:
        return False
    try:
        array.array("I", items)
    except OverflowError:
        return False
    return True


def token_ids(where: str, value: Any) -> list[int] | tuple[int, ...]:
    """A new list of token ids from a list/tuple/array/iterable (a tuple stays a tuple)."""
    if isinstance(value, (list, tuple)):
        items: list[Any] | tuple[Any, ...] = value
    elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        items = value.tolist()  # numpy/torch arrays
    elif isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ValidationError(f"{where} must be a list of token ids (ints), got {value!r:.80}")
    else:
        items = list(value)
    if items and not _plain_ids(items):
        items = [token_id(f"{where}[{i}]", tok) for i, tok in enumerate(items)]
    if isinstance(items, tuple):
        return items
    return list(items) if items is value else items


def check_token_tensor(where: str, tensor: TensorData, *, lowest: int) -> None:
    """Reject token ids outside ``lowest..MAX_TOKEN_ID`` (int tensors; floats are left to the
    server, as tinker does)."""
    values = tensor._numpy
    if tensor.dtype != "int64" or not values.size:
        return
    # One reduction: shifted to start at 0, ids below ``lowest`` wrap to huge unsigned values.
    shifted = values if lowest == 0 else values - lowest
    if shifted.view("u8").max() > MAX_TOKEN_ID - lowest:
        low, high = int(values.min()), int(values.max())
        bad = low if low < lowest else high
        raise ValidationError(f"{where} must hold token ids in {lowest}..{MAX_TOKEN_ID}, got {bad}")


def _tokens(value: Any) -> list[int] | tuple[int, ...]:
    # A copy: the chunk keeps its tokens when the caller's list changes later.
    return token_ids("EncodedTextChunk.tokens", value)


@attrs.frozen(kw_only=True, slots=False)
class EncodedTextChunk(StrictModel):
    """Token ids of already-tokenized text."""

    tokens: Sequence[int] = attrs.field(converter=_tokens)
    type: Literal["encoded_text"] = "encoded_text"

    @property
    def length(self) -> int:
        """Number of tokens."""
        return len(self.tokens)


def _as_bytes(where: str, value: Any) -> bytes:
    """Bytes as they are, text as base64 (decoded strictly: tinker drops stray characters)."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValidationError(
                f"{where} must be bytes or base64 text, got {value!r:.60}"
            ) from None
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValidationError(f"{where} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _image_data(value: Any) -> bytes:
    return _as_bytes("ImageChunk.data", value)


def _dmel_data(value: Any) -> bytes:
    return _as_bytes("DmelChunk.dmel", value)


def _check_expected(name: str) -> Any:
    def check(_inst: object, _attr: object, value: int | None) -> None:
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name}.expected_tokens must be a non-negative int, got {value!r}")

    return check


@attrs.frozen(kw_only=True, slots=False)
class ImageChunk(StrictModel):
    """An inline image; ``data`` is raw bytes (base64 text is accepted and decoded)."""

    data: bytes = attrs.field(converter=_image_data, metadata=constraints(serialize="base64"))
    format: Literal["png", "jpeg"] = attrs.field(validator=attrs.validators.in_(("png", "jpeg")))
    expected_tokens: int | None = attrs.field(default=None, validator=_check_expected("ImageChunk"))
    type: Literal["image"] = "image"

    @property
    def length(self) -> int:
        """Tokens the image occupies (requires ``expected_tokens``)."""
        if self.expected_tokens is None:
            raise ValueError("ImageChunk.length needs expected_tokens to be set")
        return self.expected_tokens


@attrs.frozen(kw_only=True, slots=False)
class ImageAssetPointerChunk(StrictModel):
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


@attrs.frozen(kw_only=True, slots=False)
class DmelChunk(StrictModel):
    """Discretised mel audio features in the TensorContainer byte format."""

    dmel: bytes = attrs.field(converter=_dmel_data, metadata=constraints(serialize="base64"))
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


#: In tinker's order (pydantic tries the members in it).
ModelInputChunk = EncodedTextChunk | ImageAssetPointerChunk | ImageChunk | DmelChunk


@attrs.frozen(kw_only=True, slots=False)
class ModelInput(StrictModel):
    """The input of a model: a list of chunks.

    Example:
        >>> ModelInput.from_ints([1, 2, 3]).length
        3
    """

    chunks: list[ModelInputChunk]

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
        """A new model input with one more token, as a new text chunk (as tinker does)."""
        return self.append(EncodedTextChunk(tokens=[token]))
