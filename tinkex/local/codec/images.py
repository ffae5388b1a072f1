"""Images as the tiny local model reads them: a deterministic stand-in for a vision encoder.

The hosted service turns an image chunk into the vision tokens of its model; the local server's
model has none, so an image becomes ``expected_tokens`` (default :data:`DEFAULT_IMAGE_TOKENS`)
byte-vocabulary ids (0-255) drawn from a digest of the image: the same image always reads the
same, different images differently, and a prompt or datum with images takes as many positions
as the client counted (``ModelInput.length``). Vision scripts thus run offline end to end, and
training on images is real training on those ids; what the model learns says nothing about
seeing.

An inline image (``image``) must be what its ``format`` says (the PNG signature, or a JPEG
start-of-image marker); an ``image_asset_pointer`` cannot be fetched, so its ids come from its
``location``. Every error is a :class:`~tinkex.local.codec.requests.CodecError` naming the chunk.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_IMAGE_TOKENS", "MAX_IMAGE_TOKENS", "image_ids"]

#: positions an image takes when its chunk does not say (``expected_tokens`` unset)
DEFAULT_IMAGE_TOKENS = 16
#: the most positions one image may take (a context is far shorter; this bounds the work)
MAX_IMAGE_TOKENS = 1 << 16

_SIGNATURES = {"png": b"\x89PNG\r\n\x1a\n", "jpeg": b"\xff\xd8\xff"}


def image_ids(
    content: bytes,
    image_format: str,
    expected_tokens: int | None,
    where: str,
    *,
    inline: bool = True,
) -> npt.NDArray[np.int64]:
    """The ids an image chunk reads as: ``expected_tokens`` bytes of the digest stream of
    ``content`` (the image bytes; for an asset pointer, its location).

    Raises:
        ValueError: an unknown format, inline data that is not such an image, or an
            ``expected_tokens`` out of 1..MAX_IMAGE_TOKENS (the message names ``where``).
    """
    signature = _SIGNATURES.get(image_format)
    if signature is None:
        raise ValueError(f"{where}.format must be 'png' or 'jpeg', got {image_format!r}")
    if inline and not content.startswith(signature):
        raise ValueError(
            f"{where}.data is not a {image_format} image (it does not start with the "
            f"{image_format.upper()} signature {signature!r}; got {content[:8]!r})"
        )
    count = DEFAULT_IMAGE_TOKENS if expected_tokens is None else expected_tokens
    if not 1 <= count <= MAX_IMAGE_TOKENS:
        raise ValueError(
            f"{where}.expected_tokens = {count} is out of range 1..{MAX_IMAGE_TOKENS} on the "
            "local server"
        )
    seed = hashlib.blake2b(content, digest_size=32).digest()
    stream = bytearray()
    block = 0
    while len(stream) < count:
        stream += hashlib.blake2b(block.to_bytes(8, "little"), key=seed).digest()
        block += 1
    return np.frombuffer(bytes(stream[:count]), dtype=np.uint8).astype(np.int64)
