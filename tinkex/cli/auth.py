"""``tinkex auth login|logout|status|whoami``: the stored credential and who it belongs to."""

from __future__ import annotations

import argparse
import hashlib
import socket
import sys
import urllib.parse
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._output import Output, property_table
from tinkex.cli._parsers import add_command, add_group
from tinkex.cli._progress import wait_for

if TYPE_CHECKING:
    from pathlib import Path

#: The hosted service's console, where API keys are created and deleted.
CONSOLE_URL = "https://tinker.thinkingmachines.ai"
_ME = "/api/v1/auth/apikey/me"
_HTTP_TIMEOUT = (5.0, 30.0)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``auth`` group."""
    _, sub = add_group(subparsers, "auth", "Manage authentication credentials.", common)
    p = add_command(
        sub,
        "login",
        "Store an API key as the default credential.",
        common,
        description="Store an API key in ~/.tinker/credentials.json as the default credential\n"
        "(both tinkex and tinker read it when TINKER_API_KEY is not set). The key is read\n"
        "from --api-key, else prompted for (one line from standard input when it is not a\n"
        "terminal), and checked against the server first.",
    )
    p.set_defaults(cmd=cmd_login)
    p = add_command(sub, "logout", "Remove the stored default credential.", common)
    p.set_defaults(cmd=cmd_logout)
    p = add_command(
        sub, "status", "Check that credentials exist and the server accepts them.", common
    )
    p.set_defaults(cmd=cmd_status)
    p = add_command(sub, "whoami", "Show the user and organization of the credential.", common)
    p.set_defaults(cmd=cmd_whoami)


def _store_path() -> Path:
    from tinkex._config import default_credentials_path

    return default_credentials_path()


def key_name() -> str:
    """The name a key stored from this machine gets: ``tinker-cli-<host>``."""
    host = socket.gethostname().split(".", 1)[0].strip()
    return f"tinker-cli-{host or 'unknown'}"


def cmd_login(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex auth login``."""
    from tinkex._config import DEFAULT_BASE_URL
    from tinkex.cli import _credentials

    path = _store_path()
    if _credentials.default_record(path) is not None:
        raise CommandError("already logged in; run 'tinkex auth logout' before logging in again")
    settings = ctx.settings(require_api_key=False)
    if ctx.api_key:
        key = ctx.api_key.strip()
    else:
        if settings.base_url == DEFAULT_BASE_URL:
            query = urllib.parse.urlencode({"new_key": "true", "key_name": key_name()})
            print(f"Create an API key: {CONSOLE_URL}/keys?{query}\n", file=sys.stderr)
        key = _prompt_key()
    if not key:
        raise CommandError("the API key must not be empty")
    if not key.startswith(("tml-", "eyJ")):
        raise CommandError(
            f"that is not a Tinker API key (they start with 'tml-'; got {len(key)} characters)"
        )
    me = _fetch_me(settings.base_url, key)
    if me is None:  # a server without the key endpoint (a local server): check access instead
        from tinkex.auth import raise_if_tinker_not_accessible

        raise_if_tinker_not_accessible(base_url=settings.base_url, api_key=key)
        key_id = "tinkex-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        record: dict[str, Any] = {"type": "manual", "key": key, "name": key_name()}
        who = f"at {settings.base_url}"
    else:
        key_id = str(me["key_id"])
        record = {"type": "manual", "key": key, "name": str(me.get("name") or key_name())}
        if me.get("note") is not None:
            record["note"] = me["note"]
        details = me.get("details")
        if isinstance(details, dict):
            record["details"] = details
        who = _owner(details) or f"at {settings.base_url}"
    _credentials.add_default(path, key_id, record)
    data = {"logged_in": True, "key_id": key_id, "name": record["name"], "path": str(path)}
    text = f"Logged in {who}. Stored API key '{record['name']}' as the default credential."
    if settings.api_key_source == "env":
        text += "\nNote: TINKER_API_KEY is set and takes precedence over the stored key."
    ctx.emit(Output(data, text=text))


def _prompt_key() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    import getpass

    return getpass.getpass("Paste your API key: ").strip()


