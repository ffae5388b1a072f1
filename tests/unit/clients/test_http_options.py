"""``ServiceClient(**kwargs)`` takes the HTTP options the official SDK passes to its HTTP client
(issue 11, "HTTP options"): timeout, max_retries, default_headers; explicit beats environment."""

from __future__ import annotations

import pytest

import tinkex

from .conftest import API_KEY, BASE_URL, FakeTinker


def test_timeout_retries_and_headers_reach_the_wire(fake: FakeTinker) -> None:
    service = tinkex.ServiceClient(
        base_url=BASE_URL,
        api_key=API_KEY,
        timeout=12.5,
        max_retries=0,
        default_headers={"X-Team": "a", "X-Both": "default"},
        default_headers_overrides={"X-Both": "override"},
    )
    settings = service.holder.settings
    assert (settings.timeout, settings.max_retries) == (12.5, 0)
    service.create_lora_training_client("tiny-base", rank=4).result(timeout=10)
    service.close()
    create = fake.requests_to("/api/v1/create_model")[0]
    assert create.headers["x-stainless-read-timeout"] == "12.5"
    assert create.headers["X-Team"] == "a"
    assert create.headers["X-Both"] == "override"


def test_an_httpx_timeout_gives_read_and_connect(fake: FakeTinker) -> None:
    httpx = pytest.importorskip("httpx")  # not a tinkex dependency (absent in the minimum venv)
    service = tinkex.ServiceClient(
        base_url=BASE_URL, api_key=API_KEY, timeout=httpx.Timeout(30.0, connect=2.0)
    )
    assert (service.holder.settings.timeout, service.holder.settings.connect_timeout) == (30, 2)
    service.close()


def test_an_http_client_cannot_be_used_and_says_so(fake: FakeTinker) -> None:
    with pytest.warns(FutureWarning, match="http_client"):
        tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY, http_client=object()).close()


def test_invalid_values_name_the_field(fake: FakeTinker) -> None:
    with pytest.raises(tinkex.TinkerError, match="max_retries must be >= 0, got -1"):
        tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY, max_retries=-1)
