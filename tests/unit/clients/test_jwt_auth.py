"""JWT authentication (docs/protocol.md, "Authentication"): exchange, use, refresh, replay."""

from __future__ import annotations

import base64
import json
import pickle
import time
from typing import Any

import pytest

import tinkex
from tinkex import types
from tinkex._transport import Transport
from tinkex._transport.auth import JwtCredential, decode_jwt_claims
from tinkex.clients.rest import whoami_from_claims

from .conftest import API_KEY, BASE_URL, FakeTinker

PROMPT = types.ModelInput.from_ints([1, 2, 3])


def make_jwt(**claims: Any) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.signature"


def _jwt(n: int, lifetime: float = 3600.0) -> str:
    now = time.time()
    return make_jwt(sub=f"tml:user:u{n}", org_id="o1", email="", iat=now, exp=now + lifetime)


def test_requests_carry_the_exchanged_jwt(fake: FakeTinker) -> None:
    fake.config = {"pjwt_auth_enabled": True}
    token = _jwt(1)
    fake.reply("POST", "/api/v1/auth/token", (200, {"jwt": token}))
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        service.create_lora_training_client("tiny-base", rank=4).result(timeout=10)
    (exchange,) = fake.requests_to("/api/v1/auth/token")
    assert exchange.headers["X-API-Key"] == API_KEY and exchange.json == {}
    config = fake.requests_to("/api/v1/client/config")[0]
    assert config.headers["X-API-Key"] == API_KEY
    later = [c for c in fake.calls if c.path not in ("/api/v1/client/config", "/api/v1/auth/token")]
    assert later and all(c.headers["X-API-Key"] == token for c in later)


def test_invalid_token_401_refreshes_and_replays_once(fake: FakeTinker) -> None:
    fake.config = {"pjwt_auth_enabled": True}
    first, second = _jwt(1), _jwt(2)
    fake.reply("POST", "/api/v1/auth/token", (200, {"jwt": first}), (200, {"jwt": second}))
    fake.reply(
        "POST",
        "/api/v1/create_session",
        (401, {"detail": "expired"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'}),
        None,
    )
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        service.create_lora_training_client("tiny-base", rank=4).result(timeout=10)
    sessions = fake.requests_to("/api/v1/create_session")
    assert [c.headers["X-API-Key"] for c in sessions] == [first, second]


def test_refused_exchange_fails_client_creation(fake: FakeTinker) -> None:
    fake.config = {"pjwt_auth_enabled": True}
    fake.reply("POST", "/api/v1/auth/token", (401, {"detail": "bad key"}))
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        future = service.create_lora_training_client("tiny-base", rank=4)
        with pytest.raises(tinkex.AuthenticationError):
            future.result(timeout=10)


def test_whoami_decodes_the_jwt_claims(fake: FakeTinker) -> None:
    fake.config = {"pjwt_auth_enabled": True}
    fake.reply("POST", "/api/v1/auth/token", (200, {"jwt": _jwt(7)}))
    rest = tinkex.RestClient(base_url=BASE_URL, api_key=API_KEY)
    who = rest.whoami().result(timeout=10)
    assert who.user_urn == "tml:user:u7" and who.org_urn == "tml:organization:o1"
    assert who.email is None
    rest.close()


def test_whoami_without_jwt_auth_raises(fake: FakeTinker) -> None:
    rest = tinkex.RestClient(base_url=BASE_URL, api_key=API_KEY)
    with pytest.raises(RuntimeError, match="JWT"):
        rest.whoami().result(timeout=10)
    rest.close()


def test_credential_refreshes_at_half_life() -> None:
    now = [1000.0]
    issued: list[str] = []

    class FakeTransport:
        def request(self, *args: Any, **kwargs: Any) -> Any:
            token = make_jwt(sub="s", org_id=1, iat=now[0], exp=now[0] + 600)
            issued.append(token)

            class R:
                def json(self) -> Any:
                    return {"jwt": token}

            return R()

    settings = tinkex._config.ClientSettings.resolve(base_url=BASE_URL, api_key=API_KEY)
    credential = JwtCredential(FakeTransport(), settings, clock=lambda: now[0])  # type: ignore[arg-type]
    first = credential.token()
    now[0] += 200
    assert credential.token() == first  # before half-life: cached
    now[0] += 150
    second = credential.token()
    assert second != first and len(issued) == 2  # past 300 s: refreshed
    assert credential.replace(first) == second and len(issued) == 2  # replaced already
    assert credential.replace(second) == issued[-1] and len(issued) == 3  # rejected: replaced
    credential.close()


def test_claim_helpers_reject_garbage() -> None:
    with pytest.raises(tinkex.TinkerError):
        decode_jwt_claims("not-a-jwt")
    with pytest.raises(tinkex.TinkerError):
        whoami_from_claims({"email": "x"})


def test_an_unpickled_sampler_exchanges_the_key_as_its_original_did(fake: FakeTinker) -> None:
    """A SamplingClient unpickled where no transport holds a JWT yet (another process) carries
    the client config, so it must switch to JWTs itself instead of sending the plain key."""
    fake.config = {"pjwt_auth_enabled": True}
    first, second = _jwt(1), _jwt(2)
    fake.reply("POST", "/api/v1/auth/token", (200, {"jwt": first}), (200, {"jwt": second}))
    with tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY) as service:
        sampler = service.create_sampling_client(base_model="tiny-base").result(timeout=10)
        pickled = pickle.dumps(sampler)
    Transport.close_all()  # as in a fresh worker process: no transport has exchanged the key
    clone = pickle.loads(pickled)
    clone.sample(PROMPT, 1, types.SamplingParams(max_tokens=1)).result(timeout=10)
    assert [c.headers["X-API-Key"] for c in fake.requests_to("/api/v1/auth/token")] == [
        API_KEY,
        API_KEY,
    ]
    assert fake.requests_to("/api/v1/asample")[-1].headers["X-API-Key"] == second
    clone.holder.close()
