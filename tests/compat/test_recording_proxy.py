"""Recording-proxy compatibility (issue 11): the same script with tinkex and with the official
``tinker`` 0.38 SDK, each through a recording proxy in front of its own ``LocalServer`` with the
same faults injected; the requests are normalised (ids, timestamps, idempotency-key values) and
compared endpoint by endpoint: call counts, header names and values, body shapes.

Any difference not listed in ``DELIBERATE`` (with its reason) fails the test.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

tinker = pytest.importorskip("tinker")

import tinkex  # noqa: E402
from tinkex.local import LocalServer  # noqa: E402

from ._recording_proxy import Recorded, recording_proxy  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

#: One of each kind of fault the clients must absorb: an HTTP-layer 503 (same idempotency key
#: resent), a 429 on asample (same seq_id resent), a 500 on a poll (re-polled).
FAULTS = "forward_backward:503:1,asample:429:1,retrieve_future:500:1"

#: Header differences kept on purpose: header -> (tinkex value, official value pattern, reason).
DELIBERATE_HEADERS: dict[str, str] = {
    "user-agent": "tinkex identifies itself (tinkex/<version> (tinker-api/0.38.0; Python/...));"
    " the official SDK sends AsyncTinker/Python 0.38.0",
    "x-stainless-async": "tinkex's clients are synchronous (thread pools): 'false'; the official"
    " SDK runs on asyncio: 'async:asyncio'",
}
#: x-sdk-method values that differ: the official SDK reports the class of the object the method
#: was called on, and its create_sampling_client / save_weights_and_get_sampling_client return a
#: BackcompatSamplingClientFuture proxy; tinkex reports the method's own class.
DELIBERATE_SDK_METHODS = {
    "BackcompatSamplingClientFuture.sample": "SamplingClient.sample",
    "BackcompatSamplingClientFuture.compute_logprobs": "SamplingClient.compute_logprobs",
}
#: Endpoints whose call counts depend on timing, not on the client: heartbeats (every 10 s),
#: polls (how often a long poll answers try_again), telemetry (flush timing).
TIMING_DEPENDENT = {"POST /api/v1/session_heartbeat", "POST /api/v1/retrieve_future"}
#: Headers that differ by construction of the test or by hop (not by the client).
IGNORED_HEADERS = {"host", "content-length", "connection"}


def run_script(module: Any, base_url: str) -> None:
    types = module.types
    service = module.ServiceClient(base_url=base_url, api_key="tml-local")
    created = service.create_lora_training_client("Qwen/Qwen3-8B", rank=4)
    trainer = created.result() if hasattr(created, "result") else created
    tokens = [72, 101, 108, 108, 111]
    datum = types.Datum(
        model_input=types.ModelInput.from_ints(tokens),
        loss_fn_inputs={
            "target_tokens": types.TensorData(data=[*tokens[1:], 33], dtype="int64", shape=[5]),
            "weights": types.TensorData(data=[1.0] * 5, dtype="float32", shape=[5]),
        },
    )
    trainer.forward_backward([datum], "cross_entropy").result()
    trainer.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    state = trainer.save_state("step-1").result().path
    named = trainer.save_weights_for_sampler("sampler-1").result().path
    sampler = service.create_sampling_client(model_path=named)
    prompt = types.ModelInput.from_ints(tokens)
    sampler.sample(prompt, 2, types.SamplingParams(max_tokens=3, seed=1)).result()
    sampler.compute_logprobs(prompt).result()
    rest = module.RestClient(base_url=base_url, api_key="tml-local")
    rest.list_training_runs().result()
    rest.list_checkpoints(trainer.model_id).result()
    rest.delete_checkpoint_from_tinker_path(state).result()
    closed = service.close("success")
    if hasattr(closed, "result"):
        closed.result()
    time.sleep(0.3)  # the last telemetry batch


def record(module: Any, tmp_path: Any) -> list[Recorded]:
    with (
        LocalServer(data_dir=str(tmp_path), faults=FAULTS, long_poll_seconds=0.3) as server,
        recording_proxy(server.base_url) as proxy,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        run_script(module, proxy.base_url)
        return proxy.records()


class Normaliser:
    """Replaces the values that differ from run to run by their kind."""

    def __init__(self, records: list[Recorded]) -> None:
        self.sessions = {
            body["session_id"]
            for r in records
            if r.path == "/api/v1/create_model"
            for body in [json.loads(r.body)]
        }

    def text(self, value: str) -> str:
        for session in self.sessions:
            value = value.replace(session, "<session>")
        value = re.sub(r"req-[0-9a-f]+-\d+", "<request>", value)
        return value

    def path(self, record: Recorded) -> str:
        return f"{record.method} {self.text(record.path)}"

    def body(self, record: Recorded) -> Any:
        if not record.body:
            return None
        if "json" not in record.headers.get("content-type", ""):
            return ("bytes", len(record.body))  # protobuf: the same message has the same size
        return self._walk(json.loads(record.body))

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value

    def headers(self, record: Recorded) -> dict[str, str]:
        out = {}
        for name, value in record.headers.items():
            if name in IGNORED_HEADERS or name in DELIBERATE_HEADERS:
                continue
            if name == "x-idempotency-key":
                value = "<key>"  # tinkex-retry-<uuid4> / stainless-python-retry-<uuid4>
            elif name == "x-tinker-create-promise-roundtrip-time":
                value = "<seconds>"
            elif name == "x-stainless-read-timeout":
                value = repr(float(value))  # "5" and "5.0" are the same timeout
            elif name == "x-sdk-method":
                value = DELIBERATE_SDK_METHODS.get(value, value)
            out[name] = value
        return out


def by_endpoint(records: list[Recorded]) -> dict[str, list[Recorded]]:
    norm = Normaliser(records)
    grouped: dict[str, list[Recorded]] = {}
    for record in records:
        grouped.setdefault(norm.path(record), []).append(record)
    return grouped


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Recorded]]:
    return {
        "tinkex": record(tinkex, tmp_path_factory.mktemp("tinkex")),
        "tinker": record(tinker, tmp_path_factory.mktemp("tinker")),
    }


def _compare(
    recordings: dict[str, list[Recorded]],
    what: Callable[[Normaliser, Recorded], Any],
) -> list[str]:
    ours, theirs = recordings["tinkex"], recordings["tinker"]
    norm_ours, norm_theirs = Normaliser(ours), Normaliser(theirs)
    mine, official = by_endpoint(ours), by_endpoint(theirs)
    problems = []
    for endpoint in sorted(set(mine) & set(official)):
        a = [what(norm_ours, r) for r in mine[endpoint]]
        b = [what(norm_theirs, r) for r in official[endpoint]]
        if endpoint in TIMING_DEPENDENT or endpoint == "POST /api/v1/telemetry":
            a, b = a[:1], b[:1]
        if a != b:
            problems.append(f"{endpoint}:\n  tinkex: {a}\n  tinker: {b}")
    return problems


def test_the_same_endpoints_are_called_the_same_number_of_times(
    recordings: dict[str, list[Recorded]],
) -> None:
    def counts(records: list[Recorded]) -> Counter[str]:
        norm = Normaliser(records)
        return Counter(
            norm.path(r)
            for r in records
            if norm.path(r) not in TIMING_DEPENDENT and not r.path.endswith("/telemetry")
        )

    assert counts(recordings["tinkex"]) == counts(recordings["tinker"])


def test_the_same_headers_are_sent_endpoint_by_endpoint(
    recordings: dict[str, list[Recorded]],
) -> None:
    problems = _compare(recordings, lambda norm, r: sorted(norm.headers(r).items()))
    assert not problems, "\n".join(problems)


def test_the_same_bodies_are_sent_endpoint_by_endpoint(
    recordings: dict[str, list[Recorded]],
) -> None:
    def body(norm: Normaliser, record: Recorded) -> Any:
        if record.path == "/api/v1/telemetry":
            return sorted(json.loads(record.body))  # the batch's keys; events are timing
        return norm.body(record)

    problems = _compare(recordings, body)
    assert not problems, "\n".join(problems)


def test_resends_reuse_the_idempotency_key_and_seq_id_in_both(
    recordings: dict[str, list[Recorded]],
) -> None:
    for name, records in recordings.items():
        fwdbwd = [r for r in records if r.path == "/api/v1/forward_backward"]
        assert len(fwdbwd) == 2, name  # the 503, then the HTTP-layer resend
        keys = {r.headers["x-idempotency-key"] for r in fwdbwd}
        assert len(keys) == 1, name
        assert fwdbwd[1].headers["x-stainless-retry-count"] == "1", name
        samples = [json.loads(r.body) for r in records if r.path == "/api/v1/asample"]
        assert samples[0]["seq_id"] == samples[1]["seq_id"], name  # the 429, then the resend


def test_deliberate_header_differences_are_still_differences(
    recordings: dict[str, list[Recorded]],
) -> None:
    """A listed difference that disappeared must be removed from the list."""
    ours = recordings["tinkex"][0].headers
    theirs = recordings["tinker"][0].headers
    for name in DELIBERATE_HEADERS:
        assert ours.get(name) != theirs.get(name), name
    official_methods = {r.headers.get("x-sdk-method") for r in recordings["tinker"]}
    assert set(DELIBERATE_SDK_METHODS) <= official_methods
