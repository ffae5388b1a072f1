"""tinkex: a thread-pool, drop-in replacement for the Tinker Python SDK (0.38 API).

``import tinkex as tinker`` keeps scripts written for the official SDK working. Public names are
loaded lazily on first access so that importing tinkex stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tinkex._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    ExperimentalWarning,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestFailedError,
    TinkerError,
    UnprocessableEntityError,
)
from tinkex._version import __version__

__title__ = "tinkex"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY: dict[str, str] = {}

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = [
    "__version__",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConflictError",
    "ExperimentalWarning",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestFailedError",
    "TinkerError",
    "UnprocessableEntityError",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        if name in ("types", "telemetry", "local", "auth"):
            return importlib.import_module(f"tinkex.{name}")
        raise AttributeError(f"module 'tinkex' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(__all__))
