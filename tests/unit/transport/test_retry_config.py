"""tinkex.lib.retry_handler.RetryConfig mirrors tinker.lib.retry_handler.RetryConfig."""

from __future__ import annotations

import dataclasses

import pytest

from tinkex._exceptions import APIConnectionError, RetryableException
from tinkex.lib.retry_handler import RetryConfig


def test_fields_and_defaults() -> None:
    config = RetryConfig()
    assert config.max_connections == 1000
    assert config.progress_timeout == 7200.0
    assert config.retry_delay_base == 0.5
    assert config.retry_delay_max == 10.0
    assert config.jitter_factor == 0.25
    assert config.enable_retry_logic is True
    assert config.enable_stuck_detection is True
    assert TimeoutError in config.retryable_exceptions
    assert APIConnectionError in config.retryable_exceptions
    assert RetryableException in config.retryable_exceptions


def test_same_field_names_and_defaults_as_tinker() -> None:
    tinker_retry = pytest.importorskip("tinker.lib.retry_handler")
    ours = {f.name: f.default for f in dataclasses.fields(RetryConfig)}
    theirs = {f.name: f.default for f in dataclasses.fields(tinker_retry.RetryConfig)}
    assert list(ours) == list(theirs)
    for name in ours:
        if name != "retryable_exceptions":
            assert ours[name] == theirs[name], name


def test_validation_hash_and_replace() -> None:
    with pytest.raises(ValueError, match="max_connections must be positive or None, got 0"):
        RetryConfig(max_connections=0)
    assert RetryConfig(max_connections=None).max_connections is None
    assert hash(RetryConfig()) == hash(RetryConfig())
    assert {RetryConfig(), RetryConfig()} == {RetryConfig()}
    assert dataclasses.replace(RetryConfig(), jitter_factor=0.0).jitter_factor == 0.0
