"""Sampling endpoints: sampling sessions (create, join, get) and ``asample``.

``asample`` answers at once with a future and the ids of the sequences it will return
(``sample_sequence_ids``); the sample runs in the sampling pool. A resend of the same request
under its (sampling session, seq_id) gets the same future back, never a second run; a different
request under a used seq_id is a 400.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tinkex import types
from tinkex.local.app.parsing import json_body, parse
from tinkex.local.app.responses import future_response
from tinkex.local.app.routing import Call, route
from tinkex.local.app.state import AcceptedSample, ServerState
from tinkex.local.codec import (
    CodecError,
    SamplePayload,
    TargetIds,
    prompt_tokens,
    stop_tokens,
    target_ids,
)
from tinkex.local.codec.sample_call import SampleCall, plain_sample_call, sample_call_of
from tinkex.local.engine import FutureRecord, failure_of, resends, run_guarded
from tinkex.local.engine.completions import clone_of
from tinkex.local.engine.jobs import SampleJob, Sampler, run_sample
from tinkex.local.engine.resends import Fingerprint
from tinkex.local.http import HTTPError, Response, json_response
from tinkex.local.model import ModelArch, SampleSettings
from tinkex.local.model.footprint import sample_bytes
from tinkex.tokenizer.byte import EOS_ID

__all__ = ["DEFAULT_MAX_TOKENS", "ROUTES"]

DEFAULT_MAX_TOKENS = 64


def _session_answer(call: Call, sampler_id: str) -> Response:
    return json_response(
        {
            "type": "create_sampling_session",
            "sampling_session_id": sampler_id,
            "tokenizer_id": call.state.tokenizer_for(call.request.peer),
        }
    )


async def create_sampler(call: Call) -> Response:
    state = call.state
    body = parse(call, types.CreateSamplingSessionRequest)
    state.active_session(body.session_id)
    sampler_id = f"{body.session_id}:sample:{body.sampling_session_seq_id}"
    existing = state.samplers.get(sampler_id)
    if existing is not None:
        if existing.model_path == body.model_path and body.base_model in (
            None,
            existing.base_model,
        ):
            return _session_answer(call, sampler_id)
        raise HTTPError(
            400,
            f"sampling_session_seq_id {body.sampling_session_seq_id} of session "
            f"{body.session_id} is already used by sampling session {sampler_id} (base_model "
            f"{existing.base_model!r}, model_path {existing.model_path!r}), which differs from "
            "this request; a resend must repeat the request unchanged, and a new sampling "
            "session needs the next sampling_session_seq_id",
        )
    sampler = state.make_sampler(sampler_id, body.session_id, body.base_model, body.model_path)
    state.samplers[sampler_id] = sampler
    state.store.add_sampler(
        sampler_id,
        session_id=body.session_id,
        base_model=sampler.base_model,
        model_path=body.model_path,
    )
    return _session_answer(call, sampler_id)


async def join_sampler(call: Call) -> Response:
    body = parse(call, types.JoinSamplingSessionRequest)
    call.state.sampler(body.sampling_session_id)
    call.state.join_counter += 1
    return json_response(
        {"type": "join_sampling_session", "client_counter": call.state.join_counter}
    )


async def get_sampler(call: Call) -> Response:
    sampler_id = call.params["sampler_id"]
    sampler = call.state.samplers.get(sampler_id)
    if sampler is not None:
        base_model, model_path = sampler.base_model, sampler.model_path
    else:
        row = call.state.store.get_sampler(sampler_id)
        if row is None:
            raise HTTPError(404, f"sampler {sampler_id!r} not found")
        base_model, model_path = row["base_model"], row["model_path"]
    return json_response(
        {
            "sampler_id": sampler_id,
            "base_model": base_model,
            "model_path": model_path,
            "tokenizer_id": call.state.tokenizer_for(call.request.peer),
        }
    )


# --- asample -----------------------------------------------------------------------------------


def _request_sampler(state: ServerState, req: SampleCall) -> Sampler:
    if req.sampling_session_id is not None:
        return state.sampler(req.sampling_session_id)
    # legacy form without a sampling session: one cached sampler per model/path
    key = f"direct|{req.base_model}|{req.model_path}"
    cached = state.samplers.get(key)
    if cached is None:
        cached = state.make_sampler(key, None, req.base_model, req.model_path)
        state.samplers[key] = cached
    return cached


def _checked_prompt(req: SampleCall, sampler: Sampler) -> npt.NDArray[np.int64]:
    arch = sampler.arch
    if req.tokens is not None:  # ids known to be ints in 0..2**32-1: no numpy pass needed
        outside = [t for t in req.tokens if t >= arch.vocab_size]
        prompt = np.array(req.tokens, dtype=np.int64)
    else:
        assert req.prompt is not None
        try:
            prompt = prompt_tokens(req.prompt)
        except CodecError as exc:
            raise HTTPError(400, str(exc)) from None
        outside = prompt[(prompt < 0) | (prompt >= arch.vocab_size)].tolist()
    if prompt.size == 0:
        raise HTTPError(400, "prompt must contain at least one token")
    if outside:
        raise HTTPError(
            400,
            f"prompt has token id {outside[0]} outside the vocabulary [0, {arch.vocab_size}) "
            f"of {sampler.base_model}",
        )
    if prompt.size > arch.max_seq_len:
        raise HTTPError(
            400,
            f"prompt of {prompt.size} tokens exceeds the context length {arch.max_seq_len} "
            f"of {sampler.base_model}",
        )
    return prompt


def _settings(
    state: ServerState, params: SampleCall, prompt_size: int, sampler: Sampler
) -> SampleSettings:
    room = sampler.arch.max_seq_len - prompt_size
    if params.max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS, room)
    elif params.max_tokens > room:
        raise HTTPError(
            400,
            f"prompt ({prompt_size} tokens) + sampling_params.max_tokens ({params.max_tokens}) "
            f"exceeds the context length {sampler.arch.max_seq_len} of {sampler.base_model}",
        )
    else:
        max_tokens = params.max_tokens
    try:
        ids, strings = stop_tokens(params.stop, "sampling_params.stop")
    except CodecError as exc:
        raise HTTPError(400, str(exc)) from None
    state.check_limit("number of sampling_params.stop entries", len(ids or strings), "max_stop")
    for text in strings:
        state.check_limit("length of a sampling_params.stop string", len(text), "max_k")
    stop_ids = (EOS_ID,) if ids is None else tuple(ids)
    sequences = tuple(tuple(state.tokenizer.encode(s)) for s in strings)
    return SampleSettings(
        max_tokens=max_tokens,
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
        seed=params.seed,
        stop_token_ids=stop_ids,
        stop_sequences=sequences,
    )


def _at_most_vocab(field: str, value: int, vocab: int) -> int:
    if value > vocab:
        raise HTTPError(400, f"{field} = {value} exceeds the vocabulary size {vocab}")
    return value


def _targets(
    state: ServerState, value: types.TensorData | None, prompt_size: int, arch: ModelArch
) -> TargetIds | None:
    where = "target_prompt_logprobs"
    if value is None:
        return None
    if value.shape is not None and len(value.shape) == 2:  # bound it before allocating it
        state.check_limit(f"{where} columns (K)", int(value.shape[1]), "max_k")
    try:
        targets = target_ids(value, where)
    except CodecError as exc:
        raise HTTPError(400, str(exc)) from None
    if targets.dense.shape[0] != prompt_size - 1:
        raise HTTPError(
            400,
            f"{where} must have shape [len(prompt) - 1, K] = [{prompt_size - 1}, K], "
            f"got {list(targets.dense.shape)}",
        )
    bad = targets.dense[(targets.dense < -1) | (targets.dense >= arch.vocab_size)]
    if bad.size:
        raise HTTPError(
            400,
            f"{where} has token id {int(bad[0])} outside the vocabulary "
            f"[0, {arch.vocab_size}) (use -1 for no target)",
        )
    return targets


def _sample_job(state: ServerState, req: SampleCall, sampler: Sampler) -> SampleJob:
    """The validated work of one asample request (sequence ids are assigned by the caller)."""
    vocab = sampler.arch.vocab_size
    state.check_limit("num_samples", req.num_samples, "max_num_samples")
    prompt = _checked_prompt(req, sampler)
    settings = _settings(state, req, int(prompt.size), sampler)
    last_n = req.prompt_logprobs_last_n
    if last_n is not None and last_n > prompt.size - 1:
        raise HTTPError(
            400,
            f"field 'prompt_logprobs_last_n' must be <= len(prompt) - 1 = {prompt.size - 1}, "
            f"got {last_n}",
        )
    return SampleJob(
        prompt=prompt,
        num_samples=req.num_samples,
        settings=settings,
        prompt_logprobs=req.prompt_logprobs,
        topk_prompt_logprobs=_at_most_vocab(
            "topk_prompt_logprobs", req.topk_prompt_logprobs, vocab
        ),
        prompt_logprobs_last_n=last_n,
        sequence_ids=[],
        topk_sample_logprobs=_at_most_vocab(
            "topk_sample_logprobs", req.topk_sample_logprobs, vocab
        ),
        targets=_targets(state, req.target_prompt_logprobs, int(prompt.size), sampler.arch),
        prompt_alt_tokens_k=state.check_limit(
            "prompt_alt_tokens_k", req.prompt_alt_tokens_k, "max_k"
        ),
        record_stability=req.record_stability_info,
    )


def _record_stability(
    state: ServerState, sampler: Sampler, job: SampleJob, result: SamplePayload
) -> None:
    """Keep what stable_reinforce needs of each sampled sequence (record_stability_info)."""
    for sequence_id, seq in zip(result.sequence_ids, result.sequences, strict=True):
        state.stability.record(
            sequence_id, sampler.session_id, job.prompt, seq.tokens, seq.logprobs
        )


def _sample_done(
    state: ServerState,
    sampler: Sampler,
    job: SampleJob,
    record: FutureRecord,
    outcome: Any,
    cancelled: bool,
) -> None:
    if cancelled:
        state.futures.fail(record, "the server is shutting down", "server")
        return
    if outcome is None:
        state.futures.fail(record, record.cancel_reason, "user")
        return
    failure = failure_of(outcome)
    if failure is not None:
        state.futures.fail(record, failure.message, failure.category)
        return
    if job.record_stability and isinstance(outcome, SamplePayload):
        _record_stability(state, sampler, job, outcome)
    state.futures.complete(record, outcome)


def _original_sample(
    state: ServerState, key: tuple[str, int] | None, fingerprint: Fingerprint
) -> Response | None:
    """The original future when this request resends an accepted sample under its seq_id.

    Raises:
        HTTPError: 400 when the seq_id was used by a different sample request.
    """
    previous = None if key is None else state.sample_dedupe.get(key)
    if previous is None:
        return None
    if previous.fingerprint == fingerprint:
        return future_response(previous.request_id, sample_sequence_ids=previous.sequence_ids)
    sampler_id, seq_id = key or ("", 0)
    raise HTTPError(
        400,
        f"seq_id {seq_id} of sampling session {sampler_id} was already used by request "
        f"{previous.request_id}, which differs from this one in "
        f"{', '.join(previous.fingerprint.differing(fingerprint))}; a resend must repeat the "
        "request unchanged, and a new request needs the next seq_id",
    )


async def asample(call: Call) -> Response:
    state = call.state
    body = json_body(call)
    req = plain_sample_call(body) or sample_call_of(parse(call, types.SampleRequest, body=body))
    sampler = _request_sampler(state, req)
    key = None
    if req.sampling_session_id is not None and req.seq_id is not None:
        key = (req.sampling_session_id, req.seq_id)
    fingerprint = resends.fingerprint(body, call.route.name)
    original = _original_sample(state, key, fingerprint)
    if original is not None:
        return original
    job = _sample_job(state, req, sampler)
    memory = state.admit(
        "jobs",
        sample_bytes(
            sampler.arch,
            int(job.prompt.size),
            job.num_samples,
            job.settings.max_tokens,
            topk_prompt=job.topk_prompt_logprobs,
            topk_sample=job.topk_sample_logprobs,
            target_columns=0 if job.targets is None else int(job.targets.dense.shape[1]),
            alt_k=job.prompt_alt_tokens_k,
        ),
        f"a sample of {job.num_samples} x {job.settings.max_tokens} tokens",
    )
    record = state.futures.new("Sample", sampler.sampler_id, memory)
    if req.sampling_session_id is not None:
        record.feed = sampler.target(clone_of(req.seq_id))
    if state.seeds is not None and job.settings.seed is None:  # counted once accepted
        job.seed_basis = state.seeds.basis(
            sampler.sampler_id, job.prompt, job.settings, job.num_samples, req.seq_id
        )
    state.sample_counter += 1
    job.sequence_ids = [f"sq-{state.sample_counter}-{i}" for i in range(job.num_samples)]
    if key is not None:
        state.sample_dedupe[key] = AcceptedSample(fingerprint, record.request_id, job.sequence_ids)
        while len(state.sample_dedupe) > 100_000:
            state.sample_dedupe.popitem(last=False)
    store = state.store

    def cancelled() -> bool:  # read from the worker thread: a plain attribute
        return record.cancelled

    def run() -> Any:
        if record.cancelled:
            return None
        return run_guarded(lambda: run_sample(sampler, store, job, cancelled))

    def done(outcome: Any, cancelled: bool) -> None:
        _sample_done(state, sampler, job, record, outcome, cancelled)

    state.sample_queue.submit(run, done)
    return future_response(record.request_id, sample_sequence_ids=job.sequence_ids)


ROUTES = [
    route("POST", "create_sampling_session", "create_sampling_session", create_sampler),
    route("POST", "join_sampling_session", "join_sampling_session", join_sampler),
    route("GET", "samplers/{sampler_id}", "get_sampler", get_sampler),
    route("POST", "asample", "asample", asample),
]
