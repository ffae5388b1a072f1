"""Extras against the real Transport (HTTP mocked with ``responses``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import responses

from tinkex import telemetry
from tinkex._config import ClientSettings
from tinkex._transport import NO_RETRY, RateLimiter, Transport
from tinkex.metrics import MetricsRegistry
from tinkex.telemetry import Reporter

BASE = "https://tinker.test"
API_KEY = "tml-IntegrationSecret0123456789"


@pytest.fixture
def transport() -> Iterator[Transport]:
    settings = ClientSettings.resolve(base_url=BASE, api_key=API_KEY, max_retries=2)
    instance = Transport(settings, sleep=lambda s: None, rate_limiter=RateLimiter())
    yield instance
    instance.close()


def test_raising_handler_does_not_break_a_request_and_metrics_see_it(transport: Transport) -> None:
    def broken(event: str, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        raise RuntimeError("handler bug")

    registry = MetricsRegistry()
    telemetry.attach("broken-integration", "*", broken)
    try:
        with registry, responses.RequestsMock() as mock:
            mock.add(responses.POST, f"{BASE}/api/v1/get_info", status=503, json={"detail": "busy"})
            mock.add(responses.POST, f"{BASE}/api/v1/get_info", json={"model_id": "m"})
            response = transport.request("POST", "/api/v1/get_info", json={"model_id": "m"})
    finally:
        telemetry.detach("broken-integration")
    assert response.json() == {"model_id": "m"}
    endpoint = registry.snapshot()["endpoints"]["POST /api/v1/get_info"]
    assert endpoint["requests"] == 2 and endpoint["statuses"] == {"503": 1, "200": 1}
    assert endpoint["errors"] == 1 and endpoint["retries"] == 1
    assert endpoint["latency"]["count"] == 2 and endpoint["latency"]["max"] is not None


def test_reporter_through_transport_never_sends_the_key(transport: Transport) -> None:
    def send(payload: dict[str, Any]) -> None:
        transport.request("POST", "/api/v1/telemetry", json=payload, timeout=5, retry=NO_RETRY)

    with responses.RequestsMock() as mock:
        mock.add(responses.POST, f"{BASE}/api/v1/telemetry", json={"status": "accepted"})
        reporter = Reporter(send, session_id="sess", secrets=[API_KEY], enabled=True)
        reporter.log("config", {"api_key": API_KEY, "url": f"{BASE}?key={API_KEY}"})
        reporter.log_exception(RuntimeError(f"auth failed for {API_KEY}"))
        assert reporter.close(timeout=5)
        calls = list(mock.calls)
    assert calls
    for call in calls:
        assert call.request.headers["X-API-Key"] == API_KEY  # auth header, as for any request
        body = call.request.body
        text = body.decode() if isinstance(body, bytes) else str(body)
        assert API_KEY not in text
        assert json.loads(text)["session_id"] == "sess"
