"""OrderedSender: which submission failures poison a training client (issue 10.4)."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import pytest

from tinkex._exceptions import APIConnectionError, BadRequestError, InternalServerError
from tinkex.clients._ordered import OrderedSender, PoisonedError


def _status_error(cls: type[Any], status: int) -> Any:
    return cls(
        "rejected",
        body={"detail": "rejected"},
        status_code=status,
        request="POST /api/v1/forward_backward",
    )


def _send(sender: OrderedSender, outcome: BaseException | None) -> Future[Any]:
    done: Future[Any] = Future()

    def send(seq: int) -> int:
        if outcome is not None:
            raise outcome
        return seq

    sender.reserve_and_queue(1, send, done.set_result, done.set_exception)
    return done


@pytest.fixture
def sender() -> Any:
    s = OrderedSender("test-sender", threading.Event())
    yield s
    s.close()


def test_a_clean_rejection_fails_only_its_own_request(sender: OrderedSender) -> None:
    """The server answered 400: it consumed the seq_id, so there is no hole."""
    rejected = _send(sender, _status_error(BadRequestError, 400))
    with pytest.raises(BadRequestError):
        rejected.result(timeout=5)
    assert _send(sender, None).result(timeout=5) == 2
    assert sender.poisoned is None


@pytest.mark.parametrize(
    "failure",
    [
        APIConnectionError(message="connection dropped"),
        _status_error(InternalServerError, 503),
        RuntimeError("encoding failed"),
    ],
    ids=["no-answer", "5xx-after-retries", "client-error"],
)
def test_an_unknown_outcome_poisons(sender: OrderedSender, failure: BaseException) -> None:
    """No answer (or one that does not say the seq_id was consumed): a hole may be left, so
    later requests fail fast instead of waiting for a seq_id that will never come."""
    with pytest.raises(type(failure)):
        _send(sender, failure).result(timeout=5)
    with pytest.raises(PoisonedError, match="poisoned"):
        _send(sender, None).result(timeout=5)
