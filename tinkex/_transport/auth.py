"""JWT authentication: exchange the API key for a short-lived JWT and keep it fresh.

The transport owns it (docs/protocol.md, "Authentication"): ``Transport.use_jwt`` installs a
:class:`JwtCredential` when the server's client config says ``pjwt_auth_enabled``, every request
then sends the JWT, and a 401 ``invalid_token`` makes the transport refresh it and replay the
request once. The exchange is
``POST /api/v1/auth/token`` with body ``{}`` and the original credential (or the output of
``TINKER_CREDENTIAL_CMD`` when the config's ``credential_default_source`` is
``"credential_cmd"``) as ``X-API-Key``; every later request sends the JWT instead. The JWT is
refreshed on demand, once half of its lifetime (``exp - iat``) has passed or when less than
60 s are left. The exchange is a blocking request, so it runs on the credential's own worker
thread: a coroutine on the I/O loop awaits it without stalling the loop's other requests, and
threads and coroutines that need a JWT at the same time share one exchange. Claims are decoded
without verifying the signature (the server does that) — only to schedule refreshes and to
answer ``whoami``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from tinkex._config import ClientSettings, run_credential_cmd
from tinkex._exceptions import APIResponseValidationError, APIStatusError, TinkerError
from tinkex._executor import DaemonThreadPoolExecutor
from tinkex._transport.retry import NO_RETRY
from tinkex._transport.sdk_method import background

if TYPE_CHECKING:
    from tinkex._transport.transport import Transport

__all__ = ["JwtCredential", "decode_jwt_claims", "invalid_token", "is_jwt"]

TOKEN_PATH = "/api/v1/auth/token"

_MIN_REMAINING = 60.0


def is_jwt(token: str) -> bool:
    """Whether ``token`` looks like a JWT (three base64url parts, header starting ``eyJ``)."""
    return token.startswith("eyJ") and token.count(".") == 2


def invalid_token(exc: APIStatusError) -> bool:
    """Whether a 401 says the JWT sent expired or was revoked (``WWW-Authenticate``
    ``error="invalid_token"``): the transports then refresh it and replay the request once."""
    headers = getattr(exc.response, "headers", None)
    challenge = headers.get("WWW-Authenticate", "") if headers is not None else ""
    return 'error="invalid_token"' in challenge


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The payload claims of a JWT (signature not verified).

    Raises:
        TinkerError: ``token`` is not a decodable JWT.
    """
    try:
        payload = token.split(".")[1]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (IndexError, ValueError) as exc:
        raise TinkerError(f"the server's JWT could not be decoded: {exc}") from None
    if not isinstance(claims, dict):
        raise TinkerError("the server's JWT payload is not a JSON object")
    return claims


