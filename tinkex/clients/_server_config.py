"""What the server tells a holder about itself, and the budgets sized from it.

* The client config (``POST /api/v1/client/config``): mandatory, fetched once per holder
  (docs/protocol.md, "Life cycle"); a pickled client carries it to its copies. It sizes the
  byte budgets of in-flight forward/backward and sample submissions and of large results, and
  switches JWT auth on (``pjwt_auth_enabled``).
* The dynamic config (``POST /api/v1/client/dynamic_config``): flags such as
  ``sample_cancel_enabled``, fetched after the client config and refreshed by the heartbeat
  at most every ``max(refresh_interval_sec, DYNAMIC_CONFIG_MIN_REFRESH)`` seconds; defaults
  when the server has no such endpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tinkex._transport import NO_RETRY, BytesSemaphore
from tinkex._transport.sdk_method import background
from tinkex._version import TINKER_SDK_VERSION
from tinkex.types import _session as ses
from tinkex.types._converter import from_wire, to_wire

if TYPE_CHECKING:
    from tinkex._transport import Transport

__all__ = ["DYNAMIC_CONFIG_MIN_REFRESH", "ServerConfig"]

logger = logging.getLogger("tinkex")

#: The dynamic config is refreshed at most this often, whatever the server asks.
DYNAMIC_CONFIG_MIN_REFRESH = 10.0


class ServerConfig:
    """The server's client config and dynamic flags, and the byte budgets they size.

    Args:
        transport: the holder's transport (dynamic config requests, JWT switch).
        stop: the holder's stop event (an unanswered dynamic-config request gives up on it).
        fetch: sends ``POST /api/v1/client/config`` (under the holder's retry policy) and
            parses the answer.
        sample_byte_budget: the client's own cap of the sample byte budget (None: none).
    """

    def __init__(
        self,
        transport: Transport,
        stop: threading.Event,
        fetch: Callable[[], ses.ClientConfigResponse],
        *,
        sample_byte_budget: int | None = None,
    ) -> None:
        self._sample_byte_cap = sample_byte_budget
        self._transport = transport
        self._stop = stop
        self._fetch = fetch
        self._lock = threading.RLock()
        self._config: ses.ClientConfigResponse | None = None
        self._dynamic: ses.ClientDynamicConfigResponse | None = None
        self._dynamic_fetched = 0.0
        self._fwdbwd_bytes: BytesSemaphore | None = None
        self._sample_bytes: BytesSemaphore | None = None
        self._response_bytes: BytesSemaphore | None = None

    def __repr__(self) -> str:
        return f"ServerConfig(fetched={self._config is not None}, dynamic={self._dynamic})"

    # -- client config -------------------------------------------------------------------------
    @property
    def known(self) -> ses.ClientConfigResponse | None:
        """The client config if already fetched (or set), without fetching it."""
        return self._config

    def client_config(self) -> ses.ClientConfigResponse:
        """The client config, fetched on first use (then the dynamic config too)."""
        config = self._config
        if config is not None:
            return config
        with self._lock, background():
            config = self._config
            if config is None:
                config = self._adopt(self._fetch())
                self.refresh_dynamic()
            return config

    def set_client_config(self, config: ses.ClientConfigResponse) -> None:
        """Use ``config`` (e.g. carried by a pickled client) instead of fetching it; as with a
        fetched one, ``pjwt_auth_enabled`` switches the transport to JWTs (exchanged now)."""
        with self._lock, background():
            if self._config is None:
                self._adopt(config)

    def _adopt(self, config: ses.ClientConfigResponse) -> ses.ClientConfigResponse:
        """Make ``config`` this holder's, switching to JWTs first when it asks for them."""
        if config.pjwt_auth_enabled:
            self._transport.use_jwt(
                use_credential_cmd=config.credential_default_source == "credential_cmd"
            )
        self._config = config
        return config

    # -- dynamic config --------------------------------------------------------------------------
    def dynamic_config(self) -> ses.ClientDynamicConfigResponse:
        """The dynamic flags (fetched on first use; the defaults when unavailable)."""
        dynamic = self._dynamic
        if dynamic is None:
            with self._lock:
                if self._dynamic is None:
                    self.refresh_dynamic()
                dynamic = self._dynamic
        assert dynamic is not None
        return dynamic

    def dynamic_stale(self) -> bool:
        """True when the dynamic flags are due for a refresh."""
        dynamic = self._dynamic
        if dynamic is None:
            return True
        interval = max(float(dynamic.refresh_interval_sec), DYNAMIC_CONFIG_MIN_REFRESH)
        return time.monotonic() - self._dynamic_fetched >= interval

    def refresh_dynamic(self) -> None:
        """One ``POST /api/v1/client/dynamic_config`` (10 s, no retries); a failure keeps the
        flags known so far (the defaults at first)."""
        with background():
            try:
                response = self._transport.request(
                    "POST",
                    "/api/v1/client/dynamic_config",
                    json={"sdk_version": TINKER_SDK_VERSION},
                    timeout=10.0,
                    retry=NO_RETRY,
                    stop=self._stop,
                )
                dynamic = from_wire(
                    response.json() or {},
                    ses.ClientDynamicConfigResponse,
                    request="POST /api/v1/client/dynamic_config",
                )
            except Exception as exc:
                logger.debug("dynamic client config not refreshed: %s", exc)
                if self._dynamic is None:
                    self._dynamic = ses.ClientDynamicConfigResponse()
            else:
                if self._dynamic is not None and dynamic != self._dynamic:
                    logger.debug("dynamic client config changed: %s", to_wire(dynamic))
                self._dynamic = dynamic
            self._dynamic_fetched = time.monotonic()

    # -- budgets sized by the client config -------------------------------------------------------
    def fwdbwd_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight forward/backward submissions."""
        with self._lock:
            if self._fwdbwd_bytes is None:
                size = self.client_config().fwdbwd_dispatch_bytes_semaphore_size
                self._fwdbwd_bytes = BytesSemaphore(size)
            return self._fwdbwd_bytes

    def sample_bytes(self) -> BytesSemaphore:
        """Budget of estimated bytes of in-flight sample submissions (the server's size, or the
        client's cap when lower)."""
        with self._lock:
            if self._sample_bytes is None:
                size = self.client_config().sample_dispatch_bytes_semaphore_size
                if self._sample_byte_cap is not None:
                    size = min(size, self._sample_byte_cap)
                self._sample_bytes = BytesSemaphore(size)
            return self._sample_bytes

    def response_bytes(self) -> BytesSemaphore:
        """Budget for large results announced by ``complete_metadata`` answers."""
        with self._lock:
            if self._response_bytes is None:
                size = self.client_config().inflight_response_bytes_semaphore_size
                self._response_bytes = BytesSemaphore(size)
            return self._response_bytes
