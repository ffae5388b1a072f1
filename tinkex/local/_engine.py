"""Model-side state of the local server: futures, per-model sequencing, samplers, checkpoints.

Everything here except the ``run_*`` job functions is used from the event-loop thread only; the
job functions run in worker threads and touch only their model (one job per model at a time).
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future as ConcurrentFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tinkex.local._codec import CodecError, FwdBwdCall, FwdBwdPayload, SamplePayload, TargetIds
from tinkex.local._store import FutureRow, Store, parse_tinker_path
from tinkex.local.model import (
    LORA_ALPHA,
    AdamSettings,
    LoraSpec,
    ModelArch,
    ModelInputError,
    SamplerWeights,
    SampleSettings,
    TrainableModel,
    create_trainable,
    resolve_arch,
    sample,
)
from tinkex.tokenizer.byte import TOKENIZER_ID

logger = logging.getLogger("tinkex.local")

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
_OPTIMIZER_PREFIXES = ("optimizer.",)


class UserError(ValueError):
    """A request failed because of the caller's input (future category ``user``)."""


# --- futures -----------------------------------------------------------------------------------


@dataclass
class FutureRecord:
    """One server-side future (a submitted request and, eventually, its outcome)."""

    request_id: str
    kind: str
    created_at: float
    done: asyncio.Event
    result: Any = None
    error: tuple[str, str] | None = None
    completed_at: float | None = None
    cancelled: bool = False
    #: the model or sampler the request belongs to
    owner_id: str | None = None

    @property
    def finished(self) -> bool:
        """True once completed or failed."""
        return self.completed_at is not None

    def row(self) -> FutureRow:
        """The persisted metadata of this record (state only, no payload)."""
        error: str | None = None
        category: str | None = None
        if self.error is not None:
            state, (error, category) = "failed", self.error
        else:
            state = "complete" if self.finished else "pending"
        return FutureRow(
            request_id=self.request_id,
            kind=self.kind,
            owner_id=self.owner_id,
            state=state,
            created_at=self.created_at,
            updated_at=self.completed_at or self.created_at,
            error=error,
            category=category,
        )


class FutureTable:
    """Request id -> FutureRecord, with expiry of old completed records. Loop thread only.

    With a ``journal`` (e.g. :meth:`Store.save_futures`), the metadata of new and finished
    records is written in batches: the first change schedules one flush ``flush_delay`` seconds
    later on ``loop``, which writes every record changed since, in one call.
    """

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        max_records: int = 200_000,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        journal: Callable[[list[FutureRow]], None] | None = None,
        flush_delay: float = 0.05,
    ) -> None:
        self._records: OrderedDict[str, FutureRecord] = OrderedDict()
        self._counter = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:6]
        self._ttl = ttl_seconds
        self._max = max_records
        self._loop = loop
        self._journal = journal
        self._flush_delay = flush_delay
        self._dirty: dict[str, FutureRecord] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    def new(self, kind: str, owner_id: str | None = None) -> FutureRecord:
        """A new pending record with a fresh ``req-...`` id."""
        request_id = f"req-{self._prefix}-{next(self._counter)}"
        record = FutureRecord(request_id, kind, time.time(), asyncio.Event(), owner_id=owner_id)
        self._records[request_id] = record
        self._mark(record)
        return record

    def owns(self, request_id: str) -> bool:
        """True if ``request_id`` was issued by this table (this server run)."""
        return request_id.startswith(f"req-{self._prefix}-")

    def get(self, request_id: str) -> FutureRecord | None:
        """The record, or None when unknown or expired."""
        return self._records.get(request_id)

    def complete(self, record: FutureRecord, result: Any) -> None:
        """Mark ``record`` completed with ``result``."""
        if record.finished:
            return
        record.result = result
        record.completed_at = time.time()
        record.done.set()
        self._mark(record)

    def fail(self, record: FutureRecord, message: str, category: str) -> None:
        """Mark ``record`` failed (category ``user`` or ``server``)."""
        if record.finished:
            return
        record.error = (message, category)
        record.completed_at = time.time()
        record.done.set()
        self._mark(record)

    def _mark(self, record: FutureRecord) -> None:
        if self._journal is None:
            return
        self._dirty[record.request_id] = record
        if self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(self._flush_delay, self.flush)

    def flush(self) -> None:
        """Write the records changed since the last flush to the journal."""
        self._flush_handle = None
        if not self._dirty or self._journal is None:
            return
        rows = [record.row() for record in self._dirty.values()]
        self._dirty.clear()
        try:
            self._journal(rows)
        except Exception:  # metadata only: a failed write must not break request handling
            logger.exception("local server could not persist %d future records", len(rows))

    def pending_count(self) -> int:
        """How many records are not finished."""
        return sum(1 for r in self._records.values() if not r.finished)

    def evict(self, now: float) -> None:
        """Drop finished records older than the TTL, and the oldest beyond the size cap."""
        stale = [
            rid
            for rid, r in self._records.items()
            if r.completed_at is not None and now - r.completed_at > self._ttl
        ]
        for rid in stale:
            del self._records[rid]
        while len(self._records) > self._max:
            rid, record = next(iter(self._records.items()))
            if not record.finished:
                break
            del self._records[rid]


