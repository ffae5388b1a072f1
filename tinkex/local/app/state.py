"""The state of one running local server, shared by every handler (Starlette's ``app.state``).

:class:`ServerState` owns the options, the store, the future table, the worker pools, the
sequencer and the in-memory registries (loaded models, samplers, live sessions), plus the
lookups handlers share (``model``, ``sampler``, ``active_session``, ...). It runs on the
server's event loop; only the worker pools' jobs run elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from tinkex.local.app.base_models import is_supported, unsupported_detail
from tinkex.local.codec import result_bytes
from tinkex.local.engine import FutureRecord, FutureTable, Sequencer, TrainingModel
from tinkex.local.engine.batches import DrainQueue
from tinkex.local.engine.completions import CompletionFeeds
from tinkex.local.engine.jobs import Sampler
from tinkex.local.engine.memory import (
    DEFAULT_MEMORY_BUDGET,
    Holding,
    MemoryBudget,
    MemoryBudgetError,
    return_memory_to_the_os,
)
from tinkex.local.engine.resends import Fingerprint
from tinkex.local.engine.seeding import SeedCounter
from tinkex.local.engine.stability import DAY, StabilityRecords
from tinkex.local.faults import FaultInjector
from tinkex.local.hf_tokenizer import BYTE_LAYOUT, write_tokenizer_dir
from tinkex.local.http import DEFAULT_MAX_BODY_BYTES, HTTPError
from tinkex.local.model import resolve_arch
from tinkex.local.model.footprint import snapshot_bytes
from tinkex.local.storage import KINDS, CheckpointRow, Store, parse_tinker_path, tinker_path
from tinkex.tokenizer.byte import TOKENIZER_ID, ByteTokenizer

__all__ = ["AcceptedSample", "AppOptions", "ServerBusy", "ServerState"]

logger = logging.getLogger("tinkex.local")
T = TypeVar("T")

#: Where the tokenizer folder lives under the data dir.
TOKENIZER_DIR = ("tokenizers", "tinkex-byte-tokenizer")


class ServerBusy(HTTPError):
    """429: the memory budget is busy now; the same request may be sent again shortly."""

    def __init__(self, detail: str) -> None:
        super().__init__(429, detail, {"Retry-After": "1"})


@dataclass(frozen=True, slots=True)
class AcceptedSample:
    """What a resend of an accepted sample request is answered from."""

    fingerprint: Fingerprint
    request_id: str
    sequence_ids: list[str]


@dataclass
class AppOptions:
    """Tunables of the local server (``LocalServer(**options)``)."""

    #: accept only this X-API-Key (None: any key)
    api_key: str | None = None
    #: how long retrieve_future holds a pending request before answering try_again (and
    #: retrieve_futures a poll that has no completion to report)
    long_poll_seconds: float = 20.0
    #: serve ``POST /api/v1/retrieve_futures`` (one long poll per sampling session reports
    #: its completions) and advertise it (``sample_use_retrieve_futures`` in the client
    #: config); off: the endpoint answers 404, as a server without it does
    session_futures: bool = False
    #: what the client config advertises as ``sample_max_concurrent_requests``: the samples one
    #: SamplingClient of either SDK keeps in flight at once (the hosted default; the server
    #: itself does not enforce it)
    sample_max_concurrent_requests: int = 2000
    #: a session without a heartbeat (or other request) for this long expires
    heartbeat_timeout: float = 300.0
    #: how long a model's requests wait for a missing seq_id before they fail
    gap_timeout: float = 300.0
    #: accept any base-model name (default: only the names in SUPPORTED_MODELS)
    any_model: bool = False
    #: worker threads for training requests / for sample requests
    train_workers: int = 2
    sample_workers: int = 2
    #: how long a finished request's record (and result) is kept
    future_ttl: float = 3600.0
    #: telemetry events kept in memory (the newest)
    telemetry_max_events: int = 1000
    #: the bytes the server may hold for training runs, sampler weights, requests in flight
    #: and kept results (see tinkex.local.engine.memory); work beyond it is refused
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    #: a delivered result is released this many seconds after retrieve_future delivered it
    delivered_result_ttl: float = 60.0
    #: after this many seconds without a request, freed memory is given back to the OS
    idle_trim_seconds: float = 10.0
    #: limits of what one request may ask for (each refused with a 400 naming it)
    max_lora_rank: int = 1024
    max_num_samples: int = 1024
    max_datums: int = 8192
    max_batch_tokens: int = 1 << 20
    #: the largest prompt_alt_tokens_k, and of target_prompt_logprobs columns
    max_k: int = 1024
    #: the largest number of stop strings or stop token ids
    max_stop: int = 256
    #: the longest ttl_seconds of a checkpoint: 10 years, the hosted service's range (its CLI says
    #: "1 hour to 10 years"); longer ones would not fit a timestamp
    max_ttl_seconds: int = 10 * 365 * 24 * 3600
    #: the largest tags / user_metadata of a session, run or checkpoint, as JSON bytes
    max_metadata_bytes: int = 64 << 10
    #: limit of request bodies, as sent and after decompression (larger ones get 413)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: how long a sequence sampled with record_stability_info stays trainable after its last use
    stability_ttl: float = DAY
    #: derive a seed for sample requests that bring none (see tinkex.local.engine.seeding);
    #: None: such requests draw from fresh entropy
    sampling_seed: int | None = None
    #: the tokenizer id answered to every client (None: the tokenizer folder's path to clients
    #: on this machine, ``tinkex/byte-tokenizer`` to others; see :meth:`ServerState.tokenizer_for`)
    tokenizer_id: str | None = None

    def __post_init__(self) -> None:
        limit = self.sample_max_concurrent_requests
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(
                f"LocalServer(sample_max_concurrent_requests=) must be an int >= 1, got {limit!r}"
            )


class ServerState:
    """Everything one local server knows; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: Store,
        options: AppOptions,
        faults: FaultInjector,
    ) -> None:
        self.loop = loop
        self.store = store
        self.options = options
        self.faults = faults
        self.base_url = ""
        self.memory = MemoryBudget(options.memory_budget)
        self.futures = FutureTable(
            ttl_seconds=options.future_ttl,
            loop=loop,
            journal=store.save_futures,
            budget=self.memory,
            sizer=result_bytes,
            delivered_ttl=options.delivered_result_ttl,
        )
        # admission frees delivered results first when the budget is short
        self.memory.reclaim = self.futures.release_delivered
        #: what retrieve_futures reports (fed only when the server serves it)
        self.completions = CompletionFeeds()
        if options.session_futures:
            self.futures.on_finish = self._report_completion
            # samples an earlier run never finished are reported failed (retrieve_future
            # answers them with the restart error), so a client waiting for them is not stuck
            for request_id, sampler_id, clone in store.pending_session_samples():
                self.completions.add((sampler_id, clone), request_id, failed=True)
        # future records of earlier runs are kept as long as finished ones are kept in memory
        store.purge_futures(time.time() - options.future_ttl)
        self.train_pool = ThreadPoolExecutor(
            max_workers=max(1, options.train_workers), thread_name_prefix="tinkex-local-train"
        )
        self.sample_pool = ThreadPoolExecutor(
            max_workers=max(1, options.sample_workers), thread_name_prefix="tinkex-local-sample"
        )
        self.io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tinkex-local-io")
        #: sample jobs, run on the sample pool by at most sample_workers drain tasks
        self.sample_queue = DrainQueue(
            self.sample_pool,
            max(1, options.sample_workers),
            self.call_in_loop,
            loop.call_soon,
        )
        self.sequencer = Sequencer(loop, self.train_pool, self.futures, options.gap_timeout)
        self.models: dict[str, TrainingModel] = {}
        self.samplers: dict[str, Sampler] = {}
        #: live sessions: session id -> time of the last heartbeat (or other request)
        self.session_seen: dict[str, float] = {}
        self.run_touched: dict[str, float] = {}
        #: (sampler id, seq_id) -> the sample request accepted under it (recent ones)
        self.sample_dedupe: OrderedDict[tuple[str, int], AcceptedSample] = OrderedDict()
        #: sequences sampled with record_stability_info (stable_reinforce trains on them)
        self.stability = StabilityRecords(ttl_seconds=options.stability_ttl)
        self.seeds = None if options.sampling_seed is None else SeedCounter(options.sampling_seed)
        self.telemetry: deque[dict[str, Any]] = deque(maxlen=options.telemetry_max_events)
        #: signed file URL token -> (directory, expiry time)
        self.file_tokens: dict[str, tuple[str, float]] = {}
        self.sample_counter = 0
        self.join_counter = 0
        self.tokenizer = ByteTokenizer()
        #: the server's tokenizer as a Hugging Face folder in the data dir; its path is the
        #: tokenizer id the server answers, so ``AutoTokenizer.from_pretrained(id)`` (the
        #: official SDK's get_tokenizer) and tinkex's get_tokenizer load it without the Hub
        self.tokenizer_id = str(
            write_tokenizer_dir(BYTE_LAYOUT, os.path.join(store.data_dir, *TOKENIZER_DIR))
        )
        self._maintenance: asyncio.Task[None] | None = None
        #: time.monotonic() of the last request (idle memory is given back after a while)
        self.last_request = time.monotonic()

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the maintenance task (heartbeat expiry, seq gaps, future eviction)."""
        self._maintenance = self.loop.create_task(self._maintain())

    async def stop(self) -> None:
        """Stop the maintenance task and write the future records still unsaved."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            try:
                await self._maintenance
            except asyncio.CancelledError:
                pass
        self.futures.flush()

    def shutdown_pools(self) -> None:
        """Stop the worker pools (waits for running jobs; queued jobs are cancelled)."""
        self.sample_queue.close()
        for pool in (self.train_pool, self.sample_pool, self.io_pool):
            pool.shutdown(wait=True, cancel_futures=True)

    async def _maintain(self) -> None:
        options = self.options
        interval = max(0.05, min(1.0, options.heartbeat_timeout / 4, options.gap_timeout / 4))
        last_purge = 0.0
        trimmed_at, held_at_trim = 0.0, 0
        while True:
            await asyncio.sleep(interval)
            try:
                now = time.time()
                self._expire_sessions(now)
                self.sequencer.check_gaps(self.models)
                self.futures.evict(now)
                self.completions.evict(now - options.future_ttl)
                self.stability.evict(now)
                # idle, and requests came or memory was released since the last time
                idle = time.monotonic() - self.last_request > options.idle_trim_seconds
                held = self.memory.held()
                if idle and (trimmed_at < self.last_request or held < held_at_trim):
                    trimmed_at, held_at_trim = time.monotonic(), held
                    await self.in_io(return_memory_to_the_os)
                for token, (_, expires) in list(self.file_tokens.items()):
                    if expires < now:
                        del self.file_tokens[token]
                if now - last_purge > 60:
                    last_purge = now
                    await self.in_io(self.store.purge_expired)
                    await self.in_io(self.store.purge_futures, now - options.future_ttl)
            except Exception:  # keep maintaining whatever happens
                logger.exception("local server maintenance failed")

    def _expire_sessions(self, now: float) -> None:
        timeout = self.options.heartbeat_timeout
        for session_id, seen in list(self.session_seen.items()):
            if now - seen <= timeout:
                continue
            del self.session_seen[session_id]
            reason = f"no heartbeat for {timeout:g} s"
            self.store.set_session_status(
                session_id, {"type": "cancelled", "detail": f"session expired: {reason}"}
            )
            ended = f"session {session_id} expired ({reason})"
            for model in self.models.values():
                if model.session_id == session_id and not model.unloaded:
                    self.sequencer.unload(model, ended)
            self.close_samplers(session_id, ended)

    def close_samplers(self, session_id: str, reason: str) -> None:
        """The session ended: its samplers go (their memory with them), their pending
        samples are cancelled, since nobody will fetch them, and what recognises their resends
        is forgotten (a resend to an ended session is refused before it is looked up)."""
        gone = {sid for sid, sampler in self.samplers.items() if sampler.session_id == session_id}
        for sampler_id in gone:
            self.samplers.pop(sampler_id).drop(reason)
        if gone:
            self.futures.cancel_pending(gone, f"the sample was cancelled: {reason}")
            self.completions.drop(gone)
            for key in [key for key in self.sample_dedupe if key[0] in gone]:
                del self.sample_dedupe[key]

    def _report_completion(self, record: FutureRecord) -> None:
        """A sample of a live sampling session finished: its feed reports it."""
        if record.feed is not None and record.feed[0] in self.samplers:
            self.completions.add(record.feed, record.request_id, failed=record.error is not None)

    # --- threads ---------------------------------------------------------------------------------

    async def in_io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` (disk, encoding) on the I/O pool."""
        return await self.loop.run_in_executor(self.io_pool, fn, *args)

    def call_in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the event loop from a worker thread."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    # --- memory and limits -----------------------------------------------------------------------

    def admit(self, kind: str, nbytes: int, what: str) -> Holding:
        """Memory for ``what`` from the server's budget (:mod:`tinkex.local.engine.memory`).

        Raises:
            HTTPError: 400 when it cannot fit; :class:`ServerBusy` (429) when not now.
        """
        try:
            return self.memory.admit(kind, nbytes, what)
        except MemoryBudgetError as exc:
            if exc.busy:
                raise ServerBusy(str(exc)) from None
            raise HTTPError(400, str(exc)) from None

    def check_limit(self, field: str, value: int, option: str) -> int:
        """``value`` of request field ``field`` if it is within option ``option``'s limit.

        Raises:
            HTTPError: 400 naming the field, the value and the limit.
        """
        limit = int(getattr(self.options, option))
        if value > limit:
            raise HTTPError(
                400,
                f"{field} = {value} exceeds this server's limit of {limit} (LocalServer option "
                f"{option})",
            )
        return value

    def ttl(self, seconds: int | None) -> float | None:
        """A request's ``ttl_seconds`` (None: no expiry) if within ``max_ttl_seconds``.

        Raises:
            HTTPError: 400 naming the value and the limit.
        """
        if seconds is None:
            return None
        return float(self.check_limit("ttl_seconds", seconds, "max_ttl_seconds"))

    def check_metadata(self, field: str, value: Any) -> None:
        """Refuse request field ``field`` (tags, user_metadata) above ``max_metadata_bytes``.

        Raises:
            HTTPError: 400 naming the field, its size and the limit.
        """
        if value:
            size = len(json.dumps(value, default=str, separators=(",", ":")))
            self.check_limit(f"JSON size in bytes of {field}", size, "max_metadata_bytes")

    # --- sessions --------------------------------------------------------------------------------

    def touch_session(self, session_id: str | None) -> None:
        """A request of ``session_id`` counts as a heartbeat."""
        if session_id is not None and session_id in self.session_seen:
            self.session_seen[session_id] = time.time()

    def session_or_404(self, session_id: str) -> dict[str, Any]:
        """The session row, or 404."""
        session = self.store.get_session(session_id)
        if session is None:
            raise HTTPError(404, f"session {session_id!r} not found")
        return session

    def active_session(self, session_id: str) -> dict[str, Any]:
        """The session row of an active session that a new model or sampler belongs to."""
        session = self.store.get_session(session_id)
        if session is None:
            raise HTTPError(
                400, f"session_id {session_id!r} is unknown (call create_session first)"
            )
        if session["status"].get("type") != "active":
            raise HTTPError(
                400, f"session {session_id} is not active ({session['status']['type']})"
            )
        self.touch_session(session_id)
        return session

    # --- models and samplers ---------------------------------------------------------------------

    def check_base_model(self, base_model: str, field: str = "base_model") -> None:
        """Only :data:`SUPPORTED_MODELS` are served, unless the server runs with ``any_model``.

        Raises:
            HTTPError: 400 naming the model, the closest supported names and the list.
        """
        if not self.options.any_model and not is_supported(base_model):
            raise HTTPError(400, unsupported_detail(base_model, field))

    def model(self, model_id: str) -> TrainingModel:
        """The loaded training run ``model_id`` (400 naming why it is not available)."""
        model = self.models.get(model_id)
        if model is None:
            if self.store.get_run(model_id) is not None:
                raise HTTPError(
                    400,
                    f"model_id {model_id!r} is not loaded on this server (it was created before a "
                    "restart or its session ended); create a training client from one of its "
                    "checkpoints",
                )
            raise HTTPError(400, f"model_id {model_id!r} is unknown")
        if model.unloaded:
            raise HTTPError(400, f"model_id {model_id!r} is no longer loaded: {model.unloaded}")
        self.touch_session(model.session_id)
        return model

    def mark_corrupted(self, run_id: str) -> bool:
        """Mark training run ``run_id`` corrupted (thread-safe); False if it is unknown."""
        model = self.models.get(run_id)
        if model is not None:
            model.corrupted = True
        return self.store.set_run_corrupted(run_id)

    def make_sampler(
        self,
        sampler_id: str,
        session_id: str | None,
        base_model: str | None,
        model_path: str | None,
    ) -> Sampler:
        """A sampler of ``model_path`` (a checkpoint) or of ``base_model``."""
        if model_path is not None:
            row, run = self.checkpoint_run(model_path, "model_path")
            if row.kind == "external_weights":
                raise HTTPError(
                    400, f"model_path {model_path} is an external export; use sampler_weights"
                )
            base = base_model or run["base_model"]
        elif base_model is not None:
            base = base_model
        else:
            raise HTTPError(400, "either 'base_model' or 'model_path' is required")
        if base_model is not None:  # a checkpoint's own base model was checked when trained
            self.check_base_model(base_model)
        arch = resolve_arch(base)
        memory = None
        if model_path is not None:
            rank = int((run.get("lora_config") or {}).get("rank", 32))
            memory = self.admit(
                "snapshots", snapshot_bytes(arch, rank), f"the sampler weights of {model_path}"
            )
        return Sampler(sampler_id, session_id, base, arch, model_path, memory=memory)

    def tokenizer_for(self, peer: str) -> str:
        """The tokenizer id to answer a client at IP address ``peer``: the configured one, else
        the tokenizer folder's path to a client on this machine (loopback), which
        ``AutoTokenizer.from_pretrained`` loads offline, and ``tinkex/byte-tokenizer`` to others,
        for whom the path names nothing (tinkex resolves that id without files)."""
        if self.options.tokenizer_id is not None:
            return self.options.tokenizer_id
        return self.tokenizer_id if _is_loopback(peer) else TOKENIZER_ID

    def sampler(self, sampler_id: str) -> Sampler:
        """The sampling session ``sampler_id`` (reloaded from the index after a restart).

        Raises:
            HTTPError: 400 when it is unknown, its session ended, or it cannot be reloaded.
        """
        sampler = self.samplers.get(sampler_id)
        if sampler is not None:
            self.touch_session(sampler.session_id)
            return sampler
        row = self.store.get_sampler(sampler_id)
        if row is None:
            raise HTTPError(400, f"sampling_session_id {sampler_id!r} is unknown")
        session = self.store.get_session(row["session_id"]) if row["session_id"] else None
        status = None if session is None else session["status"].get("type")
        if status not in (None, "active"):
            raise HTTPError(
                400,
                f"sampling_session_id {sampler_id!r} belongs to session {row['session_id']}, "
                f"which has ended ({status}); create a new sampling client",
            )
        if row["model_path"] is None:
            raise HTTPError(
                400,
                f"sampling_session_id {sampler_id!r} is no longer available on this server (it "
                "was an unsaved weights snapshot of a previous server run); create a new "
                "sampling client",
            )
        try:
            sampler = self.make_sampler(sampler_id, row["session_id"], None, row["model_path"])
        except HTTPError as exc:
            if exc.status != 404:
                raise
            raise HTTPError(
                400,
                f"sampling_session_id {sampler_id!r} cannot be reloaded: {exc.detail}",
            ) from None
        self.samplers[sampler_id] = sampler
        return sampler

    # --- runs and checkpoints --------------------------------------------------------------------

    def run_or_404(self, run_id: str) -> dict[str, Any]:
        """The training run row, or 404."""
        run = self.store.get_run(run_id)
        if run is None:
            raise HTTPError(404, f"training run {run_id!r} not found")
        return run

    def checkpoint_run(
        self, path: str, field: str = "path"
    ) -> tuple[CheckpointRow, dict[str, Any]]:
        """The checkpoint at tinker ``path`` (named ``field`` in errors) and its run, or 404."""
        run_id, kind, name = parse_tinker_path(path, field)
        row = self.store.get_checkpoint(run_id, kind, name)
        if row is None:
            raise HTTPError(404, f"checkpoint {path} was not found")
        run = self.store.get_run(run_id)
        if run is None:
            raise HTTPError(404, f"training run {run_id} of checkpoint {path} was not found")
        return row, run

    def checkpoint_or_404(self, params: Mapping[str, str]) -> CheckpointRow:
        """The checkpoint named by the ``run_id``/``kind``/``name`` path parameters."""
        kind = params["kind"]
        if kind not in KINDS:
            raise HTTPError(
                400, f"checkpoint kind {kind!r} is unknown (expected one of {', '.join(KINDS)})"
            )
        row = self.store.get_checkpoint(params["run_id"], kind, params["name"])
        if row is None:
            raise HTTPError(
                404, f"checkpoint {tinker_path(params['run_id'], kind, params['name'])} not found"
            )
        return row

    def checkpoint_taken(self, model: TrainingModel, kind: str, name: str) -> bool:
        """True when ``model`` already has checkpoint ``kind/name``."""
        return self.store.get_checkpoint(model.model_id, kind, name) is not None

    # --- files -----------------------------------------------------------------------------------

    def file_token(self, directory: str, ttl: float = 3600.0) -> tuple[str, float]:
        """A new unguessable token serving the files of ``directory``, and its expiry time."""
        token = secrets.token_urlsafe(16)
        expires = time.time() + ttl
        self.file_tokens[token] = (directory, expires)
        return token, expires

    def file_url(self, token: str, rel: str) -> str:
        """The signed URL of file ``rel`` behind ``token``."""
        return f"{self.base_url}/files/{token}/{urllib.parse.quote(rel)}"

    def file_path(self, token: str, rel: str) -> str:
        """The file behind a signed URL (404 for an unknown/expired token or a missing file)."""
        entry = self.file_tokens.get(token)
        if entry is None or entry[1] < time.time():
            raise HTTPError(404, "file URL is unknown or expired")
        directory = os.path.realpath(entry[0])
        target = os.path.realpath(os.path.join(directory, rel))
        if not target.startswith(directory + os.sep) or not os.path.isfile(target):
            raise HTTPError(404, f"no file {rel!r} at this URL")
        return target


def _is_loopback(address: str) -> bool:
    """Whether IP ``address`` is this machine's loopback (also IPv4-mapped); False if unknown."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)
