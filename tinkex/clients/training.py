"""``TrainingClient``: forward/backward, optimizer steps and checkpoints of one LoRA model."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from tinkex._deprecation import async_twin, warn_deprecated
from tinkex._futures import APIFuture
from tinkex._transport import HTTP_DEFAULT, NO_RETRY, Response
from tinkex._transport.sdk_method import public_method
from tinkex.clients._backcompat import ClientFuture, client_names
from tinkex.clients._chunking import combine_outputs
from tinkex.clients._custom_loss_step import CustomLossStep
from tinkex.clients._fwdbwd import (
    ChunkResult,
    decode_fwdbwd,
    plan_chunks,
    send_chunk,
    submit_chunks,
)
from tinkex.clients._ordered import OrderedSender
from tinkex.clients._queue_state import QueueStateLogger
from tinkex.clients._results import json_decoder, path_decoder
from tinkex.types import _training as tr
from tinkex.types._converter import from_wire, to_wire
from tinkex.types._datum import Datum

if TYPE_CHECKING:
    from tinkex.clients._holder import ClientHolder
    from tinkex.clients.sampling import SamplingClient
    from tinkex.lib.retry_handler import RetryConfig
    from tinkex.regularizers import RegularizerSpec
    from tinkex.telemetry import Reporter
    from tinkex.tokenizer import Tokenizer

__all__ = ["BackcompatTrainingClientFuture", "CustomLossFnV1", "TrainingClient"]

logger = logging.getLogger("tinkex")

CustomLossFnV1 = Callable[[list[Datum], list[Any]], tuple[Any, dict[str, float]]]
_CONSOLE = "https://tinker.thinkingmachines.ai"


class TrainingClient:
    """Trains one LoRA model: ``forward_backward`` + ``optim_step``, checkpoints, samplers.

    Obtain one from ``ServiceClient.create_lora_training_client(...)``. Every method returns
    an :class:`~tinkex.APIFuture` at once; requests are *sent* in call order, so you may queue
    the next step before the previous one finished::

        fwd = training_client.forward_backward(batch, "cross_entropy")
        opt = training_client.optim_step(types.AdamParams(learning_rate=1e-4))
        print(fwd.result().metrics["loss:sum"], opt.result())
    """

    def __init__(
        self,
        holder: ClientHolder,
        model_seq_id: int,
        model_id: str,
        *,
        info: tr.GetInfoResponse,
    ) -> None:
        self.holder = holder
        self.model_id = model_id
        self.model_seq_id = model_seq_id
        self._info = info
        self._sender = OrderedSender(f"tinkex-send-{model_id}", holder.stop_event)
        self._queue_state_logger = QueueStateLogger(model_id, "Training")
        holder.on_close(self._sender.close)

    def __repr__(self) -> str:
        return f"TrainingClient(model_id={self.model_id!r})"

    # -- ordered submission -------------------------------------------------------------------
    def _ordered(
        self,
        count: int,
        send: Callable[[int], Any],
        finish: Callable[[Any], Any],
    ) -> APIFuture[Any]:
        """Queue ``send(first_seq)`` in call order; ``finish(sent)`` then runs on a worker, or
        on the sender's thread when no later call waits to be sent."""
        self.holder.check_open()
        result: APIFuture[Any] = APIFuture()

        def on_sent(sent: Any) -> None:
            if result.cancelled():
                return
            try:
                self.holder.run(finish, sent, into=result)
            except RuntimeError as exc:  # pool shut down: the client was closed
                result._settle_exception(exc)

        def finish_here(sent: Any) -> None:
            # Nothing else waits to be sent: finish on the sender's thread (no hand-off).
            if not result.cancelled():
                self.holder.run_here(finish, sent, into=result)

        def on_failed(exc: BaseException) -> None:
            # Failures after the send are reported by holder.run; this one is not run there.
            self.holder.report_failure(exc)
            result._settle_exception(exc)

        self._sender.reserve_and_queue(count, send, on_sent, on_failed, finish_here)
        return result

    def _send_json(self, path: str, body: Any, sdk_method: str) -> Any:
        # Saves get no HTTP-layer retries inside the holder loop (as in the official SDK):
        # a duplicate save would fail on the existing checkpoint name.
        http_retry = NO_RETRY if path.startswith("/api/v1/save_weights") else HTTP_DEFAULT
        return self.holder.submit(path, to_wire(body), sdk_method=sdk_method, http_retry=http_retry)

    def _poll_sent(
        self,
        sent: tuple[Any, float],
        request_type: str,
        decode: Callable[[Response], Any] = decode_fwdbwd,
    ) -> Any:
        """The result of a submitted request, from its ``(handle, round-trip seconds)``."""
        handle, roundtrip = sent
        return self.holder.poll(
            handle,
            request_type=request_type,
            decode=decode,
            on_queue_state=self._queue_state_logger,
            create_roundtrip_time=roundtrip,
        )

    def _simple(
        self,
        path: str,
        build: Callable[[int], Any],
        request_type: str,
        decode: Callable[[Response], Any],
        sdk_method: str,
    ) -> APIFuture[Any]:
        def send(seq_id: int) -> Any:
            return self._send_json(path, build(seq_id), sdk_method)

        def finish(sent: Any) -> Any:
            return self._poll_sent(sent, request_type, decode)

        return self._ordered(1, send, finish)

    # -- forward / backward ---------------------------------------------------------------------
    def _fwdbwd(
        self,
        data: Sequence[Datum],
        loss_fn: tr.LossFnType,
        loss_fn_config: Mapping[str, float | str] | None,
        *,
        forward_only: bool,
        sdk_method: str,
    ) -> APIFuture[tr.ForwardBackwardOutput]:
        data = list(data)
        if not data:
            raise ValueError("No data provided: forward/forward_backward need at least one Datum")
        fb_input = tr.ForwardBackwardInput(
            data=data, loss_fn=loss_fn, loss_fn_config=dict(loss_fn_config or {}) or None
        )
        chunks = plan_chunks(self.holder.client_config(), fb_input.data)
        kind = "Forward" if forward_only else "ForwardBackward"

        def send(first_seq: int) -> list[ChunkResult]:
            return submit_chunks(
                self.holder,
                [
                    functools.partial(
                        send_chunk,
                        self.holder,
                        self.model_id,
                        chunk.data,
                        chunk.nbytes,
                        fb_input,
                        first_seq + i,
                        forward_only,
                        sdk_method,
                    )
                    for i, chunk in enumerate(chunks)
                ],
                lambda sent: self._poll_sent(sent, kind),
                self._sender.poison,
            )

        def finish(results: list[ChunkResult]) -> tr.ForwardBackwardOutput:
            outputs = [result() for result in results]
            return combine_outputs(outputs, [len(c.data) for c in chunks])

        return self._ordered(len(chunks), send, finish)

    @public_method
    def forward(
        self,
        data: list[Datum],
        loss_fn: tr.LossFnType,
        loss_fn_config: Mapping[str, float | str] | None = None,
    ) -> APIFuture[tr.ForwardBackwardOutput]:
        """Compute the loss and per-token logprobs without accumulating gradients.

        Raises:
            ValueError: ``data`` is empty.
        """
        return self._fwdbwd(
            data, loss_fn, loss_fn_config, forward_only=True, sdk_method="TrainingClient.forward"
        )

    @public_method
    def forward_backward(
        self,
        data: list[Datum],
        loss_fn: tr.LossFnType,
        loss_fn_config: Mapping[str, float | str] | None = None,
    ) -> APIFuture[tr.ForwardBackwardOutput]:
        """Compute the loss and accumulate its gradients (applied by the next ``optim_step``).

        Large batches are split into several requests (by datum count and estimated bytes)
        and their outputs concatenated; metrics are combined by their ``:reduction`` suffix.

        Example:
            >>> out = training_client.forward_backward(data, "cross_entropy").result()
            >>> out.metrics["loss:sum"]  # doctest: +SKIP

        Raises:
            ValueError: ``data`` is empty or ``loss_fn`` is unknown.
        """
        return self._fwdbwd(
            data,
            loss_fn,
            loss_fn_config,
            forward_only=False,
            sdk_method="TrainingClient.forward_backward",
        )

    @public_method
    def forward_backward_custom(
        self,
        data: list[Datum],
        loss_fn: Callable[..., Any],
        *,
        loss_type_input: Literal["logprobs"] | None = None,
        regularizers: Sequence[RegularizerSpec] | None = None,
        track_grad_norms: bool = False,
    ) -> APIFuture[tr.ForwardBackwardOutput]:
        """Train on a loss computed client-side from the per-token logprobs.

        The two passes are docs/protocol.md, "Custom losses".

        ``loss_fn(data, logprobs_list)`` is either the official torch signature
        (``-> (loss_tensor, metrics)``, gradients by autograd) or a numpy function
        (``-> (loss, metrics, grads)``; see :func:`tinkex.regularizers.numpy_loss`). A forward
        pass computes the logprobs, the loss gradient is sent back as cross-entropy weights,
        and the result's metrics hold ``loss:sum`` (the custom loss), the user's metrics and
        ``surrogate_loss:sum``. A failure poisons this client.

        Tinkex extras: ``regularizers`` (:class:`tinkex.regularizers.RegularizerSpec`) are
        added to the loss (``loss_total = base + sum(weight_i * reg_i)``) and their metrics to
        the result's (``CustomLossOutput.to_metrics``, also with ``track_grad_norms``); the
        structured result is ``output.custom_loss_output`` (a ``CustomLossOutput``), with
        gradient norms when ``track_grad_norms`` is set.
        """
        if loss_type_input is not None:
            warn_deprecated("loss_type_input", "it is ignored", category=DeprecationWarning)
        config = self.holder.client_config()
        step = CustomLossStep.prepare(
            data,
            loss_fn,
            regularizers=regularizers,
            track_grad_norms=track_grad_norms,
            max_chunk_len=config.fwdbwd_max_chunk_len,
            max_chunk_bytes=config.fwdbwd_max_chunk_bytes_count,
        )
        sdk_method = "TrainingClient.forward_backward_custom"

        def send_part(
            part: list[Datum], nbytes: int, loss: tr.ForwardBackwardInput, seq: int, fwd: bool
        ) -> Any:
            return send_chunk(self.holder, self.model_id, part, nbytes, loss, seq, fwd, sdk_method)

        future = self._ordered(
            step.seq_ids,
            lambda first_seq: step.send(first_seq, send_part, self._poll_sent),
            lambda sent: step.finish(sent, self._poll_sent),
        )
        future.add_done_callback(self._sender.poison_on_failure)  # its seq ids may be half used
        return future

    # -- optimizer ---------------------------------------------------------------------------------
    @public_method
    def optim_step(
        self,
        optim_params: tr.OptimParams | None = None,
        *,
        adam_params: tr.AdamParams | None = None,
    ) -> APIFuture[tr.OptimStepResponse]:
        """Apply the accumulated gradients with the optimizer and reset them.

        Raises:
            ValueError: neither or both of ``optim_params`` and ``adam_params`` given.
            TypeError: the parameters are not ``AdamParams``/``OptimParamsBase``.
        """
        if (optim_params is None) == (adam_params is None):
            raise ValueError("optim_step needs exactly one of optim_params or adam_params")
        params = optim_params if optim_params is not None else adam_params
        if not isinstance(params, (tr.AdamParams, tr.OptimParamsBase)):
            raise TypeError(
                f"optim_step expects AdamParams or OptimParamsBase, got {type(params).__name__}"
            )
        return self._simple(
            "/api/v1/optim_step",
            lambda seq: tr.OptimStepRequest(
                optim_params=params, model_id=self.model_id, seq_id=seq
            ),
            "OptimStep",
            json_decoder(tr.OptimStepResponse),
            "TrainingClient.optim_step",
        )

    # -- checkpoints -------------------------------------------------------------------------------
    @public_method
    def save_state(
        self,
        name: str,
        ttl_seconds: int | None = None,
        overwrite: bool = False,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[tr.SaveWeightsResponse]:
        """Save weights and optimizer state as ``tinker://<run>/weights/<name>``."""
        _check_name(name)
        return self._simple(
            "/api/v1/save_weights",
            lambda seq: tr.SaveWeightsRequest(
                model_id=self.model_id,
                path=name,
                seq_id=seq,
                ttl_seconds=ttl_seconds,
                overwrite=overwrite,
                user_metadata=user_metadata,
            ),
            "SaveWeights",
            json_decoder(tr.SaveWeightsResponse),
            "TrainingClient.save_state",
        )

    @public_method
    def save_weights_for_sampler(
        self,
        name: str,
        ttl_seconds: int | None = None,
        user_metadata: dict[str, str] | None = None,
    ) -> APIFuture[tr.SaveWeightsForSamplerResponse]:
        """Save sampling weights as ``tinker://<run>/sampler_weights/<name>``."""
        _check_name(name)
        decode = path_decoder(
            tr.SaveWeightsForSamplerResponseInternal,
            tr.SaveWeightsForSamplerResponse,
            "save_weights_for_sampler",
        )
        return self._simple(
            "/api/v1/save_weights_for_sampler",
            lambda seq: tr.SaveWeightsForSamplerRequest(
                model_id=self.model_id,
                path=name,
                kind="snapshot",
                seq_id=seq,
                ttl_seconds=ttl_seconds,
                user_metadata=user_metadata,
            ),
            "SaveWeightsForSampler",
            decode,
            "TrainingClient.save_weights_for_sampler",
        )

    @public_method
    def save_weights_external(
        self,
        name: str,
        ttl_seconds: int | None = None,
        age_encryption_recipients: list[str] | None = None,
    ) -> APIFuture[tr.SaveWeightsExternalResponse]:
        """Export Hugging Face-format weights as ``tinker://<run>/external_weights/<name>``."""
        _check_name(name)
        if age_encryption_recipients is not None and len(age_encryption_recipients) > 10:
            raise ValueError(
                f"at most 10 age_encryption_recipients, got {len(age_encryption_recipients)}"
            )
        decode = path_decoder(
            tr.SaveWeightsExternalResponseInternal,
            tr.SaveWeightsExternalResponse,
            "save_weights_external",
        )
        return self._simple(
            "/api/v1/save_weights_external",
            lambda seq: tr.SaveWeightsExternalRequest(
                model_id=self.model_id,
                path=name,
                seq_id=seq,
                ttl_seconds=ttl_seconds,
                age_encryption_recipients=age_encryption_recipients,
            ),
            "SaveWeightsExternal",
            decode,
            "TrainingClient.save_weights_external",
        )

    def _load(self, path: str, optimizer: bool, weights_access_token: str | None) -> APIFuture[Any]:
        from tinkex.types import ParsedCheckpointTinkerPath

        ParsedCheckpointTinkerPath.from_tinker_path(path)
        logger.error(
            "TrainingClient.load_state is deprecated: servers only accept a load as a model's "
            "first request; use ServiceClient.create_training_client_from_state instead"
        )
        return self._simple(
            "/api/v1/load_weights",
            lambda seq: tr.LoadWeightsRequest(
                path=path,
                model_id=self.model_id,
                seq_id=seq,
                optimizer=optimizer,
                weights_access_token=weights_access_token,
            ),
            "LoadWeights",
            json_decoder(tr.LoadWeightsResponse),
            "TrainingClient.load_state",
        )

    @public_method
    def load_state(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[tr.LoadWeightsResponse]:
        """DEPRECATED: load weights into this model (servers may reject it)."""
        warn_deprecated("load_state", "use ServiceClient.create_training_client_from_state")
        return self._load(path, False, weights_access_token)

    @public_method
    def load_state_with_optimizer(
        self, path: str, weights_access_token: str | None = None
    ) -> APIFuture[tr.LoadWeightsResponse]:
        """DEPRECATED: load weights and optimizer state into this model."""
        warn_deprecated(
            "load_state_with_optimizer",
            "use ServiceClient.create_training_client_from_state_with_optimizer",
        )
        return self._load(path, True, weights_access_token)

    # -- samplers ----------------------------------------------------------------------------------
    @public_method
    def save_weights_and_get_sampling_client(
        self,
        name: str | None = None,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
        kind: tr.SamplingClientKind = "snapshot",
    ) -> Any:
        """Snapshot the current weights into a new sampler; returns a future of the client."""
        from tinkex.clients.sampling import BackcompatSamplingClientFuture, SamplingClient

        if name is not None:
            warn_deprecated(
                "save_weights_and_get_sampling_client(name=...)",
                "it is ignored",
                category=DeprecationWarning,
            )
        if kind not in ("snapshot", "inflight"):
            raise ValueError(f"kind must be 'snapshot' or 'inflight', got {kind!r}")
        holder = self.holder

        def decode(response: Response) -> SamplingClient:
            raw = from_wire(response.json(), tr.SaveWeightsForSamplerResponseInternal)
            if raw.sampling_session_id is None:
                raise ValueError("save_weights_for_sampler result has no 'sampling_session_id'")
            return SamplingClient(
                holder,
                sampling_session_id=raw.sampling_session_id,
                base_model=self._base_model(),
                retry_config=retry_config,
                record_stability_info=record_stability_info,
                tokenizer_id=self._info.model_data.tokenizer_id,
            )

        def send(seq_id: int) -> Any:
            # The sampler's number is taken inside the retried call, as the official SDK
            # does: a resend after a failure carries the next one (issue 11.1).
            def build() -> tr.SaveWeightsForSamplerRequest:
                return tr.SaveWeightsForSamplerRequest(
                    model_id=self.model_id,
                    sampling_session_seq_id=holder.next_sampling_session_seq_id(),
                    kind=kind,
                    seq_id=seq_id,
                )

            return holder.submit_per_attempt(
                "/api/v1/save_weights_for_sampler",
                build,
                sdk_method="TrainingClient.save_weights_and_get_sampling_client",
                http_retry=NO_RETRY,
            )

        future = self._ordered(
            1, send, lambda sent: self._poll_sent(sent, "SaveWeightsForSampler", decode)
        )
        return BackcompatSamplingClientFuture.wrap(future)

    @public_method
    def create_sampling_client(
        self,
        model_path: str,
        retry_config: RetryConfig | None = None,
        record_stability_info: bool = False,
    ) -> Any:
        """A sampler for a saved ``tinker://.../sampler_weights/...`` checkpoint."""
        from tinkex.clients.sampling import SamplingClient

        return SamplingClient.create(
            self.holder,
            model_path=model_path,
            retry_config=retry_config,
            record_stability_info=record_stability_info,
        )

    # -- info --------------------------------------------------------------------------------------
    def _base_model(self) -> str:
        return self._info.model_data.model_name or self._info.model_name or ""

    @public_method
    def get_info(self) -> tr.GetInfoResponse:
        """Model facts fetched when the client was created (no request)."""
        return self._info

    def get_tokenizer(self) -> Tokenizer:
        """The tokenizer of this model, as the official SDK returns it: a ``transformers``
        tokenizer when ``transformers`` is installed (Hugging Face cache, the Hub when online),
        tinkex's own otherwise (see :func:`tinkex.tokenizer.tokenizer_for_model`).

        Example::

            ids = training_client.get_tokenizer().encode("Hello world")
        """
        from tinkex.tokenizer import tokenizer_for_model

        return tokenizer_for_model(self._base_model(), self._info.model_data.tokenizer_id)

    def unload_model(self) -> APIFuture[tr.UnloadModelResponse]:
        """Free this model on the server now, instead of when the session ends.

        A tinkex extension (Elixir Tinkex's ``unload_model``; the official SDK has the
        endpoint's types but no method). Requests of this client that have not finished fail,
        and so do later ones: the server no longer knows the model. A server without the
        endpoint fails the future with its answer (e.g. ``NotFoundError``).
        """
        self.holder.check_open()
        request = tr.UnloadModelRequest(model_id=self.model_id)

        def unload() -> tr.UnloadModelResponse:
            sent = self._send_json("/api/v1/unload_model", request, "TrainingClient.unload_model")
            return cast(
                tr.UnloadModelResponse,
                self._poll_sent(sent, "UnloadModel", json_decoder(tr.UnloadModelResponse)),
            )

        return self.holder.run(unload)

    def get_console_url(self) -> str:
        """Web console page of this training run."""
        return f"{_CONSOLE}/training_runs/{self.model_id}"

    def get_telemetry(self) -> Reporter | None:
        """The telemetry reporter (batched events to ``/api/v1/telemetry``), or None when off.

        ``get_telemetry().log("my_event", {"k": 1})`` adds your own events.
        """
        return self.holder.telemetry()

    # -- deprecated async twins (the official ones return the future; see _deprecation) --------
    forward_async = async_twin(forward, returns_future=True)
    forward_backward_async = async_twin(forward_backward, returns_future=True)
    forward_backward_custom_async = async_twin(forward_backward_custom, returns_future=True)
    optim_step_async = async_twin(optim_step, returns_future=True)
    save_state_async = async_twin(save_state, returns_future=True)
    save_weights_for_sampler_async = async_twin(save_weights_for_sampler, returns_future=True)
    save_weights_external_async = async_twin(save_weights_external, returns_future=True)
    load_state_async = async_twin(load_state, returns_future=True)
    load_state_with_optimizer_async = async_twin(load_state_with_optimizer, returns_future=True)
    get_info_async = async_twin(get_info)
    create_sampling_client_async = async_twin(create_sampling_client)
    save_weights_and_get_sampling_client_async = async_twin(save_weights_and_get_sampling_client)


class BackcompatTrainingClientFuture(ClientFuture, TrainingClient):
    """Future of a :class:`TrainingClient` (also usable as one, with a deprecation warning)."""

    _client_type = TrainingClient
    _client_names = client_names(TrainingClient, "model_id", "model_seq_id")

    def __init__(self) -> None:
        APIFuture.__init__(self)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"checkpoint name must be a non-empty string without '/', got {name!r}")
