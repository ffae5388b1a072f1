"""Per-model sequencing: each training run's requests execute strictly in ``seq_id`` order.

The wire protocol lets clients send a model's requests concurrently and out of order; the
server must run them in ``seq_id`` order, wait for gaps (up to ``gap_timeout``), return the
original request id for a resend of the same request under its seq_id, and reject a different
request for a used seq_id (:mod:`.resends` says what "the same" means). A rejected request still
consumes its seq_id so later ones do not wait.

Loop thread only; jobs run on a worker pool and report back with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future as ConcurrentFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tinkex.local.engine.futures import FutureRecord, FutureTable
from tinkex.local.engine.memory import Holding
from tinkex.local.engine.outcomes import Failure, UserError, failure_of, run_guarded
from tinkex.local.engine.resends import Fingerprint
from tinkex.local.model import LoraSpec, ModelArch, TrainableModel

__all__ = ["Job", "JobFn", "Sequencer", "TrainingModel"]

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
    #: seq_id -> (request id, fingerprint) of each request received (request id "" when the
    #: request was rejected and only consumed its seq_id)
    seen: dict[int, tuple[str, Fingerprint]] = field(default_factory=dict)
    busy: bool = False
    gap_since: float | None = None
    unloaded: str | None = None
    #: set when the run is marked corrupted; its later jobs fail with category "server"
    corrupted: bool = False
    optim_steps: int = 0
    #: the memory budget's holding for the weights (released when they are dropped)
    memory: Holding | None = None

    def drop_weights(self) -> None:
        """Free the weights (an unloaded model) and their memory."""
        self.trainable = None
        if self.memory is not None:
            self.memory.release()

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

    def accepted(
        self, model: TrainingModel, seq_id: int | None, fingerprint: Fingerprint
    ) -> str | None:
        """The request id of the accepted request that this one resends under ``seq_id``, or
        None if there is none (``seq_id`` unused, or used by a rejected request with this same
        fingerprint: that one is validated again, and fails again).

        Raises:
            UserError: ``seq_id`` was used by a different request (the message names the
                fields that differ).
        """
        if seq_id is None or seq_id not in model.seen:
            return None
        request_id, previous = model.seen[seq_id]
        if previous == fingerprint:
            return request_id or None
        fields = ", ".join(previous.differing(fingerprint))
        by = f"request {request_id}" if request_id else "a request that was rejected"
        raise UserError(
            f"seq_id {seq_id} of model {model.model_id} was already used by {by}, which differs "
            f"from this one in {fields}; a resend must repeat the request unchanged, and a new "
            "request needs the next seq_id"
        )

    def submit(
        self,
        model: TrainingModel,
        seq_id: int | None,
        fingerprint: Fingerprint,
        kind: str,
        fn: JobFn,
        job_memory: Holding | None = None,
    ) -> str:
        """Queue ``fn`` as request ``seq_id`` of ``model``; returns the request id. Its record
        holds ``job_memory`` until the job ends.

        A resend of an already received request (see :meth:`accepted`) returns the original
        request id.

        Raises:
            UserError: the seq_id was already used by a different request, or is in the past.
        """
        if seq_id is None:
            seq_id = max([model.next_seq, *(s + 1 for s in model.seen)])
        original = self.accepted(model, seq_id, fingerprint)
        if original is not None:
            return original
        if seq_id in model.seen:
            raise UserError(
                f"seq_id {seq_id} of model {model.model_id} was already used by a request that "
                "was rejected; a new request needs the next seq_id"
            )
        if seq_id < model.next_seq:
            raise UserError(
                f"seq_id {seq_id} of model {model.model_id} is in the past (the model already "
                f"executed up to seq_id {model.next_seq - 1})"
            )
        if model.unloaded:
            raise UserError(f"model {model.model_id} is no longer loaded: {model.unloaded}")
        record = self._futures.new(kind, model.model_id, job_memory)
        model.seen[seq_id] = (record.request_id, fingerprint)
        model.pending[seq_id] = Job(seq_id, record, fn)
        self._prune_seen(model)
        self._pump(model)
        return record.request_id

    def consume(self, model: TrainingModel, seq_id: int | None, fingerprint: Fingerprint) -> None:
        """Mark ``seq_id`` as used by a rejected request, so later requests do not wait for it."""
        if seq_id is None or seq_id in model.seen or seq_id < model.next_seq:
            return
        model.seen[seq_id] = ("", fingerprint)
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
                self._futures.fail(job.record, job.record.cancel_reason, "user")
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
            if (failure := failure_of(outcome)) is not None:
                self._futures.fail(job.record, failure.message, failure.category)
            else:
                self._futures.complete(job.record, outcome)
        if model.unloaded or model.trainable is None:  # unloaded meanwhile, or never created
            model.drop_weights()
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
            model.drop_weights()


def _run_job(model: TrainingModel, fn: JobFn) -> Any:
    if model.corrupted:
        return Failure(
            f"training run {model.model_id} is corrupted; create a new training client from "
            "one of its checkpoints",
            "server",
        )
    return run_guarded(lambda: fn(model))