# --- training models and sequencing ------------------------------------------------------------

JobFn = Callable[["TrainingModel"], Any]


@dataclass
class Job:
    """A sequenced request of one model: ``fn`` is None for a consumed (rejected) seq_id."""

    seq_id: int
    record: FutureRecord | None
    fn: JobFn | None
    queued_at: float = field(default_factory=time.time)


@dataclass
class TrainingModel:
    """A training run loaded in memory, with its request queue."""

    model_id: str
    session_id: str | None
    base_model: str
    arch: ModelArch
    lora: LoraSpec
    user_metadata: dict[str, Any] | None = None
    trainable: TrainableModel | None = None
    next_seq: int = 0
    pending: dict[int, Job] = field(default_factory=dict)
    seen: dict[int, tuple[str, str]] = field(default_factory=dict)
    busy: bool = False
    gap_since: float | None = None
    unloaded: str | None = None
    #: set when the run is marked corrupted; its later jobs fail with category "server"
    corrupted: bool = False
    optim_steps: int = 0

    def require_trainable(self) -> TrainableModel:
        """The model weights (created by its seq-0 job)."""
        if self.trainable is None:
            raise UserError(f"model {self.model_id} was not created successfully")
        return self.trainable


class Sequencer:
    """Runs each model's jobs strictly in seq_id order on a shared worker pool.

    Loop thread only; jobs run on ``pool`` and report back with ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: ThreadPoolExecutor,
        futures: FutureTable,
        gap_timeout: float,
    ) -> None:
        self._loop = loop
        self._pool = pool
        self._futures = futures
        self.gap_timeout = gap_timeout

    def submit(
        self,
        model: TrainingModel,
        seq_id: int | None,
        digest: str,
        kind: str,
        fn: JobFn,
    ) -> str:
        """Queue ``fn`` as request ``seq_id`` of ``model``; returns the request id.

        A resend of an already received (seq_id, payload) returns the original request id.

        Raises:
            UserError: the seq_id was already used by a different request, or is in the past.
        """
        if seq_id is None:
            seq_id = max([model.next_seq, *(s + 1 for s in model.seen)])
        previous = model.seen.get(seq_id)
        if previous is not None:
            request_id, old_digest = previous
            if old_digest == digest and request_id:
                return request_id
            raise UserError(
                f"seq_id {seq_id} of model {model.model_id} was already used by another request"
                f"{f' ({request_id})' if request_id else ''}; seq_ids must be unique per model"
            )
        if seq_id < model.next_seq:
            raise UserError(
                f"seq_id {seq_id} of model {model.model_id} is in the past (the model already "
                f"executed up to seq_id {model.next_seq - 1})"
            )
        if model.unloaded:
            raise UserError(f"model {model.model_id} is no longer loaded: {model.unloaded}")
        record = self._futures.new(kind, model.model_id)
        model.seen[seq_id] = (record.request_id, digest)
        model.pending[seq_id] = Job(seq_id, record, fn)
        self._prune_seen(model)
        self._pump(model)
        return record.request_id

    def consume(self, model: TrainingModel, seq_id: int | None, digest: str) -> None:
        """Mark ``seq_id`` as used by a rejected request, so later requests do not wait for it."""
        if seq_id is None or seq_id in model.seen or seq_id < model.next_seq:
            return
        model.seen[seq_id] = ("", digest)
        model.pending[seq_id] = Job(seq_id, None, None)
        self._pump(model)

    @staticmethod
    def _prune_seen(model: TrainingModel) -> None:
        if len(model.seen) > 4096:
            horizon = model.next_seq - 2048
            for old in [s for s in model.seen if s < horizon]:
                del model.seen[old]

    def _pump(self, model: TrainingModel) -> None:
        while not model.busy:
            job = model.pending.pop(model.next_seq, None)
            if job is None:
                if model.pending:
                    if model.gap_since is None:
                        model.gap_since = time.monotonic()
                else:
                    model.gap_since = None
                return
            model.gap_since = None
            if job.fn is None or job.record is None:
                model.next_seq = job.seq_id + 1
                continue
            if job.record.cancelled:
                self._futures.fail(job.record, "request was cancelled", "user")
                model.next_seq = job.seq_id + 1
                continue
            model.busy = True
            future = self._pool.submit(_run_job, model, job.fn)
            future.add_done_callback(functools.partial(self._done_in_thread, model, job))
            return

    def _done_in_thread(
        self, model: TrainingModel, job: Job, future: ConcurrentFuture[Any]
    ) -> None:
        try:
            self._loop.call_soon_threadsafe(self._on_done, model, job, future)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    def _on_done(self, model: TrainingModel, job: Job, future: ConcurrentFuture[Any]) -> None:
        model.busy = False
        model.next_seq = job.seq_id + 1
        assert job.record is not None
        if future.cancelled():
            self._futures.fail(job.record, "the server is shutting down", "server")
        else:
            outcome = future.result()
            if isinstance(outcome, _Failure):
                self._futures.fail(job.record, outcome.message, outcome.category)
            else:
                self._futures.complete(job.record, outcome)
        self._pump(model)

    def check_gaps(self, models: Mapping[str, TrainingModel]) -> None:
        """Fail requests that waited longer than ``gap_timeout`` for a missing seq_id."""
        now = time.monotonic()
        for model in models.values():
            if model.busy or not model.pending or model.gap_since is None:
                continue
            if now - model.gap_since < self.gap_timeout:
                continue
            missing = model.next_seq
            for seq_id in sorted(model.pending):
                job = model.pending.pop(seq_id)
                if job.record is not None:
                    self._futures.fail(
                        job.record,
                        f"request seq_id {seq_id} of model {model.model_id} waited "
                        f"{self.gap_timeout:g} s for seq_id {missing}, which never arrived",
                        "user",
                    )
                model.next_seq = max(model.next_seq, seq_id + 1)
            model.gap_since = None

    def unload(self, model: TrainingModel, reason: str) -> None:
        """Fail the model's queued requests and drop its weights (running job finishes)."""
        model.unloaded = reason
        for seq_id in sorted(model.pending):
            job = model.pending.pop(seq_id)
            if job.record is not None:
                self._futures.fail(
                    job.record, f"model {model.model_id} was unloaded: {reason}", "user"
                )
        if not model.busy:
            model.trainable = None


