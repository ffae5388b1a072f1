"""``tinkex doctor``: check the environment a user is in, and say what to fix.

Each check is one row ``(check, status, detail, fix)`` with status ``ok``, ``warn`` or
``fail``; the exit status is 1 when any check failed. Secrets are never printed: the API key
shows only where it came from, its kind and its length; proxy URLs lose their passwords. The
whole run takes a few seconds at most (one fast server check, one capabilities request).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import email.utils
import os
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import Context
from tinkex.cli._output import Output
from tinkex.cli._parsers import add_command

if TYPE_CHECKING:
    from tinkex._config import ClientSettings

#: Clock differences above this many seconds break signed URLs and JWT refresh timing.
MAX_CLOCK_SKEW = 60.0
_PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclasses.dataclass
class Check:
    """One line of the report."""

    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``doctor``."""
    p = add_command(
        subparsers,
        "doctor",
        "Check your setup: server URL, API key, connectivity, clock, proxies, tokenizers.",
        common,
        description="Check the environment tinkex runs in and say what to fix: the server URL\n"
        "and where it came from, the API key (never printed), whether the server answers as a\n"
        "Tinker API, its kind and models, clock skew, proxy settings, the tokenizer cache.\n"
        "Exits 1 when a check fails.",
    )
    p.set_defaults(cmd=cmd_doctor)


def cmd_doctor(ctx: Context, args: argparse.Namespace) -> int:
    """``tinkex doctor``."""
    checks: list[Check] = [_python_and_tinkex()]
    url_check, settings = _base_url(ctx)
    checks.append(url_check)
    if settings is not None:
        checks.append(_api_key(ctx, settings))
        checks.extend(_proxies(settings.base_url))
        checks.extend(_server(settings))
    checks.append(_tokenizer_cache())
    failed = [c for c in checks if c.status == "fail"]
    data = {"ok": not failed, "checks": [dataclasses.asdict(c) for c in checks]}
    ctx.emit(Output(data, text=render(checks)))
    return 1 if failed else 0


def render(checks: list[Check], width: int = 100) -> str:
    """``status  check  detail`` lines wrapped at ``width``, each fix on its own line."""
    import textwrap

    name_width = max(len(c.name) for c in checks)
    indent = " " * (6 + name_width + 2)
    lines = []
    for c in checks:
        head = f"{c.status:<4}  {c.name:<{name_width}}  "
        lines.extend(textwrap.wrap(c.detail, width, initial_indent=head, subsequent_indent=indent))
        if c.fix:
            lines.extend(
                textwrap.wrap(
                    f"fix: {c.fix}", width, initial_indent=indent, subsequent_indent=indent
                )
            )
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    verdict = f"{failed} problem(s) found" if failed else "everything looks fine"
    lines.append(f"\n{verdict} ({warned} warning(s))")
    return "\n".join(lines)


def _python_and_tinkex() -> Check:
    import platform

    from tinkex._version import TINKER_SDK_VERSION, __version__

    version = platform.python_version()
    ok = tuple(int(p) for p in version.split(".")[:2]) >= (3, 11)
    return Check(
        "tinkex",
        "ok" if ok else "fail",
        f"tinkex {__version__} (Tinker API {TINKER_SDK_VERSION}), Python {version}",
        "" if ok else "tinkex needs Python 3.11 or newer",
    )


def _base_url(ctx: Context) -> tuple[Check, ClientSettings | None]:
    from tinkex._config import DEFAULT_BASE_URL

    if ctx.base_url:
        origin = "--base-url"
    elif os.environ.get("TINKER_BASE_URL"):
        origin = "TINKER_BASE_URL"
    else:
        origin = "default (the hosted service)"
    try:
        settings = ctx.settings(require_api_key=False)
    except Exception as exc:
        from tinkex.cli._errors import describe_error

        return Check("server URL", "fail", describe_error(exc), "fix TINKER_BASE_URL"), None
    hosted = " (the hosted Tinker service)" if settings.base_url == DEFAULT_BASE_URL else ""
    if origin.startswith("default"):
        hosted = ""
    return Check("server URL", "ok", f"{settings.base_url} (from {origin}){hosted}"), settings


def _api_key(ctx: Context, settings: ClientSettings) -> Check:
    from tinkex._exceptions import TinkerError

    try:
        resolved = ctx.settings()
    except TinkerError as exc:
        return Check(
            "API key",
            "fail",
            " ".join(str(exc).split()),
            "set TINKER_API_KEY, pass --api-key, or run 'tinkex auth login'",
        )
    key = resolved.api_key
    kind = "JWT" if key.startswith("eyJ") else "tml- key"
    sources = {
        "explicit": "--api-key",
        "env": "TINKER_API_KEY",
        "credential_cmd": "TINKER_CREDENTIAL_CMD",
        "credentials_file": "~/.tinker/credentials.json",
    }
    where = sources.get(resolved.api_key_source, resolved.api_key_source)
    detail = f"a {kind} of {len(key)} characters, from {where} (not shown)"
    if key != key.strip() or any(ch.isspace() for ch in key):
        return Check("API key", "fail", detail + "; it contains whitespace", "copy it again")
    return Check("API key", "ok", detail)


