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


def test_with_nothing_queued_the_call_finishes_on_the_thread_that_sent_it(
    sender: OrderedSender,
) -> None:
    # No hand-off to another thread for the result of a call nothing follows; a call made
    # while that thread blocks for it is still sent at once (by a new sender thread).
    release = threading.Event()
    where: Future[tuple[str, int]] = Future()

    def finish_here(seq: int) -> None:
        where.set_result((threading.current_thread().name, seq))
        release.wait(10)

    def not_here(seq: int) -> None:
        where.set_exception(AssertionError("handed off although nothing was queued"))

    sender.reserve_and_queue(1, lambda seq: seq, not_here, where.set_exception, finish_here)
    assert where.result(timeout=5) == ("test-sender", 1)
    assert _send(sender, None).result(timeout=5) == 2  # while the first thread still blocks
    release.set()


def test_a_call_with_another_queued_behind_it_hands_its_result_off(
    sender: OrderedSender,
) -> None:
    gate = threading.Event()
    handed: Future[int] = Future()

    def first(seq: int) -> int:
        gate.wait(10)  # the second call is queued meanwhile
        return seq

    def here(seq: int) -> None:
        handed.set_exception(AssertionError("finished on the sender with a call waiting"))

    sender.reserve_and_queue(1, first, handed.set_result, handed.set_exception, here)
    second = _send(sender, None)
    gate.set()
    assert handed.result(timeout=5) == 1
    assert second.result(timeout=5) == 2


def test_a_call_after_close_fails_at_once(sender: OrderedSender) -> None:
    sender.close()
    with pytest.raises(RuntimeError, match="closed"):
        _send(sender, None).result(timeout=5)


def test_sequential_calls_finished_on_the_sender_keep_one_thread(
    sender: OrderedSender,
) -> None:
    threads: list[threading.Thread] = []  # held, so no two are the same object

    def here(seq: int) -> None:
        threads.append(threading.current_thread())

    for _ in range(20):
        done: Future[int] = Future()

        def finish(seq: int, done: Future[int] = done) -> None:
            here(seq)
            done.set_result(seq)

        sender.reserve_and_queue(1, lambda seq: seq, done.set_exception, done.set_exception, finish)
        done.result(timeout=5)
    assert len({id(thread) for thread in threads}) <= 2, threads  # not a new thread per call
