"""The ``TINKEX_*`` connection variables (pool size, proxy, proxy headers, default headers and
query) through ``ClientSettings.resolve`` (explicit > environment > default), and the masked
environment snapshot (issue 14, rows 1.10-1.14, 1.29)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinkex import environment
from tinkex._config import DEFAULT_MAX_CONNECTIONS, ClientSettings
from tinkex._exceptions import TinkerError

KEY = "tml-abcdef0123456789"


def resolve(env: dict[str, str], tmp_path: Path, **kwargs: object) -> ClientSettings:
    return ClientSettings.resolve(
        environ={"TINKER_API_KEY": KEY, **env},
        credentials_path=tmp_path / "credentials.json",
        **kwargs,  # type: ignore[arg-type]
    )


CONNECTION_ENV = {
    "TINKEX_POOL_SIZE": "8",
    "TINKEX_DEFAULT_HEADERS": '{"X-Team": "research", "X-Both": "env", "X-Retry": 2}',
    "TINKEX_PROXY": "http://user:pw@127.0.0.1:3128",
    "TINKEX_PROXY_HEADERS": '[["X-Proxy-Team", "research"]]',
    "TINKEX_DEFAULT_QUERY": '{"mode": "fast", "flag": true}',
}


def test_connection_variables_are_read(tmp_path: Path) -> None:
    s = resolve(CONNECTION_ENV, tmp_path)
    assert s.max_connections == 8
    assert s.default_headers == {"X-Team": "research", "X-Both": "env", "X-Retry": "2"}
    assert s.proxy == "http://user:pw@127.0.0.1:3128"
    assert s.proxy_headers == {"X-Proxy-Team": "research"}
    assert s.default_query == {"mode": "fast", "flag": "true"}
    assert "pw" not in repr(s) and "user:***@127.0.0.1:3128" in repr(s)
    assert "X-Proxy-Team" not in repr(s)


def test_explicit_arguments_beat_the_connection_variables(tmp_path: Path) -> None:
    s = resolve(
        CONNECTION_ENV,
        tmp_path,
        max_connections=2,
        default_headers={"X-Both": "explicit"},
        proxy="http://other:8080",
        proxy_headers={},
        default_query={"mode": "slow"},
    )
    assert s.max_connections == 2
    assert s.proxy == "http://other:8080"
    assert s.proxy_headers == {}  # an explicit empty map replaces the environment's
    assert s.default_query == {"mode": "slow", "flag": "true"}
    # the maps merge key by key, the explicit value winning
    assert s.default_headers == {"X-Team": "research", "X-Both": "explicit", "X-Retry": "2"}


def test_defaults_without_the_variables(tmp_path: Path) -> None:
    s = resolve({}, tmp_path)
    assert (s.max_connections, s.default_headers) == (DEFAULT_MAX_CONNECTIONS, {})
    assert (s.proxy, s.proxy_headers, s.default_query) == (None, {}, {})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TINKEX_POOL_SIZE", "0", "TINKEX_POOL_SIZE must be a whole number >= 1, got '0'"),
        ("TINKEX_POOL_SIZE", "many", "TINKEX_POOL_SIZE must be a whole number >= 1, got 'many'"),
        ("TINKEX_DEFAULT_HEADERS", "X-Team: a", "TINKEX_DEFAULT_HEADERS must be a JSON object"),
        ("TINKEX_DEFAULT_HEADERS", '{"a": {"b": 1}}', "TINKEX_DEFAULT_HEADERS must be a JSON"),
        ("TINKEX_DEFAULT_HEADERS", '["a"]', "TINKEX_DEFAULT_HEADERS must be a JSON object"),
        ("TINKEX_DEFAULT_QUERY", '{"a": {"b": 1}}', "TINKEX_DEFAULT_QUERY must be a JSON object"),
        ("TINKEX_PROXY_HEADERS", '["a"]', "TINKEX_PROXY_HEADERS must be a JSON object"),
        ("TINKEX_PROXY", "proxy:3128", "TINKEX_PROXY must be a proxy URL"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    with pytest.raises(TinkerError, match=message):
        resolve({name: value}, tmp_path)


def test_a_bad_proxy_url_never_shows_its_password(tmp_path: Path) -> None:
    with pytest.raises(TinkerError) as caught:
        resolve({}, tmp_path, proxy="ftp://user:hunter2@proxy:21")
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("proxy must be a proxy URL")


def test_snapshot_shows_what_is_set_with_secrets_masked() -> None:
    env = {
        "TINKER_API_KEY": KEY,
        "TINKER_BASE_URL": "http://127.0.0.1:8000",
        "CLOUDFLARE_ACCESS_CLIENT_SECRET": "cf-secret",
        "HTTPS_PROXY": "http://user:pw@proxy:3128",
        "https_proxy": "http://u:p2@corp:8080",
        "TINKEX_DEFAULT_HEADERS": '{"Authorization": "Bearer abc", "X-Team": "a"}',
        "TINKEX_PROXY": "http://a:b@proxy:3128",
        "TINKEX_PROXY_HEADERS": '[["Proxy-Authorization", "Basic abc"]]',
        "UNRELATED": "x",
    }
    shown = environment.snapshot(env)
    assert shown == {
        "TINKER_API_KEY": "***",
        "TINKER_BASE_URL": "http://127.0.0.1:8000",
        "CLOUDFLARE_ACCESS_CLIENT_SECRET": "***",
        "HTTPS_PROXY": "http://user:***@proxy:3128",
        "https_proxy": "http://u:***@corp:8080",
        "TINKEX_DEFAULT_HEADERS": json.dumps({"Authorization": "***", "X-Team": "a"}),
        "TINKEX_PROXY": "http://a:***@proxy:3128",
        "TINKEX_PROXY_HEADERS": json.dumps({"Proxy-Authorization": "***"}),
    }
    assert "Bearer abc" not in repr(shown) and "pw" not in repr(shown)


def test_snapshot_masks_a_header_map_it_cannot_read() -> None:
    assert environment.snapshot({"TINKEX_DEFAULT_HEADERS": "Authorization: x"}) == {
        "TINKEX_DEFAULT_HEADERS": "***"
    }
