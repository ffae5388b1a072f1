"""ClientSettings.resolve: explicit > TINKER_* env > defaults; credential sources; errors."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from tinkex._config import (
    DEFAULT_BASE_URL,
    ClientSettings,
    configure_logging,
    default_credentials_path,
    run_credential_cmd,
)
from tinkex._exceptions import TinkerError

KEY = "tml-abcdef0123456789"


def resolve(env: dict[str, str], tmp_path: Path, **kwargs: object) -> ClientSettings:
    return ClientSettings.resolve(
        environ=env,
        credentials_path=tmp_path / "credentials.json",
        **kwargs,  # type: ignore[arg-type]
    )


def test_defaults(tmp_path: Path) -> None:
    s = resolve({"TINKER_API_KEY": KEY}, tmp_path)
    assert s.base_url == DEFAULT_BASE_URL
    assert s.api_key == KEY
    assert s.api_key_source == "env"
    assert s.project_id is None
    assert s.tags == ()
    assert s.telemetry_enabled is True
    assert s.default_headers == {}
    assert (s.max_connections, s.timeout, s.connect_timeout, s.max_retries) == (1000, 60.0, 5.0, 10)
    assert s.send_protobuf is True and s.compress_fwdbwd is False
    assert s.access_headers == {}
    assert s.log_level is None


def test_explicit_arguments_beat_environment(tmp_path: Path) -> None:
    env = {
        "TINKER_API_KEY": "tml-from-env",
        "TINKER_BASE_URL": "http://env:1/",
        "TINKER_PROJECT_ID": "env-proj",
        "TINKER_TAGS": "a,b",
        "TINKER_TELEMETRY": "0",
        "TINKEX_WIRE_FORMAT": "json",
    }
    s = resolve(
        env,
        tmp_path,
        base_url="http://explicit:2///",
        api_key=KEY,
        project_id="p",
        tags=["x", "x", "y"],
        telemetry_enabled=True,
        send_protobuf=True,
        max_retries=0,
        timeout=3,
    )
    assert s.base_url == "http://explicit:2"
    assert s.api_key == KEY and s.api_key_source == "explicit"
    assert s.project_id == "p"
    assert s.tags == ("x", "y")
    assert s.telemetry_enabled is True
    assert s.send_protobuf is True
    assert s.max_retries == 0 and s.timeout == 3.0


def test_environment_values(tmp_path: Path) -> None:
    env = {
        "TINKER_API_KEY": KEY,
        "TINKER_BASE_URL": "http://127.0.0.1:8000/",
        "TINKER_PROJECT_ID": "proj-1",
        "TINKER_TAGS": " exp-a, ,exp-b,exp-a ",
        "TINKER_TELEMETRY": "off",
        "TINKER_LOG": "DEBUG",
        "TINKEX_WIRE_FORMAT": "Protobuf",
        "CLOUDFLARE_ACCESS_CLIENT_ID": "cid",
        "CLOUDFLARE_ACCESS_CLIENT_SECRET": "csecret",
    }
    s = resolve(env, tmp_path)
    assert s.base_url == "http://127.0.0.1:8000"
    assert s.project_id == "proj-1"
    assert s.tags == ("exp-a", "exp-b")
    assert s.telemetry_enabled is False
    assert s.log_level == "debug"
    assert s.send_protobuf is True
    assert s.access_headers == {
        "CF-Access-Client-Id": "cid",
        "CF-Access-Client-Secret": "csecret",
    }


@pytest.mark.parametrize(
    ("value", "enabled"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("no", False),
        ("", False),
    ],
)
def test_telemetry_flag(tmp_path: Path, value: str, enabled: bool) -> None:
    assert (
        resolve({"TINKER_API_KEY": KEY, "TINKER_TELEMETRY": value}, tmp_path).telemetry_enabled
        is enabled
    )


def test_empty_base_url_env_means_unset(tmp_path: Path) -> None:
    assert (
        resolve({"TINKER_API_KEY": KEY, "TINKER_BASE_URL": ""}, tmp_path).base_url
        == DEFAULT_BASE_URL
    )


def test_bad_base_url_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(
        TinkerError,
        match=r"TINKER_BASE_URL must be an http:// or https:// URL, got 'localhost:8000'",
    ):
        resolve({"TINKER_API_KEY": KEY, "TINKER_BASE_URL": "localhost:8000"}, tmp_path)


def test_bad_wire_format(tmp_path: Path) -> None:
    with pytest.raises(
        TinkerError, match="TINKEX_WIRE_FORMAT must be 'json' or 'protobuf', got 'xml'"
    ):
        resolve({"TINKER_API_KEY": KEY, "TINKEX_WIRE_FORMAT": "xml"}, tmp_path)


def test_jwt_keys_are_accepted(tmp_path: Path) -> None:
    assert resolve({}, tmp_path, api_key="eyJhbGciOi.x.y").api_key == "eyJhbGciOi.x.y"


def test_bad_prefix_raises_without_echoing_the_key(tmp_path: Path) -> None:
    secret = "sk-very-secret-value"
    with pytest.raises(TinkerError) as info:
        resolve({}, tmp_path, api_key=secret)
    assert "must start with the 'tml-' prefix" in str(info.value)
    assert "api_key argument" in str(info.value)
    assert secret not in str(info.value)
    with pytest.raises(TinkerError, match="TINKER_API_KEY"):
        resolve({"TINKER_API_KEY": secret}, tmp_path)


def test_missing_key_says_how_to_set_it(tmp_path: Path) -> None:
    with pytest.raises(TinkerError) as info:
        resolve({}, tmp_path)
    text = str(info.value)
    assert "TINKER_API_KEY" in text and "api_key=" in text and "TINKER_CREDENTIAL_CMD" in text


def test_missing_key_allowed_when_not_required(tmp_path: Path) -> None:
    s = resolve({}, tmp_path, require_api_key=False)
    assert s.api_key == "" and s.api_key_source == "none"


def test_credential_cmd(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -c \"print('tml-from-cmd')\""
    s = resolve({"TINKER_CREDENTIAL_CMD": cmd}, tmp_path)
    assert s.api_key == "tml-from-cmd"
    assert s.api_key_source == "credential_cmd"
    assert s.credential_cmd == cmd
    assert "credential_cmd" not in repr(s) or cmd not in repr(s)


def test_invalid_explicit_key_falls_back_to_credential_cmd(tmp_path: Path) -> None:
    cmd = f"{sys.executable} -c \"print('tml-from-cmd')\""
    s = resolve({"TINKER_CREDENTIAL_CMD": cmd}, tmp_path, api_key="not-a-key")
    assert s.api_key == "tml-from-cmd"


def test_valid_key_wins_over_credential_cmd(tmp_path: Path) -> None:
    s = resolve({"TINKER_API_KEY": KEY, "TINKER_CREDENTIAL_CMD": "exit 1"}, tmp_path)
    assert s.api_key == KEY


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            "import sys; sys.stderr.write('no login\\n'); sys.exit(3)",
            "exited with status 3: no login",
        ),
        ("print('')", "returned an empty credential"),
        ("print('garbage-credential')", "must start with the 'tml-' prefix"),
    ],
)
def test_credential_cmd_failures(tmp_path: Path, script: str, message: str) -> None:
    cmd = f'{sys.executable} -c "{script}"'
    with pytest.raises(TinkerError, match=message) as info:
        resolve({"TINKER_CREDENTIAL_CMD": cmd}, tmp_path)
    assert "garbage-credential" not in str(info.value)


def test_credential_cmd_timeout() -> None:
    with pytest.raises(TinkerError, match=r"did not finish within 0\.2 s"):
        run_credential_cmd(f'{sys.executable} -c "import time; time.sleep(5)"', timeout=0.2)


def _write_credentials(path: Path, data: object) -> None:
    path.write_text(json.dumps(data))


def test_stored_credentials_are_used_last(tmp_path: Path) -> None:
    _write_credentials(
        tmp_path / "credentials.json",
        {
            "version": 1,
            "default": "k1",
            "keys": {"k1": {"type": "manual", "key": "tml-stored", "name": "laptop"}},
        },
    )
    s = resolve({}, tmp_path)
    assert s.api_key == "tml-stored" and s.api_key_source == "credentials_file"
    assert resolve({"TINKER_API_KEY": KEY}, tmp_path).api_key == KEY


def test_stored_credentials_without_default_are_ignored(tmp_path: Path) -> None:
    _write_credentials(tmp_path / "credentials.json", {"version": 1, "default": None, "keys": {}})
    with pytest.raises(TinkerError, match="No Tinker API key found"):
        resolve({}, tmp_path)


def test_malformed_stored_credentials_say_how_to_fix(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text("{not json")
    with pytest.raises(TinkerError, match=r"malformed .*tinkex auth login"):
        resolve({}, tmp_path)
    _write_credentials(tmp_path / "credentials.json", {"version": 1, "default": "gone", "keys": {}})
    with pytest.raises(TinkerError, match="malformed"):
        resolve({}, tmp_path)


def test_repr_hides_secrets(tmp_path: Path) -> None:
    s = resolve({"TINKER_API_KEY": KEY, "CLOUDFLARE_ACCESS_CLIENT_SECRET": "cf-secret"}, tmp_path)
    text = repr(s)
    assert KEY not in text and "cf-secret" not in text
    assert "api_key='***'" in text


def test_settings_are_frozen_values() -> None:
    s = ClientSettings(api_key=KEY)
    with pytest.raises(AttributeError):
        s.api_key = "tml-x"  # type: ignore[misc]
    assert s == ClientSettings(api_key=KEY)
    assert hash(s) == hash(ClientSettings(api_key=KEY))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_connections": 0}, "max_connections must be >= 1, got 0"),
        ({"timeout": 0}, "timeout must be > 0 seconds, got 0"),
        ({"connect_timeout": -1}, "connect_timeout must be > 0 seconds, got -1"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
    ],
)
def test_invalid_knobs_name_field_and_value(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TinkerError, match=message):
        resolve({"TINKER_API_KEY": KEY}, tmp_path, **kwargs)


def test_default_credentials_path() -> None:
    assert default_credentials_path() == Path("~/.tinker/credentials.json").expanduser()


def test_configure_logging() -> None:
    logger = logging.getLogger("tinkex")
    before = (logger.level, list(logger.handlers))
    try:
        configure_logging(None)
        assert logger.level == before[0]
        configure_logging("info")
        configure_logging("info")
        assert logger.level == logging.INFO
        assert len(logger.handlers) == max(1, len(before[1]))
    finally:
        logger.setLevel(before[0])
        logger.handlers[:] = before[1]


def test_resolve_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_API_KEY", KEY)
    monkeypatch.setenv("TINKER_PROJECT_ID", "from-os")
    s = ClientSettings.resolve()
    assert s.api_key == KEY and s.project_id == "from-os"


def test_wire_format_json_opt_out(tmp_path: Path) -> None:
    s = resolve({"TINKER_API_KEY": KEY, "TINKEX_WIRE_FORMAT": "json"}, tmp_path)
    assert s.send_protobuf is False


@pytest.mark.parametrize(("value", "on"), [("1", True), ("on", True), ("0", False), ("", False)])
def test_telemetry_events_flag(tmp_path: Path, value: str, on: bool) -> None:
    env = {"TINKER_API_KEY": KEY, "TINKEX_TELEMETRY_EVENTS": value}
    assert resolve(env, tmp_path).telemetry_events is on
    assert resolve(env, tmp_path, telemetry_events=not on).telemetry_events is not on  # explicit
    assert resolve({"TINKER_API_KEY": KEY}, tmp_path).telemetry_events is False
