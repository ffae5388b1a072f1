"""Transport.request: headers, bodies, Response, error mapping, telemetry, secrecy."""

from __future__ import annotations

import json
import platform
import re
import threading
from typing import Any

import pytest
import requests
import responses

import tinkex
from tinkex._config import ClientSettings
from tinkex._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from tinkex._transport import HTTP_DEFAULT, NO_RETRY, RateLimiter, Transport

from .conftest import API_KEY, BASE_URL, FakeClock

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def test_post_sends_exact_headers_and_compact_json_body(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/get_info", json={"ok": True})
    transport.request(
        "POST", "/api/v1/get_info", json={"model_id": "m:train:0", "type": "get_info"}
    )
    sent = mocked.calls[0].request
    assert sent.body == b'{"model_id":"m:train:0","type":"get_info"}'
    h = sent.headers
    assert h["X-API-Key"] == API_KEY
    assert h["User-Agent"] == (
        f"tinkex/{tinkex.__version__} (tinker-api/0.38.0; Python/{platform.python_version()})"
    )
    assert h["Accept"] == "application/json"
    assert h["Content-Type"] == "application/json"
    assert re.fullmatch(f"tinkex-retry-{UUID_RE}", h["X-Idempotency-Key"])
    assert h["x-stainless-retry-count"] == "0"
    assert h["x-stainless-read-timeout"] == "60"
    assert "Authorization" not in h


def test_get_has_no_content_type_nor_idempotency_key(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE_URL}/api/v1/healthz", json={"status": "ok"})
    transport.request("GET", "/api/v1/healthz")
    h = mocked.calls[0].request.headers
    assert "Content-Type" not in h
    assert "X-Idempotency-Key" not in h
    assert mocked.calls[0].request.body is None


def test_each_call_gets_its_own_idempotency_key(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/x", json={})
    transport.request("POST", "/api/v1/x", json={})
    transport.request("POST", "/api/v1/x", json={})
    keys = {c.request.headers["X-Idempotency-Key"] for c in mocked.calls}
    assert len(keys) == 2


def test_the_idempotency_key_is_str_of_a_uuid4_of_the_same_random_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import uuid

    from tinkex._transport import headers

    for _ in range(200):
        raw = os.urandom(16)
        monkeypatch.setattr(headers, "_urandom", lambda n, raw=raw: raw)
        assert headers.uuid4_str() == str(uuid.UUID(bytes=raw, version=4))
    for raw in (b"\x00" * 16, b"\xff" * 16):
        monkeypatch.setattr(headers, "_urandom", lambda n, raw=raw: raw)
        assert headers.uuid4_str() == str(uuid.UUID(bytes=raw, version=4))


def test_raw_content_query_params_timeout_and_accept(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(
        f"{BASE_URL}/api/v1/forward_backward",
        body=b"\x08\x01",
        content_type="application/x-protobuf",
    )
    response = transport.request(
        "POST",
        "/api/v1/forward_backward",
        content=b"\x0a\x03abc",
        content_type="application/x-protobuf",
        params={"limit": 2},
        timeout=45,
        accept="application/x-protobuf",
    )
    sent = mocked.calls[0].request
    assert sent.body == b"\x0a\x03abc"
    assert sent.url == f"{BASE_URL}/api/v1/forward_backward?limit=2"
    assert sent.headers["Content-Type"] == "application/x-protobuf"
    assert sent.headers["Accept"] == "application/x-protobuf"
    assert sent.headers["x-stainless-read-timeout"] == "45"
    assert response.is_protobuf
    assert response.content == b"\x08\x01"


def test_fractional_read_timeout_header(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/telemetry", json={})
    transport.request("POST", "/api/v1/telemetry", json={}, timeout=5.5)
    assert mocked.calls[0].request.headers["x-stainless-read-timeout"] == "5.5"


def test_caller_headers_merge_and_default_headers_come_last(
    clock: FakeClock, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCESS_CLIENT_ID", "cf-id")
    monkeypatch.setenv("CLOUDFLARE_ACCESS_CLIENT_SECRET", "cf-secret")
    settings = ClientSettings.resolve(
        base_url=BASE_URL,
        api_key=API_KEY,
        default_headers={"X-Team": "alpha", "accept": "text/plain"},
    )
    mocked.post(f"{BASE_URL}/api/v1/x", json={})
    with Transport(settings, rate_limiter=RateLimiter(clock=clock, sleep=clock.sleep)) as t:
        t.request(
            "POST",
            "/api/v1/x",
            json={},
            headers={"x-sdk-method": "TrainingClient.forward", "x-idempotency-key": "mine"},
        )
    h = mocked.calls[0].request.headers
    assert h["CF-Access-Client-Id"] == "cf-id"
    assert h["CF-Access-Client-Secret"] == "cf-secret"
    assert h["x-sdk-method"] == "TrainingClient.forward"
    assert h["X-Idempotency-Key"] == "mine"  # caller may pin its own key (copy_weights)
    assert h["X-Team"] == "alpha"
    assert h["Accept"] == "text/plain"  # default_headers win over everything


def test_response_object(transport: Transport, mocked: responses.RequestsMock) -> None:
    mocked.post(
        f"{BASE_URL}/api/v1/x",
        json={"a": 1},
        headers={"X-Request-Id": "req-7"},
    )
    response = transport.request("POST", "/api/v1/x", json={})
    assert response.status_code == 200
    assert response.json() == {"a": 1}
    assert response.json() is response.json()  # parsed once
    assert response.request_id == "req-7"
    assert response.headers["x-request-id"] == "req-7"  # case-insensitive
    assert response.content_type == "application/json"
    assert not response.is_protobuf
    assert response.request == "POST /api/v1/x"
    assert "200" in repr(response)


def test_response_json_of_empty_body_is_none_and_bad_json_raises(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.delete(f"{BASE_URL}/api/v1/a", status=204)
    mocked.post(f"{BASE_URL}/api/v1/b", body="not json", content_type="text/plain")
    assert transport.request("DELETE", "/api/v1/a").json() is None
    response = transport.request("POST", "/api/v1/b", json={})
    with pytest.raises(APIResponseValidationError, match=r"POST /api/v1/b is not valid JSON"):
        response.json()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, BillingError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (410, APIStatusError),
        (418, APIStatusError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
    ],
)
def test_status_errors_map_to_classes_with_context(
    transport: Transport, mocked: responses.RequestsMock, status: int, cls: type[APIStatusError]
) -> None:
    mocked.post(
        f"{BASE_URL}/api/v1/get_info",
        json={"detail": "nope"},
        status=status,
        headers={"x-request-id": "req-42"},
    )
    with pytest.raises(APIStatusError) as info:
        transport.request("POST", "/api/v1/get_info", json={}, retry=NO_RETRY)
    exc = info.value
    assert type(exc) is cls
    assert exc.status_code == status
    assert exc.body == {"detail": "nope"}
    assert exc.request == "POST /api/v1/get_info"
    assert exc.request_id == "req-42"
    assert "POST /api/v1/get_info" in str(exc)
    assert "req-42" in str(exc)
    assert f"Error code: {status}" in str(exc)
    assert exc.response.headers["x-request-id"] == "req-42"
    assert len(mocked.calls) == 1


def test_text_error_body_is_kept_as_text(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE_URL}/api/v1/x", body="gateway exploded", status=404)
    with pytest.raises(NotFoundError) as info:
        transport.request("GET", "/api/v1/x")
    assert info.value.body == "gateway exploded"
    assert info.value.request_id is None


def test_connection_error_and_timeout_are_mapped(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/a", body=requests.ConnectionError("refused"))
    mocked.post(f"{BASE_URL}/api/v1/b", body=requests.ReadTimeout("slow"))
    with pytest.raises(APIConnectionError) as conn:
        transport.request("POST", "/api/v1/a", json={}, retry=NO_RETRY)
    assert not isinstance(conn.value, APITimeoutError)
    assert conn.value.request == "POST /api/v1/a"
    assert "POST /api/v1/a" in str(conn.value)
    with pytest.raises(APITimeoutError) as timeout:
        transport.request("POST", "/api/v1/b", json={}, retry=NO_RETRY, timeout=45)
    assert timeout.value.request == "POST /api/v1/b"
    assert str(timeout.value) == "Request timed out after 45 s: POST /api/v1/b"


def test_telemetry_events_per_attempt(
    transport: Transport,
    mocked: responses.RequestsMock,
    events: list[tuple[str, dict[str, Any], dict[str, Any]]],
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/x", status=503, json={})
    mocked.post(f"{BASE_URL}/api/v1/x", json={}, headers={"x-request-id": "r1"})
    transport.request("POST", "/api/v1/x", json={})
    names = [e[0] for e in events]
    assert names == [
        "tinkex.http.request.start",
        "tinkex.http.request.stop",
        "tinkex.http.retry",
        "tinkex.http.request.start",
        "tinkex.http.request.stop",
    ]
    stop0, retry, stop1 = events[1], events[2], events[4]
    assert stop0[2] == {
        "method": "POST",
        "path": "/api/v1/x",
        "retry_count": 0,
        "status": 503,
        "request_id": None,
    }
    assert stop0[1]["duration"] >= 0
    assert stop1[2]["retry_count"] == 1 and stop1[2]["request_id"] == "r1"
    assert retry[2]["policy"] == "http" and retry[2]["status"] == 503
    assert retry[2]["request"] == "POST /api/v1/x"
    assert 0.375 <= retry[1]["delay"] <= 0.5


def test_exception_event_on_connection_error(
    transport: Transport,
    mocked: responses.RequestsMock,
    events: list[tuple[str, dict[str, Any], dict[str, Any]]],
) -> None:
    mocked.get(f"{BASE_URL}/api/v1/x", body=requests.ConnectionError("down"))
    with pytest.raises(APIConnectionError):
        transport.request("GET", "/api/v1/x", retry=NO_RETRY)
    assert [e[0] for e in events] == ["tinkex.http.request.start", "tinkex.http.request.exception"]
    assert events[1][2]["error"] == "ConnectionError"


def test_api_key_never_leaks(
    transport: Transport,
    mocked: responses.RequestsMock,
    events: list[tuple[str, dict[str, Any], dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    mocked.post(f"{BASE_URL}/api/v1/a", status=401, json={"detail": "bad key"})
    mocked.post(f"{BASE_URL}/api/v1/b", body=requests.ConnectionError("refused"))
    mocked.post(f"{BASE_URL}/api/v1/c", status=503, json={})
    texts: list[str] = []
    for path in ("/api/v1/a", "/api/v1/b", "/api/v1/c"):
        with pytest.raises(tinkex.APIError) as info:
            policy = HTTP_DEFAULT if path == "/api/v1/c" else NO_RETRY
            transport.request("POST", path, json={}, retry=policy)
        texts += [str(info.value), repr(info.value), repr(info.value.__dict__)]
    texts += [repr(e) for e in events]
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(transport), repr(transport.settings)]
    assert all(API_KEY not in text for text in texts)


def test_transport_is_safe_to_share_across_threads(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/x", json={"ok": 1})
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(20):
                assert transport.request("POST", "/api/v1/x", json={}).json() == {"ok": 1}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(mocked.calls) == 160


def test_shared_returns_one_transport_per_key_and_close_unregisters(
    settings: ClientSettings,
) -> None:
    a = Transport.shared(settings)
    assert Transport.shared(ClientSettings(base_url=BASE_URL, api_key=API_KEY)) is a
    other = Transport.shared(ClientSettings(base_url=BASE_URL, api_key="tml-other"))
    assert other is not a
    assert a.rate_limiter is RateLimiter.for_key(BASE_URL, API_KEY)
    assert other.rate_limiter is not a.rate_limiter
    pool = a._session.get_adapter(BASE_URL)
    assert pool._pool_maxsize == settings.max_connections  # type: ignore[attr-defined]
    a.close()
    a.close()  # idempotent
    assert Transport.shared(settings) is not a


def test_pool_size_follows_settings() -> None:
    settings = ClientSettings(base_url=BASE_URL, api_key=API_KEY, max_connections=7)
    with Transport(settings) as t:
        adapter = t._session.get_adapter(BASE_URL)
        assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


def test_body_json_is_utf8(transport: Transport, mocked: responses.RequestsMock) -> None:
    mocked.post(f"{BASE_URL}/api/v1/x", json={})
    transport.request("POST", "/api/v1/x", json={"name": "héllo"})
    assert json.loads(mocked.calls[0].request.body.decode()) == {"name": "héllo"}


def test_unsafe_path_characters_are_quoted_and_params_encoded(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE_URL}/api/v1/training_runs/run%20one:train:0/checkpoints", json={})
    transport.request(
        "GET",
        "/api/v1/training_runs/run one:train:0/checkpoints",
        params={"limit": 20, "access_scope": "owned", "ids": ["a", "b"]},
    )
    assert mocked.calls[0].request.url == (
        f"{BASE_URL}/api/v1/training_runs/run%20one:train:0/checkpoints"
        "?limit=20&access_scope=owned&ids=a&ids=b"
    )


def test_post_without_body_sends_zero_content_length(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(f"{BASE_URL}/api/v1/publish", status=204)
    transport.request("POST", "/api/v1/publish")
    sent = mocked.calls[0].request
    assert sent.headers["Content-Length"] == "0"
    assert sent.headers["Content-Type"] == "application/json"


def test_header_values_with_line_breaks_are_rejected_without_echoing_them() -> None:
    bad = ClientSettings(base_url=BASE_URL, api_key="tml-abc\r\nX-Evil: 1")
    with pytest.raises(tinkex.TinkerError) as info:
        Transport(bad)
    assert "X-API-Key" in str(info.value)
    assert "Evil" not in str(info.value)
    with pytest.raises(tinkex.TinkerError, match="X-Bad"):
        Transport(
            ClientSettings(base_url=BASE_URL, api_key=API_KEY, default_headers={"X-Bad": "a\nb"})
        )


def test_cookies_set_by_the_server_are_sent_back(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.get(f"{BASE_URL}/api/v1/a", json={}, headers={"Set-Cookie": "cf_bm=token1; Path=/"})
    mocked.get(f"{BASE_URL}/api/v1/b", json={})
    transport.request("GET", "/api/v1/a")
    transport.request("GET", "/api/v1/b")
    assert "Cookie" not in mocked.calls[0].request.headers
    assert mocked.calls[1].request.headers["Cookie"] == "cf_bm=token1"


def test_shared_transports_differ_when_client_options_differ(settings: ClientSettings) -> None:
    plain = Transport.shared(settings)
    with_headers = Transport.shared(
        ClientSettings(base_url=BASE_URL, api_key=API_KEY, default_headers={"X-Team": "a"})
    )
    assert with_headers is not plain
    assert with_headers.rate_limiter is plain.rate_limiter  # same (base URL, key): one limiter
