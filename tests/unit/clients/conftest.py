"""A scripted fake Tinker server on ``http://tinker.test`` (``responses``) for client tests.

:class:`FakeTinker` answers the endpoints the clients use with plausible bodies, records every
request, and lets a test script what ``retrieve_future`` returns for each request id. Retry
back-offs are zeroed and the holder layer is bounded to 3 attempts so failure tests are fast.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

import tinkex
from tinkex._transport import RateLimiter, Transport
from tinkex._transport.retry import RetryPolicy
from tinkex.lib.retry_handler import RetryConfig
from tinkex.types import Datum, ModelInput

BASE_URL = "http://tinker.test"
API_KEY = "tml-unit-test-key-0123456789"
SESSION_ID = "sess-1"
MODEL_ID = f"{SESSION_ID}:train:0"

# (HTTP status, JSON body) or (status, body, extra response headers); a bytes body is sent as is
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


class Call:
    """One recorded request."""

    def __init__(self, request: Any) -> None:
        self.method: str = request.method
        url: str = request.url
        self.path = url[len(BASE_URL) :].split("?", 1)[0]
        self.query = url.split("?", 1)[1] if "?" in url else ""
        self.headers = dict(request.headers)
        raw = request.body
        if isinstance(raw, bytes):
            self.content = raw
        else:
            self.content = (raw or "").encode()
        content_type = self.headers.get("Content-Type", "")
        self.json: Any = None
        if self.content and "json" in content_type:
            self.json = json.loads(self.content)
        elif self.content and "protobuf" in content_type:
            # Decode fwd/bwd protobuf bodies to their JSON shape so the fake can answer them.
            from tinkex.types._converter import to_wire
            from tinkex.types._proto import decode_forward_backward_request

            self.json = to_wire(decode_forward_backward_request(self.content))

    def __repr__(self) -> str:
        return f"Call({self.method} {self.path} {self.json!r})"


class FakeTinker:
    """Scripted answers for the endpoints used by the clients."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.rsps = rsps
        self.calls: list[Call] = []
        self.config: dict[str, Any] = {}
        self.results: dict[str, list[Reply]] = {}
        self._ids = itertools.count(1)
        self._sampling_seq = itertools.count()
        self.fwdbwd_result: Callable[[dict[str, Any]], Any] = default_fwdbwd_result
        self.sample_result: Callable[[dict[str, Any]], Any] = default_sample_result
        self.overrides: dict[tuple[str, str], list[Reply | None]] = {}
        rsps.add_callback(
            responses.GET, re.compile(re.escape(BASE_URL) + r"/.*"), callback=self._dispatch
        )
        for method in (responses.POST, responses.PUT, responses.DELETE):
            rsps.add_callback(
                method, re.compile(re.escape(BASE_URL) + r"/.*"), callback=self._dispatch
            )

    # -- scripting ---------------------------------------------------------------------------
    def reply(self, method: str, path: str, *replies: Reply | None) -> None:
        """Answer ``method path`` with ``replies`` in order (the last one repeats).

        ``None`` means "the normal answer" (e.g. ``reply(m, p, (429, {}), None)``: one 429).
        """
        self.overrides[(method, path)] = list(replies)

    def script_future(self, request_id: str, *replies: Reply) -> None:
        """What retrieve_future answers for ``request_id`` (in order; the last repeats)."""
        self.results[request_id] = list(replies)

    def requests_to(self, path: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.path == path and (method is None or c.method == method)]

    def paths(self) -> list[str]:
        return [c.path for c in self.calls]

    # -- dispatch ----------------------------------------------------------------------------
    def _dispatch(self, request: Any) -> tuple[int, dict[str, str], str]:
        call = Call(request)
        self.calls.append(call)
        override = self.overrides.get((call.method, call.path))
        reply = (override.pop(0) if len(override) > 1 else override[0]) if override else None
        if reply is None:
            reply = self._answer(call)
        status, body, *extra = reply
        headers = {"Content-Type": "application/json", **(extra[0] if extra else {})}
        if isinstance(body, bytes):  # raw bytes: the body exactly (e.g. b"" for an empty one)
            return status, headers, body.decode()
        return status, headers, json.dumps(body)

    def _future(self, result: Any, **extra: Any) -> Reply:
        request_id = f"req-{next(self._ids)}"
        self.results.setdefault(request_id, [(200, result)])
        return 200, {"request_id": request_id, **extra}

    def _answer(self, call: Call) -> Reply:
        body = call.json or {}
        path = call.path
        if path == "/api/v1/client/config":
            return 200, self.config
        if path == "/api/v1/create_session":
            return 200, {"type": "create_session", "session_id": SESSION_ID}
        if path == "/api/v1/session_heartbeat":
            return 200, {"type": "session_heartbeat"}
        if path.startswith("/api/v1/sessions/") and path.endswith("/finish"):
            return 200, {}
        if path == "/api/v1/create_model":
            model_id = f"{body['session_id']}:train:{body['model_seq_id']}"
            return self._future({"model_id": model_id, "type": "create_model"}, model_id=model_id)
        if path == "/api/v1/get_info":
            return 200, {
                "type": "get_info",
                "model_id": body["model_id"],
                "model_data": {"arch": "tiny", "model_name": "tiny-base", "tokenizer_id": "tok"},
                "is_lora": True,
                "lora_rank": 4,
            }
        if path in ("/api/v1/forward_backward", "/api/v1/forward"):
            return self._future(self.fwdbwd_result(body))
        if path == "/api/v1/optim_step":
            return self._future({"metrics": {"grad_norm:mean": 0.5}})
        if path == "/api/v1/save_weights":
            return self._future(
                {
                    "path": f"tinker://{body['model_id']}/weights/{body['path']}",
                    "type": "save_weights",
                }
            )
        if path == "/api/v1/save_weights_for_sampler":
            if "path" in body:
                return self._future(
                    {"path": f"tinker://{body['model_id']}/sampler_weights/{body['path']}"}
                )
            return self._future(
                {"sampling_session_id": f"{SESSION_ID}:sample:{body['sampling_session_seq_id']}"}
            )
        if path == "/api/v1/load_weights":
            model_id = body.get("model_id") or f"{body['session_id']}:train:{body['model_seq_id']}"
            return self._future(
                {"model_id": model_id, "path": body["path"], "type": "load_weights"}
            )
        if path == "/api/v1/create_sampling_session":
            seq = body["sampling_session_seq_id"]
            return 200, {
                "type": "create_sampling_session",
                "sampling_session_id": f"{SESSION_ID}:sample:{seq}",
            }
        if path == "/api/v1/asample":
            n = body["num_samples"]
            ids = [f"sq-{body['seq_id']}-{i}" for i in range(n)]
            return self._future(self.sample_result(body), sample_sequence_ids=ids)
        if path == "/api/v1/retrieve_future":
            queue = self.results.get(body["request_id"])
            if not queue:
                return 404, {"detail": f"unknown request {body['request_id']}"}
            return queue.pop(0) if len(queue) > 1 else queue[0]
        return 200, {}