def _proxies(base_url: str) -> list[Check]:
    import urllib.request

    found = {
        name: os.environ.get(name) or os.environ.get(name.lower())
        for name in _PROXY_VARIABLES
        if os.environ.get(name) or os.environ.get(name.lower())
    }
    if not found:
        return [Check("proxy", "ok", "no proxy variables set")]
    host = urllib.parse.urlsplit(base_url).hostname or ""
    bypass = bool(urllib.request.proxy_bypass_environment(host))  # type: ignore[attr-defined]
    scheme = urllib.parse.urlsplit(base_url).scheme
    proxy = None if bypass else urllib.request.getproxies_environment().get(scheme)
    shown = ", ".join(f"{name}={_without_password(value or '')}" for name, value in found.items())
    route = f"{host} goes through {_without_password(proxy)}" if proxy else f"{host} is direct"
    return [Check("proxy", "ok", f"{shown}; {route}")]


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _server(settings: ClientSettings) -> list[Check]:
    from tinkex._server_check import check_server
    from tinkex.cli._errors import describe_error

    start = time.monotonic()
    try:
        config, date_header = _config_and_date(settings, check_server)
    except Exception as exc:
        return [Check("server", "fail", describe_error(exc, settings.base_url), _server_fix(exc))]
    elapsed = (time.monotonic() - start) * 1000
    auth = "JWT" if config.get("pjwt_auth_enabled") else "API key"
    checks = [Check("server", "ok", f"a Tinker API answers in {elapsed:.0f} ms ({auth} auth)")]
    checks.append(_clock(date_header))
    if settings.api_key:
        checks.append(_capabilities(settings))
    return checks


def _config_and_date(settings: ClientSettings, check: Any) -> tuple[dict[str, Any], str | None]:
    """The server's client config and the ``Date`` header of one plain request."""
    import requests

    config = check(settings)
    try:
        response = requests.get(settings.base_url + "/api/v1/healthz", timeout=(3.0, 5.0))
        date = response.headers.get("Date")
    except requests.RequestException:
        date = None
    return config, date


def _server_fix(exc: Exception) -> str:
    from tinkex._exceptions import AuthenticationError
    from tinkex._server_check import NotATinkerAPIError

    if isinstance(exc, NotATinkerAPIError):
        return "point TINKER_BASE_URL (or --base-url) at a Tinker API, or unset it"
    if isinstance(exc, AuthenticationError):
        return "check the API key"
    return "start one with 'tinkex serve', or fix TINKER_BASE_URL"


def _clock(date_header: str | None) -> Check:
    if not date_header:
        return Check("clock", "ok", "the server sends no Date header; skew not measured")
    try:
        server_time = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return Check("clock", "warn", f"unreadable Date header {date_header!r}")
    skew = (_dt.datetime.now(_dt.UTC) - server_time).total_seconds()
    detail = f"this machine is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server"
    if abs(skew) > MAX_CLOCK_SKEW:
        return Check(
            "clock", "warn", detail, "sync the clock (NTP): signed URLs and JWTs depend on it"
        )
    return Check("clock", "ok", detail)


def _capabilities(settings: ClientSettings) -> Check:
    from tinkex._exceptions import TinkerError
    from tinkex.cli._errors import describe_error

    try:
        import tinkex

        with tinkex.RestClient(base_url=settings.base_url, api_key=settings.api_key) as rest:
            models = rest.get_server_capabilities().result(timeout=15).supported_models
    except (TinkerError, OSError, TimeoutError) as exc:
        return Check("models", "fail", describe_error(exc, settings.base_url), "check the API key")
    names = [m.model_name for m in models if m.model_name]
    kind = "tinkex local server" if any(n.startswith("tinkex/") for n in names) else "Tinker API"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if not names:
        return Check("models", "warn", f"{kind}: the server advertises no models")
    return Check("models", "ok", f"{kind}: {len(names)} model(s): {shown}")


def _tokenizer_cache() -> Check:
    from tinkex.tokenizer._loader import hf_cache_dirs

    existing = [d for d in hf_cache_dirs() if d.is_dir()]
    if not existing:
        searched = ", ".join(str(d) for d in hf_cache_dirs()[:2])
        return Check(
            "tokenizers",
            "warn",
            f"no Hugging Face cache found ({searched}); hosted models' tokenizers are unavailable"
            " offline (the local server's byte tokenizer always works)",
            "hf download <model> tokenizer.json tokenizer_config.json, or set HF_HOME",
        )
    repos = sorted({p.name for d in existing for p in d.glob("models--*")})
    shown = ", ".join(r.removeprefix("models--").replace("--", "/") for r in repos[:3])
    more = f" and {len(repos) - 3} more" if len(repos) > 3 else ""
    return Check(
        "tokenizers",
        "ok",
        f"{existing[0]}: {len(repos)} cached model repo(s){': ' + shown + more if repos else ''}",
    )