class JwtCredential:
    """The JWT a transport sends: exchanged for the API key on first use, then kept fresh.

    ``token()`` (blocking) and ``atoken()`` (a coroutine) return a valid JWT;
    ``replace(rejected)`` / ``areplace(rejected)`` one other than ``rejected``, a JWT the
    server refused (the 401 ``invalid_token`` replay). When a new JWT is needed the exchange
    runs on the credential's one worker thread (``tinkex-jwt``), never on the caller's thread
    or event loop, so the I/O loop's other requests go on meanwhile. One exchange at a time:
    every caller needing a JWT while it runs, threads and coroutines alike, waits for it and
    gets its JWT or its error. Thread-safe; :meth:`close` (the transport's) stops the worker.
    """

    def __init__(
        self,
        transport: Transport,
        settings: ClientSettings,
        *,
        use_credential_cmd: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._settings = settings
        self._use_cmd = use_credential_cmd
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._claims: dict[str, Any] = {}
        self._refresh_at = 0.0
        self._exchanging: Future[str] | None = None
        self._worker: DaemonThreadPoolExecutor | None = None
        self._closed = False

    def token(self) -> str:
        """A valid JWT, after waiting for an exchange when one is needed or running.

        Raises:
            APIStatusError: the exchange was refused; TinkerError: its answer is unusable
                or the credential was closed; APIConnectionError, APITimeoutError.
        """
        return _wait(self._next(None))

    def replace(self, rejected: str) -> str:
        """A valid JWT other than ``rejected``: one exchange however many callers ask."""
        return _wait(self._next(rejected))

    async def atoken(self) -> str:
        """:meth:`token` for a coroutine: waiting for the exchange does not block the loop."""
        return await _await(self._next(None))

    async def areplace(self, rejected: str) -> str:
        """:meth:`replace` for a coroutine: waiting for the exchange does not block the loop."""
        return await _await(self._next(rejected))

    @property
    def claims(self) -> dict[str, Any]:
        """Claims of the current JWT (fetching one first if needed)."""
        self.token()
        with self._lock:
            return dict(self._claims)

    def close(self) -> None:
        """Stop the worker: later refreshes fail; one on the wire ends on its own. Idempotent."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def __repr__(self) -> str:
        return f"<JwtCredential exchanging={self._exchanging is not None} closed={self._closed}>"

    def _next(self, rejected: str | None) -> str | Future[str]:
        """The JWT to send now, or the exchange to wait for (started here if none runs)."""
        with self._lock:
            if self._closed:
                raise TinkerError("this transport was closed; its JWT is no longer refreshed")
            if self._exchanging is not None:
                return self._exchanging
            token = self._token
            if token is not None and token != rejected and self._clock() < self._refresh_at:
                return token
            if self._worker is None:
                self._worker = DaemonThreadPoolExecutor(1, "tinkex-jwt")
            # Cleared by _run_exchange under this lock, so never before it is published.
            self._exchanging = self._worker.submit(self._run_exchange)
            return self._exchanging

    def _run_exchange(self) -> str:
        """On the worker: exchange, keep the result, and let the next caller start another."""
        try:
            with background():  # the refresh is background traffic, not the caller's method
                token, claims = self._exchange()
            exp, iat = claims["exp"], claims["iat"]
            with self._lock:
                self._token, self._claims = token, claims
                self._refresh_at = min(iat + 0.5 * (exp - iat), exp - _MIN_REMAINING)
            return token
        finally:
            with self._lock:
                self._exchanging = None

    def _source_key(self) -> str:
        command = self._settings.credential_cmd
        if self._use_cmd and command:
            return run_credential_cmd(command)
        if not self._settings.api_key:
            raise TinkerError("JWT authentication needs an API key or TINKER_CREDENTIAL_CMD")
        return self._settings.api_key

    def _exchange(self) -> tuple[str, dict[str, Any]]:
        """``POST /api/v1/auth/token`` once: the new JWT and its claims."""
        response = self._transport.request(
            "POST",
            TOKEN_PATH,
            json={},
            headers={"X-API-Key": self._source_key()},
            retry=NO_RETRY,
            credential=False,
        )
        body = response.json()
        token = body.get("jwt") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise APIResponseValidationError(
                body=body,
                message=f"POST {TOKEN_PATH}: the answer has no 'jwt' string (got {body!r:.200})",
                request=f"POST {TOKEN_PATH}",
            )
        claims = decode_jwt_claims(token)
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)) or exp <= iat:
            raise TinkerError(f"the server's JWT needs numeric 'exp' > 'iat' claims, got {claims}")
        return token, claims


def _wait(step: str | Future[str]) -> str:
    """The JWT ``step`` is, or the one its exchange gives (blocking this thread)."""
    return step if isinstance(step, str) else step.result()


async def _await(step: str | Future[str]) -> str:
    """The JWT ``step`` is, or the one its exchange gives, awaited on the running loop.

    Cancelling the awaiting task leaves the exchange (other callers wait for it too) alone;
    an exchange that ends after the loop closed tells nobody.
    """
    if isinstance(step, str):
        return step
    import asyncio  # only the I/O loop's callers get here; ``import tinkex`` stays cheap

    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[str] = loop.create_future()

    def settle(done: Future[str]) -> None:
        if waiter.done():  # the awaiting task was cancelled
            return
        if (exc := done.exception()) is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    def wake(done: Future[str]) -> None:
        try:
            loop.call_soon_threadsafe(settle, done)
        except RuntimeError:
            pass  # the loop closed meanwhile: nobody waits there any more

    step.add_done_callback(wake)
    return await waiter
