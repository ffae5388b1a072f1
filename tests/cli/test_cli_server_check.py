"""A first contact fails fast and says what is at the URL (issue 12 items 1-3).

Each case runs the real ``tinkex`` command (or ``python -m tinkex.demo``) as a subprocess
against a loopback server, with a time bound that proves "fast": the SDK's own retries would
take minutes.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from _child_env import child_env
from cli_standins import Reply, StandIn, StaticWebServer

from tinkex._config import ClientSettings
from tinkex._exceptions import (
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    make_status_error,
    shorten_body,
)
from tinkex._server_check import NotATinkerAPIError, check_server

pytestmark = [pytest.mark.e2e]

FAST = 5.0  # seconds: "a non-Tinker server is rejected in under 5 s"
# What a CLI run costs before it sends anything (interpreter start, imports); measured once,
# so the bounds below time the check itself even on a loaded machine.
_STARTUP_CODE = "import requests, tinkex.cli.main, tinkex._server_check, tinkex._config"
HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{color:red}</style>"
    "</head><body><h1>Bad Gateway</h1>" + "<p>upstream said no</p>" * 400 + "</body></html>"
)


def _env(base_url: str, key: str = "tml-test") -> dict[str, str]:
    return child_env(base_url, key)


def _timed(args: list[str], env: dict[str, str], cwd: str | None = None):
    """Run ``python ARGS``; returns the result and its wall time minus the start-up cost."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", _STARTUP_CODE], env=env, check=True, timeout=120)
    startup = time.monotonic() - start
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd
    )
    return done, time.monotonic() - start - startup


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_rejects_a_plain_web_server_fast(tmp_path):
    with StaticWebServer(str(tmp_path)) as web:
        done, elapsed = _timed(["-m", "tinkex.cli", "run", "list"], _env(web.url))
    line = _error_line(done)
    assert f"{web.url}: this is not a Tinker API (got 501 text/html)" in line
    assert "<" not in line and "DOCTYPE" not in line  # no HTML page on the terminal
    assert elapsed < FAST, f"took {elapsed:.1f} s"


def test_cli_names_a_redirect_instead_of_following_it():
    redirect = Reply(301, body=b"", headers={"Location": "https://elsewhere.invalid/api/v1/x"})
    with StandIn({("POST", "/api/v1/client/config"): redirect}) as api:
        done, elapsed = _timed(["-m", "tinkex.cli", "model", "list"], _env(api.url))
    line = _error_line(done)
    assert "not a Tinker API (got 301" in line and "https://elsewhere.invalid/api/v1/x" in line
    assert elapsed < FAST


def test_cli_refused_connection_is_fast_and_says_how_to_start_a_server():
    url = f"http://127.0.0.1:{_free_port()}"
    done, elapsed = _timed(["-m", "tinkex.cli", "checkpoint", "list"], _env(url))
    line = _error_line(done)
    assert f"cannot reach {url}" in line and "refused" in line.lower()
    assert "tinkex serve" in line
    assert elapsed < FAST


def test_cli_https_against_a_plain_http_server_says_use_http(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path)) as server:
        https_url = server.base_url.replace("http://", "https://")
        done, elapsed = _timed(["-m", "tinkex.cli", "run", "list"], _env(https_url))
    line = _error_line(done)
    assert f"use {server.base_url}" in line and "http, not https" in line
    assert "tinkex serve" not in line  # one is running: the scheme is what is wrong
    # The TLS handshake is bounded by the 3 s connect timeout, then one plain-HTTP probe.
    assert elapsed < 2 * FAST, f"took {elapsed:.1f} s"


def test_cli_html_error_bodies_are_shortened():
    page = Reply(404, body=HTML_PAGE.encode(), content_type="text/html")
    with StandIn({("GET", "/api/v1/training_runs"): page}) as api:
        done, elapsed = _timed(["-m", "tinkex.cli", "run", "list"], _env(api.url))
    line = _error_line(done)
    assert "HTTP 404" in line and "Bad Gateway" in line
    assert "<" not in line and len(line) < 500, line
    assert "more characters" in line  # says that something was left out
    assert elapsed < FAST


def test_cli_rejected_key_is_reported_by_the_check(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path), api_key="tml-right") as server:
        done, _ = _timed(["-m", "tinkex.cli", "run", "list"], _env(server.base_url, "tml-wrong"))
    line = _error_line(done)
    assert "rejected the API key (HTTP 401" in line and "tinkex auth login" in line


