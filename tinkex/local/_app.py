"""The Tinker API of the local server: routing, auth, faults and every endpoint handler.

Runs on the server's event loop; model compute goes to worker pools (see ``_engine``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import secrets
import time
import urllib.parse
import uuid
import zlib
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinkex.local import _codec
from tinkex.local._codec import CodecError, FwdBwdPayload, SamplePayload, TargetIds
from tinkex.local._engine import (
    ADAPTER_FILE,
    CONFIG_FILE,
    FutureTable,
    SampleJob,
    Sampler,
    Sequencer,
    TrainingModel,
    UserError,
    arch_for,
    checkpoint_tensors,
    is_failure,
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
    run_guarded,
    run_sample,
    tar_directory,
)
from tinkex.local._http import (
    DEFAULT_MAX_BODY_BYTES,
    HTTPError,
    Request,
    Response,
    error_response,
    json_response,
)
from tinkex.local._store import (
    KINDS,
    OWNER,
    CheckpointPathError,
    CheckpointRow,
    Store,
    iso,
    parse_tinker_path,
    tinker_path,
)
from tinkex.local.faults import FaultInjector, request_key
from tinkex.local.model import (
    ARCHS,
    LOSS_FUNCTIONS,
    AdamSettings,
    SamplerWeights,
    SampleSettings,
)
from tinkex.tokenizer.byte import EOS_ID, TOKENIZER_ID, ByteTokenizer

logger = logging.getLogger("tinkex.local")

#: Base model names listed by get_server_capabilities (all served by tinkex/tiny except null).
SUPPORTED_MODELS: tuple[str, ...] = (
    "tinkex/tiny",
    "tinkex/null",
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-30B-A3B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.1-8B",
)
DEFAULT_MAX_TOKENS = 64
#: Upper bound of ``prompt_alt_tokens_k`` (draws per prompt position).
MAX_PROMPT_ALT_TOKENS_K = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,255}$")
_NO_IDEMPOTENCY_CACHE = frozenset(
    {"retrieve_future", "retrieve_futures", "session_heartbeat", "telemetry", "cancel_future"}
)


@dataclass
class AppOptions:
    """Tunables of the local server (``LocalServer(**options)``)."""

    api_key: str | None = None
    long_poll_seconds: float = 20.0
    heartbeat_timeout: float = 300.0
    gap_timeout: float = 300.0
    strict_models: bool = False
    train_workers: int = 2
    sample_workers: int = 2
    future_ttl: float = 3600.0
    telemetry_max_events: int = 1000
    max_num_samples: int = 1024
    #: limit of request bodies, as sent and after decompression (larger ones get 413)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES


Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


@dataclass
class Route:
    """One endpoint: method, path pattern segments, fault/metrics name, handler."""

    method: str
    segments: tuple[str, ...]
    name: str
    handler: Handler
    auth: bool = True


def _digest(body: bytes) -> str:
    # Identifies a request body for seq_id dedupe (same seq_id, different payload -> 400);
    # not a security boundary, so a fast checksum plus the length is enough.
    return f"{len(body):x}-{zlib.crc32(body):08x}-{zlib.adler32(body):08x}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- small validators (raise HTTPError 400 naming the field) -----------------------------------


def _obj(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HTTPError(400, f"request body must be a JSON object, got {_short(body)}")
    return body


def _str(body: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise HTTPError(400, f"field {key!r} is required")
        return None
    if not isinstance(value, str) or not value:
        raise HTTPError(400, f"field {key!r} must be a non-empty string, got {_short(value)}")
    return value


def _int(
    body: Mapping[str, Any], key: str, *, required: bool = True, minimum: int | None = None
) -> int | None:
    value = body.get(key)
    if value is None:
        if required:
            raise HTTPError(400, f"field {key!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HTTPError(400, f"field {key!r} must be an int, got {_short(value)}")
    if minimum is not None and value < minimum:
        raise HTTPError(400, f"field {key!r} must be >= {minimum}, got {value}")
    return value


def _float(body: Mapping[str, Any], key: str, default: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HTTPError(400, f"field {key!r} must be a number, got {_short(value)}")
    return float(value)


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise HTTPError(400, f"field {key!r} must be a bool, got {_short(value)}")
    return value


def _metadata(body: Mapping[str, Any], key: str = "user_metadata") -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise HTTPError(400, f"field {key!r} must be an object, got {_short(value)}")
    return value


def _ttl(body: Mapping[str, Any]) -> float | None:
    value = _int(body, "ttl_seconds", required=False)
    if value is not None and value <= 0:
        raise HTTPError(400, f"field 'ttl_seconds' must be > 0, got {value}")
    return float(value) if value is not None else None


def _name(value: str, key: str = "path") -> str:
    if not _NAME_RE.match(value):
        raise HTTPError(
            400,
            f"field {key!r} must be a checkpoint name of 1-255 characters [A-Za-z0-9_.-], "
            f"got {_short(value)}",
        )
    return value


def _limit_offset(query: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    try:
        limit = int(query.get("limit", default_limit))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise HTTPError(
            400, f"query parameters limit/offset must be ints, got {dict(query)!r}"
        ) from None
    if limit < 0 or offset < 0:
        raise HTTPError(400, f"limit and offset must be >= 0, got limit={limit} offset={offset}")
    return limit, offset


def _check_datum(index: int, datum: Any, model: TrainingModel) -> None:
    """Cheap submission-time checks of one datum (the model re-checks everything)."""
    tokens = datum.tokens
    vocab = model.arch.vocab_size
    outside = tokens[(tokens < 0) | (tokens >= vocab)]
    if outside.size:
        raise UserError(
            f"data[{index}].model_input has token id {int(outside[0])} outside the vocabulary "
            f"[0, {vocab}) of {model.base_model}"
        )
    for name, array in datum.loss_inputs.items():
        length = array.shape[0] if array.ndim else None
        if length != tokens.size:
            raise UserError(
                f"data[{index}].loss_fn_inputs.{name} has shape {list(array.shape)}, but "
                f"model_input has {tokens.size} tokens (shapes must match)"
            )


class App:
    """The request handler of the local server (one per LocalServer)."""

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
        self.futures = FutureTable(
            ttl_seconds=options.future_ttl, loop=loop, journal=store.save_futures
        )
        # future records of earlier runs are kept as long as finished ones are kept in memory
        store.purge_futures(time.time() - options.future_ttl)
        self.train_pool = ThreadPoolExecutor(
            max_workers=max(1, options.train_workers), thread_name_prefix="tinkex-local-train"
        )
        self.sample_pool = ThreadPoolExecutor(
            max_workers=max(1, options.sample_workers), thread_name_prefix="tinkex-local-sample"
        )
        self.io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tinkex-local-io")
        self.sequencer = Sequencer(loop, self.train_pool, self.futures, options.gap_timeout)
        self.models: dict[str, TrainingModel] = {}
        self.samplers: dict[str, Sampler] = {}
        self.session_seen: dict[str, float] = {}
        self._run_touched: dict[str, float] = {}
        self.sample_dedupe: OrderedDict[tuple[str, int], tuple[str, str, list[str]]] = OrderedDict()
        self.idempotency: OrderedDict[tuple[str, str], Response] = OrderedDict()
        self.telemetry: deque[dict[str, Any]] = deque(maxlen=options.telemetry_max_events)
        self.file_tokens: dict[str, tuple[str, float]] = {}
        self.sample_counter = 0
        self.join_counter = 0
        self.request_counter = 0
        self.tokenizer = ByteTokenizer()
        self.routes: list[Route] = []
        self._static_routes: dict[str, dict[str, Route]] = {}
        self._register_routes()
        self._maintenance: asyncio.Task[None] | None = None
        self._closed = False

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the maintenance task (heartbeat expiry, seq gaps, future eviction)."""
        self._maintenance = self.loop.create_task(self._maintain())

    async def stop(self) -> None:
        """Stop the maintenance task and fail what is still pending."""
        self._closed = True
        if self._maintenance is not None:
            self._maintenance.cancel()
            try:
                await self._maintenance
            except asyncio.CancelledError:
                pass
        self.futures.flush()

    def shutdown_pools(self) -> None:
        """Stop the worker pools (waits for running jobs; queued jobs are cancelled)."""
        for pool in (self.train_pool, self.sample_pool, self.io_pool):
            pool.shutdown(wait=True, cancel_futures=True)

    async def _maintain(self) -> None:
        interval = max(
            0.05, min(1.0, self.options.heartbeat_timeout / 4, self.options.gap_timeout / 4)
        )
        last_purge = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                now = time.time()
                self._expire_sessions(now)
                self.sequencer.check_gaps(self.models)
                self.futures.evict(now)
                for token, (_, expires) in list(self.file_tokens.items()):
                    if expires < now:
                        del self.file_tokens[token]
                if now - last_purge > 60:
                    last_purge = now
                    await self.loop.run_in_executor(self.io_pool, self.store.purge_expired)
                    await self.loop.run_in_executor(
                        self.io_pool, self.store.purge_futures, now - self.options.future_ttl
                    )
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
            for model in self.models.values():
                if model.session_id == session_id and not model.unloaded:
                    self.sequencer.unload(model, f"session {session_id} expired ({reason})")

    # --- dispatch --------------------------------------------------------------------------------

    def _register_routes(self) -> None:
        r = self._route
        r("POST", "client/config", "config", self.client_config)
        r("POST", "client/dynamic_config", "dynamic_config", self.dynamic_config)
        r("POST", "auth/token", "auth_token", self.auth_token)
        r("GET", "auth/apikey/me", "apikey_me", self.apikey_me)
        r("DELETE", "auth/apikey/me", "apikey_me", self.apikey_me)
        r("POST", "create_session", "create_session", self.create_session)
        r("POST", "session_heartbeat", "session_heartbeat", self.session_heartbeat)
        r("POST", "sessions/{session_id}/finish", "session_finish", self.session_finish)
        r("POST", "create_model", "create_model", self.create_model)
        r("POST", "get_info", "get_info", self.get_info)
        r("POST", "forward_backward", "forward_backward", self.forward_backward)
        r("POST", "forward", "forward", self.forward)
        r("POST", "optim_step", "optim_step", self.optim_step)
        r("POST", "save_weights", "save_weights", self.save_weights)
        r("POST", "save_weights_for_sampler", "save_weights_for_sampler", self.save_for_sampler)
        r("POST", "save_weights_external", "save_weights_external", self.save_external)
        r("POST", "load_weights", "load_weights", self.load_weights)
        r("POST", "unload_model", "unload_model", self.unload_model)
        r("POST", "create_sampling_session", "create_sampling_session", self.create_sampler)
        r("POST", "join_sampling_session", "join_sampling_session", self.join_sampler)
        r("GET", "samplers/{sampler_id}", "get_sampler", self.get_sampler)
        r("POST", "asample", "asample", self.asample)
        r("POST", "retrieve_future", "retrieve_future", self.retrieve_future)
        r("POST", "cancel_future", "cancel_future", self.cancel_future)
        r("POST", "telemetry", "telemetry", self.telemetry_endpoint)
        r("GET", "get_server_capabilities", "get_server_capabilities", self.capabilities)
        r("GET", "healthz", "healthz", self.healthz, auth=False)
        r("GET", "training_runs", "list_training_runs", self.list_runs)
        r("GET", "training_runs/{run_id}", "get_training_run", self.get_run)
        r("GET", "training_runs/{run_id}/checkpoints", "list_checkpoints", self.run_checkpoints)
        r("GET", "checkpoints", "list_user_checkpoints", self.user_checkpoints)
        ckpt = "training_runs/{run_id}/checkpoints/{kind}/{name}"
        r("DELETE", ckpt, "delete_checkpoint", self.delete_checkpoint)
        r("POST", f"{ckpt}/publish", "publish_checkpoint", self.publish)
        r("DELETE", f"{ckpt}/publish", "unpublish_checkpoint", self.unpublish)
        r("PUT", f"{ckpt}/ttl", "set_checkpoint_ttl", self.set_ttl)
        r("GET", f"{ckpt}/archive", "checkpoint_archive", self.archive)
        r(
            "GET",
            "training_runs/{run_id}/checkpoints/external_weights/{name}/external_weights_urls",
            "external_weights_urls",
            self.external_urls,
        )
        r("POST", "weights_info", "weights_info", self.weights_info)
        r("POST", "copy_weights", "copy_weights", self.copy_weights)
        r("GET", "sessions", "list_sessions", self.list_sessions)
        r("POST", "sessions/search", "search_sessions", self.search_sessions)
        r("GET", "sessions/{session_id}", "get_session", self.get_session)
        r("PUT", "sessions/{session_id}/project", "session_project", self.session_project)
        r("GET", "sessions/{session_id}/trace_export", "trace_export", self.trace_export)
        r("GET", "audit", "audit", self.audit)
        r("GET", "billing/usage/events", "billing_events", self.billing_events)
        r("GET", "billing/usage/checkpoints/current", "billing_storage", self.billing_storage)

    def _route(
        self, method: str, pattern: str, name: str, handler: Handler, *, auth: bool = True
    ) -> None:
        segments = ("api", "v1", *pattern.split("/"))
        route = Route(method, segments, name, handler, auth)
        self.routes.append(route)
        if "{" not in pattern:
            self._static_routes.setdefault(f"/api/v1/{pattern}", {})[method] = route

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        static = self._static_routes.get(path.rstrip("/"))
        if static is not None:
            found = static.get(method) or (static.get("GET") if method == "HEAD" else None)
            if found is not None:
                return found, {}, True
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        path_matched = False
        for route in self.routes:
            if len(route.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for pattern, part in zip(route.segments, parts, strict=True):
                if pattern.startswith("{"):
                    if not part:
                        break
                    params[pattern[1:-1]] = part
                elif pattern != part:
                    break
            else:
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    return route, params, True
                path_matched = True
        return None, {}, path_matched

    async def handle(self, request: Request) -> Response:
        """Entry point for every HTTP request."""
        self.request_counter += 1
        http_id = f"http-{self.request_counter}"
        if request.path.startswith("/files/"):
            response = await self.serve_file(request)
            response.headers.setdefault("x-request-id", http_id)
            return response
        route, params, path_matched = self._match(request.method, request.path)
        if route is None:
            if path_matched:
                return error_response(
                    405, f"method {request.method} is not allowed on {request.path}"
                )
            return error_response(404, f"no endpoint {request.method} {request.path}")
        if route.auth:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
        actions = self._faults_for(route.name, request) if self.faults.enabled else []
        reset_after = False
        for action in actions:
            if action.kind == "delay":
                await asyncio.sleep(action.delay)
            elif action.kind == "reset_before":
                return Response(abort=True)
            elif action.kind == "reset_after":
                reset_after = True
            elif action.kind == "status":
                detail = (
                    f"injected fault: future {self._future_id_hint(request)} is gone; resubmit"
                    if action.status == 410
                    else f"injected fault: HTTP {action.status} on {route.name}"
                )
                return error_response(action.status, detail, dict(action.headers))
        cache_key: tuple[str, str] | None = None
        idem = request.header("x-idempotency-key")
        if idem and request.method != "GET" and route.name not in _NO_IDEMPOTENCY_CACHE:
            cache_key = (request.path, idem)
            cached = self.idempotency.get(cache_key)
            if cached is not None:
                return Response(
                    cached.status, cached.body, cached.content_type, dict(cached.headers)
                )
        try:
            response = await route.handler(request, params)
        except UserError as exc:
            response = error_response(400, str(exc))
        except CheckpointPathError as exc:
            response = error_response(400, str(exc))
        except _codec.BodyTooLargeError as exc:
            response = error_response(413, str(exc))
        except CodecError as exc:
            response = error_response(400, str(exc))
        response.headers.setdefault("x-request-id", http_id)
        if cache_key is not None and 200 <= response.status < 300 and len(response.body) < 1 << 20:
            self.idempotency[cache_key] = response
            while len(self.idempotency) > 10_000:
                self.idempotency.popitem(last=False)
        if reset_after:
            return Response(abort=True)
        return response

    def _faults_for(self, name: str, request: Request) -> list[Any]:
        gone_allowed = True
        if name == "retrieve_future":
            # Only samples are resubmitted by clients on 410; training futures would just fail.
            record = self.futures.get(self._future_id_hint(request))
            gone_allowed = record is not None and record.kind == "Sample"
        key = request_key(request.path, request.body)
        return self.faults.decide(name, key, gone_allowed=gone_allowed)

    @staticmethod
    def _future_id_hint(request: Request) -> str:
        try:
            return str(json.loads(request.body).get("request_id", "?"))
        except Exception:
            return "?"

    def _check_auth(self, request: Request) -> Response | None:
        key = request.header("x-api-key")
        if not key:
            return error_response(401, "missing X-API-Key header (any tml-... key works locally)")
        if self.options.api_key is not None and not secrets.compare_digest(
            key.encode(), self.options.api_key.encode()
        ):
            return error_response(
                401, "invalid API key: this server accepts only its configured key"
            )
        return None

    def _json(self, request: Request) -> dict[str, Any]:
        try:
            body = _codec.load_json(
                _codec.decode_body(
                    request.body, request.header("content-encoding"), self.options.max_body_bytes
                )
            )
        except _codec.BodyTooLargeError as exc:
            raise HTTPError(413, str(exc)) from None
        except CodecError as exc:
            raise HTTPError(400, str(exc)) from None
        return _obj(body)

    def _touch_session(self, session_id: str | None) -> None:
        if session_id is not None and session_id in self.session_seen:
            self.session_seen[session_id] = time.time()

    # --- config / auth / sessions ----------------------------------------------------------------

    async def client_config(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            {
                "pjwt_auth_enabled": False,
                "credential_default_source": "api_key",
                "sample_dispatch_bytes_semaphore_size": 10_485_760,
                "inflight_response_bytes_semaphore_size": 52_428_800,
                "parallel_fwdbwd_chunks": True,
                "proto_compress_fwdbwd": False,
                "fwdbwd_max_chunk_len": 1024,
                "fwdbwd_max_chunk_bytes_count": 5_000_000,
                "fwdbwd_dispatch_bytes_semaphore_size": 50_000_000,
                "billing_exception_max_pause_duration_sec": 3600,
                "sample_no_retries": False,
                "sample_enable_stuck_detection": True,
                "sample_max_concurrent_requests": 2000,
                "use_pyqwest_transport": True,
                "sample_use_retrieve_futures": False,
                "custom_loss_server_side": False,
                "sample_join_sampling_session": False,
            }
        )

    async def dynamic_config(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            {
                "refresh_interval_sec": 300,
                "sample_cancel_enabled": False,
                "sample_cancel_max_batch_size": 64,
            }
        )

    async def auth_token(self, request: Request, params: dict[str, str]) -> Response:
        now = int(time.time())

        def part(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        claims = {
            "sub": OWNER,
            "org_id": "local",
            "iat": now,
            "exp": now + 3600,
            "iss": "tinkex-local",
        }
        return json_response({"jwt": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."})

    async def apikey_me(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            {
                "key_id": 1,
                "name": "tinkex-local",
                "note": "local server key",
                "details": {
                    "org_details": {"name": "local"},
                    "user_details": {"email": "local@localhost"},
                },
            }
        )

    async def create_session(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise HTTPError(400, f"field 'tags' must be a list of strings, got {_short(tags)}")
        session_id = str(uuid.uuid4())
        self.store.add_session(
            session_id,
            tags=tags,
            user_metadata=_metadata(body) or {},
            project_id=_str(body, "project_id", required=False),
            display_name=_str(body, "display_name", required=False),
            sdk_version=_str(body, "sdk_version", required=False),
        )
        self.session_seen[session_id] = time.time()
        return json_response(
            {
                "type": "create_session",
                "session_id": session_id,
                "info_message": None,
                "warning_message": None,
                "error_message": None,
            }
        )

    def _session_or_404(self, session_id: str) -> dict[str, Any]:
        session = self.store.get_session(session_id)
        if session is None:
            raise HTTPError(404, f"session {session_id!r} not found")
        return session

    async def session_heartbeat(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        session_id = _str(body, "session_id")
        assert session_id is not None
        session = self._session_or_404(session_id)
        if session["status"].get("type") != "active":
            raise HTTPError(410, f"session {session_id} has finished ({session['status']['type']})")
        self.session_seen[session_id] = time.time()
        return json_response({"type": "session_heartbeat"})

    async def session_finish(self, request: Request, params: dict[str, str]) -> Response:
        session_id = params["session_id"]
        session = self._session_or_404(session_id)
        body = self._json(request)
        reason = body.get("reason") or {"type": "success"}
        if not isinstance(reason, dict) or reason.get("type") not in (
            "success",
            "errored",
            "interrupted",
        ):
            raise HTTPError(
                400,
                "field 'reason' must be {'type': 'success'|'errored'|'interrupted'}, "
                f"got {_short(reason)}",
            )
        if session["status"].get("type") == "active":
            status: dict[str, Any] = {"type": "client_finished", "reason": {"type": reason["type"]}}
            if body.get("detail") is not None:
                status["detail"] = str(body["detail"])
            self.store.set_session_status(session_id, status)
        self.session_seen.pop(session_id, None)
        for model in list(self.models.values()):
            if model.session_id == session_id and not model.pending and not model.busy:
                self.sequencer.unload(model, f"session {session_id} finished")
        return json_response({})

    async def list_sessions(self, request: Request, params: dict[str, str]) -> Response:
        limit, offset = _limit_offset(request.query, 20)
        sessions, _total = self.store.list_sessions(limit, offset)
        return json_response({"sessions": [s["session_id"] for s in sessions]})

    async def get_session(self, request: Request, params: dict[str, str]) -> Response:
        session = self._session_or_404(params["session_id"])
        runs, samplers = self.store.session_children(session["session_id"])
        return json_response(
            {
                "training_run_ids": runs,
                "sampler_ids": samplers,
                "user_metadata": {str(k): str(v) for k, v in session["user_metadata"].items()},
                "display_name": session["display_name"],
            }
        )

    async def session_project(self, request: Request, params: dict[str, str]) -> Response:
        self._session_or_404(params["session_id"])
        body = self._json(request)
        self.store.set_session_project(
            params["session_id"], _str(body, "project_id", required=False)
        )
        return json_response({})

    def _session_summary(self, session: Mapping[str, Any]) -> dict[str, Any]:
        runs, _ = self.store.session_children(session["session_id"])
        count = 0
        size = 0
        for run_id in runs:
            rows, _ = self.store.list_checkpoints(run_id, None, 0)
            count += len(rows)
            size += sum(r.size_bytes for r in rows)
        return {
            "session_id": session["session_id"],
            "created_at": iso(session["created_at"]),
            "owner": OWNER,
            "project_id": session["project_id"] or "default",
            "status": session["status"],
            "checkpoints_count": count,
            "display_name": session["display_name"],
            "user_metadata": {str(k): str(v) for k, v in session["user_metadata"].items()},
            "checkpoint_storage_bytes": size,
        }

    async def search_sessions(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        limit = _int(body, "limit", required=False, minimum=1) or 50
        want_id = _str(body, "session_id", required=False)
        want_name = _str(body, "display_name", required=False)
        metadata = _metadata(body) or {}
        projects = body.get("project_ids")
        statuses = body.get("statuses")
        cursor = body.get("cursor")
        status_types = (
            {s.get("type") for s in statuses if isinstance(s, dict)}
            if isinstance(statuses, list)
            else None
        )
        results: list[dict[str, Any]] = []
        for session in self.store.all_sessions():
            if want_id or want_name:
                name = (session["display_name"] or "").lower()
                id_ok = want_id is not None and session["session_id"] == want_id
                name_ok = want_name is not None and all(
                    w in name for w in want_name.lower().split()
                )
                if not (id_ok or name_ok):
                    continue
            if any(str(session["user_metadata"].get(k)) != str(v) for k, v in metadata.items()):
                continue
            if isinstance(projects, list) and (session["project_id"] or "default") not in projects:
                continue
            if status_types is not None and session["status"].get("type") not in status_types:
                continue
            results.append(session)
        if isinstance(cursor, dict) and cursor.get("last_session_id"):
            ids = [s["session_id"] for s in results]
            if cursor["last_session_id"] in ids:
                results = results[ids.index(cursor["last_session_id"]) + 1 :]
        page = results[:limit]
        next_cursor = None
        if len(results) > limit:
            last = page[-1]
            next_cursor = {
                "last_created_at": iso(last["created_at"]),
                "last_session_id": last["session_id"],
            }
        return json_response(
            {"sessions": [self._session_summary(s) for s in page], "next_cursor": next_cursor}
        )

    async def trace_export(self, request: Request, params: dict[str, str]) -> Response:
        session = self._session_or_404(params["session_id"])
        runs, samplers = self.store.session_children(session["session_id"])
        trace = {
            "session_id": session["session_id"],
            "created_at": iso(session["created_at"]),
            "status": session["status"],
            "training_run_ids": runs,
            "sampler_ids": samplers,
            "traceEvents": [],
        }
        directory = os.path.join(self.store.data_dir, "traces")
        filename = f"{session['session_id']}.json"
        with open(os.path.join(directory, filename), "w") as handle:
            json.dump(trace, handle)
        url = self._file_url(directory, filename)
        return json_response({"status": "ready", "url": url})

    # --- capabilities / health / telemetry / billing ---------------------------------------------

    async def capabilities(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(
            {
                "supported_models": [
                    {
                        "model_name": name,
                        "max_context_length": arch_for(name).max_seq_len,
                        "trainable": True,
                        "sampleable": True,
                    }
                    for name in SUPPORTED_MODELS
                ]
            }
        )

    async def healthz(self, request: Request, params: dict[str, str]) -> Response:
        return json_response({"status": "ok"})

    async def telemetry_endpoint(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        events = body.get("events", [])
        if not isinstance(events, list):
            raise HTTPError(400, f"field 'events' must be a list, got {_short(events)}")
        for event in events:
            if isinstance(event, dict):
                self.telemetry.append({**event, "_session_id": body.get("session_id")})
        return json_response({"status": "accepted"})

    async def audit(self, request: Request, params: dict[str, str]) -> Response:
        return json_response({"entries": []})

    async def billing_events(self, request: Request, params: dict[str, str]) -> Response:
        return json_response({"data": [], "sessions": {}, "cost_data_through": None})

    async def billing_storage(self, request: Request, params: dict[str, str]) -> Response:
        rows, _ = self.store.list_checkpoints(None, None, 0)
        size = sum(r.size_bytes for r in rows)
        item = {
            "project_id": request.query.get("project_id"),
            "org_user_urn": OWNER,
            "user_email": "local@localhost",
            "user_name": "local",
            "checkpoint_count": len(rows),
            "size_bytes": size,
            "size_gigabytes": size / 1e9,
            "estimated_monthly_cost_usd": 0.0,
        }
        return json_response({"effective_rate_usd_per_gigabyte_month": 0.0, "data": [item]})

    # --- training --------------------------------------------------------------------------------

    def _check_base_model(self, base_model: str) -> None:
        if self.options.strict_models and base_model not in SUPPORTED_MODELS:
            raise HTTPError(
                400,
                f"base_model {base_model!r} is not supported by this server (strict models); "
                f"supported: {', '.join(SUPPORTED_MODELS)}",
            )

    def _active_session(self, session_id: str) -> dict[str, Any]:
        session = self.store.get_session(session_id)
        if session is None:
            raise HTTPError(
                400, f"session_id {session_id!r} is unknown (call create_session first)"
            )
        if session["status"].get("type") != "active":
            raise HTTPError(
                400, f"session {session_id} is not active ({session['status']['type']})"
            )
        self._touch_session(session_id)
        return session

    def _model(self, model_id: Any) -> TrainingModel:
        if not isinstance(model_id, str) or not model_id:
            raise HTTPError(
                400, f"field 'model_id' must be a non-empty string, got {_short(model_id)}"
            )
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
        self._touch_session(model.session_id)
        return model

    def _submit(
        self, model: TrainingModel, seq_id: int | None, body: bytes, kind: str, fn: Any
    ) -> str:
        now = time.time()
        if now - self._run_touched.get(model.model_id, 0.0) > 1.0:  # at most 1 write/s/run
            self._run_touched[model.model_id] = now
            self.store.touch_run(model.model_id)
        return self.sequencer.submit(model, seq_id, _digest(body), kind, fn)

    def _resend_or_reject(
        self, model: TrainingModel, seq_id: int | None, body: bytes, exc: Exception
    ) -> Response:
        """A resent request gets its original future back; anything else is rejected."""
        if seq_id is not None and self._is_resend(model, seq_id, body):
            return self._future(model.seen[seq_id][0], model.model_id)
        return self._reject(model, seq_id, body, exc)

    def _reject(
        self, model: TrainingModel, seq_id: int | None, body: bytes, exc: Exception
    ) -> Response:
        """Answer 400 for a rejected sequenced request and consume its seq_id."""
        self.sequencer.consume(model, seq_id, _digest(body))
        return error_response(400, str(exc.detail if isinstance(exc, HTTPError) else exc))

    @staticmethod
    def _future(request_id: str, model_id: str | None = None, **extra: Any) -> Response:
        body: dict[str, Any] = {"request_id": request_id}
        if model_id is not None:
            body["model_id"] = model_id
        body.update(extra)
        return json_response(body, headers={"x-request-id": request_id})

    async def create_model(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        session_id = _str(body, "session_id")
        model_seq_id = _int(body, "model_seq_id", minimum=0)
        base_model = _str(body, "base_model")
        assert session_id is not None and model_seq_id is not None and base_model is not None
        self._active_session(session_id)
        self._check_base_model(base_model)
        lora = lora_from_wire(body.get("lora_config"))
        optimizer_config = body.get("optimizer_config") or {"type": "adamw"}
        if not isinstance(optimizer_config, dict) or optimizer_config.get("type") != "adamw":
            raise HTTPError(
                400,
                f"optimizer_config {_short(optimizer_config)} is not supported: the local server "
                "trains with AdamW only ({'type': 'adamw'})",
            )
        model_id = f"{session_id}:train:{model_seq_id}"
        return self._create_model_entry(
            model_id,
            session_id,
            base_model,
            lora,
            _metadata(body),
            request.body,
            "CreateModel",
            job_create,
        )

    def _create_model_entry(
        self,
        model_id: str,
        session_id: str,
        base_model: str,
        lora: Any,
        metadata: dict[str, Any] | None,
        body: bytes,
        kind: str,
        fn: Any,
    ) -> Response:
        existing = self.models.get(model_id)
        if existing is not None:
            request_id = self.sequencer.submit(existing, 0, _digest(body), kind, fn)
            return self._future(request_id, model_id)
        model = TrainingModel(
            model_id=model_id,
            session_id=session_id,
            base_model=base_model,
            arch=arch_for(base_model),
            lora=lora,
            user_metadata=metadata,
        )
        self.models[model_id] = model
        self.store.add_run(
            model_id,
            session_id=session_id,
            base_model=base_model,
            lora_config=lora_to_wire(lora),
            user_metadata=metadata,
            optimizer_config={"type": "adamw"},
        )
        request_id = self.sequencer.submit(model, 0, _digest(body), kind, fn)
        return self._future(request_id, model_id)

    async def get_info(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        return json_response(
            {
                "type": "get_info",
                "model_id": model.model_id,
                "model_data": {
                    "arch": model.arch.arch,
                    "model_name": model.base_model,
                    "tokenizer_id": TOKENIZER_ID,
                },
                "is_lora": True,
                "lora_rank": model.lora.rank,
                "optimizer_config": {"type": "adamw"},
                "model_name": model.base_model,
            }
        )

    async def forward_backward(self, request: Request, params: dict[str, str]) -> Response:
        return await self._fwdbwd(request, forward_only_endpoint=False)

    async def forward(self, request: Request, params: dict[str, str]) -> Response:
        return await self._fwdbwd(request, forward_only_endpoint=True)

    async def _fwdbwd(self, request: Request, *, forward_only_endpoint: bool) -> Response:
        body = request.body
        call = await self.loop.run_in_executor(
            self.io_pool,
            lambda: _codec.parse_forward_backward(
                body,
                request.header("content-type"),
                request.header("content-encoding"),
                forward_only_endpoint=forward_only_endpoint,
                limit=self.options.max_body_bytes,
            ),
        )
        model = self._model(call.model_id)
        try:
            if call.loss_fn not in LOSS_FUNCTIONS:
                raise UserError(
                    f"loss_fn {call.loss_fn!r} is not supported; expected one of "
                    f"{', '.join(LOSS_FUNCTIONS)}"
                )
            if not call.data:
                raise UserError("data must contain at least one Datum")
            for i, datum in enumerate(call.data):
                _check_datum(i, datum, model)
        except UserError as exc:
            return self._reject(model, call.seq_id, body, exc)
        kind = "Forward" if call.forward_only else "ForwardBackward"
        request_id = self._submit(model, call.seq_id, body, kind, job_forward_backward(call))
        return self._future(request_id, model.model_id)

    async def optim_step(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        seq_id = _int(body, "seq_id", required=False, minimum=0)
        try:
            params_obj = (
                body.get("adam_params") or body.get("optim_params") or body.get("optimizer_params")
            )
            if params_obj is None:
                raise UserError("field 'adam_params' is required")
            if not isinstance(params_obj, dict):
                raise UserError(f"field 'adam_params' must be an object, got {_short(params_obj)}")
            if params_obj.get("type", "adam") not in ("adam", "adamw"):
                raise UserError(
                    f"optimizer params of type {params_obj.get('type')!r} are not supported; "
                    "the local server trains with AdamW (adam_params)"
                )
            try:
                adam = AdamSettings(
                    learning_rate=_float(params_obj, "learning_rate", 1e-4),
                    beta1=_float(params_obj, "beta1", 0.9),
                    beta2=_float(params_obj, "beta2", 0.95),
                    eps=_float(params_obj, "eps", 1e-12),
                    weight_decay=_float(params_obj, "weight_decay", 0.0),
                    grad_clip_norm=_float(params_obj, "grad_clip_norm", 0.0),
                )
            except HTTPError as exc:
                raise UserError(f"adam_params: {exc.detail}") from None
        except UserError as exc:
            return self._reject(model, seq_id, request.body, exc)
        job = job_optim_step(adam, self._maybe_corrupt)
        request_id = self._submit(model, seq_id, request.body, "OptimStep", job)
        return self._future(request_id, model.model_id)

    def _maybe_corrupt(self, model: TrainingModel) -> None:
        limit = self.faults.spec.corrupt_after
        if limit is not None and model.optim_steps >= limit:
            self.mark_corrupted(model.model_id)

    def mark_corrupted(self, run_id: str) -> bool:
        """Mark training run ``run_id`` corrupted (thread-safe); False if it is unknown."""
        model = self.models.get(run_id)
        if model is not None:
            model.corrupted = True
        return self.store.set_run_corrupted(run_id)

    def _checkpoint_taken(self, model: TrainingModel, kind: str, name: str) -> bool:
        return self.store.get_checkpoint(model.model_id, kind, name) is not None

    async def save_weights(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        seq_id = _int(body, "seq_id", required=False, minimum=0)
        try:
            name = (
                _str(body, "path", required=False)
                or f"ckpt-{seq_id if seq_id is not None else uuid.uuid4().hex[:8]}"
            )
            _name(name)
            overwrite = _bool(body, "overwrite", False)
            ttl = _ttl(body)
            metadata = _metadata(body)
            if not overwrite and self._checkpoint_taken(model, "weights", name):
                raise UserError(
                    f"checkpoint {tinker_path(model.model_id, 'weights', name)} already exists; "
                    "pass overwrite=True or choose another name"
                )
        except (UserError, HTTPError) as exc:
            return self._resend_or_reject(model, seq_id, request.body, exc)
        fn = job_save_weights(
            self.store,
            name,
            ttl,
            {str(k): str(v) for k, v in metadata.items()} if metadata else None,
            overwrite,
        )
        request_id = self._submit(model, seq_id, request.body, "SaveWeights", fn)
        return self._future(request_id, model.model_id)

    @staticmethod
    def _is_resend(model: TrainingModel, seq_id: int | None, body: bytes) -> bool:
        if seq_id is None or seq_id not in model.seen:
            return False
        request_id, digest = model.seen[seq_id]
        return bool(request_id) and digest == _digest(body)

    async def save_for_sampler(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        seq_id = _int(body, "seq_id", required=False, minimum=0)
        try:
            name = _str(body, "path", required=False)
            if name is not None:
                _name(name)
                ttl = _ttl(body)
                metadata = _metadata(body)
                if self._checkpoint_taken(model, "sampler_weights", name):
                    raise UserError(
                        f"checkpoint {tinker_path(model.model_id, 'sampler_weights', name)} "
                        "already exists; choose another name"
                    )
                fn = job_save_sampler_named(
                    self.store,
                    name,
                    ttl,
                    {str(k): str(v) for k, v in metadata.items()} if metadata else None,
                )
            else:
                sampling_seq = _int(body, "sampling_session_seq_id", required=False, minimum=0)
                if sampling_seq is None:
                    raise UserError("either 'path' or 'sampling_session_seq_id' is required")
                if model.session_id is None:
                    raise UserError(f"model {model.model_id} has no session for a sampling session")
                sampler_id = f"{model.session_id}:sample:{sampling_seq}"
                fn = job_unnamed_sampler(self._sampler_registrar(model, sampler_id))
        except (UserError, HTTPError) as exc:
            return self._resend_or_reject(model, seq_id, request.body, exc)
        request_id = self._submit(model, seq_id, request.body, "SaveWeightsForSampler", fn)
        return self._future(request_id, model.model_id)

    def _sampler_registrar(self, model: TrainingModel, sampler_id: str) -> Any:
        def register(weights: SamplerWeights) -> str:
            sampler = Sampler(
                sampler_id=sampler_id,
                session_id=model.session_id,
                base_model=model.base_model,
                arch=model.arch,
                model_path=None,
                weights=weights,
            )
            # dict assignment is atomic; the loop reads it only after this job completes
            self.samplers[sampler_id] = sampler
            self.store.add_sampler(
                sampler_id,
                session_id=model.session_id,
                base_model=model.base_model,
                model_path=None,
            )
            return sampler_id

        return register

    async def save_external(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        seq_id = _int(body, "seq_id", required=False, minimum=0)
        try:
            name = _str(body, "path")
            assert name is not None
            _name(name)
            ttl = _ttl(body)
            if body.get("age_encryption_recipients"):
                raise UserError("age_encryption_recipients is not supported by the local server")
            if self._checkpoint_taken(model, "external_weights", name):
                raise UserError(
                    f"checkpoint {tinker_path(model.model_id, 'external_weights', name)} already "
                    "exists; choose another name"
                )
        except (UserError, HTTPError) as exc:
            return self._resend_or_reject(model, seq_id, request.body, exc)
        request_id = self._submit(
            model,
            seq_id,
            request.body,
            "SaveWeightsExternal",
            job_save_external(self.store, name, ttl),
        )
        return self._future(request_id, model.model_id)

    def _checkpoint_run(
        self, path: str, field: str = "path"
    ) -> tuple[CheckpointRow, dict[str, Any]]:
        run_id, kind, name = parse_tinker_path(path, field)
        row = self.store.get_checkpoint(run_id, kind, name)
        if row is None:
            raise HTTPError(404, f"checkpoint {path} was not found")
        run = self.store.get_run(run_id)
        if run is None:
            raise HTTPError(404, f"training run {run_id} of checkpoint {path} was not found")
        return row, run

    async def load_weights(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        path = _str(body, "path")
        assert path is not None
        optimizer = body.get("optimizer", False)
        if not isinstance(optimizer, bool):
            raise HTTPError(400, f"field 'optimizer' must be a bool, got {_short(optimizer)}")
        if body.get("model_id") is not None:
            model = self._model(body.get("model_id"))
            seq_id = _int(body, "seq_id", required=False, minimum=0)
            first = not any(s >= 1 for s in model.seen) and (seq_id is None or seq_id <= 1)
            try:
                if not first:
                    raise UserError(
                        f"LoadWeights is not permitted with seq_id {seq_id}: load_weights must be "
                        "the model's first request; create a new training client from the "
                        "checkpoint instead"
                    )
                self._checkpoint_run(path)
            except (UserError, HTTPError) as exc:
                return self._resend_or_reject(model, seq_id, request.body, exc)
            request_id = self._submit(
                model,
                seq_id,
                request.body,
                "LoadWeights",
                job_load_into(self.store, path, optimizer),
            )
            return self._future(request_id, model.model_id)
        session_id = _str(body, "session_id")
        model_seq_id = _int(body, "model_seq_id", minimum=0)
        assert session_id is not None and model_seq_id is not None
        self._active_session(session_id)
        row, run = self._checkpoint_run(path)
        if row.kind == "external_weights":
            raise HTTPError(
                400, f"checkpoint {path} is an external (HF) export and cannot be loaded"
            )
        if optimizer and row.kind != "weights":
            raise HTTPError(400, f"checkpoint {path} has no optimizer state (use optimizer=false)")
        base_model = _str(body, "base_model", required=False) or run["base_model"]
        self._check_base_model(base_model)
        if arch_for(base_model) != arch_for(run["base_model"]):
            raise HTTPError(
                400,
                f"base_model {base_model!r} is not compatible with the checkpoint's base model "
                f"{run['base_model']!r}",
            )
        lora = lora_from_wire(run["lora_config"])
        model_id = f"{session_id}:train:{model_seq_id}"
        metadata = _metadata(body)
        return self._create_model_entry(
            model_id,
            session_id,
            base_model,
            lora,
            metadata,
            request.body,
            "LoadWeights",
            job_load_create(self.store, path, optimizer, model_id, path),
        )

    async def unload_model(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        model = self._model(body.get("model_id"))
        record = self.futures.new("UnloadModel", model.model_id)
        self.sequencer.unload(model, "unloaded by the client")
        self.futures.complete(record, {"model_id": model.model_id, "type": "unload_model"})
        return self._future(record.request_id, model.model_id)

    # --- sampling --------------------------------------------------------------------------------

    def _make_sampler(
        self,
        sampler_id: str,
        session_id: str | None,
        base_model: str | None,
        model_path: str | None,
    ) -> Sampler:
        if model_path is not None:
            row, run = self._checkpoint_run(model_path, "model_path")
            if row.kind == "external_weights":
                raise HTTPError(
                    400, f"model_path {model_path} is an external export; use sampler_weights"
                )
            base = base_model or run["base_model"]
        elif base_model is not None:
            base = base_model
        else:
            raise HTTPError(400, "either 'base_model' or 'model_path' is required")
        self._check_base_model(base)
        return Sampler(sampler_id, session_id, base, arch_for(base), model_path)

    async def create_sampler(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        session_id = _str(body, "session_id")
        seq = _int(body, "sampling_session_seq_id", minimum=0)
        assert session_id is not None and seq is not None
        self._active_session(session_id)
        sampler_id = f"{session_id}:sample:{seq}"
        base_model = _str(body, "base_model", required=False)
        model_path = _str(body, "model_path", required=False)
        existing = self.samplers.get(sampler_id)
        if existing is not None:
            if existing.model_path == model_path and (base_model in (None, existing.base_model)):
                return json_response(
                    {
                        "type": "create_sampling_session",
                        "sampling_session_id": sampler_id,
                        "tokenizer_id": TOKENIZER_ID,
                    }
                )
            raise HTTPError(
                400,
                f"sampling_session_seq_id {seq} of session {session_id} is already used by "
                f"{sampler_id}",
            )
        sampler = self._make_sampler(sampler_id, session_id, base_model, model_path)
        self.samplers[sampler_id] = sampler
        self.store.add_sampler(
            sampler_id, session_id=session_id, base_model=sampler.base_model, model_path=model_path
        )
        return json_response(
            {
                "type": "create_sampling_session",
                "sampling_session_id": sampler_id,
                "tokenizer_id": TOKENIZER_ID,
            }
        )

    async def join_sampler(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        sampler_id = _str(body, "sampling_session_id")
        assert sampler_id is not None
        self._sampler(sampler_id)
        self.join_counter += 1
        return json_response({"type": "join_sampling_session", "client_counter": self.join_counter})

    def _sampler(self, sampler_id: str) -> Sampler:
        sampler = self.samplers.get(sampler_id)
        if sampler is not None:
            self._touch_session(sampler.session_id)
            return sampler
        row = self.store.get_sampler(sampler_id)
        if row is not None and row["model_path"] is not None:
            try:
                sampler = self._make_sampler(
                    sampler_id, row["session_id"], row["base_model"], row["model_path"]
                )
            except HTTPError:
                sampler = None
            if sampler is not None:
                self.samplers[sampler_id] = sampler
                return sampler
        if row is None:
            raise HTTPError(400, f"sampling_session_id {sampler_id!r} is unknown")
        raise HTTPError(
            400,
            f"sampling_session_id {sampler_id!r} is no longer available on this server (it was an "
            "unsaved weights snapshot of a previous server run); create a new sampling client",
        )

    async def get_sampler(self, request: Request, params: dict[str, str]) -> Response:
        sampler_id = params["sampler_id"]
        sampler = self.samplers.get(sampler_id)
        if sampler is not None:
            return json_response(
                {
                    "sampler_id": sampler_id,
                    "base_model": sampler.base_model,
                    "model_path": sampler.model_path,
                    "tokenizer_id": TOKENIZER_ID,
                }
            )
        row = self.store.get_sampler(sampler_id)
        if row is None:
            raise HTTPError(404, f"sampler {sampler_id!r} not found")
        return json_response(
            {
                "sampler_id": sampler_id,
                "base_model": row["base_model"],
                "model_path": row["model_path"],
                "tokenizer_id": TOKENIZER_ID,
            }
        )

    def _stop_settings(self, value: Any) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]:
        try:
            ids, strings = _codec.stop_from_json(value, "sampling_params.stop")
        except CodecError as exc:
            raise HTTPError(400, str(exc)) from None
        if ids is not None:
            return tuple(int(i) for i in ids), ()
        sequences = tuple(tuple(self.tokenizer.encode(s)) for s in strings)
        return (EOS_ID,), sequences

    async def asample(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        sampler_id = _str(body, "sampling_session_id", required=False)
        seq_id = _int(body, "seq_id", required=False)
        if sampler_id is not None:
            sampler = self._sampler(sampler_id)
        else:
            # legacy form without a sampling session: one cached sampler per model/path
            base_model = _str(body, "base_model", required=False)
            model_path = _str(body, "model_path", required=False)
            key = f"direct|{base_model}|{model_path}"
            cached = self.samplers.get(key)
            if cached is None:
                cached = self._make_sampler(key, None, base_model, model_path)
                self.samplers[key] = cached
            sampler = cached
        digest = _digest(request.body)
        if sampler_id is not None and seq_id is not None:
            previous = self.sample_dedupe.get((sampler_id, seq_id))
            if previous is not None:
                old_digest, request_id, sequence_ids = previous
                if old_digest == digest:
                    return self._future(request_id, sample_sequence_ids=sequence_ids)
        job = self._parse_sample(body, sampler)
        record = self.futures.new("Sample", sampler.sampler_id)
        self.sample_counter += 1
        job.sequence_ids = [f"sq-{self.sample_counter}-{i}" for i in range(job.num_samples)]
        if sampler_id is not None and seq_id is not None:
            self.sample_dedupe[(sampler_id, seq_id)] = (digest, record.request_id, job.sequence_ids)
            while len(self.sample_dedupe) > 100_000:
                self.sample_dedupe.popitem(last=False)
        store = self.store

        def run() -> Any:
            if record.cancelled:
                return None
            return run_guarded(lambda: run_sample(sampler, store, job))

        future = self.sample_pool.submit(run)
        future.add_done_callback(lambda f: self._call_in_loop(self._sample_done, record, f))
        return self._future(record.request_id, sample_sequence_ids=job.sequence_ids)

    def _call_in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server is gone
            pass

    def _sample_done(self, record: Any, future: Any) -> None:
        if future.cancelled():
            self.futures.fail(record, "the server is shutting down", "server")
            return
        outcome = future.result()
        if outcome is None:
            self.futures.fail(record, "request was cancelled", "user")
            return
        failure = is_failure(outcome)
        if failure is not None:
            self.futures.fail(record, *failure)
        else:
            self.futures.complete(record, outcome)

    def _parse_sample(self, body: Mapping[str, Any], sampler: Sampler) -> SampleJob:
        num_samples = _int(body, "num_samples", required=False, minimum=1) or 1
        if num_samples > self.options.max_num_samples:
            raise HTTPError(
                400,
                f"field 'num_samples' must be <= {self.options.max_num_samples}, got {num_samples}",
            )
        try:
            prompt = _codec.model_input_tokens(body.get("prompt"), "prompt")
        except CodecError as exc:
            raise HTTPError(400, str(exc)) from None
        arch = sampler.arch
        if prompt.size == 0:
            raise HTTPError(400, "prompt must contain at least one token")
        bad = prompt[(prompt < 0) | (prompt >= arch.vocab_size)]
        if bad.size:
            raise HTTPError(
                400,
                f"prompt has token id {int(bad[0])} outside the vocabulary [0, {arch.vocab_size}) "
                f"of {sampler.base_model}",
            )
        sp = body.get("sampling_params")
        if not isinstance(sp, dict):
            raise HTTPError(400, f"field 'sampling_params' must be an object, got {_short(sp)}")
        room = arch.max_seq_len - int(prompt.size)
        if room < 0:
            raise HTTPError(
                400,
                f"prompt of {prompt.size} tokens exceeds the context length {arch.max_seq_len} "
                f"of {sampler.base_model}",
            )
        max_tokens_value = sp.get("max_tokens")
        if max_tokens_value is None:
            max_tokens = min(DEFAULT_MAX_TOKENS, room)
        else:
            if isinstance(max_tokens_value, bool) or not isinstance(max_tokens_value, int):
                raise HTTPError(
                    400,
                    f"sampling_params.max_tokens must be an int, got {_short(max_tokens_value)}",
                )
            if max_tokens_value < 0:
                raise HTTPError(
                    400, f"sampling_params.max_tokens must be >= 0, got {max_tokens_value}"
                )
            max_tokens = max_tokens_value
            if max_tokens > room:
                raise HTTPError(
                    400,
                    f"prompt ({prompt.size} tokens) + sampling_params.max_tokens ({max_tokens}) "
                    f"exceeds the context length {arch.max_seq_len} of {sampler.base_model}",
                )
        try:
            temperature = _float(sp, "temperature", 1.0)
            top_p = _float(sp, "top_p", 1.0)
        except HTTPError as exc:
            raise HTTPError(400, f"sampling_params: {exc.detail}") from None
        top_k_value = sp.get("top_k", -1)
        if top_k_value is None:
            top_k_value = -1
        if isinstance(top_k_value, bool) or not isinstance(top_k_value, int):
            raise HTTPError(400, f"sampling_params.top_k must be an int, got {_short(top_k_value)}")
        seed = sp.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise HTTPError(400, f"sampling_params.seed must be an int, got {_short(seed)}")
        if temperature < 0:
            raise HTTPError(400, f"sampling_params.temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise HTTPError(400, f"sampling_params.top_p must be in (0, 1], got {top_p}")
        stop_ids, stop_sequences = self._stop_settings(sp.get("stop"))
        prompt_logprobs = bool(body.get("prompt_logprobs") or False)
        topk = _int(body, "topk_prompt_logprobs", required=False, minimum=0) or 0
        if topk > arch.vocab_size:
            raise HTTPError(
                400, f"field 'topk_prompt_logprobs' must be <= {arch.vocab_size}, got {topk}"
            )
        last_n = _int(body, "prompt_logprobs_last_n", required=False, minimum=1)
        if last_n is not None and last_n > prompt.size - 1:
            raise HTTPError(
                400,
                f"field 'prompt_logprobs_last_n' must be <= len(prompt) - 1 = {prompt.size - 1}, "
                f"got {last_n}",
            )
        topk_sample = _int(body, "topk_sample_logprobs", required=False, minimum=0) or 0
        if topk_sample > arch.vocab_size:
            raise HTTPError(
                400, f"field 'topk_sample_logprobs' must be <= {arch.vocab_size}, got {topk_sample}"
            )
        alt_k = _int(body, "prompt_alt_tokens_k", required=False, minimum=0) or 0
        if alt_k > MAX_PROMPT_ALT_TOKENS_K:
            raise HTTPError(
                400,
                f"field 'prompt_alt_tokens_k' must be <= {MAX_PROMPT_ALT_TOKENS_K}, got {alt_k}",
            )
        targets = self._target_ids(body.get("target_prompt_logprobs"), prompt.size, arch)
        settings = SampleSettings(
            max_tokens=max_tokens,
            temperature=temperature,
            top_k=top_k_value,
            top_p=top_p,
            seed=seed,
            stop_token_ids=stop_ids,
            stop_sequences=stop_sequences,
        )
        return SampleJob(
            prompt=prompt,
            num_samples=num_samples,
            settings=settings,
            prompt_logprobs=prompt_logprobs,
            topk_prompt_logprobs=topk,
            prompt_logprobs_last_n=last_n,
            sequence_ids=[],
            topk_sample_logprobs=topk_sample,
            targets=targets,
            prompt_alt_tokens_k=alt_k,
        )

    @staticmethod
    def _target_ids(value: Any, prompt_length: int, arch: Any) -> TargetIds | None:
        where = "target_prompt_logprobs"
        if value is None:
            return None
        try:
            targets = _codec.target_ids_from_json(value, where)
        except CodecError as exc:
            raise HTTPError(400, str(exc)) from None
        if targets.dense.shape[0] != prompt_length - 1:
            raise HTTPError(
                400,
                f"{where} must have shape [len(prompt) - 1, K] = [{prompt_length - 1}, K], "
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

    # --- futures ---------------------------------------------------------------------------------

    async def retrieve_future(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise HTTPError(
                400, f"field 'request_id' must be a non-empty string, got {_short(request_id)}"
            )
        record = self.futures.get(request_id)
        if record is None:
            return self._unknown_future(request_id)
        if not record.finished:
            try:
                await asyncio.wait_for(record.done.wait(), timeout=self.options.long_poll_seconds)
            except TimeoutError:
                return json_response(
                    {"type": "try_again", "request_id": request_id, "queue_state": "active"},
                    headers={"x-request-id": request_id},
                )
        headers = {"x-request-id": request_id}
        if record.error is not None:
            message, category = record.error
            return json_response({"error": message, "category": category}, headers=headers)
        result = record.result
        protobuf = _codec.wants_protobuf(request.header("accept"))
        if isinstance(result, FwdBwdPayload | SamplePayload):
            try:
                if _codec.result_size(result) <= 4096:  # small: a thread hop costs more
                    payload, content_type = _codec.encode_result(result, protobuf)
                else:
                    payload, content_type = await self.loop.run_in_executor(
                        self.io_pool, _codec.encode_result, result, protobuf
                    )
            except ImportError as exc:
                return json_response(
                    {"error": f"cannot encode the result as protobuf: {exc}", "category": "server"},
                    headers=headers,
                )
            return Response(200, payload, content_type, headers)
        return json_response(result, headers=headers)

    def _unknown_future(self, request_id: str) -> Response:
        """Answer for a request id not in memory: a request of an earlier server run fails."""
        row = None if self.futures.owns(request_id) else self.store.get_future(request_id)
        if row is None:
            raise HTTPError(404, f"future {request_id!r} is unknown (never created or expired)")
        headers = {"x-request-id": request_id}
        if row.state == "failed" and row.error is not None:
            return json_response(
                {"error": row.error, "category": row.category or "server"}, headers=headers
            )
        return json_response(
            {
                "error": "the local server restarted before this request's result was "
                "delivered; resubmit it",
                "category": "server",
            },
            headers=headers,
        )

    async def cancel_future(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        request_id = body.get("request_id")
        record = self.futures.get(request_id) if isinstance(request_id, str) else None
        if record is not None and not record.finished:
            record.cancelled = True
        return json_response({})

    # --- REST: runs and checkpoints --------------------------------------------------------------

    async def list_runs(self, request: Request, params: dict[str, str]) -> Response:
        limit, offset = _limit_offset(request.query, 20)
        runs, total = self.store.list_runs(limit, offset)
        return json_response(
            {
                "training_runs": [self.store.run_to_wire(r) for r in runs],
                "cursor": {"offset": offset, "limit": limit, "total_count": total},
            }
        )

    def _run_or_404(self, run_id: str) -> dict[str, Any]:
        run = self.store.get_run(run_id)
        if run is None:
            raise HTTPError(404, f"training run {run_id!r} not found")
        return run

    async def get_run(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(self.store.run_to_wire(self._run_or_404(params["run_id"])))

    async def run_checkpoints(self, request: Request, params: dict[str, str]) -> Response:
        self._run_or_404(params["run_id"])
        rows, total = self.store.list_checkpoints(params["run_id"], None, 0)
        return json_response(
            {
                "checkpoints": [r.to_wire() for r in rows],
                "cursor": {"offset": 0, "limit": len(rows), "total_count": total},
            }
        )

    async def user_checkpoints(self, request: Request, params: dict[str, str]) -> Response:
        limit, offset = _limit_offset(request.query, 100)
        rows, total = self.store.list_checkpoints(None, limit, offset)
        return json_response(
            {
                "checkpoints": [r.to_wire() for r in rows],
                "cursor": {"offset": offset, "limit": limit, "total_count": total},
            }
        )

    def _checkpoint_or_404(self, params: Mapping[str, str]) -> CheckpointRow:
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

    async def delete_checkpoint(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404(params)
        await self.loop.run_in_executor(self.io_pool, self.store.delete_checkpoint, row)
        return json_response({})

    async def publish(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404(params)
        if row.public:
            raise HTTPError(409, f"checkpoint {row.tinker_path} is already public")
        self.store.set_public(row, True)
        return json_response({})

    async def unpublish(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404(params)
        if not row.public:
            raise HTTPError(409, f"checkpoint {row.tinker_path} is already private")
        self.store.set_public(row, False)
        return json_response({})

    async def set_ttl(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404(params)
        body = self._json(request)
        if "ttl_seconds" not in body:
            raise HTTPError(400, "field 'ttl_seconds' is required (an int, or null for no expiry)")
        self.store.set_ttl(row, _ttl(body))
        return json_response({})

    def _file_url(self, directory: str, rel: str, ttl: float = 3600.0) -> str:
        token = secrets.token_urlsafe(16)
        self.file_tokens[token] = (directory, time.time() + ttl)
        return f"{self.base_url}/files/{token}/{urllib.parse.quote(rel)}"

    async def external_urls(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404({**params, "kind": "external_weights"})
        directory = self.store.checkpoint_dir(row)
        files = sorted(os.listdir(directory))
        token = secrets.token_urlsafe(16)
        expires = time.time() + 3600
        self.file_tokens[token] = (directory, expires)
        urls = {rel: f"{self.base_url}/files/{token}/{urllib.parse.quote(rel)}" for rel in files}
        return json_response({"urls": urls, "expires": iso(expires)})

    async def archive(self, request: Request, params: dict[str, str]) -> Response:
        row = self._checkpoint_or_404(params)
        directory = self.store.checkpoint_dir(row)
        files = sorted(os.listdir(directory))
        data = await self.loop.run_in_executor(self.io_pool, tar_directory, directory, files)
        filename = f"{row.run_id}_{row.kind}_{row.name}.tar".replace(":", "_")
        return Response(
            200,
            data,
            "application/x-tar",
            {"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def serve_file(self, request: Request) -> Response:
        """``GET /files/<token>/<relpath>``: files behind signed (unguessable, expiring) URLs."""
        if request.method not in ("GET", "HEAD"):
            return error_response(405, f"method {request.method} is not allowed on {request.path}")
        parts = request.path.split("/", 3)
        if len(parts) < 4:
            return error_response(404, f"no file at {request.path}")
        token, rel = parts[2], urllib.parse.unquote(parts[3])
        entry = self.file_tokens.get(token)
        if entry is None or entry[1] < time.time():
            return error_response(404, "file URL is unknown or expired")
        directory = entry[0]
        target = os.path.realpath(os.path.join(directory, rel))
        if not target.startswith(os.path.realpath(directory) + os.sep) or not os.path.isfile(
            target
        ):
            return error_response(404, f"no file {rel!r} at this URL")

        def read() -> bytes:
            with open(target, "rb") as handle:
                return handle.read()

        data = await self.loop.run_in_executor(self.io_pool, read)
        content_type = "application/json" if rel.endswith(".json") else "application/octet-stream"
        return Response(200, data, content_type)

    async def weights_info(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        path = _str(body, "tinker_path")
        assert path is not None
        _row, run = self._checkpoint_run(path, "tinker_path")
        lora = run["lora_config"]
        return json_response(
            {
                "base_model": run["base_model"],
                "optimizer_config": run["optimizer_config"],
                "is_lora": True,
                "lora_rank": lora.get("rank"),
                "train_unembed": lora.get("train_unembed", True),
                "train_mlp": lora.get("train_mlp", True),
                "train_attn": lora.get("train_attn", True),
            }
        )

    async def copy_weights(self, request: Request, params: dict[str, str]) -> Response:
        body = self._json(request)
        source = _str(body, "source_path")
        assert source is not None
        row, run = self._checkpoint_run(source, "source_path")
        ttl = _ttl(body)
        session_id = _str(body, "session_id", required=False)
        model_seq_id = _int(body, "model_seq_id", required=False, minimum=0)
        if session_id is not None and model_seq_id is not None:
            new_run = f"{session_id}:train:{model_seq_id}"
        else:
            new_run = f"{uuid.uuid4()}:train:0"
        if self.store.get_run(new_run) is None:
            self.store.add_run(
                new_run,
                session_id=session_id,
                base_model=run["base_model"],
                lora_config=run["lora_config"],
                user_metadata=run["user_metadata"],
                optimizer_config=run["optimizer_config"],
            )
        directory = self.store.checkpoint_dir(row)

        def copy() -> CheckpointRow:
            files = {}
            for rel in os.listdir(directory):
                with open(os.path.join(directory, rel), "rb") as handle:
                    files[rel] = handle.read()
            return self.store.write_checkpoint(
                new_run,
                row.kind,
                row.name,
                files,
                ttl_seconds=ttl,
                user_metadata=row.user_metadata,
                overwrite=True,
            )

        new_row = await self.loop.run_in_executor(self.io_pool, copy)
        return json_response({"tinker_path": new_row.tinker_path})

    # --- helpers for tests -----------------------------------------------------------------------

    def checkpoint_tensors(self, path: str, optimizer: bool = False) -> dict[str, np.ndarray]:
        """Tensors of a saved checkpoint (for tests and tools)."""
        return checkpoint_tensors(self.store, path, optimizer=optimizer)


__all__ = ["ADAPTER_FILE", "CONFIG_FILE", "SUPPORTED_MODELS", "App", "AppOptions", "ARCHS"]
