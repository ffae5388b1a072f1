"""Credential helpers (twin of ``tinker.auth``)."""

from __future__ import annotations

import os

from tinkex._config import ClientSettings, _read_stored_key, default_credentials_path
from tinkex._exceptions import TinkerError

__all__ = ["get_tinker_token", "tinker_has_credentials", "raise_if_tinker_not_accessible"]


def get_tinker_token() -> str | None:
    """The static API key from ``TINKER_API_KEY`` or the stored credentials (no command run)."""
    key = os.environ.get("TINKER_API_KEY")
    if key:
        return key
    return _read_stored_key(default_credentials_path())


def tinker_has_credentials() -> bool:
    """True when a key, a credential command or stored credentials are available."""
    return bool(get_tinker_token() or os.environ.get("TINKER_CREDENTIAL_CMD"))


def raise_if_tinker_not_accessible(
    *, base_url: str | None = None, api_key: str | None = None
) -> None:
    """One un-retried ``GET /api/v1/get_server_capabilities``; raises if it fails.

    Raises:
        TinkerError: no credentials.
        AuthenticationError / BillingError / APIConnectionError: the server said no or could
            not be reached.
    """
    from tinkex._transport import NO_RETRY, Transport

    settings = ClientSettings.resolve(base_url=base_url, api_key=api_key)
    if not settings.api_key:
        raise TinkerError("no Tinker credentials found; set TINKER_API_KEY")
    Transport.shared(settings).request("GET", "/api/v1/get_server_capabilities", retry=NO_RETRY)
