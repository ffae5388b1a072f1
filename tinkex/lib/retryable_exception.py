"""``tinkex.lib.retryable_exception.RetryableException`` (twin of the tinker module path)."""

from tinkex._exceptions import RetryableException

__all__ = ["RetryableException"]
