"""The environment variables tinkex reads: one table, how their values are spelled, a snapshot.

:data:`VARIABLES` names every variable any part of tinkex reads (the docs test keeps it and
docs/configuration.md complete). :meth:`tinkex._config.ClientSettings.resolve` is the one place
that turns the client variables into settings; this module only parses values and masks
secrets, so that a :func:`snapshot` can be printed or attached to a bug report safely.

Example::

    from tinkex import environment

    print(environment.snapshot())   # {'TINKER_BASE_URL': 'http://127.0.0.1:8000', ...}
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import attrs

from tinkex._exceptions import TinkerError

__all__ = [
    "VARIABLES",
    "EnvironmentVariable",
    "json_string_map",
    "positive_int",
    "proxy_url",
    "snapshot",
    "url_without_password",
]

MASK = "***"


@attrs.frozen
class EnvironmentVariable:
    """One variable: its name, what reads it, and how a snapshot shows its value.

    Attributes:
        name: the variable's name.
        used_by: the part of tinkex that reads it (``"client"``, ``"cli"``, ...).
        masking: ``"none"``, ``"secret"`` (the whole value), ``"headers"`` (a JSON map whose
            credential-like header values are masked) or ``"url"`` (a URL's password).
    """

    name: str
    used_by: str
    masking: str = "none"


VARIABLES: tuple[EnvironmentVariable, ...] = (
    EnvironmentVariable("TINKER_API_KEY", "client", "secret"),
    EnvironmentVariable("TINKER_BASE_URL", "client"),
    EnvironmentVariable("TINKER_PROJECT_ID", "client"),
    EnvironmentVariable("TINKER_TAGS", "client"),
    EnvironmentVariable("TINKER_TELEMETRY", "client"),
    EnvironmentVariable("TINKER_LOG", "client"),
    EnvironmentVariable("TINKER_CREDENTIAL_CMD", "client"),
    EnvironmentVariable("CLOUDFLARE_ACCESS_CLIENT_ID", "client"),
    EnvironmentVariable("CLOUDFLARE_ACCESS_CLIENT_SECRET", "client", "secret"),
    EnvironmentVariable("TINKEX_WIRE_FORMAT", "client"),
    EnvironmentVariable("TINKEX_SAMPLING_IO", "client"),
    EnvironmentVariable("TINKEX_DUMP_HEADERS", "client"),
    EnvironmentVariable("TINKEX_TELEMETRY_EVENTS", "client"),
    EnvironmentVariable("TINKEX_POOL_SIZE", "client"),
    EnvironmentVariable("TINKEX_POLL_BACKOFF", "client"),
    EnvironmentVariable("TINKEX_POLL_TIMEOUT", "client"),
    EnvironmentVariable("TINKEX_DEFAULT_HEADERS", "client", "headers"),
    EnvironmentVariable("TINKEX_DEFAULT_QUERY", "client", "headers"),
    EnvironmentVariable("TINKEX_PROXY", "client", "url"),
    EnvironmentVariable("TINKEX_PROXY_HEADERS", "client", "headers"),
    EnvironmentVariable("HTTPS_PROXY", "client (requests)", "url"),
    EnvironmentVariable("HTTP_PROXY", "client (requests)", "url"),
    EnvironmentVariable("ALL_PROXY", "client (requests)", "url"),
    EnvironmentVariable("NO_PROXY", "client (requests)"),
    EnvironmentVariable("REQUESTS_CA_BUNDLE", "client"),
    EnvironmentVariable("CURL_CA_BUNDLE", "client"),
    EnvironmentVariable("TINKEX_AS_TINKER", "tinker alias"),
    EnvironmentVariable("TINKEX_DEBUG", "cli"),
    EnvironmentVariable("HF_HOME", "tokenizers"),
    EnvironmentVariable("HF_HUB_CACHE", "tokenizers"),
    EnvironmentVariable("HUGGINGFACE_HUB_CACHE", "tokenizers"),
    EnvironmentVariable("XDG_CACHE_HOME", "tokenizers"),
    EnvironmentVariable("HF_HUB_OFFLINE", "tokenizers"),
    EnvironmentVariable("TRANSFORMERS_OFFLINE", "tokenizers"),
)


def snapshot(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`VARIABLES` that are set, secrets masked as ``***``.

    Proxy variables are also looked up in lower case, as ``requests`` does. Header maps keep
    their names; a credential-like header's value (``Authorization``, ``X-API-Key`` ...) is
    masked, and a URL keeps its user name but not its password.
    """
    env = os.environ if environ is None else environ
    shown: dict[str, str] = {}
    for variable in VARIABLES:
        for name in dict.fromkeys((variable.name, variable.name.lower())):
            if name in env:
                shown[name] = _masked(variable.masking, env[name])
    return shown


def _masked(masking: str, value: str) -> str:
    if masking == "secret":
        return MASK if value else ""
    if masking == "url":
        return url_without_password(value)
    if masking == "headers":
        from tinkex.telemetry._scrub import is_sensitive_key

        try:
            pairs = _pairs(json.loads(value))
        except (ValueError, TypeError):
            return MASK  # not readable: it may hold anything
        names = {"proxy-authorization", "cookie"}
        masked = {
            key: MASK if is_sensitive_key(key) or key.lower() in names else item
            for key, item in pairs.items()
        }
        return json.dumps(masked)
    return value


def url_without_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host_and_port = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{MASK}@{host_and_port}"))


def _pairs(value: object) -> dict[str, str]:
    """A JSON object, or an array of ``[name, value]`` pairs, as a ``str -> str`` map."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list) and all(
        isinstance(pair, list) and len(pair) == 2 for pair in value
    ):
        items = [(pair[0], pair[1]) for pair in value]
    else:
        raise TypeError("expected a JSON object or an array of [name, value] pairs")
    pairs: dict[str, str] = {}
    for key, item in items:
        if not isinstance(key, str) or isinstance(item, dict | list) or item is None:
            raise TypeError(f"entry {key!r}: names are strings, values strings or numbers")
        pairs[key] = item if isinstance(item, str) else json.dumps(item)
    return pairs


def json_string_map(env: Mapping[str, str], name: str) -> dict[str, str]:
    """``env[name]`` read as a JSON object (or array of pairs) of strings; ``{}`` when unset.

    Numbers and booleans become their JSON text (``true``, ``2``).

    Raises:
        TinkerError: the value is not such JSON; the message names the variable.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return {}
    try:
        return _pairs(json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise TinkerError(
            f'{name} must be a JSON object such as \'{{"X-Team": "research"}}\' '
            f"(or an array of [name, value] pairs): {exc}"
        ) from None


def positive_int(env: Mapping[str, str], name: str) -> int | None:
    """``env[name]`` as an integer >= 1, or None when unset or empty.

    Raises:
        TinkerError: not a positive integer; the message names the variable and value.
    """
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise TinkerError(f"{name} must be a whole number >= 1, got {raw!r}")
    return value


def proxy_url(value: str, origin: str) -> str:
    """A proxy URL checked for a scheme and a host (``origin`` names where it came from).

    Raises:
        TinkerError: not an ``http://`` or ``https://`` URL with a host; the password is
            never echoed.
    """
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TinkerError(
            f"{origin} must be a proxy URL such as 'http://proxy.example:3128' "
            f"(user:password@ allowed), got {url_without_password(value)!r}"
        )
    return value.strip()
