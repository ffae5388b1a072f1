"""JWT authentication: exchange the API key for a short-lived JWT and keep it fresh.

The transport owns it (docs/protocol.md, "Authentication"): ``Transport.use_jwt`` installs a
:class:`JwtCredential` when the server's client config says ``pjwt_auth_enabled``, every request
then sends the JWT, and a 401 ``invalid_token`` makes the transport refresh it and replay the
request once. The exchange is
``POST /api/v1/auth/token`` with body ``{}`` and the original credential (or the output of
``TINKER_CREDENTIAL_CMD`` when the config's ``credential_default_source`` is
``"credential_cmd"``) as ``X-API-Key``; every later request sends the JWT instead. The JWT is
refreshed on demand, once half of its lifetime (``exp - iat``) has passed or when less than
60 s are left; no background thread is needed. Claims are decoded without verifying the
signature (the server does that) — only to schedule refreshes and to answer ``whoami``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tinkex._config import ClientSettings, run_credential_cmd
from tinkex._exceptions import APIResponseValidationError, APIStatusError, TinkerError
from tinkex._transport.retry import NO_RETRY

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
    """Callable credential provider for :meth:`Transport.set_credential_provider`.

    ``credential(force=False)`` returns a valid JWT, exchanging the API key for a new one
    when none is held, when the current one is past its refresh point, or when ``force``.
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

    def __call__(self, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or self._clock() >= self._refresh_at:
                self._exchange()
            assert self._token is not None
            return self._token

    @property
    def claims(self) -> dict[str, Any]:
        """Claims of the current JWT (fetching one first if needed)."""
        self(False)
        return dict(self._claims)

    def _source_key(self) -> str:
        command = self._settings.credential_cmd
        if self._use_cmd and command:
            return run_credential_cmd(command)
        if not self._settings.api_key:
            raise TinkerError("JWT authentication needs an API key or TINKER_CREDENTIAL_CMD")
        return self._settings.api_key

    def _exchange(self) -> None:
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
        self._token = token
        self._claims = claims
        self._refresh_at = min(iat + 0.5 * (exp - iat), exp - _MIN_REMAINING)
