"""``ServiceClient``: the entry point that creates training and sampling clients."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from tinkex._deprecation import async_twin, warn_deprecated
from tinkex._futures import APIFuture
from tinkex._poll_pacing import PollBackoffOption
from tinkex._transport.sdk_method import public_method
from tinkex.clients._holder import ClientHolder
from tinkex.clients._http_options import settings_from_options
from tinkex.clients._queue_state import QueueStateLogger
from tinkex.clients.training import BackcompatTrainingClientFuture, TrainingClient
from tinkex.types import _training as tr
from tinkex.types._converter import from_wire

if TYPE_CHECKING:
    from tinkex.clients.rest import RestClient
    from tinkex.clients.sampling import BackcompatSamplingClientFuture
    from tinkex.lib.retry_handler import RetryConfig
    from tinkex.recovery import RecoveryPolicy
    from tinkex.telemetry import Reporter
    from tinkex.types import GetServerCapabilitiesResponse

__all__ = ["ServiceClient"]

logger = logging.getLogger("tinkex")
_CONSOLE = "https://tinker.thinkingmachines.ai"


class ServiceClient:
    """Connects to the Tinker API and creates training and sampling clients.

    Nothing is sent until the first client is created (then the session starts, with a
    heartbeat every 10 s). Use it as a context manager, or call ``close()``, to finish the
    session::

        with tinkex.ServiceClient(base_url=server.base_url) as service:
            training = service.create_lora_training_client("Qwen/Qwen3-8B", rank=16).result()

    Args:
        user_metadata: key/values stored with the session.
        project_id: project of the session (default ``TINKER_PROJECT_ID``).
        display_name: session name shown in the console.
        base_url: server URL (default ``TINKER_BASE_URL``, then the hosted service).
        api_key: credential (default ``TINKER_API_KEY`` ...; see :mod:`tinkex._config`).
        default_headers_overrides: headers added to every request (over ``default_headers``).
        recovery: the :class:`~tinkex.recovery.RecoveryPolicy` that a
            :class:`~tinkex.recovery.RecoveryMonitor` of this client uses when it is given none
            (a tinkex extension; Elixir Tinkex's ``Config.recovery``). Nothing is watched until
            you create the monitor.
        heartbeat_interval: seconds between two session heartbeats (default 10, as the
            official SDK; a tinkex extension, Elixir Tinkex's ``heartbeat_interval_ms``).
        heartbeat_warning_after: seconds without a successful heartbeat before a WARNING
            (default 120; Elixir Tinkex's ``heartbeat_warning_after_ms``).
        poll_backoff: a pause before each immediate re-poll of a future: ``"exponential"``
            (1 s doubling to 30 s), ``"exponential:INITIAL:MAX"``,
            ``("exponential", INITIAL, MAX)``, a callable (polls in a row -> seconds) or
            ``"none"`` (default ``TINKEX_POLL_BACKOFF``, else none: the server's long poll is
            the wait; Elixir Tinkex's ``poll_backoff``).
        poll_timeout: seconds of polling one future before it fails with
            ``tinkex.PollTimeoutError`` (default ``TINKEX_POLL_TIMEOUT``, else no deadline;
            Elixir Tinkex's ``poll_timeout``).
        telemetry_events: with telemetry on, also report the HTTP requests and queue states of
            this session's calls to the server (default ``TINKEX_TELEMETRY_EVENTS``, off; Elixir
            Tinkex's reporter ``attach_events?``).
        sample_concurrency, sample_throttled_concurrency, sample_byte_budget: lower the
            dispatch limits of this client's samplers (samples in flight per sampler, submissions
            at once while throttled after a 429, estimated bytes in flight); the server's limits
            stay the ceiling (tinkex extensions, Elixir Tinkex's ``dispatch_concurrency``,
            ``throttled_dispatch_concurrency``, ``byte_budget``).
        **kwargs: the HTTP options of the official SDK (``timeout``, ``max_retries``,
            ``default_headers``, ``default_query``) and tinkex's ``connect_timeout``,
            ``max_connections``, ``proxy``, ``proxy_headers`` (docs/configuration.md);
            unknown options (an ``http_client`` too) are ignored with a ``FutureWarning``.
    """

    def __init__(
        self,
        user_metadata: dict[str, str] | None = None,
        project_id: str | None = None,
        *,
        display_name: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        default_headers_overrides: Mapping[str, str] | None = None,
        recovery: RecoveryPolicy | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_warning_after: float | None = None,
        poll_backoff: PollBackoffOption = None,
        poll_timeout: float | None = None,
        telemetry_events: bool | None = None,
        sample_concurrency: int | None = None,
        sample_throttled_concurrency: int | None = None,
        sample_byte_budget: int | None = None,
        **kwargs: Any,
    ) -> None:
        if recovery is not None:
            from tinkex.recovery import RecoveryPolicy

            if not isinstance(recovery, RecoveryPolicy):
                raise TypeError(
                    "ServiceClient(recovery=...) must be a tinkex.recovery.RecoveryPolicy, "
                    f"got {type(recovery).__name__}"
                )
        self._recovery = recovery
        settings = settings_from_options(
            "ServiceClient",
            kwargs,
            stacklevel=2,
            default_headers_overrides=default_headers_overrides,
            base_url=base_url,
            api_key=api_key,
            project_id=project_id,
            heartbeat_interval=heartbeat_interval,
            heartbeat_warning_after=heartbeat_warning_after,
            poll_backoff=poll_backoff,
            poll_timeout=poll_timeout,
            telemetry_events=telemetry_events,
            sample_concurrency=sample_concurrency,
            sample_throttled_concurrency=sample_throttled_concurrency,
            sample_byte_budget=sample_byte_budget,
        )
        self._holder = ClientHolder(
            settings,
            user_metadata=user_metadata,
            project_id=project_id,
            display_name=display_name,
        )

    @property
    def recovery_policy(self) -> RecoveryPolicy | None:
        """The ``recovery=`` policy this client was created with (``None``: none)."""
        return self._recovery

    @property
    def holder(self) -> ClientHolder:
        """DEPRECATED internal holder (kept for compatibility)."""
        return self._holder

    def __repr__(self) -> str:
        return f"ServiceClient(base_url={self._holder.settings.base_url!r})"

    # -- training clients -------------------------------------------------------------------------
    def _training_client(self, model_seq_id: int, model_id: str, sdk_method: str) -> TrainingClient:
        info = self._holder.call(
            "POST",
            "/api/v1/get_info",
            tr.GetInfoResponse,
            body=tr.GetInfoRequest(model_id=model_id),
            sdk_method=sdk_method,
        )
        return TrainingClient(self._holder, model_seq_id, model_id, info=info)

    @public_method
    def create_lora_training_client(
        self,
        base_model: str,
        rank: int = 32,
        seed: int | None = None,
        train_mlp: bool = True,
        train_attn: bool = True,
        train_unembed: bool = True,
        user_metadata: dict[str, str] | None = None,
        optimizer: tr.OptimizerConfig | None = None,
    ) -> BackcompatTrainingClientFuture:
        """Create a LoRA training run on ``base_model``; returns a future of its client.

        Example:
            >>> training = service.create_lora_training_client("Qwen/Qwen3-8B", rank=16).result()

        Raises:
            ValueError: no part is trainable, or ``rank`` < 1.
        """
        if not (train_mlp or train_attn or train_unembed):
            raise ValueError("at least one of train_mlp, train_attn, train_unembed must be True")
        lora = tr.LoraConfig(
            rank=rank,
            seed=seed,
            train_mlp=train_mlp,
            train_attn=train_attn,
            train_unembed=train_unembed,
        )
        holder = self._holder
        holder.check_open()
        sdk_method = "ServiceClient.create_lora_training_client"

        def create() -> TrainingClient:
            model_seq_id = holder.next_model_seq_id()
            request = tr.CreateModelRequest(
                session_id=holder.session_id(),
                model_seq_id=model_seq_id,
                base_model=base_model,
                user_metadata=user_metadata,
                lora_config=lora,
                optimizer_config=optimizer or tr.AdamOptimizerConfig(),
            )
            from tinkex._transport import NO_RETRY

            # create_model is retried by the HTTP layer only (docs/protocol.md, "Retries").
            created = holder.submit_and_poll(
                "/api/v1/create_model",
                request,
                request_type="CreateModel",
                decode=lambda r: from_wire(r.json(), tr.CreateModelResponse),
                sdk_method=sdk_method,
                retry=NO_RETRY,
                on_queue_state=QueueStateLogger(base_model, "Model creation"),
            )
            return self._training_client(model_seq_id, created.model_id, sdk_method)

        future: BackcompatTrainingClientFuture = BackcompatTrainingClientFuture.wrap(
            holder.run(create)
        )
        return future

    def _from_state(
        self,
        path: str,
        *,
        optimizer_state: bool,
        base_model: str | None,
        user_metadata: dict[str, str] | None,
        weights_access_token: str | None,
        optimizer: tr.OptimizerConfig | None,
        sdk_method: str,
    ) -> BackcompatTrainingClientFuture:
        from tinkex.types import ParsedCheckpointTinkerPath

        ParsedCheckpointTinkerPath.from_tinker_path(path)
        holder = self._holder
        holder.check_open()

        def create() -> TrainingClient:
            model_seq_id = holder.next_model_seq_id()
            session_id = holder.session_id()
            request = tr.LoadWeightsRequest(
                path=path,
                session_id=session_id,
                model_seq_id=model_seq_id,
                optimizer=optimizer_state,
                base_model=base_model,
                optimizer_config=optimizer,
                weights_access_token=weights_access_token,
                user_metadata=user_metadata,
            )
            loaded = holder.submit_and_poll(
                "/api/v1/load_weights",
                request,
                request_type="LoadWeights",
                decode=lambda r: from_wire(r.json(), tr.LoadWeightsResponse),
                sdk_method=sdk_method,
                on_queue_state=QueueStateLogger(
                    f"{session_id}:train:{model_seq_id}", "Model creation"
                ),
            )
            model_id = loaded.model_id or f"{session_id}:train:{model_seq_id}"
            return self._training_client(model_seq_id, model_id, sdk_method)

        future: BackcompatTrainingClientFuture = BackcompatTrainingClientFuture.wrap(
            holder.run(create)
        )
        return future

    @public_method
    def create_training_client_from_state(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
        optimizer: tr.OptimizerConfig | None = None,
    ) -> BackcompatTrainingClientFuture:
        """A new training run initialised with the weights of checkpoint ``path`` (fresh optimizer).

        Raises:
            ValueError: ``path`` is not a ``tinker://<run>/weights/<name>`` path.
        """
        return self._from_state(
            path,
            optimizer_state=False,
            base_model=base_model,
            user_metadata=user_metadata,
            weights_access_token=weights_access_token,
            optimizer=optimizer,
            sdk_method="ServiceClient.create_training_client_from_state",
        )

    @public_method
    def create_training_client_from_state_with_optimizer(
        self,
        path: str,
        base_model: str | None = None,
        user_metadata: dict[str, str] | None = None,
        weights_access_token: str | None = None,
    ) -> BackcompatTrainingClientFuture:
        """A new training run resuming checkpoint ``path``: weights and optimizer state."""
        return self._from_state(
            path,
            optimizer_state=True,
            base_model=base_model,
            user_metadata=user_metadata,
            weights_access_token=weights_access_token,
            optimizer=None,
            sdk_method="ServiceClient.create_training_client_from_state_with_optimizer",
        )

    # -- sampling clients --------------------------------------------------------------------------
    @public_method
    def create_sampling_client(
        self,
        model_path: str | None = None,
        base_model: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> BackcompatSamplingClientFuture:
        """A sampler for a saved checkpoint (``model_path``) or a base model.

        Raises:
            ValueError: neither given, or ``model_path`` does not start with ``tinker://``.
        """
        from tinkex.clients.sampling import SamplingClient

        future: BackcompatSamplingClientFuture = SamplingClient.create(
            self._holder,
            model_path=model_path,
            base_model=base_model,
            retry_config=retry_config,
            record_stability_info=record_stability_info,
        )
        return future

    @public_method
    def create_custom_loss(self, fn: Any, input_ranks: Mapping[str, int]) -> APIFuture[Any]:
        """Server-side custom losses (alpha in the official SDK) are not supported by tinkex.

        Use ``TrainingClient.forward_backward_custom(data, fn)``, which computes any loss
        client-side, instead.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            "create_custom_loss (server-side traced losses) is not supported by tinkex; pass "
            "your loss function to TrainingClient.forward_backward_custom instead"
        )

    # -- weights and REST -------------------------------------------------------------------------
    @public_method
    def copy_weights(
        self,
        path: str,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy checkpoint ``path`` into this client's project; future of the new path."""
        rest = self.create_rest_client_internal()
        try:
            future = rest.copy_weights(
                path,
                self._holder.project_id,
                ttl_seconds=ttl_seconds,
                weights_access_token=weights_access_token,
            )
        except BaseException:
            rest.close()
            raise
        future.add_done_callback(lambda _: rest.close())  # stop its worker threads when done
        return future

    def create_rest_client_internal(self) -> RestClient:
        """A RestClient sharing this client's settings (no deprecation warning)."""
        from tinkex.clients.rest import RestClient

        return RestClient(_holder=ClientHolder(self._holder.settings, with_session=False))

    def create_rest_client(self) -> RestClient:
        """DEPRECATED: use ``RestClient(base_url=..., api_key=...)``."""
        warn_deprecated("ServiceClient.create_rest_client", "construct RestClient() instead")
        return self.create_rest_client_internal()

    @public_method
    def get_server_capabilities(self) -> GetServerCapabilitiesResponse:
        """DEPRECATED: use ``RestClient().get_server_capabilities()``."""
        warn_deprecated(
            "ServiceClient.get_server_capabilities", "use RestClient().get_server_capabilities()"
        )
        with self.create_rest_client_internal() as rest:
            result: GetServerCapabilitiesResponse = rest.get_server_capabilities().result()
        return result

    async def get_server_capabilities_async(self) -> GetServerCapabilitiesResponse:
        """DEPRECATED: use ``await RestClient().get_server_capabilities()``."""
        warn_deprecated(
            "ServiceClient.get_server_capabilities_async",
            "use await RestClient().get_server_capabilities()",
        )
        import asyncio

        # The RestClient fetches the client config as it is made: a blocking round trip
        # (retried while the server is down) that must not stall the caller's event loop.
        rest = await asyncio.to_thread(self.create_rest_client_internal)
        with rest:
            result: GetServerCapabilitiesResponse = await rest.get_server_capabilities()
        return result

    # -- deprecated async creators -----------------------------------------------------------------
    create_lora_training_client_async = async_twin(create_lora_training_client)
    create_training_client_from_state_async = async_twin(create_training_client_from_state)
    create_training_client_from_state_with_optimizer_async = async_twin(
        create_training_client_from_state_with_optimizer
    )
    create_sampling_client_async = async_twin(create_sampling_client)

    # -- lifecycle ---------------------------------------------------------------------------------
    @public_method
    def close(
        self,
        status: Literal["success", "errored", "interrupted"] = "success",
        detail: str | None = None,
    ) -> APIFuture[None]:
        """Finish the session (``status``), stop background threads; idempotent.

        Returns a completed future (the work is done when this returns).
        """
        if status not in ("success", "errored", "interrupted"):
            raise ValueError(
                f"status must be 'success', 'errored' or 'interrupted', got {status!r}"
            )
        try:
            self._holder.close(status, detail)
        except Exception as exc:
            return APIFuture.failed(exc)
        return APIFuture.completed(None)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status: Literal["success", "errored", "interrupted"] = "success"
        elif issubclass(exc_type, Exception):
            status = "errored"
            reporter = self._holder.telemetry()
            if reporter is not None and exc is not None:
                reporter.log_fatal_exception(exc)
        else:
            status = "interrupted"
        self.close(status, None if exc is None else f"{type(exc).__name__}: {exc}"[:500])

    def get_console_url(self) -> str:
        """Console page of this session."""
        session_id = self._holder.current_session_id
        return f"{_CONSOLE}/sessions/{session_id}" if session_id else f"{_CONSOLE}/sessions"

    def get_telemetry(self) -> Reporter | None:
        """The telemetry reporter (batched events to ``/api/v1/telemetry``), or None when off.

        ``get_telemetry().log("my_event", {"k": 1})`` adds your own events.
        """
        return self._holder.telemetry()
