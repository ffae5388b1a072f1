"""Masking of API keys and bearer-like secrets in telemetry payloads.

Applied to every event before it is queued or logged, so a secret that slipped into an error
message, a traceback or a metadata value never leaves the process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

# Tinker API keys, JWTs (header.payload.signature, each base64url), and bearer tokens.
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_\-.~+/=]+"),
    re.compile(r"\btml-[A-Za-z0-9_\-.]+"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]*){0,2}"),
)
# "api_key=...", "X-API-Key: ...", '"password": "..."' inside free text.
_ASSIGNMENT = re.compile(
    r"(?i)(\b(?:x-api-key|api[_-]?key|authorization|access[_-]?token|secret|password|"
    r"cf-access-client-secret)\b[\"']?\s*[:=]\s*[\"']?)((?:bearer\s+)?[^\s\"',;}]+)"
)
_SENSITIVE_KEY = re.compile(
    r"(?i)^(?:x-)?(?:api[_-]?key|authorization|access[_-]?token|refresh[_-]?token|token|"
    r"secret|password|credentials?|cf-access-client-secret|weights[_-]access[_-]token)$"
)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with API keys, JWTs, bearer tokens and each of ``secrets`` replaced by a mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    # Token patterns first: "Authorization: Bearer <token>" must lose the token, not just
    # the word "Bearer" (which is what the assignment rule alone would mask).
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return _ASSIGNMENT.sub(lambda m: m.group(1) + REDACTED, text)


def is_sensitive_key(key: str) -> bool:
    """Whether a mapping key names a credential (its value is masked wholesale)."""
    return bool(_SENSITIVE_KEY.match(key))


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` (nested dicts/lists/tuples/strings) with every secret masked.

    Values under credential-like keys (``api_key``, ``Authorization``, ``token`` ...) are
    replaced entirely; strings are cleaned with :func:`scrub_text`; other scalars pass through.
    """
    secret_list = tuple(secret for secret in secrets if secret)
    return _scrub(value, secret_list)


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, Mapping):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            clean_key = scrub_text(key, secrets) if isinstance(key, str) else key
            if isinstance(key, str) and is_sensitive_key(key) and item is not None:
                cleaned[clean_key] = REDACTED
            else:
                cleaned[clean_key] = _scrub(item, secrets)
        return cleaned
    if isinstance(value, list | tuple):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, bytes):
        return _scrub(value.decode("utf-8", errors="replace"), secrets)
    return value
