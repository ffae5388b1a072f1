"""Every event tinkex emits matches its schema in telemetry.EVENT_SCHEMAS (one per name)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import requests
import responses

from tinkex import telemetry
from tinkex._config import ClientSettings
from tinkex._exceptions import APIConnectionError
from tinkex._poller import poll_future
from tinkex._transport import NO_RETRY, RateLimiter, Transport
from tinkex.regularizers import L2, compute_custom_loss
from tinkex.resilience import CircuitBreaker, default_retry_policy, with_retry

BASE_URL = "http://tinker.test"

Event = tuple[str, dict[str, Any], dict[str, Any]]


def schema_problems(
    event: str, measurements: Mapping[str, Any], metadata: Mapping[str, Any]
) -> list[str]:
    schema = telemetry.EVENT_SCHEMAS.get(event)
    if schema is None:
        return [f"{event}: not in EVENT_SCHEMAS"]
    problems = []
    for part, values in (("measurements", measurements), ("metadata", metadata)):
        typed = schema[part]  # type: ignore[literal-required]
        required, optional = set(typed.__required_keys__), set(typed.__optional_keys__)
        missing = required - set(values)
        unknown = set(values) - required - optional
        if missing:
            problems.append(f"{event} {part}: missing {sorted(missing)}")
        if unknown:
            problems.append(f"{event} {part}: not in the schema {sorted(unknown)}")
        if part == "measurements":
            problems += [
                f"{event}: {k} is not a number"
                for k, v in values.items()
                if not isinstance(v, int | float)
            ]
    return problems


@pytest.fixture
def transport() -> Iterator[Transport]:
    settings = ClientSettings(base_url=BASE_URL, api_key="tml-schema-key")
    with Transport(
        settings, rate_limiter=RateLimiter(sleep=lambda s: None), sleep=lambda s: None
    ) as t:
        yield t


@dataclass
class FakeDatum:
    loss_fn_inputs: dict[str, Any] = field(default_factory=dict)


def nll(data: Any, arrays: list[np.ndarray]) -> tuple[float, dict[str, float], list[np.ndarray]]:
    return float(sum(-x.sum() for x in arrays)), {}, [-np.ones_like(x) for x in arrays]


def test_emitted_events_follow_their_schema(events: list[Event], transport: Transport) -> None:
    with responses.RequestsMock() as mocked:
        url = f"{BASE_URL}/api/v1/x"
        mocked.post(url, status=503, json={})
        mocked.post(url, json={"ok": True})
        transport.request("POST", "/api/v1/x", json={})
        mocked.post(f"{BASE_URL}/api/v1/y", body=requests.ConnectionError("down"))
        with pytest.raises(APIConnectionError):
            transport.request("POST", "/api/v1/y", json={}, retry=NO_RETRY)
        future_url = f"{BASE_URL}/api/v1/retrieve_future"
        mocked.post(future_url, json={"type": "try_again", "queue_state": "paused_capacity"})
        mocked.post(future_url, json={"ok": 1})
        poll_future(
            transport,
            "req-1",
            request_type="OptimStep",
            decode=lambda r: r.json(),
            stop=threading.Event(),
        )

    breaker = CircuitBreaker("ep", failure_threshold=1)
    outcomes: list[Exception | str] = [ConnectionError("x"), "ok"]

    def flaky() -> str:
        item = outcomes.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    with_retry(flaky, default_retry_policy(), name="POST /api/v1/z", sleep=lambda s: None)
    with pytest.raises(ConnectionError):
        breaker.call(lambda: (_ for _ in ()).throw(ConnectionError("down")))
    data = [FakeDatum(), FakeDatum()]
    compute_custom_loss(
        data, [np.array([-1.0, -2.0]), np.array([-0.5])], nll, [L2().spec(0.1)], backend="numpy"
    )

    names = {name for name, _, _ in events}
    assert names >= {
        telemetry.HTTP_REQUEST_START,
        telemetry.HTTP_REQUEST_STOP,
        telemetry.HTTP_REQUEST_EXCEPTION,
        telemetry.HTTP_RETRY,
        telemetry.FUTURE_QUEUE_STATE,
        telemetry.FUTURE_COMPLETE,
        telemetry.CIRCUIT_BREAKER_STATE_CHANGE,
        telemetry.CUSTOM_LOSS_START,
        telemetry.CUSTOM_LOSS_STOP,
        telemetry.REGULARIZER_START,
        telemetry.REGULARIZER_STOP,
    }
    problems = [p for event in events for p in schema_problems(*event)]
    assert problems == []
    retry_events = [md for name, _, md in events if name == telemetry.HTTP_RETRY]
    assert {md["policy"] for md in retry_events} == {"http", "with_retry"}
    assert all(md["method"] == "POST" for md in retry_events)


def test_schema_problems_catches_a_wrong_payload() -> None:
    assert schema_problems(telemetry.HTTP_RETRY, {"delay": 1.0}, {"policy": "x"}) != []
    assert schema_problems("tinkex.nope", {}, {}) == ["tinkex.nope: not in EVENT_SCHEMAS"]


def test_every_event_name_has_a_schema() -> None:
    assert set(telemetry.EVENTS) == set(telemetry.EVENT_SCHEMAS)
    for name, schema in telemetry.EVENT_SCHEMAS.items():
        assert name.startswith("tinkex.")
        assert set(schema) == {"measurements", "metadata"}


def _loss_events(events: list[Event]) -> list[tuple[str, str]]:
    """(event suffix, regularizer name or "") of the custom-loss and regularizer events."""
    prefixes = ("tinkex.custom_loss.", "tinkex.regularizer.compute.")
    return [
        (name.split(".", 2)[2], md.get("name", ""))
        for name, _, md in events
        if name.startswith(prefixes)
    ]


def test_custom_loss_and_regularizer_spans(events: list[Event]) -> None:
    from tinkex.regularizers import L1, RegularizerError, RegularizerSpec

    data = [FakeDatum(), FakeDatum()]
    arrays = [np.array([-1.0, -2.0]), np.array([-0.5])]

    async def async_l1(data: Any, arrays: list[np.ndarray]) -> Any:
        return L1()(data, arrays)

    specs = [L2().spec(0.1), RegularizerSpec(async_l1, 0.2, "l1", async_=True)]
    output, _ = compute_custom_loss(data, arrays, nll, specs, backend="numpy")
    # start, then each regularizer's start (async ones first: they are started first), then
    # their stops once all are combined, then stop.
    assert _loss_events(events) == [
        ("start", ""),
        ("compute.start", "l1"),
        ("compute.start", "l2"),
        ("compute.stop", "l2"),
        ("compute.stop", "l1"),
        ("stop", ""),
    ]
    assert [p for event in events for p in schema_problems(*event)] == []
    (stop,) = [m for name, m, _ in events if name == telemetry.CUSTOM_LOSS_STOP]
    assert stop["loss_total"] == output.loss_total and stop["duration"] >= 0
    (l1_stop,) = [
        m for name, m, md in events if name == telemetry.REGULARIZER_STOP and md["name"] == "l1"
    ]
    assert l1_stop["contribution"] == output.regularizers["l1"].contribution

    def broken(data: Any, arrays: list[np.ndarray]) -> Any:
        raise ZeroDivisionError("no")

    async def broken_async(data: Any, arrays: list[np.ndarray]) -> Any:
        raise KeyError("gone")

    for spec, error_type in (
        (RegularizerSpec(broken, 1.0, "bad"), "ZeroDivisionError"),
        (RegularizerSpec(broken_async, 1.0, "bad", async_=True), "KeyError"),
    ):
        events.clear()
        with pytest.raises(RegularizerError):
            compute_custom_loss(data, arrays, nll, [L2().spec(0.1), spec], backend="numpy")
        assert ("compute.exception", "bad") in _loss_events(events)
        assert _loss_events(events)[-1] == ("exception", "")
        assert ("stop", "") not in _loss_events(events)
        assert [p for event in events for p in schema_problems(*event)] == []
        (failure,) = [md for name, _, md in events if name == telemetry.REGULARIZER_EXCEPTION]
        assert failure["error_type"] == error_type and "'bad'" in failure["error"]
        (loss_failure,) = [md for name, _, md in events if name == telemetry.CUSTOM_LOSS_EXCEPTION]
        assert loss_failure["error_type"] == "RegularizerError"
        assert loss_failure["regularizer_count"] == 2
    # Arguments that are rejected before anything is computed emit nothing.
    events.clear()
    with pytest.raises(ValueError, match="duplicate"):
        compute_custom_loss(data, arrays, nll, [L2().spec(0.1), L2().spec(0.2)])
    assert _loss_events(events) == []
