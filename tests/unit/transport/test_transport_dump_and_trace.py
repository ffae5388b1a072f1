"""``TINKEX_DUMP_HEADERS=1`` dumps each request and answer with secrets masked; an application's
OpenTelemetry context is propagated as W3C ``traceparent`` (issue 11, "request dumps",
"traceparent")."""

from __future__ import annotations

import logging
import sys
import types as pytypes
from collections.abc import Iterator

import pytest
import responses

from tinkex._config import ClientSettings
from tinkex._transport import RateLimiter, Transport

BASE = "http://tinker.test"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make(**env: str) -> Transport:
    settings = ClientSettings.resolve(
        base_url=BASE,
        api_key="tml-very-secret-key",
        environ={"CLOUDFLARE_ACCESS_CLIENT_SECRET": "cf-secret", **env},
    )
    return Transport(settings, rate_limiter=RateLimiter())


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{BASE}/api/v1/get_info",
            json={"ok": True},
            headers={"x-request-id": "req-7", "Set-Cookie": "session=abc"},
        )
        yield rsps


def test_the_dump_shows_headers_and_sizes_with_secrets_masked(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tinkex.wire")
    with make(TINKEX_DUMP_HEADERS="1") as transport:
        transport.request("POST", "/api/v1/get_info", json={"model_id": "m"})
    (record,) = [r for r in caplog.records if r.name == "tinkex.wire"]
    dump = record.getMessage()
    assert dump.startswith(f"> POST {BASE}/api/v1/get_info (attempt 0)")
    assert ">   X-API-Key: ***" in dump and ">   CF-Access-Client-Secret: ***" in dump
    assert ">   x-stainless-retry-count: 0" in dump
    assert ">   (16 bytes)" in dump  # {"model_id":"m"}
    assert "< 200 in " in dump and "<   x-request-id: req-7" in dump
    assert "<   Set-Cookie: ***" in dump
    for secret in ("tml-very-secret-key", "cf-secret", "session=abc"):
        assert secret not in dump


def test_no_dump_unless_asked(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tinkex.wire")
    with make() as transport:
        transport.request("POST", "/api/v1/get_info", json={})
    assert [r for r in caplog.records if r.name == "tinkex.wire"] == []


def test_traceparent_of_the_applications_span(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The W3C propagator API (opentelemetry.propagate.inject(carrier)) as the application's
    # OpenTelemetry installs it; tinkex only uses it when the application imported it.
    fake = pytypes.ModuleType("opentelemetry.propagate")
    fake.inject = lambda carrier: carrier.__setitem__("traceparent", TRACEPARENT)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.propagate", fake)
    with make() as transport:
        transport.request("POST", "/api/v1/get_info", json={})
    assert mocked.calls[0].request.headers["traceparent"] == TRACEPARENT


def test_without_opentelemetry_no_trace_headers(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "opentelemetry.propagate", raising=False)
    with make() as transport:
        transport.request("POST", "/api/v1/get_info", json={})
    assert "traceparent" not in mocked.calls[0].request.headers


def test_with_the_real_opentelemetry_api(request: pytest.FixtureRequest) -> None:
    trace = pytest.importorskip("opentelemetry.trace")
    # Taken after the skip: a skipped test must not leave the mock's request unfired.
    mocked: responses.RequestsMock = request.getfixturevalue("mocked")
    from opentelemetry import propagate  # noqa: F401  (the application's import)

    context = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=trace.TraceFlags(1),
    )
    with trace.use_span(trace.NonRecordingSpan(context)), make() as transport:
        transport.request("POST", "/api/v1/get_info", json={})
    assert mocked.calls[0].request.headers["traceparent"] == TRACEPARENT