def _owner(details: Any) -> str | None:
    if not isinstance(details, dict):
        return None
    email = (details.get("user_details") or {}).get("email")
    org = (details.get("org_details") or {}).get("name")
    if email and org:
        return f"as {email} ({org})"
    return f"as {email}" if email else None


def _fetch_me(base_url: str, key: str) -> dict[str, Any] | None:
    """``GET /api/v1/auth/apikey/me`` with ``key``; None when the server has no such endpoint."""
    response = _auth_request("GET", base_url, key)
    if response is None:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "key_id" not in body:
        raise CommandError(f"{base_url}{_ME} answered something unexpected; key not stored")
    return body


def _auth_request(method: str, base_url: str, key: str) -> Any:
    """One request to the key endpoint; None on 404/405 (no endpoint), CommandError on failure."""
    import requests

    from tinkex._exceptions import shorten_body

    try:
        response = requests.request(
            method, base_url + _ME, headers={"X-API-Key": key}, timeout=_HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        from tinkex._server_check import connection_reason

        raise CommandError(f"cannot reach {base_url}: {connection_reason(exc)}") from None
    if response.status_code in (404, 405):
        return None
    if response.status_code >= 400:
        try:
            detail: object = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = shorten_body(response.text)
        raise CommandError(
            f"the server did not accept the API key: {detail or 'no detail'} "
            f"(HTTP {response.status_code} from {method} {_ME})"
        )
    return response


def cmd_logout(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex auth logout``."""
    from tinkex.cli import _credentials

    path = _store_path()
    found = _credentials.default_record(path)
    if found is None:
        raise CommandError(
            f"no default credential is stored in {path}; nothing to log out from "
            "(run 'tinkex auth login' to log in)"
        )
    key_id, record = found
    name = record.get("name", key_id)
    if record.get("type") == "generated":  # minted for this machine only: revoke it too
        settings = ctx.settings(require_api_key=False)
        _auth_request("DELETE", settings.base_url, str(record.get("key", "")))
        _credentials.remove(path, key_id)
        text = f"Removed credential '{name}' and deleted its API key on the server."
    else:
        _credentials.remove(path, key_id)
        text = f"Removed credential '{name}'. The API key is still active."
        if not key_id.startswith("tinkex-"):
            key_url = f"{CONSOLE_URL}/keys/{urllib.parse.quote(key_id, safe='')}"
            text += f"\nDelete it in the console if you no longer need it: {key_url}"
    ctx.emit(Output({"logged_out": True, "key_id": key_id, "name": name}, text=text))


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    """``tinkex auth status``: credentials present? accepted by the server?"""
    from tinkex._exceptions import TinkerError
    from tinkex.auth import raise_if_tinker_not_accessible

    try:
        settings = ctx.settings()
    except TinkerError as exc:
        ctx.emit(
            Output(
                {"credentials_available": False, "accessible": False},
                text="Credentials available: no",
            )
        )
        raise CommandError(
            f"no Tinker credentials are available ({exc}); run 'tinkex auth login' or set "
            "TINKER_API_KEY"
        ) from None
    base: dict[str, Any] = {
        "credentials_available": True,
        "credential_source": settings.api_key_source,
        "base_url": settings.base_url,
    }
    try:
        ctx.check_server()
        raise_if_tinker_not_accessible(base_url=settings.base_url, api_key=settings.api_key)
    except Exception:
        ctx.emit(
            Output(
                {**base, "accessible": False},
                text="Credentials available: yes\nTinker accessible: no",
            )
        )
        raise
    ctx.emit(
        Output(
            {**base, "accessible": True},
            text=f"Credentials available: yes ({settings.api_key_source})\n"
            f"Tinker accessible: yes ({settings.base_url})",
        )
    )
    return 0


def cmd_whoami(ctx: Context, args: argparse.Namespace) -> None:
    """``tinkex auth whoami``."""
    identity = wait_for(ctx.rest().whoami(), "the key's identity")
    pairs = [
        ("Email", identity.email or "N/A"),
        ("User", identity.user_urn),
        ("Organization", identity.org_urn),
    ]
    ctx.emit(Output(identity, property_table(pairs)))
