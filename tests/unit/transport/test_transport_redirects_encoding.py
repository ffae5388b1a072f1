"""Redirects and compressed answers, against real HTTP servers on 127.0.0.1 (issues 10.2, 10.3,
11.3).

Redirect policy (docs/protocol.md, "Redirects"): a redirect to the API's own origin is followed
(307/308 keep the method and body; 301/302/303 only for GET), with the credentials; a redirect
to another origin is refused before anything is sent there, naming the request and the
``Location``; so is any redirect the transport does not follow.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from _loopback import LoopbackServer, QuietHandler

from tinkex._config import ClientSettings
from tinkex._exceptions import APIStatusError
from tinkex._transport import NO_RETRY, RateLimiter, Transport

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Site:
    """A loopback HTTP server answering each path with a scripted answer; records requests."""

    answers: dict[str, Callable[[], Answer]]
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def sites() -> Iterator[Callable[[dict[str, Callable[[], Answer]]], Site]]:
    servers: list[LoopbackServer] = []

    def start(answers: dict[str, Callable[[], Answer]]) -> Site:
        site = Site(answers)

        class Handler(QuietHandler):
            def _answer(self) -> None:
                body = self.read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                site.seen.append((self.command, self.path, headers, body))
                make = site.answers.get(self.path.partition("?")[0])
                status, extra, payload = (
                    make() if make else (404, {"Content-Type": "application/json"}, b"{}")
                )
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        server = LoopbackServer(Handler)
        servers.append(server)
        site.url = server.url
        return site

    yield start
    for server in servers:
        server.close()


def make(base_url: str) -> Transport:
    settings = ClientSettings(
        base_url=base_url,
        api_key="tml-secret-0123",
        access_headers={"CF-Access-Client-Secret": "cf-secret"},
    )
    return Transport(settings, rate_limiter=RateLimiter())


JSON = {"Content-Type": "application/json"}


def ok(body: bytes = b'{"ok": true}') -> Callable[[], Answer]:
    return lambda: (200, JSON, body)


def redirect(status: int, location: str) -> Callable[[], Answer]:
    return lambda: (status, {"Location": location}, b"")


# ---- redirects (10.2, 10.3) ------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_cross_origin_redirect_is_refused_and_nothing_reaches_the_other_origin(
    sites: Callable[..., Site], status: int
) -> None:
    other = sites({"/steal": ok()})
    api = sites({"/api/v1/training_runs": redirect(status, f"{other.url}/steal?x=1")})
    with make(api.url) as transport, pytest.raises(APIStatusError) as info:
        transport.request("GET", "/api/v1/training_runs", retry=NO_RETRY)
    message = str(info.value)
    assert info.value.status_code == status
    assert "GET /api/v1/training_runs" in message
    assert f"{other.url}/steal" in message  # the Location, so the user sees where it pointed
    assert "another origin" in message
    assert "tml-secret" not in message
    assert other.seen == []  # neither the key nor the request went there


def test_cross_origin_redirect_of_a_post_is_refused(sites: Callable[..., Site]) -> None:
    other = sites({"/api/v1/client/config": ok()})
    api = sites({"/api/v1/client/config": redirect(307, f"{other.url}/api/v1/client/config")})
    with make(api.url) as transport, pytest.raises(APIStatusError) as info:
        transport.request("POST", "/api/v1/client/config", json={"sdk_version": "0.38.0"})
    assert info.value.status_code == 307
    assert "POST /api/v1/client/config" in str(info.value)
    assert other.seen == []
    assert len(api.seen) == 1  # a redirect answer is not retried


def test_scheme_change_is_another_origin_with_a_hint(sites: Callable[..., Site]) -> None:
    api = sites({"/api/v1/healthz": redirect(301, "https://127.0.0.1:1/api/v1/healthz")})
    with make(api.url) as transport, pytest.raises(APIStatusError) as info:
        transport.request("GET", "/api/v1/healthz", retry=NO_RETRY)
    assert "https://127.0.0.1:1" in str(info.value)
    assert "base_url" in str(info.value)  # says what to change


def test_same_origin_307_keeps_method_body_and_credentials(sites: Callable[..., Site]) -> None:
    api = sites(
        {
            "/api/v1/old": redirect(307, "/api/v1/new"),
            "/api/v1/new": ok(b'{"moved": true}'),
        }
    )
    with make(api.url) as transport:
        answer = transport.request("POST", "/api/v1/old", json={"a": 1})
    assert answer.json() == {"moved": True}
    assert [(m, p) for m, p, _, _ in api.seen] == [("POST", "/api/v1/old"), ("POST", "/api/v1/new")]
    first, second = api.seen[0][2], api.seen[1][2]
    assert second["x-api-key"] == "tml-secret-0123"
    assert second["cf-access-client-secret"] == "cf-secret"
    assert second["x-idempotency-key"] == first["x-idempotency-key"]
    assert api.seen[1][3] == b'{"a":1}'


def test_same_origin_302_of_a_get_is_followed(sites: Callable[..., Site]) -> None:
    api = sites(
        {
            "/api/v1/training_runs": redirect(302, "/api/v2/training_runs"),
            "/api/v2/training_runs": ok(b'{"training_runs": []}'),
        }
    )
    with make(api.url) as transport:
        answer = transport.request("GET", "/api/v1/training_runs", params={"limit": 3})
    assert answer.json() == {"training_runs": []}
    assert api.seen[1][2]["x-api-key"] == "tml-secret-0123"


def test_same_origin_302_of_a_post_is_refused_not_turned_into_a_get(
    sites: Callable[..., Site],
) -> None:
    api = sites({"/api/v1/optim_step": redirect(302, "/login"), "/login": ok()})
    with make(api.url) as transport, pytest.raises(APIStatusError) as info:
        transport.request("POST", "/api/v1/optim_step", json={}, retry=NO_RETRY)
    assert info.value.status_code == 302
    assert "POST /api/v1/optim_step" in str(info.value) and "/login" in str(info.value)
    assert [p for _, p, _, _ in api.seen] == ["/api/v1/optim_step"]


def test_redirect_without_location_and_redirect_loops_are_clear_errors(
    sites: Callable[..., Site],
) -> None:
    api = sites(
        {"/api/v1/a": lambda: (302, {}, b""), "/api/v1/loop": redirect(307, "/api/v1/loop")}
    )
    with make(api.url) as transport:
        with pytest.raises(APIStatusError) as info:
            transport.request("GET", "/api/v1/a", retry=NO_RETRY)
        assert "no Location" in str(info.value)
        with pytest.raises(APIStatusError) as info:
            transport.request("GET", "/api/v1/loop", retry=NO_RETRY)
        assert "redirects" in str(info.value) and "GET /api/v1/loop" in str(info.value)
    assert len(api.seen) <= 12


def _with_default_query(base_url: str) -> Transport:
    settings = ClientSettings(
        base_url=base_url, api_key="tml-secret-0123", default_query={"tenant": "t1", "v": "2"}
    )
    return Transport(settings, rate_limiter=RateLimiter())


def test_a_followed_redirect_keeps_the_default_query(sites: Callable[..., Site]) -> None:
    api = sites({"/api/v1/old": redirect(307, "/api/v1/new"), "/api/v1/new": ok()})
    with _with_default_query(api.url) as transport:
        transport.request("POST", "/api/v1/old", json={}, params={"once": "1"})
    assert [path for _, path, _, _ in api.seen] == [
        "/api/v1/old?tenant=t1&v=2&once=1",
        "/api/v1/new?tenant=t1&v=2",  # the Location as given, plus the default query
    ]


def test_a_default_parameter_the_location_carries_is_not_added_twice(
    sites: Callable[..., Site],
) -> None:
    api = sites({"/api/v1/old": redirect(302, "/api/v1/new?v=3&x=1"), "/api/v1/new": ok()})
    with _with_default_query(api.url) as transport:
        transport.request("GET", "/api/v1/old")
    assert api.seen[1][1] == "/api/v1/new?v=3&x=1&tenant=t1"


# ---- compressed answers (11.3) ------------------------------------------------------------


def test_accept_encoding_is_the_official_sdks(sites: Callable[..., Site]) -> None:
    api = sites({"/api/v1/healthz": ok()})
    with make(api.url) as transport:
        transport.request("GET", "/api/v1/healthz")
    assert api.seen[0][2]["accept-encoding"] == "gzip, deflate, zstd"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_compressed_answers_are_decoded(sites: Callable[..., Site], encoding: str) -> None:
    import zstandard

    payload = b'{"loss_fn_outputs": [' + b",".join([b'{"x": 1.5}'] * 2000) + b"]}"
    compress = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }[encoding]
    body = compress(payload)
    assert len(body) < len(payload) // 10
    api = sites(
        {
            "/api/v1/retrieve_future": lambda: (
                200,
                {"Content-Type": "application/json", "Content-Encoding": encoding},
                body,
            )
        }
    )
    with make(api.url) as transport:
        answer = transport.request("POST", "/api/v1/retrieve_future", json={"request_id": "r"})
    assert answer.content == payload
    assert len(answer.json()["loss_fn_outputs"]) == 2000
