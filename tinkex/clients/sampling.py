"""``SamplingClient``: generate from a base model or saved LoRA weights, and score prompts."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinkex._deprecation import async_twin
from tinkex._exceptions import APIConnectionError
from tinkex._futures import APIFuture, QueueStateCallback
from tinkex._transport import estimate_sample_bytes
from tinkex._transport.headers import json_bytes
from tinkex._transport.retry import RetryPolicy
from tinkex._transport.sdk_method import public_method
from tinkex.clients._backcompat import ClientFuture, client_names
from tinkex.clients._sample_submit import (
    ASAMPLE,
    QueueStateObserver,
    SampleCall,
    SampleSeqIds,
    observer_callback,
    sample_once,
    sample_once_async,
)
from tinkex.lib.retry_handler import RetryConfig
from tinkex.telemetry._context import metadata
from tinkex.types import _sampling as smp
from tinkex.types._converter import from_wire, to_wire
from tinkex.types._model_input import ModelInput
from tinkex.types._session import ClientConfigResponse
from tinkex.types._tensor import TensorData

if TYPE_CHECKING:
    from tinkex._transport.aio import AsyncTransport
    from tinkex.clients._holder import ClientHolder
    from tinkex.clients._session_poller import SessionFuturesPoller
    from tinkex.telemetry import Reporter
    from tinkex.tokenizer import Tokenizer

__all__ = ["BackcompatSamplingClientFuture", "SamplingClient"]

logger = logging.getLogger("tinkex")
_CLONE_STRIDE = 1_000_000_000
#: The concurrency "limit" of samples that wait on the session futures poller.
_UNLIMITED = 1 << 30
_QUEUE_LOG_INTERVAL = 60.0


class SamplingClient:
    """Samples from one sampler (a base model or a saved checkpoint).

    Get one from ``ServiceClient.create_sampling_client(...)`` or
    ``TrainingClient.save_weights_and_get_sampling_client()``. ``sample`` returns a future at
    once, so fan-out is just a loop::

        futures = [sampling_client.sample(prompt, 1, params) for prompt in prompts]
        results = [f.result() for f in futures]

    Retries (connection errors, 408/409/429/5xx, lost results) follow ``retry_config``. A
    SamplingClient pickles (API key included) so it can be sent to worker processes.
    """

    def __init__(
        self,
        holder: ClientHolder,
        *,
        sampling_session_id: str,
        base_model: str,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
        clone_id: int = 0,
        tokenizer_id: str | None = None,
    ) -> None:
        self.holder = holder
        self.sampling_session_id = sampling_session_id
        self._base_model = base_model
        # Tokenizer id reported by the server for the model, when known; otherwise the
        # tokenizer is looked up by the base model name, as the official SDK does.
        self.tokenizer_id = tokenizer_id
        self.retry_config = retry_config or RetryConfig()
        self.record_stability_info = record_stability_info
        self._clone_id = clone_id
        self._seq_lock = threading.Lock()
        self._next_seq = clone_id * _CLONE_STRIDE
        # Samples in flight at once: the server's limit, which (as in the official SDK)
        # overrides ``retry_config.max_connections``, even on a caller's RetryConfig.
        config = holder.client_config()
        limit = config.sample_max_concurrent_requests
        own = holder.settings.sample_concurrency  # the client's own, lower, limit
        if own is not None:
            limit = min(limit, own)
        self._slots = threading.BoundedSemaphore(limit)
        # Samples waiting on the session futures poller hold no poll each, so (as in the
        # official SDK) the server's limit does not apply to them.
        self._limit = (own or _UNLIMITED) if config.sample_use_retrieve_futures else limit
        self._async_slots: asyncio.Semaphore | None = None
        self._last_queue_log = 0.0
        self._policy: RetryPolicy | None = None
        self._poller: SessionFuturesPoller | None = None

    def __repr__(self) -> str:
        return f"SamplingClient(sampling_session_id={self.sampling_session_id!r})"

    # -- construction ------------------------------------------------------------------------------
    @staticmethod
    def create(
        holder: ClientHolder,
        *,
        model_path: str | None = None,
        base_model: str | None = None,
        sampling_session_id: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> BackcompatSamplingClientFuture:
        """Create a sampling session on the server; returns a future of the client."""
        if model_path is None and base_model is None and sampling_session_id is None:
            raise ValueError("create_sampling_client needs model_path or base_model")
        if model_path is not None and not model_path.startswith("tinker://"):
            raise ValueError(f"model_path must start with 'tinker://', got {model_path!r}")
        holder.check_open()

        def create() -> SamplingClient:
            session_id = sampling_session_id
            # ``tokenizer_id`` is a tinkex extension of the sampler answers (the local server
            # sends it: any base-model name is served by its byte-tokenizer model); the
            # official service does not, and the tokenizer then follows the base model name.
            tokenizer_id: str | None = None
            if session_id is None:
                request = smp.CreateSamplingSessionRequest(
                    session_id=holder.session_id(),
                    sampling_session_seq_id=holder.next_sampling_session_seq_id(),
                    base_model=base_model,
                    model_path=model_path,
                )
                response = holder.transport.request(
                    "POST",
                    "/api/v1/create_sampling_session",
                    json=to_wire(request),
                    stop=holder.stop_event,
                )
                raw = response.json()
                created = from_wire(
                    raw,
                    smp.CreateSamplingSessionResponse,
                    request="POST /api/v1/create_sampling_session",
                )
                session_id = created.sampling_session_id
                tokenizer_id = _extension_str(raw, "tokenizer_id")
            resolved_base = base_model
            if resolved_base is None:
                raw_sampler = holder.request("GET", f"/api/v1/samplers/{session_id}").json()
                sampler = from_wire(
                    raw_sampler, smp.GetSamplerResponse, request="GET /api/v1/samplers/{id}"
                )
                resolved_base = sampler.base_model
                tokenizer_id = tokenizer_id or _extension_str(raw_sampler, "tokenizer_id")
            return SamplingClient(
                holder,
                sampling_session_id=session_id,
                base_model=resolved_base,
                retry_config=retry_config,
                record_stability_info=record_stability_info,
                tokenizer_id=tokenizer_id,
            )

        return BackcompatSamplingClientFuture.wrap(holder.run(create))

    # -- sampling ----------------------------------------------------------------------------------
    def _next_seq_id(self) -> int:
        with self._seq_lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    @public_method
    def sample(
        self,
        prompt: ModelInput,
        num_samples: int,
        sampling_params: smp.SamplingParams,
        include_prompt_logprobs: bool = False,
        topk_prompt_logprobs: int = 0,
        topk_sample_logprobs: int = 0,
        target_prompt_logprobs: TensorData | None = None,
        prompt_alt_tokens_k: int = 0,
        prompt_logprobs_last_n: int | None = None,
        *,
        timeout: float | None = None,
        telemetry_metadata: Mapping[str, Any] | None = None,
        queue_state_observer: QueueStateCallback | QueueStateObserver | None = None,
    ) -> APIFuture[smp.SampleResponse]:
        """Generate ``num_samples`` continuations of ``prompt``.

        The keyword-only options are tinkex extensions (Elixir Tinkex's sample options):
        ``timeout`` is the HTTP read timeout, in seconds, of each ``asample`` submission of this
        call (default: the client's; polls keep their 45 s long poll; to bound the wait for the
        result use ``future.result(timeout)``); ``telemetry_metadata`` is added to the
        telemetry events of the call's requests, as :func:`tinkex.telemetry.metadata` does;
        ``queue_state_observer(state, reason)`` (or its ``on_queue_state_change``, as on a
        ``tinker`` ``QueueStateObserver``) is called with each queue state the server reports
        while the call waits (``ACTIVE`` on completion).

        Example:
            >>> params = types.SamplingParams(max_tokens=20, temperature=0.7)
            >>> fut = sampling_client.sample(types.ModelInput.from_ints(tokens), 4, params)
            >>> [seq.tokens for seq in fut.result().sequences]  # doctest: +SKIP

        Raises:
            ValueError/TypeError: invalid arguments (checked before anything is sent).
        """
        if not isinstance(prompt, ModelInput):
            raise TypeError(f"prompt must be a ModelInput, got {type(prompt).__name__}")
        if not isinstance(sampling_params, smp.SamplingParams):
            raise TypeError(
                f"sampling_params must be SamplingParams, got {type(sampling_params).__name__}"
            )
        if prompt_logprobs_last_n is not None and not include_prompt_logprobs:
            raise ValueError("prompt_logprobs_last_n requires include_prompt_logprobs=True")
        if target_prompt_logprobs is not None:
            _check_target_prompt_logprobs(target_prompt_logprobs, prompt.length)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        request = smp.SampleRequest(
            num_samples=num_samples,
            prompt=prompt,
            sampling_params=sampling_params,
            sampling_session_id=self.sampling_session_id,
            prompt_logprobs=include_prompt_logprobs,
            topk_prompt_logprobs=topk_prompt_logprobs,
            topk_sample_logprobs=topk_sample_logprobs,
            target_prompt_logprobs=target_prompt_logprobs,
            prompt_alt_tokens_k=prompt_alt_tokens_k,
            prompt_logprobs_last_n=prompt_logprobs_last_n,
            record_stability_info=self.record_stability_info,
        )
        call = SampleCall(
            body=json_bytes(to_wire(request)),
            nbytes=estimate_sample_bytes(prompt),
            alt_k=prompt_alt_tokens_k,
            last_n=prompt_logprobs_last_n,
            timeout=None if timeout is None else float(timeout),
            observer=observer_callback(queue_state_observer),
        )
        if telemetry_metadata:
            # The call's work inherits this context (worker thread or I/O loop task).
            with metadata(**telemetry_metadata):
                return self._submit(call)
        # (Without metadata the context is left as it is: a dict of it per sample in flight.)
        return self._submit(call)

    def _submit(self, call: SampleCall) -> APIFuture[smp.SampleResponse]:
        """Start ``call``: a coroutine on the holder's I/O loop, else a worker thread's job."""
        io = self.holder.io()
        if io is not None:
            return self.holder.spawn(self._sample_async, io[1], call)
        return self.holder.run(self._sample_with_retries, call, sampling=True)

    def _sample_with_retries(self, call: SampleCall) -> smp.SampleResponse:
        """The call on a worker thread: attempts under the retry policy, within the slots."""
        policy = self._retry_policy()
        seq_ids = SampleSeqIds(self._next_seq_id)
        with self._slots:
            result = policy.run(
                lambda: sample_once(self.holder, call, seq_ids, self.on_queue_state_change),
                **self._retry_options(policy),
            )
        return call.checked(result)

    async def _sample_async(self, aio: AsyncTransport, call: SampleCall) -> smp.SampleResponse:
        """:meth:`_sample_with_retries` as a coroutine on the holder's I/O loop (no thread)."""
        policy = self._retry_policy()
        seq_ids = SampleSeqIds(self._next_seq_id)
        slots = self._async_slots
        if slots is None:  # created on the loop's thread, the only one that uses it
            slots = self._async_slots = asyncio.Semaphore(self._limit)
        poller = self._session_poller(aio)
        # A partial, not a lambda: one object per sample in flight instead of a function and
        # the cells of its five free variables.
        attempt = functools.partial(
            sample_once_async, self.holder, aio, call, seq_ids, self.on_queue_state_change, poller
        )
        await slots.acquire()  # not `async with`: its exit would be held per sample in flight
        try:
            result = await policy.arun(attempt, **self._retry_options(policy))
        finally:
            slots.release()
        return call.checked(result)

    def _session_poller(self, aio: AsyncTransport) -> SessionFuturesPoller | None:
        """The session futures poller when the server says ``sample_use_retrieve_futures``
        (created on the I/O loop's thread, the only one that uses it); else None."""
        config = self.holder.client_config()
        if not config.sample_use_retrieve_futures:
            return None
        if self._poller is None:
            from tinkex.clients._session_poller import SessionFuturesPoller

            io = self.holder.io()
            assert io is not None, "async samples run on the holder's I/O loop"
            self._poller = SessionFuturesPoller(
                io[0],
                aio,
                sampling_session_id=self.sampling_session_id,
                clone_id=self._clone_id,
                stop=self.holder.stop_event,
                billing_max_pause=float(config.billing_exception_max_pause_duration_sec),
            )
        return self._poller

    def _retry_options(self, policy: RetryPolicy) -> dict[str, Any]:
        """The keyword arguments of ``policy.run``/``policy.arun`` for a sample's attempts."""
        return {
            "describe": ASAMPLE,
            "stop_event": self.holder.stop_event,
            # Retries are unlimited when on, so a spent budget is the progress timeout.
            "give_up": self._no_progress if policy.max_retries is None else None,
        }

    def _no_progress(self, exc: BaseException) -> BaseException:
        return APIConnectionError(
            message=f"No progress made in {self.retry_config.progress_timeout}s sampling "
            f"from {self.sampling_session_id}; last error: {exc}"
        )

    def _retry_policy(self) -> RetryPolicy:
        """The RetryConfig policy with the server's switches (built once per client)."""
        policy = self._policy
        if policy is None:
            server = self.holder.client_config()
            policy = self._policy = RetryPolicy.from_retry_config(
                self.retry_config,
                enabled=not server.sample_no_retries,
                stuck_detection=server.sample_enable_stuck_detection,
            )
        return policy

    @public_method
    def compute_logprobs(
        self, prompt: ModelInput, prompt_logprobs_last_n: int | None = None
    ) -> APIFuture[list[float | None]]:
        """Logprob of every prompt token under the model (the first is None)."""
        future = self.sample(
            prompt,
            1,
            smp.SamplingParams(max_tokens=1),
            include_prompt_logprobs=True,
            prompt_logprobs_last_n=prompt_logprobs_last_n,
        )

        def extract(response: smp.SampleResponse) -> list[float | None]:
            if response.prompt_logprobs is None:
                raise ValueError("the server returned no prompt logprobs")
            return response.prompt_logprobs

        return future.map(extract)

    def on_queue_state_change(self, queue_state: Any, queue_state_reason: str | None) -> None:
        """Log (at most once a minute) when the server pauses sampling."""
        if str(queue_state) == "active":
            return
        now = time.monotonic()
        if now - self._last_queue_log >= _QUEUE_LOG_INTERVAL:
            self._last_queue_log = now
            logger.warning(
                "Sampling is paused (%s): %s", queue_state, queue_state_reason or "no reason given"
            )

    # -- info --------------------------------------------------------------------------------------
    def get_base_model(self) -> str:
        """The base model of this sampler (no request)."""
        return self._base_model

    def get_tokenizer(self) -> Tokenizer:
        """The tokenizer of the base model, as the official SDK returns it: a ``transformers``
        tokenizer when ``transformers`` is installed, tinkex's own otherwise (see
        :func:`tinkex.tokenizer.tokenizer_for_model`; the sampler's ``tokenizer_id``, when the
        server sends one, wins over the base model's name)."""
        from tinkex.tokenizer import tokenizer_for_model

        return tokenizer_for_model(self._base_model, self.tokenizer_id)

    def get_telemetry(self) -> Reporter | None:
        """The telemetry reporter (batched events to ``/api/v1/telemetry``), or None when off.

        ``get_telemetry().log("my_event", {"k": 1})`` adds your own events.
        """
        return self.holder.telemetry()

    # -- handles and pickling ----------------------------------------------------------------------
    def _state(self, include_key: bool) -> dict[str, Any]:
        settings = self.holder.settings
        return {
            "base_url": settings.base_url,
            "api_key": settings.api_key if include_key else None,
            "default_headers": dict(settings.default_headers),
            "sampling_session_id": self.sampling_session_id,
            "base_model": self._base_model,
            "tokenizer_id": self.tokenizer_id,
            "record_stability_info": self.record_stability_info,
            # Unpickled copies reuse the server config instead of fetching it again.
            "client_config": to_wire(self.holder.client_config()),
        }

    def get_sampler_handle(self) -> str:
        """A credential-free string that ``from_sampler_handle`` turns back into a client."""
        raw = json.dumps(self._state(include_key=False)).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii")

    @staticmethod
    def from_sampler_handle(handle: str, *, api_key: str | None = None) -> SamplingClient:
        """A client for the sampler behind ``handle`` (credentials resolved here)."""
        try:
            state = json.loads(base64.urlsafe_b64decode(handle.encode("ascii")))
        except ValueError as exc:
            raise ValueError(f"not a sampler handle: {exc}") from None
        state["api_key"] = api_key
        return _restore(state)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self._state(include_key=True),))

    # -- deprecated async twins --------------------------------------------------------------------
    sample_async = async_twin(sample)
    compute_logprobs_async = async_twin(compute_logprobs)
    get_base_model_async = async_twin(get_base_model)


