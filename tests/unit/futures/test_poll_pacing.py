"""Poll pacing (Elixir Tinkex's poll_backoff / poll_timeout; parity rows 1.8, 8.2): a pause
before each immediate re-poll, an overall deadline, and how both are configured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import responses

import tinkex
from tinkex._config import ClientSettings
from tinkex._exceptions import TinkerError
from tinkex._poll_pacing import ExponentialBackoff, PollPacing, poll_pacing
from tinkex._poller import poll_future
from tinkex._transport import RateLimiter, Response, Transport

BASE_URL = "http://tinker.test"
URL = f"{BASE_URL}/api/v1/retrieve_future"
TRY_AGAIN = {"type": "try_again", "request_id": "req-1", "queue_state": "active"}


@pytest.fixture
def transport() -> Iterator[Transport]:
    settings = ClientSettings(base_url=BASE_URL, api_key="tml-poll-key")
    with Transport(settings, rate_limiter=RateLimiter()) as t:
        yield t


def _decode(response: Response) -> Any:
    return response.json()


def test_exponential_backoff_doubles_up_to_its_maximum() -> None:
    backoff = ExponentialBackoff(0.5, 3.0)
    assert [backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff(10_000) == 3.0  # no overflow after a very long wait
    assert ExponentialBackoff()(0) == 1.0 and ExponentialBackoff()(9) == 30.0
    with pytest.raises(TinkerError, match="initial <= maximum"):
        ExponentialBackoff(5.0, 1.0)


def test_every_form_of_the_option_and_the_variable() -> None:
    env = {"TINKEX_POLL_BACKOFF": "exponential:0.25:2", "TINKEX_POLL_TIMEOUT": "90"}
    assert poll_pacing(None, None, env) == PollPacing(ExponentialBackoff(0.25, 2.0), 90.0)
    assert poll_pacing(None, None, {}) == PollPacing(None, None)
    assert poll_pacing("exponential", 5, env) == PollPacing(ExponentialBackoff(), 5.0)
    assert poll_pacing("none", None, env).backoff is None  # explicit beats environment
    assert poll_pacing(("exponential", 1, 4), None, {}).backoff == ExponentialBackoff(1.0, 4.0)

    def fixed(n: int) -> float:
        return 0.1

    assert poll_pacing(fixed, None, {}).backoff is fixed


@pytest.mark.parametrize(
    ("backoff", "timeout", "env", "message"),
    [
        ("linear", None, {}, "poll_backoff='linear' is not a poll back-off"),
        (None, None, {"TINKEX_POLL_BACKOFF": "exponential:x"}, "TINKEX_POLL_BACKOFF="),
        (42, None, {}, "poll_backoff=42 is not a poll back-off"),
        (None, None, {"TINKEX_POLL_TIMEOUT": "soon"}, "TINKEX_POLL_TIMEOUT='soon' is not a"),
        (None, 0, {}, "poll_timeout=0 must be a positive"),
    ],
)
def test_a_wrong_value_names_the_option_and_the_forms(
    backoff: object, timeout: float | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(TinkerError, match=message.replace("(", r"\(")):
        poll_pacing(backoff, timeout, env)


def test_client_settings_resolve_reads_the_variables() -> None:
    settings = ClientSettings.resolve(
        base_url=BASE_URL,
        api_key="tml-x",
        environ={"TINKEX_POLL_BACKOFF": "exponential", "TINKEX_POLL_TIMEOUT": "30"},
    )
    assert settings.poll_pacing == PollPacing(ExponentialBackoff(), 30.0)
    explicit = ClientSettings.resolve(
        base_url=BASE_URL, api_key="tml-x", poll_backoff="none", environ={}
    )
    assert explicit.poll_pacing == PollPacing()


def test_the_backoff_pauses_before_each_immediate_repoll_and_resets(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    for _ in range(3):
        mocked.post(URL, json=TRY_AGAIN)
    mocked.post(URL, json={"type": "optim_step", "metrics": {}})
    sleeps: list[float] = []
    result = poll_future(
        transport,
        "req-1",
        request_type="OptimStep",
        decode=_decode,
        stop=threading.Event(),
        sleep=sleeps.append,
        pacing=PollPacing(backoff=ExponentialBackoff(0.5, 1.5)),
    )
    assert result == {"type": "optim_step", "metrics": {}}
    assert sleeps == [0.5, 1.0, 1.5]  # without pacing: no sleep at all (test_poll_future.py)


def test_polling_past_the_deadline_fails_naming_the_request(
    transport: Transport, mocked: responses.RequestsMock
) -> None:
    mocked.post(URL, json=TRY_AGAIN)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def clock() -> float:
        now[0] += 4.0  # every look at the clock is 4 s later
        return now[0]

    with pytest.raises(tinkex.PollTimeoutError, match=r"request req-1 .* after 10 s") as caught:
        poll_future(
            transport,
            "req-1",
            request_type="OptimStep",
            decode=_decode,
            stop=threading.Event(),
            sleep=sleep,
            clock=clock,
            pacing=PollPacing(deadline=10.0),
        )
    # what sampling retries resubmit (RetryConfig.retryable_exceptions) it is not
    assert not isinstance(caught.value, (TimeoutError, tinkex.APIConnectionError))
    assert 1 <= len(mocked.calls) <= 3
