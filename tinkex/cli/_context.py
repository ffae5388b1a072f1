"""What every command needs: the chosen output format and clients for the chosen server.

The server and key come from ``--base-url``/``--api-key`` when given, else from the same
``TINKER_BASE_URL``/``TINKER_API_KEY`` environment variables (and stored credentials) the SDK
reads. Clients are created lazily (``tinkex`` itself is imported only when a command actually
talks to a server), after one fast check that a Tinker API answers there
(:func:`tinkex._server_check.check_server`): a wrong URL fails in seconds, not minutes.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, TypeVar

from tinkex.cli._output import Output, emit

if TYPE_CHECKING:
    from tinkex import AdminClient, RestClient, ServiceClient
    from tinkex._config import ClientSettings

_Client = TypeVar("_Client", "ServiceClient", "RestClient", "AdminClient")


class CommandError(Exception):
    """A user-facing failure: printed as ``Error: <message>`` with exit status 1."""


class Context:
    """Per-invocation state shared by the command handlers."""

    def __init__(self, args: argparse.Namespace, *, sink: list[Output] | None = None) -> None:
        self.format: str = getattr(args, "format", "table") or "table"
        self.sink = sink
        self.base_url: str | None = getattr(args, "base_url", None)
        self.api_key: str | None = getattr(args, "api_key", None)
        self._rest: RestClient | None = None
        #: every client made for the command (ServiceClient, RestClient, AdminClient)
        self._clients: list[ServiceClient | RestClient | AdminClient] = []
        self._checked = False

    def client_kwargs(self) -> dict[str, Any]:
        """``base_url``/``api_key`` keyword arguments for a client (only those given)."""
        kwargs: dict[str, Any] = {}
        if self.base_url:
            kwargs["base_url"] = self.base_url
        if self.api_key:
            kwargs["api_key"] = self.api_key
        return kwargs

    def settings(self, *, require_api_key: bool = True) -> ClientSettings:
        """The resolved client settings (raises ``TinkerError`` saying what to fix)."""
        from tinkex._config import ClientSettings

        return ClientSettings.resolve(**self.client_kwargs(), require_api_key=require_api_key)

    def resolved_base_url(self) -> str | None:
        """The server URL the command uses, or None when even that cannot be resolved."""
        try:
            return self.settings(require_api_key=False).base_url
        except Exception:
            return self.base_url or os.environ.get("TINKER_BASE_URL") or None

    def check_server(self) -> None:
        """Fail fast unless a Tinker API answers at the chosen URL (once per invocation)."""
        if self._checked:
            return
        from tinkex._server_check import check_server

        check_server(self.settings())
        self._checked = True

    def rest(self) -> RestClient:
        """A RestClient for the chosen server (created on first use)."""
        if self._rest is None:
            import tinkex

            self.check_server()
            self._rest = self._made(tinkex.RestClient(**self.client_kwargs()))
        return self._rest

    def close(self) -> None:
        """Close the RestClient :meth:`rest` made: its worker threads and telemetry reporter
        must not outlive a command run in-process (``main``, ``invoke``)."""
        rest, self._rest = self._rest, None
        if rest is not None:
            rest.close()

    def abandon(self) -> None:
        """Give up on the command (past its ``--timeout``): stop the telemetry of every client
        made for it without delivering what is queued, so the process exits at once.

        The clients are left to the command's thread, which still waits on a server that does
        not answer; closing them would wait on it too (a session's finish, a telemetry flush:
        seconds at exit). Their threads are daemons.
        """
        for client in self._clients:
            reporter = client.get_telemetry()
            if reporter is not None:
                reporter.close(timeout=0.0)  # drops what is not delivered yet

    def _made(self, client: _Client) -> _Client:
        self._clients.append(client)
        return client

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def admin(self) -> AdminClient:
        """A new AdminClient (billing, audit) for the chosen server."""
        import tinkex

        self.check_server()
        return self._made(tinkex.AdminClient(**self.client_kwargs()))

    def service(self, **kwargs: Any) -> ServiceClient:
        """A new ServiceClient for the chosen server; the caller closes it."""
        import tinkex

        self.check_server()
        return self._made(tinkex.ServiceClient(**self.client_kwargs(), **kwargs))

    def emit(self, output: Output) -> None:
        """Print a command's result in the chosen format (or keep it in ``sink`` when the
        command runs through :func:`tinkex.cli.invoke`)."""
        if self.sink is not None:
            self.sink.append(output)
        else:
            emit(output, self.format)