class BackcompatSamplingClientFuture(ClientFuture, SamplingClient):  # type: ignore[misc]
    """Future of a :class:`SamplingClient` (also usable as one, with a deprecation warning)."""

    _client_type = SamplingClient
    _client_names = client_names(
        SamplingClient,
        "sampling_session_id",
        "retry_config",
        "record_stability_info",
        "tokenizer_id",
    )

    def __init__(self) -> None:
        APIFuture.__init__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles as the client it resolves to (waiting for it), as tinker's does: workers of a
        # process pool receive a SamplingClient.
        client: SamplingClient = APIFuture.result(self)
        return client.__reduce__()


def _restore(state: dict[str, Any]) -> SamplingClient:
    from tinkex._config import ClientSettings
    from tinkex.clients._holder import ClientHolder

    settings = ClientSettings.resolve(
        base_url=state["base_url"],
        api_key=state.get("api_key"),
        default_headers=state.get("default_headers") or None,
    )
    holder = ClientHolder(settings, with_session=False)
    config = state.get("client_config")
    if isinstance(config, dict):
        holder.set_client_config(from_wire(config, ClientConfigResponse))
    client = SamplingClient(
        holder,
        sampling_session_id=state["sampling_session_id"],
        base_model=state["base_model"],
        record_stability_info=bool(state.get("record_stability_info")),
        clone_id=random.randint(1, _CLONE_STRIDE),
        tokenizer_id=state.get("tokenizer_id"),
    )
    holder.close_with(client)  # the holder is the client's alone
    return client


def _check_target_prompt_logprobs(tensor: TensorData, prompt_length: int) -> None:
    if not isinstance(tensor, TensorData):
        raise TypeError(f"target_prompt_logprobs must be TensorData, got {type(tensor).__name__}")
    if tensor.dtype != "int64":
        raise ValueError(f"target_prompt_logprobs must be int64, got {tensor.dtype}")
    if tensor.shape is None or len(tensor.shape) != 2 or tensor.shape[0] != prompt_length - 1:
        raise ValueError(
            f"target_prompt_logprobs must have shape [len(prompt) - 1, K] = "
            f"[{prompt_length - 1}, K], got {tensor.shape}"
        )


def _extension_str(body: Any, key: str) -> str | None:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) and value else None
