"""Retry settings of sampling requests: :class:`RetryConfig` (twin of ``tinker``'s).

Same fields and defaults as ``tinker.lib.retry_handler.RetryConfig``; the sampling client
applies them around each sample submission (docs/protocol.md, "Sampling").
"""

from __future__ import annotations

from dataclasses import dataclass

from tinkex._exceptions import APIConnectionError, RetryableException

__all__ = ["RetryConfig"]


@dataclass
class RetryConfig:
    """How the sampling client retries failed sample requests.

    Attributes:
        max_connections: concurrent requests allowed; ``None`` disables the limit. The
            sampling client replaces it with the server's ``sample_max_concurrent_requests``
            (as the official SDK does), so there it has no effect.
        progress_timeout: seconds without any completed request before every waiting request
            fails with ``APIConnectionError`` ("stuck detection").
        retry_delay_base: first retry delay in seconds (doubles per attempt).
        retry_delay_max: cap of the retry delay in seconds.
        jitter_factor: delays are randomised by +/- this fraction.
        enable_retry_logic: retry at all.
        enable_stuck_detection: apply ``progress_timeout``.
        retryable_exceptions: exception types that are retried (besides retryable HTTP
            statuses 408/409/429/5xx).

    Raises:
        ValueError: ``max_connections`` is not positive.
    """

    max_connections: int | None = 1000
    progress_timeout: float = 120 * 60
    retry_delay_base: float = 0.5
    retry_delay_max: float = 10.0
    jitter_factor: float = 0.25
    enable_retry_logic: bool = True
    enable_stuck_detection: bool = True
    retryable_exceptions: tuple[type[Exception], ...] = (
        TimeoutError,
        APIConnectionError,
        RetryableException,
    )

    def __post_init__(self) -> None:
        if self.max_connections is not None and self.max_connections <= 0:
            raise ValueError(
                f"RetryConfig.max_connections must be positive or None, got {self.max_connections}"
            )

    def __hash__(self) -> int:
        return hash(
            (
                self.max_connections,
                self.progress_timeout,
                self.retry_delay_base,
                self.retry_delay_max,
                self.jitter_factor,
                self.enable_retry_logic,
                self.enable_stuck_detection,
                self.retryable_exceptions,
            )
        )
