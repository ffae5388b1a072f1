"""Training endpoints: create/load/unload models, forward(_backward), optim_step, saves.

Every request that names a model and a ``seq_id`` goes through the model's sequencer: it is
answered with a future at once and runs in ``seq_id`` order. A resend of an accepted request
gets the original future back (:mod:`tinkex.local.engine.resends`: which fields may differ), a
different request under a used ``seq_id`` is a 400, and a request that is invalid still
consumes its ``seq_id`` (so later ones do not wait for it).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

from tinkex import types
from tinkex.local.app.parsing import (
    SequencedBody,
    checkpoint_name,
    json_body,
    parse,
    structure,
)
from tinkex.local.app.responses import future_response
from tinkex.local.app.routing import Call, route
from tinkex.local.app.state import ServerBusy, ServerState
from tinkex.local.codec import PROTOBUF, FwdBwdCall, parse_forward_backward
from tinkex.local.engine import JobFn, TrainingModel, UserError, resends
from tinkex.local.engine.jobs import (
    Sampler,
    job_create,
    job_forward_backward,
    job_load_create,
    job_load_into,
    job_optim_step,
    job_save_external,
    job_save_sampler_named,
    job_save_weights,
    job_unnamed_sampler,
    lora_from_wire,
    lora_to_wire,
)
from tinkex.local.engine.memory import Holding
from tinkex.local.engine.resends import Fingerprint
from tinkex.local.http import HTTPError, Response, error_response, json_response
from tinkex.local.model import (
    LOSS_FUNCTIONS,
    AdamSettings,
    DatumArrays,
    SamplerWeights,
    resolve_arch,
)
from tinkex.local.model.footprint import forward_backward_bytes, snapshot_bytes, trainable_bytes
from tinkex.local.storage import CheckpointError, tinker_path
from tinkex.local.storage.checkpoints import age_recipients
from tinkex.types._converter import to_wire

__all__ = ["ROUTES"]


# --- sequencing --------------------------------------------------------------------------------


def _submit(
    call: Call,
    model: TrainingModel,
    seq_id: int | None,
    fingerprint: Fingerprint,
    kind: str,
    fn: JobFn,
    memory: Holding | None = None,
) -> Response:
    """Queue ``fn`` as request ``seq_id`` of ``model`` (holding ``memory`` until it ends);
    answers its future."""
    state = call.state
    now = time.time()
    if now - state.run_touched.get(model.model_id, 0.0) > 1.0:  # at most 1 write/s/run
        state.run_touched[model.model_id] = now
        state.store.touch_run(model.model_id)
    try:
        request_id = state.sequencer.submit(model, seq_id, fingerprint, kind, fn, memory)
    except BaseException:
        if memory is not None:
            memory.release()
        raise
    return future_response(request_id, model.model_id)


def _original(
    call: Call, model: TrainingModel, seq_id: int | None, fingerprint: Fingerprint
) -> Response | None:
    """The original future when this request resends an accepted one (checked before the
    request is validated again: its checkpoint name may be taken by now, by itself).

    Raises:
        UserError: ``seq_id`` was used by a different request (answered with 400).
    """
    request_id = call.state.sequencer.accepted(model, seq_id, fingerprint)
    return None if request_id is None else future_response(request_id, model.model_id)


def _reject(
    call: Call,
    model: TrainingModel,
    seq_id: int | None,
    fingerprint: Fingerprint,
    exc: Exception,
) -> Response:
    """Reject an invalid request (400); it consumes its seq_id so later ones do not wait."""
    call.state.sequencer.consume(model, seq_id, fingerprint)
    return error_response(400, str(exc.detail if isinstance(exc, HTTPError) else exc))


def _sequenced(call: Call) -> tuple[TrainingModel, int | None, dict[str, Any]]:
    """The model and seq_id a request names, and its JSON body."""
    body = json_body(call)
    head = parse(call, SequencedBody, body=body)
    return call.state.model(head.model_id), head.seq_id, body


async def _run_sequenced(call: Call, kind: str, build: Callable[..., JobFn]) -> Response:
    """The common shape of a sequenced JSON request: a resend gets its original future;
    otherwise ``build(call, model, seq_id, body)`` validates and returns the job, and its
    errors reject the request."""
    model, seq_id, body = _sequenced(call)
    fingerprint = resends.fingerprint(body, call.route.name)
    original = _original(call, model, seq_id, fingerprint)
    if original is not None:
        return original
    try:
        fn = build(call, model, seq_id, body)
    except ServerBusy:  # not a rejection: the same request may come again
        raise
    except (UserError, CheckpointError, HTTPError) as exc:
        return _reject(call, model, seq_id, fingerprint, exc)
    return _submit(call, model, seq_id, fingerprint, kind, fn)


# --- models ------------------------------------------------------------------------------------


def _register_model(
    call: Call,
    model_id: str,
    *,
    session_id: str,
    base_model: str,
    lora_config: dict[str, Any] | None,
    metadata: dict[str, str] | None,
    kind: str,
    fn: JobFn,
) -> Response:
    """Create model ``model_id`` and queue its seq-0 job (a resend gets the original future)."""
    state = call.state
    fingerprint = resends.fingerprint(json_body(call), call.route.name)
    existing = state.models.get(model_id)
    if existing is not None:
        return _resent_creation(existing, fingerprint)
    lora = lora_from_wire(lora_config)
    state.check_limit("lora_config.rank", lora.rank, "max_lora_rank")
    state.check_metadata("user_metadata", metadata)
    arch = resolve_arch(base_model)
    memory = state.admit(
        "runs", trainable_bytes(arch, lora), f"training run {model_id} (LoRA rank {lora.rank})"
    )
    model = TrainingModel(
        model_id=model_id,
        session_id=session_id,
        base_model=base_model,
        arch=arch,
        lora=lora,
        user_metadata=metadata,
        memory=memory,
    )
    state.models[model_id] = model
    state.store.add_run(
        model_id,
        session_id=session_id,
        base_model=base_model,
        lora_config=lora_to_wire(lora),
        user_metadata=metadata,
        optimizer_config={"type": "adamw"},
    )
    return future_response(state.sequencer.submit(model, 0, fingerprint, kind, fn), model_id)


def _resent_creation(model: TrainingModel, fingerprint: Fingerprint) -> Response:
    """The original future of the request that created ``model``, if this one resends it."""
    request_id, previous = model.seen.get(0, ("", None))
    if previous == fingerprint and request_id:
        return future_response(request_id, model.model_id)
    differs = "" if previous is None else f" in {', '.join(previous.differing(fingerprint))}"
    raise UserError(
        f"model {model.model_id} already exists, created by a request that differs from this "
        f"one{differs}; a resend must repeat the request unchanged, and a new model needs the "
        "next model_seq_id"
    )


async def create_model(call: Call) -> Response:
    body = parse(call, types.CreateModelRequest)
    call.state.active_session(body.session_id)
    call.state.check_base_model(body.base_model)
    if not isinstance(body.optimizer_config, types.AdamOptimizerConfig):
        raise HTTPError(
            400,
            f"optimizer_config {to_wire(body.optimizer_config)!r} is not supported: the local "
            "server trains with AdamW only ({'type': 'adamw'})",
        )
    lora = None if body.lora_config is None else to_wire(body.lora_config)
    return _register_model(
        call,
        f"{body.session_id}:train:{body.model_seq_id}",
        session_id=body.session_id,
        base_model=body.base_model,
        lora_config=lora,
        metadata=body.user_metadata,
        kind="CreateModel",
        fn=job_create,
    )


async def get_info(call: Call) -> Response:
    model = call.state.model(parse(call, types.GetInfoRequest).model_id)
    return json_response(
        {
            "type": "get_info",
            "model_id": model.model_id,
            "model_data": {
                "arch": model.arch.arch,
                "model_name": model.base_model,
                "tokenizer_id": call.state.tokenizer_for(call.request.peer),
            },
            "is_lora": True,
            "lora_rank": model.lora.rank,
            "optimizer_config": {"type": "adamw"},
            "model_name": model.base_model,
        }
    )


async def unload_model(call: Call) -> Response:
    state = call.state
    model = state.model(parse(call, types.UnloadModelRequest).model_id)
    record = state.futures.new("UnloadModel", model.model_id)
    state.sequencer.unload(model, "unloaded by the client")
    state.futures.complete(record, {"model_id": model.model_id, "type": "unload_model"})
    return future_response(record.request_id, model.model_id)


# --- forward / backward / optimizer ------------------------------------------------------------


def _check_datum(index: int, datum: DatumArrays, model: TrainingModel) -> None:
    """Cheap submission-time checks of one datum (the model re-checks everything)."""
    tokens = datum.tokens
    vocab = model.arch.vocab_size
    outside = tokens[(tokens < 0) | (tokens >= vocab)]
    if outside.size:
        raise UserError(
            f"data[{index}].model_input has token id {int(outside[0])} outside the vocabulary "
            f"[0, {vocab}) of {model.base_model}"
        )
    if tokens.size > model.arch.max_seq_len:
        raise UserError(
            f"data[{index}].model_input has {tokens.size} tokens, more than the context length "
            f"{model.arch.max_seq_len} of {model.base_model}"
        )
    for name, array in datum.loss_inputs.items():
        length = array.shape[0] if array.ndim else None
        if length != tokens.size:
            raise UserError(
                f"data[{index}].loss_fn_inputs.{name} has shape {list(array.shape)}, but "
                f"model_input has {tokens.size} tokens (shapes must match)"
            )


def _columns_pass(fwdbwd: FwdBwdCall, model: TrainingModel) -> bool:
    """Whether every datum passes :func:`_check_datum`, decided on the request's columns
    (False when it has none or one fails: then each datum is checked, to name it)."""
    columns = fwdbwd.columns
    if columns is None or not columns.tokens.size:
        return False
    tokens = columns.tokens
    return bool(
        tokens.min() >= 0
        and tokens.max() < model.arch.vocab_size
        and columns.lengths.max() <= model.arch.max_seq_len
        and all(values.ndim == 1 for values in columns.loss_inputs.values())
    )


#: loss inputs of stable_reinforce that the server fills from its sampling records
_RECORDED_INPUTS = ("sampler_logprobs", "sampled_mask")


def _attach_stability_inputs(state: ServerState, model: TrainingModel, fwdbwd: FwdBwdCall) -> None:
    """Give each datum of a stable_reinforce request the sampler's recorded logprobs of its
    target tokens and the mask of sampled rows, from its provenance spans."""
    fwdbwd.columns = None  # the datums' inputs change
    for i, datum in enumerate(fwdbwd.data):
        where = f"data[{i}]"
        inputs = datum.loss_inputs
        for name in _RECORDED_INPUTS:
            if name in inputs:
                raise UserError(
                    f"{where}.loss_fn_inputs.{name} is filled in by the server from its sampling "
                    "records for stable_reinforce; do not send it"
                )
        if "target_tokens" not in inputs:
            raise UserError(f"{where}.loss_fn_inputs is missing 'target_tokens'")
        advantages = inputs.get("advantages")
        logprobs, sampled = state.stability.resolve(
            where,
            fwdbwd.provenance[i] if i < len(fwdbwd.provenance) else None,
            np.asarray(datum.tokens).astype(np.int64),
            np.asarray(inputs["target_tokens"]).astype(np.int64).reshape(-1),
            None if advantages is None else np.asarray(advantages, dtype=np.float64),
            model.session_id,
        )
        inputs["sampler_logprobs"] = logprobs
        inputs["sampled_mask"] = sampled


async def _forward_backward(call: Call, *, forward_only_endpoint: bool) -> Response:
    request = call.request
    body = request.body
    state = call.state
    # Hashing releases the GIL: the digest is computed on another core while the body parses.
    fingerprinted = state.loop.run_in_executor(state.io_pool, resends.body_fingerprint, body)

    def parsed() -> FwdBwdCall:
        return parse_forward_backward(
            body,
            request.header("content-type"),
            request.header("content-encoding"),
            forward_only_endpoint=forward_only_endpoint,
            limit=state.options.max_body_bytes,
        )

    # An uncompressed protobuf body parses in ~1 ms per 2 MB, holding the GIL as it would on a
    # worker thread (so the loop waits either way): parsed here, without two thread hops.
    # JSON and compressed bodies (slower, up to the body limit) go to the I/O pool.
    inline = PROTOBUF in request.header("content-type").lower() and not request.header(
        "content-encoding"
    )
    fwdbwd = parsed() if inline else await state.in_io(parsed)
    model = state.model(fwdbwd.model_id)
    fingerprint = await fingerprinted
    original = _original(call, model, fwdbwd.seq_id, fingerprint)
    if original is not None:
        return original
    try:
        if fwdbwd.loss_fn not in LOSS_FUNCTIONS:
            raise UserError(
                f"loss_fn {fwdbwd.loss_fn!r} is not supported; expected one of "
                f"{', '.join(LOSS_FUNCTIONS)}"
            )
        if not fwdbwd.data:
            raise UserError("data must contain at least one Datum")
        state.check_limit("number of data", len(fwdbwd.data), "max_datums")
        if not _columns_pass(fwdbwd, model):
            for i, datum in enumerate(fwdbwd.data):
                _check_datum(i, datum, model)
        lengths = [int(datum.tokens.size) for datum in fwdbwd.data]
        state.check_limit("tokens of all data", sum(lengths), "max_batch_tokens")
        if fwdbwd.loss_fn == "stable_reinforce":
            _attach_stability_inputs(state, model, fwdbwd)
        kind = "Forward" if fwdbwd.forward_only else "ForwardBackward"
        memory = state.admit(
            "jobs",
            forward_backward_bytes(model.arch, lengths, fwdbwd.forward_only),
            f"{kind} of {len(lengths)} data ({sum(lengths)} tokens)",
        )
    except ServerBusy:
        raise
    except (UserError, HTTPError) as exc:
        return _reject(call, model, fwdbwd.seq_id, fingerprint, exc)
    return _submit(
        call, model, fwdbwd.seq_id, fingerprint, kind, job_forward_backward(fwdbwd), memory
    )


async def forward_backward(call: Call) -> Response:
    return await _forward_backward(call, forward_only_endpoint=False)


async def forward(call: Call) -> Response:
    return await _forward_backward(call, forward_only_endpoint=True)


def _adam_settings(call: Call, body: dict[str, Any]) -> AdamSettings:
    params = body.get("adam_params") or body.get("optim_params") or body.get("optimizer_params")
    if params is None:
        raise UserError("field 'adam_params' is required")
    if not isinstance(params, dict):
        raise UserError(f"field 'adam_params' must be an object, got {params!r:.80}")
    if params.get("type", "adam") not in ("adam", "adamw"):
        raise UserError(
            f"optimizer params of type {params.get('type')!r} are not supported; "
            "the local server trains with AdamW (adam_params)"
        )
    adam = structure(params, types.AdamParams, f"{call.endpoint} adam_params")
    return AdamSettings(
        learning_rate=adam.learning_rate,
        beta1=adam.beta1,
        beta2=adam.beta2,
        eps=adam.eps,
        weight_decay=adam.weight_decay,
        grad_clip_norm=adam.grad_clip_norm,
    )


def _optim_job(call: Call, model: TrainingModel, seq_id: int | None, body: Any) -> JobFn:
    state = call.state

    def maybe_corrupt(trained: TrainingModel) -> None:
        limit = state.faults.spec.corrupt_after
        if limit is not None and trained.optim_steps >= limit:
            state.mark_corrupted(trained.model_id)

    return job_optim_step(_adam_settings(call, body), maybe_corrupt)


async def optim_step(call: Call) -> Response:
    return await _run_sequenced(call, "OptimStep", _optim_job)


# --- saving ------------------------------------------------------------------------------------


def _already_exists(model: TrainingModel, kind: str, name: str, hint: str) -> UserError:
    return UserError(f"checkpoint {tinker_path(model.model_id, kind, name)} already exists; {hint}")


def _save_weights_job(call: Call, model: TrainingModel, seq_id: int | None, body: Any) -> JobFn:
    req = parse(call, types.SaveWeightsRequest, body=body)
    name = checkpoint_name(
        req.path or f"ckpt-{seq_id if seq_id is not None else uuid.uuid4().hex[:8]}"
    )
    if not req.overwrite and call.state.checkpoint_taken(model, "weights", name):
        raise _already_exists(model, "weights", name, "pass overwrite=True or choose another name")
    ttl = call.state.ttl(req.ttl_seconds)
    call.state.check_metadata("user_metadata", req.user_metadata)
    return job_save_weights(call.state.store, name, ttl, req.user_metadata or None, req.overwrite)


def _sampler_registrar(
    state: ServerState, model: TrainingModel, sampler_id: str, memory: Holding
) -> Any:
    def register(weights: SamplerWeights) -> str:
        sampler = Sampler(
            sampler_id=sampler_id,
            session_id=model.session_id,
            base_model=model.base_model,
            arch=model.arch,
            model_path=None,
            weights=weights,
            memory=memory,
        )
        # dict assignment is atomic; the loop reads it only after this job completes
        state.samplers[sampler_id] = sampler
        state.store.add_sampler(
            sampler_id, session_id=model.session_id, base_model=model.base_model, model_path=None
        )
        return sampler_id

    return register


def _save_for_sampler_job(call: Call, model: TrainingModel, seq_id: int | None, body: Any) -> JobFn:
    req = parse(call, types.SaveWeightsForSamplerRequest, body=body)
    if req.path is not None:
        name = checkpoint_name(req.path)
        if call.state.checkpoint_taken(model, "sampler_weights", name):
            raise _already_exists(model, "sampler_weights", name, "choose another name")
        ttl = call.state.ttl(req.ttl_seconds)
        call.state.check_metadata("user_metadata", req.user_metadata)
        return job_save_sampler_named(call.state.store, name, ttl, req.user_metadata or None)
    if req.sampling_session_seq_id is None:
        raise UserError("either 'path' or 'sampling_session_seq_id' is required")
    if model.session_id is None:
        raise UserError(f"model {model.model_id} has no session for a sampling session")
    sampler_id = f"{model.session_id}:sample:{req.sampling_session_seq_id}"
    memory = call.state.admit(
        "snapshots",
        snapshot_bytes(model.arch, model.lora.rank),
        f"the sampler snapshot {sampler_id} (LoRA rank {model.lora.rank})",
    )
    return job_unnamed_sampler(_sampler_registrar(call.state, model, sampler_id, memory), memory)


def _save_external_job(call: Call, model: TrainingModel, seq_id: int | None, body: Any) -> JobFn:
    req = parse(call, types.SaveWeightsExternalRequest, body=body)
    name = checkpoint_name(req.path)
    recipients = None
    if req.age_encryption_recipients:
        recipients = age_recipients(list(req.age_encryption_recipients))
    if call.state.checkpoint_taken(model, "external_weights", name):
        raise _already_exists(model, "external_weights", name, "choose another name")
    ttl = call.state.ttl(req.ttl_seconds)
    return job_save_external(call.state.store, name, ttl, recipients)


async def save_weights(call: Call) -> Response:
    return await _run_sequenced(call, "SaveWeights", _save_weights_job)


async def save_for_sampler(call: Call) -> Response:
    return await _run_sequenced(call, "SaveWeightsForSampler", _save_for_sampler_job)


async def save_external(call: Call) -> Response:
    return await _run_sequenced(call, "SaveWeightsExternal", _save_external_job)


# --- loading -----------------------------------------------------------------------------------

#: ``optimizer`` is required by the SDK type; the local server has always defaulted it.
_LOAD_DEFAULTS = {"optimizer": False}


def _load_into_job(call: Call, model: TrainingModel, seq_id: int | None, body: Any) -> JobFn:
    req = parse(call, types.LoadWeightsRequest, body=body, defaults=_LOAD_DEFAULTS)
    first = not any(s >= 1 for s in model.seen) and (seq_id is None or seq_id <= 1)
    if not first:
        raise UserError(
            f"LoadWeights is not permitted with seq_id {seq_id}: load_weights must be the "
            "model's first request; create a new training client from the checkpoint instead"
        )
    call.state.checkpoint_run(req.path)
    return job_load_into(call.state.store, req.path, req.optimizer)


async def _create_via_load(call: Call, req: types.LoadWeightsRequest) -> Response:
    state = call.state
    if req.session_id is None or req.model_seq_id is None:
        raise HTTPError(400, "load_weights needs model_id, or session_id and model_seq_id")
    state.active_session(req.session_id)
    row, run = state.checkpoint_run(req.path)
    if row.kind == "external_weights":
        raise HTTPError(
            400, f"checkpoint {req.path} is an external (HF) export and cannot be loaded"
        )
    if req.optimizer and row.kind != "weights":
        raise HTTPError(400, f"checkpoint {req.path} has no optimizer state (use optimizer=false)")
    if req.base_model is not None:  # the checkpoint's own base model was checked when trained
        state.check_base_model(req.base_model)
    base_model = req.base_model or run["base_model"]
    if resolve_arch(base_model) != resolve_arch(run["base_model"]):
        raise HTTPError(
            400,
            f"base_model {base_model!r} is not compatible with the checkpoint's base model "
            f"{run['base_model']!r}",
        )
    model_id = f"{req.session_id}:train:{req.model_seq_id}"
    return _register_model(
        call,
        model_id,
        session_id=req.session_id,
        base_model=base_model,
        lora_config=run["lora_config"],
        metadata=req.user_metadata,
        kind="LoadWeights",
        fn=job_load_create(state.store, req.path, req.optimizer, model_id, req.path),
    )


async def load_weights(call: Call) -> Response:
    body = json_body(call)
    if body.get("model_id") is not None:
        return await _run_sequenced(call, "LoadWeights", _load_into_job)
    req = parse(call, types.LoadWeightsRequest, body=body, defaults=_LOAD_DEFAULTS)
    return await _create_via_load(call, req)


ROUTES = [
    route("POST", "create_model", "create_model", create_model),
    route("POST", "get_info", "get_info", get_info),
    route("POST", "forward_backward", "forward_backward", forward_backward),
    route("POST", "forward", "forward", forward),
    route("POST", "optim_step", "optim_step", optim_step),
    route("POST", "save_weights", "save_weights", save_weights),
    route("POST", "save_weights_for_sampler", "save_weights_for_sampler", save_for_sampler),
    route("POST", "save_weights_external", "save_weights_external", save_external),
    route("POST", "load_weights", "load_weights", load_weights),
    route("POST", "unload_model", "unload_model", unload_model),
]