def default_fwdbwd_result(body: dict[str, Any]) -> Any:
    """One ``logprobs`` output per datum and ``loss:sum`` = number of datums."""
    data = (body.get("forward_backward_input") or body.get("forward_input") or {})["data"]
    outputs = []
    for datum in data:
        n = len(datum["model_input"]["chunks"][0]["tokens"])
        outputs.append({"logprobs": {"data": [-1.0] * n, "dtype": "float32", "shape": [n]}})
    return {
        "loss_fn_output_type": "scalar",
        "loss_fn_outputs": outputs,
        "metrics": {"loss:sum": float(len(data))},
    }


def default_sample_result(body: dict[str, Any]) -> Any:
    return {
        "type": "sample",
        "sequences": [
            {"stop_reason": "length", "tokens": [7, 8], "logprobs": [-0.5, -0.25]}
            for _ in range(body["num_samples"])
        ],
        "prompt_logprobs": None,
    }


def datum(tokens: list[int]) -> Datum:
    """A cross-entropy datum predicting each next token."""
    return Datum(
        model_input=ModelInput.from_ints(tokens),
        loss_fn_inputs={"target_tokens": [t + 1 for t in tokens], "weights": [1.0] * len(tokens)},
    )


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "TINKER_API_KEY",
        "TINKER_BASE_URL",
        "TINKER_PROJECT_ID",
        "TINKER_TAGS",
        "TINKER_CREDENTIAL_CMD",
        "CLOUDFLARE_ACCESS_CLIENT_ID",
        "CLOUDFLARE_ACCESS_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.setenv("TINKEX_WIRE_FORMAT", "json")
    # ``responses`` fakes requests' adapter: samples must take the worker-thread path. The
    # asyncio path is tested against the real LocalServer (tests/e2e/test_sampling_io.py).
    monkeypatch.setenv("TINKEX_SAMPLING_IO", "threads")
    # No real back-off sleeps; the holder layer gives up after 3 attempts instead of 300 s.
    monkeypatch.setattr(RetryPolicy, "backoff", lambda self, retry_index: 0.0)
    monkeypatch.setattr(
        "tinkex.clients._holder.holder_retry_policy",
        lambda *args, **kwargs: RetryPolicy(name="holder", max_retries=2, jitter=0.0),
    )
    RateLimiter.reset_registry()
    yield
    Transport.close_all()
    RateLimiter.reset_registry()


@pytest.fixture
def fake() -> Iterator[FakeTinker]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeTinker(rsps)


@pytest.fixture
def service(fake: FakeTinker) -> Iterator[tinkex.ServiceClient]:
    client = tinkex.ServiceClient(base_url=BASE_URL, api_key=API_KEY)
    yield client
    client.close()


@pytest.fixture
def training(service: tinkex.ServiceClient) -> tinkex.TrainingClient:
    client: tinkex.TrainingClient = service.create_lora_training_client("tiny-base", rank=4).result(
        timeout=10
    )
    return client


@pytest.fixture
def sampler(service: tinkex.ServiceClient) -> tinkex.SamplingClient:
    """A sampling client of ``tiny-base`` whose retries wait about a millisecond."""
    client: tinkex.SamplingClient = service.create_sampling_client(
        base_model="tiny-base", retry_config=RetryConfig(retry_delay_base=0.001)
    ).result(timeout=10)
    return client
