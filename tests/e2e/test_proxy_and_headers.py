"""Connection settings on the wire (issue 14, rows 1.10-1.14, 2.7): ``TINKEX_PROXY`` /
``proxy=`` with ``TINKEX_PROXY_HEADERS``, ``TINKEX_DEFAULT_QUERY`` / ``default_query=`` (both
sampling paths), the standard proxy variables that ``requests`` honours (``HTTP_PROXY`` with
``user:password@`` -> a ``Proxy-Authorization`` header, ``NO_PROXY``),
``TINKEX_DEFAULT_HEADERS`` and the ``RestClient``'s HTTP options, ``TINKEX_POOL_SIZE`` —
through a loopback forward proxy (or recording stand-in) in front of the real local server."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from compat._recording_proxy import recording_proxy

import tinkex
from tinkex import types

from ._forward_proxy import ForwardProxy, forward_proxy

if TYPE_CHECKING:
    from tinkex.local import LocalServer

BASE_MODEL = "tinkex/tiny"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with forward_proxy() as running:
        yield running


def fresh_key() -> str:
    """A key of its own: transports are shared per (base URL, key, options), and the standard
    proxy variables are read when a transport is built."""
    return f"tml-proxy-{uuid.uuid4().hex[:12]}"


def test_http_proxy_with_credentials_carries_every_request(
    tinker_server: LocalServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://alice:s3cret@"))
    with tinkex.ServiceClient(base_url=tinker_server.base_url, api_key=fresh_key()) as service:
        sampler = service.create_sampling_client(base_model=BASE_MODEL).result(timeout=30)
        prompt = types.ModelInput.from_ints([1, 2, 3])
        params = types.SamplingParams(max_tokens=2, seed=0)
        result = sampler.sample(prompt, num_samples=1, sampling_params=params).result(timeout=60)
    assert len(result.sequences[0].tokens) == 2
    seen = proxy.seen()
    paths = {request.path for request in seen}
    assert {"/api/v1/create_session", "/api/v1/asample", "/api/v1/retrieve_future"} <= paths
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert {request.headers.get("proxy-authorization") for request in seen} == {expected}
    assert all(request.url.startswith(tinker_server.base_url) for request in seen)


def test_no_proxy_bypasses_the_proxy(
    tinker_server: LocalServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with tinkex.RestClient(base_url=tinker_server.base_url, api_key=fresh_key()) as rest:
        assert rest.get_server_capabilities().result(timeout=30).supported_models
    assert proxy.seen() == []


def test_default_headers_from_the_environment_and_the_rest_client(
    tinker_server: LocalServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)  # the proxy shows what went on the wire
    monkeypatch.setenv("TINKEX_DEFAULT_HEADERS", '{"X-Team": "research", "X-Both": "env"}')
    with tinkex.RestClient(
        base_url=tinker_server.base_url,
        api_key=fresh_key(),
        default_headers={"X-Both": "explicit"},
        timeout=12.5,
    ) as rest:
        rest.get_server_capabilities().result(timeout=30)
    (request,) = [r for r in proxy.seen() if r.path == "/api/v1/get_server_capabilities"]
    assert request.headers["x-team"] == "research"
    assert request.headers["x-both"] == "explicit"
    assert request.headers["x-stainless-read-timeout"] == "12.5"


def test_the_raw_request_sends_its_query_and_headers(
    tinker_server: LocalServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with tinkex.RestClient(base_url=tinker_server.base_url, api_key=fresh_key()) as rest:
        answer = rest.request(
            "GET", "/api/v1/training_runs", params={"limit": 1}, headers={"X-Probe": "yes"}
        ).result(timeout=30)
    assert answer.status_code == 200 and len(answer.json()["training_runs"]) <= 1
    (request,) = [r for r in proxy.seen() if r.path == "/api/v1/training_runs"]
    assert request.url.endswith("/api/v1/training_runs?limit=1")
    assert request.headers["x-probe"] == "yes"
    assert request.headers["x-sdk-method"] == "RestClient.request"


def test_pool_size_from_the_environment(
    tinker_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINKEX_POOL_SIZE", "3")
    rest = tinkex.RestClient(base_url=tinker_server.base_url, api_key=fresh_key())
    adapter = rest.holder.transport._session.get_adapter(tinker_server.base_url)
    assert adapter._pool_maxsize == 3  # type: ignore[attr-defined]
    explicit = tinkex.RestClient(
        base_url=tinker_server.base_url, api_key=fresh_key(), max_connections=5
    )
    adapter = explicit.holder.transport._session.get_adapter(tinker_server.base_url)
    assert adapter._pool_maxsize == 5  # type: ignore[attr-defined]


def test_rest_client_warns_about_options_it_does_not_know(tinker_server: LocalServer) -> None:
    with pytest.warns(FutureWarning, match=r"RestClient ignores unknown options \['http_client'\]"):
        tinkex.RestClient(
            base_url=tinker_server.base_url, api_key=fresh_key(), http_client=object()
        )


def test_tinkex_proxy_wins_over_the_standard_variables_with_its_headers(
    tinker_server: LocalServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # and TINKEX_PROXY ignores it
    monkeypatch.setenv("TINKEX_PROXY", proxy.url.replace("http://", "http://bob:pw@"))
    monkeypatch.setenv("TINKEX_PROXY_HEADERS", '{"X-Proxy-Team": "research"}')
    with tinkex.RestClient(base_url=tinker_server.base_url, api_key=fresh_key()) as rest:
        assert rest.get_server_capabilities().result(timeout=30).supported_models
    seen = [r for r in proxy.seen() if r.path == "/api/v1/get_server_capabilities"]
    assert seen, "the request did not go through TINKEX_PROXY"
    assert seen[0].headers["x-proxy-team"] == "research"
    assert seen[0].headers["proxy-authorization"] == "Basic " + base64.b64encode(b"bob:pw").decode()


def test_the_proxy_argument_carries_samples_too(
    tinker_server: LocalServer, proxy: ForwardProxy
) -> None:
    with tinkex.ServiceClient(
        base_url=tinker_server.base_url,
        api_key=fresh_key(),
        proxy=proxy.url,
        proxy_headers={"Proxy-Authorization": "Bearer proxy-token"},
    ) as service:
        sampler = service.create_sampling_client(base_model=BASE_MODEL).result(timeout=30)
        prompt = types.ModelInput.from_ints([1, 2, 3])
        params = types.SamplingParams(max_tokens=2, seed=0)
        sampler.sample(prompt, 1, params).result(timeout=60)
    samples = [r for r in proxy.seen() if r.path == "/api/v1/asample"]
    assert samples and samples[0].headers["proxy-authorization"] == "Bearer proxy-token"


@pytest.mark.parametrize("sampling_io", ["asyncio", "threads"])
def test_the_default_query_reaches_every_request(
    tinker_server: LocalServer, monkeypatch: pytest.MonkeyPatch, sampling_io: str
) -> None:
    monkeypatch.setenv("TINKEX_DEFAULT_QUERY", '{"team": "research", "mode": "env"}')
    monkeypatch.setenv("TINKEX_SAMPLING_IO", sampling_io)
    service_key, rest_key = fresh_key(), fresh_key()
    with recording_proxy(tinker_server.base_url) as recorder:
        with tinkex.ServiceClient(
            base_url=recorder.base_url,
            api_key=service_key,
            default_query={"mode": "fast", "on": True},
        ) as service:
            sampler = service.create_sampling_client(base_model=BASE_MODEL).result(timeout=30)
            prompt = types.ModelInput.from_ints([1, 2, 3])
            params = types.SamplingParams(max_tokens=2, seed=0)
            sampler.sample(prompt, 1, params).result(timeout=60)
        with tinkex.RestClient(base_url=recorder.base_url, api_key=rest_key) as rest:
            rest.list_training_runs(limit=1).result(timeout=30)
        records = recorder.records()
    service_records = [r for r in records if r.headers.get("x-api-key") == service_key]
    endpoints = {record.endpoint for record in service_records}
    assert {"POST /api/v1/asample", "POST /api/v1/retrieve_future"} <= endpoints
    for record in service_records:  # the explicit map over the environment's, key by key
        assert record.query == "team=research&mode=fast&on=true", record.endpoint
    (runs,) = [r for r in records if r.path == "/api/v1/training_runs"]
    assert runs.headers["x-api-key"] == rest_key
    assert runs.query.startswith("team=research&mode=env&limit=1&")  # env first, then the call
