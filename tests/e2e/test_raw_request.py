"""``RestClient.request``: a call to any endpoint answered as the raw response, with its headers
(issue 14, rows 2.6 raw response access and 2.7 a low-level request), against the real local
server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import tinkex

if TYPE_CHECKING:
    from tinkex.local import LocalServer

BASE_MODEL = "tinkex/tiny"


@pytest.fixture
def rest(tinker_server: LocalServer) -> Iterator[tinkex.RestClient]:
    with tinkex.RestClient(
        base_url=tinker_server.base_url, api_key=tinker_server.api_key
    ) as client:
        yield client


def test_a_get_answers_status_headers_and_body(rest: tinkex.RestClient) -> None:
    answer = rest.request("GET", "/api/v1/healthz").result(timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")  # case-insensitive
    assert answer.json() == {"status": "ok"}
    assert answer.request == "GET /api/v1/healthz"


def test_a_post_with_a_body_reaches_an_endpoint_without_a_method(
    tinker_server: LocalServer, rest: tinkex.RestClient
) -> None:
    with tinkex.ServiceClient(base_url=tinker_server.base_url, api_key="tml-raw") as service:
        training = service.create_lora_training_client(BASE_MODEL, rank=4).result(timeout=30)
        session_id = training.model_id.split(":")[0]  # the local server's model ids say it
        body = {"session_id": session_id, "type": "session_heartbeat"}
        answer = rest.request("POST", "/api/v1/session_heartbeat", json=body).result(timeout=30)
    assert answer.json() == {"type": "session_heartbeat"}
    with pytest.raises(tinkex.NotFoundError, match="unknown-session"):
        rest.request(
            "POST",
            "/api/v1/session_heartbeat",
            json={"session_id": "unknown-session", "type": "session_heartbeat"},
        ).result(timeout=30)


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "https://elsewhere.example/api/v1/healthz", "a full URL is refused"),
        ("GET", "//elsewhere.example/api/v1/healthz", "a full URL is refused"),
        ("TRACE", "/api/v1/healthz", "request\\(method='TRACE'\\)"),
    ],
)
def test_requests_off_the_base_url_are_refused(
    rest: tinkex.RestClient, method: str, path: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rest.request(method, path).result(timeout=30)