@dataclass
class _Failure:
    message: str
    category: str


def _run_job(model: TrainingModel, fn: JobFn) -> Any:
    if model.corrupted:
        return _Failure(
            f"training run {model.model_id} is corrupted; create a new training client from "
            "one of its checkpoints",
            "server",
        )
    return run_guarded(lambda: fn(model))


def run_guarded(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; user errors and bugs become a failure value (never raised)."""
    try:
        return fn()
    except (ModelInputError, UserError, CodecError) as exc:
        return _Failure(str(exc), "user")
    except FileExistsError as exc:
        return _Failure(str(exc), "user")
    except Exception as exc:
        logger.exception("local server job failed")
        return _Failure(f"internal error: {type(exc).__name__}: {exc}", "server")


def is_failure(value: Any) -> tuple[str, str] | None:
    """``(message, category)`` if ``value`` is a failure from :func:`run_guarded`."""
    if isinstance(value, _Failure):
        return value.message, value.category
    return None


# --- job bodies (worker threads) ---------------------------------------------------------------


def job_create(model: TrainingModel) -> dict[str, Any]:
    """Seq 0 of a model created with create_model."""
    model.trainable = create_trainable(model.arch, model.lora)
    return {"model_id": model.model_id, "type": "create_model"}


def job_forward_backward(call: FwdBwdCall) -> JobFn:
    """A forward / forward_backward job."""

    def run(model: TrainingModel) -> FwdBwdPayload:
        trainable = model.require_trainable()
        result = trainable.forward_backward(
            call.data, call.loss_fn, call.loss_fn_config, forward_only=call.forward_only
        )
        outputs = [{k: np.asarray(v) for k, v in out.items()} for out in result.outputs]
        metrics = {k: float(v) for k, v in result.metrics.items()}
        return FwdBwdPayload(outputs=outputs, metrics=metrics)

    return run


def job_optim_step(
    adam: AdamSettings, on_step: Callable[[TrainingModel], None] | None = None
) -> JobFn:
    """An optim_step job; ``on_step(model)`` runs after a successful step."""

    def run(model: TrainingModel) -> dict[str, Any]:
        metrics = model.require_trainable().optim_step(adam)
        model.optim_steps += 1
        if on_step is not None:
            on_step(model)
        return {"metrics": {k: float(v) for k, v in metrics.items()}}

    return run


def safetensors_bytes(tensors: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """Serialize ``tensors`` as a safetensors file."""
    from safetensors.numpy import save

    return bytes(save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))


def load_safetensors(path: str) -> dict[str, npt.NDArray[Any]]:
    """Read a safetensors file into numpy arrays."""
    from safetensors.numpy import load_file

    return dict(load_file(path))


def adapter_config(model: TrainingModel, *, peft_names: bool = False) -> dict[str, Any]:
    """PEFT ``adapter_config.json`` contents (+ tinkex metadata to rebuild the model)."""
    lora = model.lora
    targets = sorted(
        {
            name
            for name, group in _module_groups(model.arch).items()
            if {"attn": lora.train_attn, "mlp": lora.train_mlp, "unembed": lora.train_unembed}[
                group
            ]
        }
    )
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": model.base_model,
        "r": lora.rank,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": targets,
        "tinkex": {
            "arch": model.arch.name,
            "base_model": model.base_model,
            "training_run_id": model.model_id,
            "tokenizer_id": TOKENIZER_ID,
            "lora": lora_to_wire(lora),
            "peft_key_names": peft_names,
        },
    }


def _module_groups(arch: ModelArch) -> dict[str, str]:
    from tinkex.local.model.tiny import adapted_modules

    return adapted_modules(arch) if arch.n_layers else {}


def lora_to_wire(lora: LoraSpec) -> dict[str, Any]:
    """LoraSpec -> the LoraConfig JSON object."""
    data: dict[str, Any] = {
        "rank": lora.rank,
        "train_mlp": lora.train_mlp,
        "train_attn": lora.train_attn,
        "train_unembed": lora.train_unembed,
    }
    if lora.seed is not None:
        data["seed"] = lora.seed
    return data


def lora_from_wire(value: Mapping[str, Any] | None) -> LoraSpec:
    """The LoraConfig JSON object (or None: defaults) -> LoraSpec."""
    value = dict(value or {})
    rank = value.get("rank", 32)
    seed = value.get("seed")
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise UserError(f"lora_config.rank must be a positive int, got {rank!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise UserError(f"lora_config.seed must be an int, got {seed!r}")
    flags = {}
    for name in ("train_mlp", "train_attn", "train_unembed"):
        flag = value.get(name, True)
        if not isinstance(flag, bool):
            raise UserError(f"lora_config.{name} must be a bool, got {flag!r}")
        flags[name] = flag
    try:
        return LoraSpec(rank=rank, seed=seed, **flags)
    except ModelInputError as exc:
        raise UserError(f"lora_config: {exc}") from None


def job_save_weights(
    store: Store, name: str, ttl: float | None, metadata: dict[str, str] | None, overwrite: bool
) -> JobFn:
    """A save_weights job (training checkpoint with optimizer state)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = model.require_trainable().state_dict(include_optimizer=True)
        weights = {k: v for k, v in tensors.items() if not k.startswith(_OPTIMIZER_PREFIXES)}
        optimizer = {k: v for k, v in tensors.items() if k.startswith(_OPTIMIZER_PREFIXES)}
        files = {
            ADAPTER_FILE: safetensors_bytes(weights),
            CONFIG_FILE: json.dumps(adapter_config(model), indent=2).encode(),
            OPTIMIZER_FILE: safetensors_bytes(optimizer),
        }
        row = store.write_checkpoint(
            model.model_id,
            "weights",
            name,
            files,
            ttl_seconds=ttl,
            user_metadata=metadata,
            overwrite=overwrite,
        )
        store.touch_run(model.model_id)
        return {"path": row.tinker_path, "type": "save_weights"}

    return run


def job_save_sampler_named(
    store: Store, name: str, ttl: float | None, metadata: dict[str, str] | None
) -> JobFn:
    """A named save_weights_for_sampler job."""

    def run(model: TrainingModel) -> dict[str, Any]:
        weights = model.require_trainable().sampler_weights().state_dict()
        files = {
            ADAPTER_FILE: safetensors_bytes(weights),
            CONFIG_FILE: json.dumps(adapter_config(model), indent=2).encode(),
        }
        row = store.write_checkpoint(
            model.model_id,
            "sampler_weights",
            name,
            files,
            ttl_seconds=ttl,
            user_metadata=metadata,
            overwrite=False,
        )
        store.touch_run(model.model_id)
        return {"path": row.tinker_path, "type": "save_weights_for_sampler"}

    return run


def peft_tensors(tensors: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """Model LoRA tensors -> HF PEFT names and layout (``lora_A.weight`` is ``(r, d_in)``)."""
    out: dict[str, npt.NDArray[Any]] = {}
    for key, value in tensors.items():
        module, _, kind = key.rpartition(".")
        if kind not in ("lora_A", "lora_B"):
            continue
        out[f"base_model.model.{module}.{kind}.weight"] = np.ascontiguousarray(value.T)
    return out


def job_save_external(store: Store, name: str, ttl: float | None) -> JobFn:
    """A save_weights_external job (HF PEFT adapter files)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        weights = model.require_trainable().sampler_weights().state_dict()
        files = {
            ADAPTER_FILE: safetensors_bytes(peft_tensors(weights)),
            CONFIG_FILE: json.dumps(adapter_config(model, peft_names=True), indent=2).encode(),
        }
        row = store.write_checkpoint(
            model.model_id,
            "external_weights",
            name,
            files,
            ttl_seconds=ttl,
            user_metadata=None,
            overwrite=False,
        )
        store.touch_run(model.model_id)
        return {
            "path": row.tinker_path,
            "size_bytes": row.size_bytes,
            "type": "save_weights_external",
        }

    return run


def checkpoint_tensors(store: Store, path: str, *, optimizer: bool) -> dict[str, npt.NDArray[Any]]:
    """Tensors of the checkpoint at tinker ``path`` (with optimizer state when asked).

    Raises:
        UserError: malformed path, missing checkpoint, or a kind that cannot be loaded.
    """
    run_id, kind, name = parse_tinker_path(path)
    row = store.get_checkpoint(run_id, kind, name)
    if row is None:
        raise UserError(f"checkpoint {path} was not found")
    if kind == "external_weights":
        raise UserError(f"checkpoint {path} is an external (HF) export and cannot be loaded")
    directory = store.checkpoint_dir(row)
    tensors = load_safetensors(f"{directory}/{ADAPTER_FILE}")
    if optimizer:
        if kind != "weights":
            raise UserError(
                f"checkpoint {path} has no optimizer state (only tinker://RUN/weights/NAME has)"
            )
        tensors.update(load_safetensors(f"{directory}/{OPTIMIZER_FILE}"))
    return tensors


def job_load_create(
    store: Store, path: str, optimizer: bool, model_id: str, request_path: str
) -> JobFn:
    """Seq 0 of a model created by load_weights (create-via-load)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = checkpoint_tensors(store, path, optimizer=optimizer)
        trainable = create_trainable(model.arch, model.lora)
        trainable.load_state_dict(tensors, include_optimizer=optimizer)
        model.trainable = trainable
        return {"model_id": model_id, "path": request_path, "type": "load_weights"}

    return run


def job_load_into(store: Store, path: str, optimizer: bool) -> JobFn:
    """A legacy load_weights into an existing model (its first request)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = checkpoint_tensors(store, path, optimizer=optimizer)
        model.require_trainable().load_state_dict(tensors, include_optimizer=optimizer)
        return {"model_id": model.model_id, "path": path, "type": "load_weights"}

    return run


def job_unnamed_sampler(register: Callable[[SamplerWeights], str]) -> JobFn:
    """An unnamed save_weights_for_sampler job: snapshot weights into a new sampling session."""

    def run(model: TrainingModel) -> dict[str, Any]:
        weights = model.require_trainable().sampler_weights()
        sampler_id = register(weights)
        return {"sampling_session_id": sampler_id, "type": "save_weights_for_sampler"}

    return run


# --- samplers ----------------------------------------------------------------------------------


@dataclass
class Sampler:
    """A sampling session: base model or a LoRA snapshot; weights are loaded lazily."""

    sampler_id: str
    session_id: str | None
    base_model: str
    arch: ModelArch
    model_path: str | None
    weights: SamplerWeights | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_weights(self, store: Store) -> SamplerWeights:
        """The sampling weights (loaded from the checkpoint on first use)."""
        with self.lock:
            if self.weights is None:
                if self.model_path is None:
                    self.weights = SamplerWeights.base(self.arch)
                else:
                    tensors = checkpoint_tensors(store, self.model_path, optimizer=False)
                    self.weights = SamplerWeights.from_state_dict(self.arch, tensors)
            return self.weights


@dataclass
class SampleJob:
    """The parsed body of one asample request."""

    prompt: npt.NDArray[np.int64]
    num_samples: int
    settings: SampleSettings
    prompt_logprobs: bool
    topk_prompt_logprobs: int
    prompt_logprobs_last_n: int | None
    sequence_ids: list[str]
    topk_sample_logprobs: int = 0
    targets: TargetIds | None = None
    prompt_alt_tokens_k: int = 0


def run_sample(sampler: Sampler, store: Store, job: SampleJob) -> SamplePayload:
    """Sample in a worker thread."""
    weights = sampler.get_weights(store)
    outputs, scores = sample(
        weights,
        job.prompt,
        job.num_samples,
        job.settings,
        prompt_logprobs=job.prompt_logprobs,
        topk_prompt_logprobs=job.topk_prompt_logprobs,
        topk_sample_logprobs=job.topk_sample_logprobs,
        target_prompt_logprobs=None if job.targets is None else job.targets.dense,
        prompt_alt_tokens_k=job.prompt_alt_tokens_k,
    )
    if scores is not None and job.prompt_logprobs_last_n is not None:
        cut = max(0, scores.logprobs.shape[0] - job.prompt_logprobs_last_n)
        scores.logprobs = scores.logprobs.copy()
        scores.logprobs[:cut] = np.nan
        if scores.topk_ids is not None and scores.topk_logprobs is not None:
            scores.topk_ids = scores.topk_ids.copy()
            scores.topk_logprobs = scores.topk_logprobs.copy()
            scores.topk_ids[:cut] = -1
            scores.topk_logprobs[:cut] = np.nan
    return SamplePayload(
        sequences=outputs,
        sequence_ids=job.sequence_ids,
        prompt_scores=scores,
        prompt_logprobs=job.prompt_logprobs,
        topk_prompt_logprobs=job.topk_prompt_logprobs,
        targets=job.targets,
    )


def arch_for(base_model: str) -> ModelArch:
    """The architecture serving ``base_model``."""
    return resolve_arch(base_model)


def tar_directory(directory: str, files: list[str]) -> bytes:
    """A tar archive (bytes) of ``files`` (relative to ``directory``)."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for rel in files:
            archive.add(f"{directory}/{rel}", arcname=rel, recursive=False)
    return buffer.getvalue()


def finite(value: float) -> bool:
    """True for finite floats."""
    return math.isfinite(value)
