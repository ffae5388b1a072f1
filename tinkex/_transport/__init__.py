"""The HTTP layer: transport, response, retry policies, flow control and byte estimates.

Importing this package is cheap: ``requests`` and ``tenacity`` are imported when the first
:class:`Transport` or tenacity-backed policy piece is built.
"""

from tinkex._transport._response import PROTOBUF_CONTENT_TYPE, Response, parse_retry_after
from tinkex._transport.estimates import (
    estimate_datum_bytes,
    estimate_model_input_bytes,
    estimate_sample_bytes,
    estimate_tensor_bytes,
)
from tinkex._transport.limits import BytesSemaphore, RateLimiter
from tinkex._transport.retry import (
    HTTP_DEFAULT,
    NO_RETRY,
    RETRYABLE_STATUSES,
    RetryPolicy,
    holder_retry_policy,
    http_retry_policy,
)
from tinkex._transport.transport import USER_AGENT, Transport

__all__ = [
    "HTTP_DEFAULT",
    "NO_RETRY",
    "PROTOBUF_CONTENT_TYPE",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "BytesSemaphore",
    "RateLimiter",
    "Response",
    "RetryPolicy",
    "Transport",
    "estimate_datum_bytes",
    "estimate_model_input_bytes",
    "estimate_sample_bytes",
    "estimate_tensor_bytes",
    "holder_retry_policy",
    "http_retry_policy",
    "parse_retry_after",
]
