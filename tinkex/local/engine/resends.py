"""Recognising resends: is this request the one already accepted under its number?

A client that loses the answer to a submission (the connection dropped after the server
applied it) sends it again under the same number: the model's ``seq_id`` for training
requests, the sampling client's ``seq_id`` for samples, ``model_seq_id`` for creating a model.
The server must answer such a resend with the original future (never run it twice) and reject
a *different* request that reuses a number (400: a 409 would be retried by the SDKs).

"The same request" means every field equal, except the fields a client legitimately changes
when it resends, listed per endpoint in :data:`MAY_DIFFER`:

* ``save_weights_for_sampler``: ``sampling_session_seq_id``. The official SDK allocates it
  inside its retried call, so its resend of an unnamed save carries a new one; the answer is
  the original future, whose result names the sampling session created the first time.

A request is compared through its :class:`Fingerprint`: a digest per top-level field of its
canonical JSON (keys sorted), so a mismatch can name the fields that differ. Protobuf bodies
(``forward_backward``) are one field, ``body``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAY_DIFFER", "Fingerprint", "body_fingerprint", "fingerprint"]

#: Fields a resend of an accepted request may change, per endpoint (route name).
MAY_DIFFER: dict[str, frozenset[str]] = {
    "save_weights_for_sampler": frozenset({"sampling_session_seq_id"}),
}

# one tuple of field names per distinct key set, shared by every fingerprint that has it
_NAMES: dict[tuple[str, ...], tuple[str, ...]] = {}


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a request for resend detection: its field names and a digest of each
    field's value (:data:`_DIGEST_SIZE` bytes per field, in ``names`` order)."""

    names: tuple[str, ...]
    digests: bytes

    def differing(self, other: Fingerprint) -> list[str]:
        """The fields whose values differ between the two requests (sorted)."""
        mine = dict(zip(self.names, _split(self.digests), strict=True))
        theirs = dict(zip(other.names, _split(other.digests), strict=True))
        return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


_DIGEST_SIZE = 8


def _digest(data: bytes) -> bytes:
    # SHA-256 (hardware-accelerated on current CPUs) hashes a 2 MB forward_backward body in
    # ~1 ms, blake2b in ~2-4 ms; the digest is on that request's path, so the faster one.
    return hashlib.sha256(data).digest()[:_DIGEST_SIZE]


def _split(digests: bytes) -> list[bytes]:
    return [digests[i : i + _DIGEST_SIZE] for i in range(0, len(digests), _DIGEST_SIZE)]


#: Canonical JSON of one field's value (one encoder: ``json.dumps`` with options builds one per
#: call, ~2 us of the ~4 us each field costs).
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
#: how that encoder writes a string (ASCII, escaped)
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def _canonical(value: Any) -> str:
    """:data:`_canonical_json` of ``value``; strings, ints and None (most fields of a request)
    without the encoder's per-call set-up."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return _canonical_json(value)


def fingerprint(body: Mapping[str, Any], endpoint: str) -> Fingerprint:
    """The fingerprint of JSON request ``body`` sent to ``endpoint`` (a route name)."""
    ignored = MAY_DIFFER.get(endpoint, frozenset())
    names = tuple(sorted(k for k in body if k not in ignored))
    names = _NAMES.setdefault(names, names)
    digests = b"".join([_digest(_canonical(body[name]).encode()) for name in names])
    return Fingerprint(names, digests)


_BODY = ("body",)


def body_fingerprint(body: bytes) -> Fingerprint:
    """The fingerprint of an opaque (protobuf) request body: one field, ``body``."""
    return Fingerprint(_BODY, _digest(body))
