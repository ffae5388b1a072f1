"""Training and model-creation waits log long "paused" queue states as the official SDK does
(issue 11.8): after 15 minutes paused, at most once a minute, as a WARNING naming what waits."""

from __future__ import annotations

import logging

import pytest

import tinkex
from tinkex import types
from tinkex._futures import QueueState
from tinkex.clients._queue_state import LOG_INTERVAL, PAUSE_GRACE, QueueStateLogger

from .conftest import FakeTinker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pause_is_reported_after_the_grace_period_then_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    observe = QueueStateLogger("run-1:train:0", "Training", clock=clock)
    caplog.set_level(logging.WARNING, logger="tinkex")
    observe(QueueState.PAUSED_CAPACITY, None)
    clock.now += PAUSE_GRACE - 1
    observe(QueueState.PAUSED_CAPACITY, None)
    assert caplog.records == []  # pauses are normal for a while
    clock.now += 2
    observe(QueueState.PAUSED_CAPACITY, None)
    clock.now += LOG_INTERVAL / 2
    observe(QueueState.PAUSED_CAPACITY, None)
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert message.startswith("Training for run-1:train:0 is paused (paused_capacity")
    assert "short on capacity" in message
    clock.now += LOG_INTERVAL
    observe(QueueState.PAUSED_RATE_LIMIT, "too many clients")  # a new state: a new grace
    assert len(caplog.records) == 1
    clock.now += PAUSE_GRACE
    observe(QueueState.PAUSED_RATE_LIMIT, "too many clients")
    assert caplog.records[-1].getMessage().endswith(": too many clients")


def test_active_resets_the_pause(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    observe = QueueStateLogger("Qwen/Qwen3-8B", "Model creation", clock=clock)
    caplog.set_level(logging.WARNING, logger="tinkex")
    observe(QueueState.PAUSED_CAPACITY, None)
    clock.now += PAUSE_GRACE - 10
    observe(QueueState.ACTIVE, None)
    clock.now += 20
    observe(QueueState.PAUSED_CAPACITY, None)
    assert caplog.records == []


def test_training_polls_feed_the_clients_logger(
    fake: FakeTinker, training: tinkex.TrainingClient, caplog: pytest.LogCaptureFixture
) -> None:
    logger = training._queue_state_logger
    assert (logger.identifier, logger.prefix) == (training.model_id, "Training")
    logger._grace = 0.0  # report at once
    caplog.set_level(logging.WARNING, logger="tinkex")
    fake.script_future(
        "req-2",
        (200, {"type": "try_again", "request_id": "req-2", "queue_state": "paused_rate_limit"}),
        (200, {"metrics": {}}),
    )
    training.optim_step(types.AdamParams()).result(timeout=10)
    paused = [r.getMessage() for r in caplog.records if "is paused" in r.getMessage()]
    assert paused and paused[0].startswith(f"Training for {training.model_id} is paused")