# --- the demo ---------------------------------------------------------------------------------


def test_demo_with_a_stale_base_url_fails_fast_and_offers_the_embedded_server(tmp_path):
    with StaticWebServer(str(tmp_path)) as web:
        done, elapsed = _timed(["-m", "tinkex.demo", "--steps", "2"], _env(web.url), str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{web.url}: this is not a Tinker API (got 501 text/html)" in done.stderr
    assert "--local" in done.stderr and "unset TINKER_BASE_URL" in done.stderr
    assert elapsed < FAST, f"took {elapsed:.1f} s"


def test_demo_local_flag_ignores_a_stale_base_url(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    args = ["-m", "tinkex.demo", "--local", "--steps", "3", "--output-dir", "out"]
    done, _ = _timed(args, _env(url), str(tmp_path))
    assert done.returncode in (0, 1), done.stderr  # 3 steps may not lower the loss
    assert "embedded local server" in done.stdout
    assert "cannot reach" not in done.stderr


# --- check_server itself ----------------------------------------------------------------------


def _settings(url: str) -> ClientSettings:
    return ClientSettings.resolve(base_url=url, api_key="tml-test", environ={})


def test_check_server_returns_the_client_config(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path)) as server:
        config = check_server(_settings(server.base_url))
    assert "pjwt_auth_enabled" in config


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(200, body=b"<html>hi</html>", content_type="text/html"), "(got 200 text/html)"),
        (Reply(200, json_body=[1, 2]), "JSON but not an object"),
        (Reply(404, json_body={"detail": "Not Found"}), "(got 404 application/json)"),
        (Reply(405, body=b"nope", content_type="text/plain"), "(got 405 text/plain)"),
    ],
)
def test_check_server_classifies_non_tinker_answers(reply, expected):
    with (
        StandIn({("POST", "/api/v1/client/config"): reply}) as api,
        pytest.raises(NotATinkerAPIError) as info,
    ):
        check_server(_settings(api.url))
    assert expected in str(info.value) and str(info.value).startswith(api.url)


def test_check_server_retries_5xx_briefly_then_raises():
    busy = Reply(503, json_body={"detail": "warming up"})
    with StandIn({("POST", "/api/v1/client/config"): busy}) as api:
        start = time.monotonic()
        with pytest.raises(InternalServerError, match="warming up"):
            check_server(_settings(api.url))
        elapsed = time.monotonic() - start
    assert len(api.requests) >= 2 and elapsed < 3


def test_check_server_passes_on_a_rejected_key():
    denied = Reply(401, json_body={"detail": "invalid API key"})
    with (
        StandIn({("POST", "/api/v1/client/config"): denied}) as api,
        pytest.raises(AuthenticationError),
    ):
        check_server(_settings(api.url))
    assert api.requests[0].headers["x-api-key"] == "tml-test"


def test_check_server_plain_http_to_a_tls_port_hints_https():
    tls_only = Reply(
        400,
        body=b"<html><body>The plain HTTP request was sent to HTTPS port</body></html>",
        content_type="text/html",
    )
    with (
        StandIn({("POST", "/api/v1/client/config"): tls_only}) as api,
        pytest.raises(NotATinkerAPIError, match=r"use https://127\.0\.0\.1"),
    ):
        check_server(_settings(api.url))


def test_check_server_refused_is_a_connection_error():
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(APIConnectionError, match="refused"):
        check_server(_settings(url))


# --- shortened bodies in SDK messages ----------------------------------------------------------


def test_shorten_body_strips_markup_and_says_how_much_was_cut():
    short = shorten_body(HTML_PAGE)
    assert isinstance(short, str)
    assert short.startswith("502 Bad Gateway Bad Gateway upstream said no")
    assert "<" not in short and "color:red" not in short
    assert short.endswith("more characters)") and len(short) < 400
    assert shorten_body({"detail": "x"}) == {"detail": "x"}  # JSON stays as it is


def test_status_error_messages_are_short_but_keep_the_whole_body():
    exc = make_status_error(502, HTML_PAGE, request="GET /api/v1/x")
    assert len(str(exc)) < 450 and "<" not in str(exc)
    assert exc.body == HTML_PAGE
