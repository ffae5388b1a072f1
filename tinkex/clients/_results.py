"""Decoders of training results: a ``retrieve_future`` answer into its result type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from tinkex._transport import Response
from tinkex.types._converter import from_wire

__all__ = ["json_decoder", "path_decoder"]

T = TypeVar("T")


def json_decoder(cls: type[Any]) -> Callable[[Response], Any]:
    """Decode a JSON answer as ``cls``."""

    def decode(response: Response) -> Any:
        return from_wire(response.json(), cls, request="retrieve_future")

    return decode


def path_decoder(
    internal: type[Any], public: Callable[..., T], what: str
) -> Callable[[Response], T]:
    """Decode a save's ``internal`` answer into its ``public`` type, which needs a ``path``."""

    def decode(response: Response) -> T:
        raw = from_wire(response.json(), internal)
        if raw.path is None:
            raise ValueError(f"{what} result has no 'path'")
        return public(path=raw.path, type=raw.type)

    return decode
