"""HTTP layer of the local server: auth, errors, keep-alive, limits, concurrency, config."""

from __future__ import annotations

import concurrent.futures
import http
import json
import socket

import pytest
import requests

from tinkex.local import LocalServer

from .conftest import Api, create_model_body


def test_config_endpoints_and_request_id(api: Api) -> None:
    response = api.post("client/config", {"sdk_version": "0.38.0"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    config = response.json()
    assert config["pjwt_auth_enabled"] is False
    assert config["sample_use_retrieve_futures"] is False
    assert api.ok("client/dynamic_config")["sample_cancel_enabled"] is False
    assert api.get("healthz").json() == {"status": "ok"}
    models = api.get("get_server_capabilities").json()["supported_models"]
    names = {m["model_name"] for m in models}
    assert {"tinkex/tiny", "tinkex/null", "Qwen/Qwen3-8B"} <= names
    assert all(m["trainable"] and m["max_context_length"] >= 512 for m in models)
    me = api.get("auth/apikey/me").json()
    assert isinstance(me["key_id"], int) and me["details"]["user_details"]["email"]


def test_missing_key_is_401_but_healthz_is_open(server: LocalServer) -> None:
    response = requests.post(server.base_url + "/api/v1/create_session", json={})
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert requests.get(server.base_url + "/api/v1/healthz").status_code == 200


def test_any_key_accepted_without_api_key(api: Api) -> None:
    api.http.headers["X-API-Key"] = "tml-anything-goes"
    assert api.post("create_session", {}).status_code == 200


def test_configured_api_key_rejects_other_keys() -> None:
    with LocalServer(api_key="tml-secret") as server:
        assert server.api_key == "tml-secret"
        url = server.base_url + "/api/v1/create_session"
        wrong = requests.post(url, json={}, headers={"X-API-Key": "tml-other"})
        assert wrong.status_code == 401 and "invalid API key" in wrong.json()["detail"]
        right = requests.post(url, json={}, headers={"X-API-Key": "tml-secret"})
        assert right.status_code == 200


def test_unknown_endpoint_method_and_bad_json(api: Api) -> None:
    missing = api.post("no_such_thing")
    assert missing.status_code == 404 and "no_such_thing" in missing.json()["detail"]
    wrong_method = api.get("create_session")
    assert wrong_method.status_code == 405
    bad = api.http.post(
        api.base + "create_session", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["detail"]
    not_object = api.post("create_model", [1, 2])
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["detail"]


def test_validation_errors_name_the_field(api: Api) -> None:
    session = api.session()
    response = api.post(
        "create_model", {"session_id": session, "model_seq_id": "zero", "base_model": "tinkex/tiny"}
    )
    assert response.status_code == 400
    assert "model_seq_id" in response.json()["detail"]
    response = api.post(
        "create_model", {"session_id": "nope", "model_seq_id": 0, "base_model": "tinkex/tiny"}
    )
    assert response.status_code == 400 and "'nope'" in response.json()["detail"]
    response = api.post("create_model", create_model_body(session, {"rank": 0}))
    assert response.status_code == 400 and "rank" in response.json()["detail"]


def test_keep_alive_reuses_one_connection(server: LocalServer) -> None:
    host, port = "127.0.0.1", server.port
    with socket.create_connection((host, port)) as sock:
        for _ in range(3):
            sock.sendall(b"GET /api/v1/healthz HTTP/1.1\r\nHost: x\r\nX-API-Key: tml-local\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += sock.recv(4096)
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body) == {"status": "ok"}


def test_body_size_limit_is_413() -> None:
    with LocalServer(max_body_bytes=1000) as server:
        response = requests.post(
            server.base_url + "/api/v1/telemetry",
            data=b"x" * 5000,
            headers={"X-API-Key": "tml-local", "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert "1000" in response.json()["detail"]


def _send_all_then_read_to_eof(port: int, request: bytes) -> bytes:
    """Send ``request`` in one go (as a slow client would, after the server answered), then read
    until the server closes; a reset (instead of a clean end) raises ConnectionResetError."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_early_413_is_readable_and_the_connection_ends_cleanly() -> None:
    """An answer sent before the body was read (413) must not be destroyed by a reset: the
    server ends the connection with ``Connection: close`` and a half-close, and discards what the
    client still sends (issue 10.9: seen as ConnectionResetError on a loaded machine)."""
    head = b"POST /api/v1/telemetry HTTP/1.1\r\nHost: x\r\nX-API-Key: tml-local\r\n"
    chunk = b"3e8\r\n" + b"x" * 1000 + b"\r\n"
    requests_over_the_limit = {
        "chunked": head + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 300 + b"0\r\n\r\n",
        "content-length": head + b"Content-Length: 300000\r\n\r\n" + b"x" * 300_000,
    }
    with LocalServer(max_body_bytes=1000) as server:
        for framing, request in requests_over_the_limit.items():
            answer = _send_all_then_read_to_eof(server.port, request)
            status, _, rest = answer.partition(b"\r\n")
            # the reason phrase is Python's ("Content Too Large" since 3.13)
            phrase = http.HTTPStatus(413).phrase.encode()
            assert status == b"HTTP/1.1 413 " + phrase, (framing, answer[:200])
            headers, _, body = rest.partition(b"\r\n\r\n")
            assert b"Connection: close" in headers.split(b"\r\n"), (framing, headers)
            assert b"1000 bytes" in body, (framing, body)
        assert requests.get(server.base_url + "/api/v1/healthz", timeout=30).status_code == 200


def test_many_concurrent_connections(server: LocalServer) -> None:
    url = server.base_url + "/api/v1/healthz"

    def hit(_: int) -> int:
        with requests.Session() as session:
            return session.get(url, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as pool:
        statuses = list(pool.map(hit, range(400)))
    assert statuses == [200] * 400


def test_telemetry_is_accepted_and_kept(api: Api, server: LocalServer) -> None:
    event = {
        "event": "GENERIC_EVENT",
        "event_id": "e1",
        "event_session_index": 0,
        "severity": "INFO",
        "timestamp": "2026-01-01T00:00:00Z",
        "event_name": "unit",
    }
    assert api.ok(
        "telemetry",
        {"events": [event], "session_id": "s-1", "platform": "Linux", "sdk_version": "0.38.0"},
    ) == {"status": "accepted"}
    kept = [e for e in server.telemetry_events if e.get("event_id") == "e1"]
    assert kept and kept[0]["_session_id"] == "s-1"


def test_audit_and_billing_are_well_formed(api: Api) -> None:
    assert api.get("audit", params={"day": "2026-01-01"}).json() == {"entries": []}
    events = api.get("billing/usage/events").json()
    assert events["data"] == [] and events["sessions"] == {}
    storage = api.get("billing/usage/checkpoints/current").json()
    assert isinstance(storage["data"][0]["checkpoint_count"], int)


def test_tls_spoken_to_the_plain_http_port_is_answered_at_once(server: LocalServer) -> None:
    """Issue 12.3: an https:// client used to wait 20 s for an answer to its TLS hello."""
    import ssl
    import time

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match=r"WRONG_VERSION_NUMBER|wrong version number"),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{server.port}/api/v1/healthz", timeout=10)
    assert time.monotonic() - started < 5  # not a timeout: the server answered
    # what the server sends is a readable plain-HTTP answer naming the right scheme
    hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    answer = _send_all_then_read_to_eof(server.port, hello)
    assert answer.startswith(b"HTTP/1.1 400 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert f"use an http:// URL (http://127.0.0.1:{server.port})" in body["detail"]
    # plain HTTP still works on new connections
    assert requests.get(server.base_url + "/api/v1/healthz", timeout=5).status_code == 200
