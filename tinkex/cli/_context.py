"""What every command needs: the chosen output format and clients for the chosen server.

The server and key come from ``--base-url``/``--api-key`` when given, else from the same
``TINKER_BASE_URL``/``TINKER_API_KEY`` environment variables the SDK reads. Clients are created
lazily (``tinkex`` itself is imported only when a command actually talks to a server).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from tinkex.cli._output import Output, emit

if TYPE_CHECKING:
    from tinkex import RestClient, ServiceClient


class CommandError(Exception):
    """A user-facing failure: printed as ``Error: <message>`` with exit status 1."""


class Context:
    """Per-invocation state shared by the command handlers."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.format: str = getattr(args, "format", "table") or "table"
        self.base_url: str | None = getattr(args, "base_url", None)
        self.api_key: str | None = getattr(args, "api_key", None)
        self._rest: RestClient | None = None
        self._reachable = False

    def client_kwargs(self) -> dict[str, Any]:
        """``base_url``/``api_key`` keyword arguments for a client (only those given)."""
        kwargs: dict[str, Any] = {}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.api_key:
            kwargs["api_key"] = self.api_key
        return kwargs

    def check_reachable(self) -> None:
        """Fail fast (a few seconds, not the SDK's 5-minute retry budget) when nobody answers.

        One ``POST /api/v1/client/config`` with at most two quick transport retries; a
        connection error propagates as ``APIConnectionError``. HTTP errors are left to the
        command's own requests, which report them with their context.
        """
        if self._reachable:
            return
        from tinkex._config import ClientSettings
        from tinkex._exceptions import APIStatusError
        from tinkex._transport import Transport, http_retry_policy
        from tinkex._version import TINKER_SDK_VERSION

        settings = ClientSettings.resolve(**self.client_kwargs())
        try:
            Transport.shared(settings).request(
                "POST",
                "/api/v1/client/config",
                json={"sdk_version": TINKER_SDK_VERSION},
                retry=http_retry_policy(2),
            )
        except APIStatusError:
            pass
        self._reachable = True

    def rest(self) -> RestClient:
        """A RestClient for the chosen server (created on first use)."""
        if self._rest is None:
            import tinkex

            self.check_reachable()
            self._rest = tinkex.RestClient(**self.client_kwargs())
        return self._rest

    def service(self, **kwargs: Any) -> ServiceClient:
        """A new ServiceClient for the chosen server; the caller closes it."""
        import tinkex

        self.check_reachable()
        return tinkex.ServiceClient(**self.client_kwargs(), **kwargs)

    def emit(self, output: Output) -> None:
        """Print a command's result in the chosen format."""
        emit(output, self.format)
