"""Telemetry hooks: attach/detach/emit, handler isolation, attach_logger."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tinkex import telemetry


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    before = telemetry.attached()
    yield
    for ids in telemetry.attached().values():
        for hid in ids:
            if not any(hid in old for old in before.values()):
                telemetry.detach(hid)


def test_attach_emit_detach() -> None:
    seen: list[tuple[str, Mapping[str, float], Mapping[str, Any]]] = []
    telemetry.attach("t1", [telemetry.HTTP_REQUEST_STOP], lambda e, m, md: seen.append((e, m, md)))
    assert telemetry.has_handlers(telemetry.HTTP_REQUEST_STOP)
    telemetry.emit(telemetry.HTTP_REQUEST_STOP, {"duration": 0.5}, {"path": "/x"})
    telemetry.emit(telemetry.HTTP_REQUEST_START, {}, {})  # not subscribed
    assert seen == [(telemetry.HTTP_REQUEST_STOP, {"duration": 0.5}, {"path": "/x"})]
    assert telemetry.detach("t1") is True
    assert telemetry.detach("t1") is False
    assert not telemetry.has_handlers(telemetry.HTTP_REQUEST_STOP)


def test_duplicate_handler_id_rejected() -> None:
    telemetry.attach("dup", "*", lambda e, m, md: None)
    with pytest.raises(ValueError, match="dup"):
        telemetry.attach("dup", "other", lambda e, m, md: None)


def test_wildcard_receives_every_event() -> None:
    seen: list[str] = []
    telemetry.attach("all", "*", lambda e, m, md: seen.append(e))
    telemetry.emit("a.b")
    telemetry.emit("c.d", {"x": 1.0})
    assert seen == ["a.b", "c.d"]


def test_raising_handler_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(event: str, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        raise RuntimeError("handler bug")

    telemetry.attach("broken", "evt", broken)
    telemetry.attach("good", "evt", lambda e, m, md: calls.append(e))
    with caplog.at_level(logging.ERROR, logger="tinkex.telemetry"):
        telemetry.emit("evt", {"n": 1.0})  # must not raise
    assert calls == ["evt"]
    assert "broken" in caplog.text and "handler bug" in caplog.text


def test_raising_handler_does_not_break_a_retried_call() -> None:
    """A request path that emits telemetry (with_retry) still returns its result."""
    from tinkex.resilience import BackoffPolicy, with_retry

    def broken(event: str, m: Mapping[str, float], md: Mapping[str, Any]) -> None:
        raise RuntimeError("boom")

    telemetry.attach("broken-retry", "*", broken)
    attempts = iter([ConnectionError("flaky"), "ok"])

    def call() -> str:
        item = next(attempts)
        if isinstance(item, Exception):
            raise item
        return item

    policy = BackoffPolicy(max_attempts=3, base_delay=0.0, retry_on=(ConnectionError,))
    assert with_retry(call, policy, sleep=lambda s: None) == "ok"


def test_attach_logger_logs_and_masks_secrets(caplog: pytest.LogCaptureFixture) -> None:
    hid = telemetry.attach_logger(level="INFO", events=[telemetry.HTTP_REQUEST_STOP])
    with caplog.at_level(logging.INFO, logger="tinkex.telemetry.events"):
        telemetry.emit(
            telemetry.HTTP_REQUEST_STOP,
            {"duration": 0.25},
            {"method": "POST", "path": "/api/v1/x", "note": "key tml-supersecret"},
        )
    assert "tinkex.http.request.stop" in caplog.text
    assert "duration=0.25" in caplog.text and "path='/api/v1/x'" in caplog.text
    assert "supersecret" not in caplog.text
    assert telemetry.detach(hid) is True


def test_attach_logger_respects_level(caplog: pytest.LogCaptureFixture) -> None:
    hid = telemetry.attach_logger(level=logging.DEBUG, handler_id="my-logger")
    assert hid == "my-logger"
    with caplog.at_level(logging.INFO, logger="tinkex.telemetry.events"):
        telemetry.emit("quiet.event")
    assert "quiet.event" not in caplog.text
    telemetry.detach(hid)


def test_attach_logger_rejects_bad_level() -> None:
    with pytest.raises(ValueError, match="level"):
        telemetry.attach_logger(level="LOUD")


def test_scrub_masks_keys_jwts_bearer_and_sensitive_fields() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    value = {
        "msg": f"failed with tml-abcdef123 and {jwt}",
        "headers": {"Authorization": "Bearer abc.def", "X-API-Key": "whatever"},
        "nested": [("Bearer tok123",), "api_key=plain"],
        "n": 3,
    }
    cleaned = telemetry.scrub(value, secrets=["whatever-else"])
    text = repr(cleaned)
    for secret in ("tml-abcdef123", jwt, "abc.def", "whatever", "tok123", "plain"):
        assert secret not in text
    assert cleaned["n"] == 3


def test_import_is_stdlib_only() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tinkex.telemetry; "
        "bad = [m for m in ('numpy', 'requests', 'tenacity', 'tokenizers', 'tiktoken', 'urllib3')"
        " if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
