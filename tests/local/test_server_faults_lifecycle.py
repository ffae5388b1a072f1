"""Fault injection, server life cycle (threads, close), the ``tinkex serve`` command."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tinkex.local import LocalServer
from tinkex.local.cli import SERVE_GC_THRESHOLD, tune_gc_for_serving
from tinkex.local.faults import FaultInjector, parse_faults

from .conftest import Api


def test_parse_grammar() -> None:
    spec = parse_faults("asample:429:3, retrieve_future:500:2,http_5xx=0.25,seed=7,latency=20ms")
    assert [(r.endpoint, r.action, r.count) for r in spec.rules] == [
        ("asample", "429", 3),
        ("retrieve_future", "500", 2),
    ]
    assert spec.rates == {"http_5xx": 0.25} and spec.seed == 7
    assert spec.latency == pytest.approx(0.02)
    assert parse_faults("slow=1,slow_delay=0.5s,retry_after=2").slow_delay == 0.5
    assert parse_faults(None).empty and parse_faults("").empty


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("asample:429", "asample:429"),
        ("asample:abc:1", "abc"),
        ("asample:429:x", "'x'"),
        ("http_5xx=2", "http_5xx=2"),
        ("bogus=1", "bogus"),
        ("latency=fast", "fast"),
        ("asample:200:1", "200"),
        ("asample:paused_capacity:1", "applies to retrieve_future only"),
    ],
)
def test_bad_spec_names_the_token(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_faults(spec)
    with pytest.raises(ValueError, match=needle):
        LocalServer(faults=spec)


def test_probabilistic_faults_are_bounded_per_request() -> None:
    injector = FaultInjector("http_5xx=1,seed=1,max_per_request=2")
    decisions = [injector.decide("asample", "same-request") for _ in range(4)]
    assert [len(d) for d in decisions] == [1, 1, 0, 0]
    assert decisions[0][0].status in (500, 503)
    assert injector.decide("healthz", "x") == []


def test_slow_answers_are_recorded_as_injected_faults() -> None:
    injector = FaultInjector("slow=1,slow_delay=10ms")
    [delay] = injector.decide("asample", "a-request")
    assert (delay.kind, delay.delay) == ("delay", 0.01)
    assert injector.injected == [("asample", "slow")]


def test_same_seed_same_faults() -> None:
    def run() -> list[int]:
        injector = FaultInjector("http_5xx=0.5,http_429=0.3,seed=3")
        return [len(injector.decide("optim_step", f"r{i}")) for i in range(50)]

    assert run() == run() and 0 < sum(run()) < 50


def test_deterministic_429_with_retry_after() -> None:
    with LocalServer(faults="create_session:429:2", long_poll_seconds=0.3) as server:
        api = Api(server)
        statuses = []
        for _ in range(3):
            response = api.post("create_session", {})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert float(response.headers["Retry-After"]) > 0
                assert "create_session" in response.json()["detail"]
        assert statuses == [429, 429, 200]
        assert server.injected_faults == [("create_session", "429"), ("create_session", "429")]


def test_reset_before_and_after() -> None:
    with LocalServer(faults="create_session:reset_before:1,telemetry:reset_after:1") as server:
        api = Api(server)
        with pytest.raises(requests.ConnectionError):
            api.post("create_session", {})
        assert api.post("create_session", {}).status_code == 200
        with pytest.raises(requests.ConnectionError):
            api.post("telemetry", {"events": [{"event": "X", "event_id": "after"}]})
        assert any(e.get("event_id") == "after" for e in server.telemetry_events)


def test_reset_after_resend_with_idempotency_key_is_not_applied_twice() -> None:
    with LocalServer(faults="create_session:reset_after:1") as server:
        api = Api(server)
        headers = {"X-Idempotency-Key": "k-1"}
        with pytest.raises(requests.ConnectionError):
            api.post("create_session", {}, headers=headers)
        first = api.post("create_session", {}, headers=headers).json()["session_id"]
        assert api.post("create_session", {}, headers=headers).json()["session_id"] == first
        assert len(api.get("sessions", params={"limit": 100}).json()["sessions"]) == 1


def test_gone_410_on_retrieve_future_and_latency() -> None:
    with LocalServer(faults="retrieve_future:410:1,latency=30ms", long_poll_seconds=0.3) as server:
        api = Api(server)
        start = time.monotonic()
        assert api.get("get_server_capabilities").status_code == 200
        assert time.monotonic() - start >= 0.03
        session = api.session()
        future = api.ok(
            "create_model", {"session_id": session, "model_seq_id": 0, "base_model": "tinkex/null"}
        )
        gone = api.post("retrieve_future", {"request_id": future["request_id"]})
        assert gone.status_code == 410
        assert api.result(future["request_id"])["type"] == "create_model"


def test_paused_queue_states_on_retrieve_future() -> None:
    spec = "retrieve_future:paused_capacity:1,retrieve_future:paused_rate_limit:1"
    with LocalServer(faults=spec) as server:
        api = Api(server)
        session = api.session()
        future = api.ok(
            "create_model", {"session_id": session, "model_seq_id": 0, "base_model": "tinkex/null"}
        )
        answers = [
            api.post("retrieve_future", {"request_id": future["request_id"]}).json()
            for _ in range(2)
        ]
        assert [(a["type"], a["queue_state"]) for a in answers] == [
            ("try_again", "paused_capacity"),
            ("try_again", "paused_rate_limit"),
        ]
        assert answers[0]["request_id"] == future["request_id"]
        assert answers[1]["queue_state_reason"].startswith("injected fault: too many requests")
        assert api.result(future["request_id"])["type"] == "create_model"
        assert server.injected_faults == [
            ("retrieve_future", "paused_capacity"),
            ("retrieve_future", "paused_rate_limit"),
        ]


def test_close_joins_every_thread_and_is_idempotent() -> None:
    before = {t.ident for t in threading.enumerate()}
    server = LocalServer(long_poll_seconds=0.3)
    api = Api(server)
    model_id = api.model("tinkex/null")
    sampler = api.ok(
        "create_sampling_session",
        {
            "session_id": model_id.split(":")[0],
            "sampling_session_seq_id": 0,
            "base_model": "tinkex/null",
        },
    )
    api.ok(
        "asample",
        {
            "prompt": {"chunks": [{"tokens": [1], "type": "encoded_text"}]},
            "sampling_params": {"max_tokens": 2},
            "sampling_session_id": sampler["sampling_session_id"],
            "seq_id": 0,
        },
    )
    # a long-poll in flight while closing
    waiting = api.ok(
        "optim_step", {"model_id": model_id, "seq_id": 9, "adam_params": {"learning_rate": 0.1}}
    )
    outcome: list[object] = []

    def poll() -> None:
        try:
            outcome.append(api.post("retrieve_future", {"request_id": waiting["request_id"]}))
        except requests.ConnectionError as exc:  # the server closed the connection
            outcome.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.05)
    data_dir = server.data_dir
    server.close()
    server.close()
    poller.join(5)
    api.http.close()
    assert not poller.is_alive() and len(outcome) == 1
    assert not os.path.exists(data_dir)  # temporary data dir removed
    leaked = [t for t in threading.enumerate() if t.ident not in before]
    assert leaked == []
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base_url + "/api/v1/healthz", timeout=2)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="long_pol"):
        LocalServer(long_pol=1)


def test_port_in_use_raises_and_leaks_nothing() -> None:
    with LocalServer() as server:
        before = threading.active_count()
        with pytest.raises(OSError):
            LocalServer(port=server.port)
        assert threading.active_count() == before


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tinkex.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _ready(process: subprocess.Popen[str]) -> str:
    """The URL from the first line; checks the export line that follows it."""
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    prefix = "tinkex local server listening on http://127.0.0.1:"
    assert line.startswith(prefix), (line, process.stderr.read() if process.stderr else "")
    url = line.split(" on ", 1)[1]
    assert process.stdout.readline().strip() == (
        f"export TINKER_BASE_URL={url} TINKER_API_KEY=tml-local"
    )
    return url


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, exit code 0, nothing more on stdout; returns stderr."""
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0 and out == "", (out, err)
    return err


def test_tinkex_serve_prints_ready_and_export_lines_logs_requests_and_stops(
    tmp_path: Path,
) -> None:
    process = _serve("--data-dir", str(tmp_path))
    try:
        url = _ready(process)
        assert requests.get(url + "/api/v1/healthz", timeout=5).json() == {"status": "ok"}
        bad = requests.post(url + "/api/v1/create_session", json={"secret": "s3cr3t"}, timeout=5)
        assert bad.status_code == 401
        err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"data directory {tmp_path} (kept across restarts)" in err
    assert re.search(r"INFO GET /api/v1/healthz 200 [0-9.]+ ms http-\d+", err), err
    assert re.search(r"INFO POST /api/v1/create_session 401 [0-9.]+ ms http-\d+", err), err
    assert "s3cr3t" not in err  # bodies are never logged
    assert "shutting down (SIGTERM): 0 requests pending" in err and err.rstrip().endswith(
        "INFO stopped"
    )
    assert (tmp_path / "index.sqlite3").exists()


def test_tune_gc_for_serving_freezes_start_up_objects_and_raises_the_threshold() -> None:
    before = gc.get_threshold()
    try:
        frozen = tune_gc_for_serving()
        assert frozen == gc.get_freeze_count() > 0
        assert gc.get_threshold() == SERVE_GC_THRESHOLD != before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tinkex_serve_tunes_its_garbage_collector() -> None:
    process = _serve("--ephemeral", "--log-level", "debug")
    try:
        _ready(process)
        err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    threshold = re.escape(str(SERVE_GC_THRESHOLD))
    assert re.search(
        rf"garbage collector: [1-9]\d* start-up objects frozen, threshold {threshold}", err
    ), err


def test_tinkex_serve_data_dir_defaults_to_the_user_cache_and_is_locked(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = _serve(env=env)
    try:
        _ready(first)
        default = tmp_path / "tinkex" / "local-server"
        assert (default / "index.sqlite3").exists()
        second = subprocess.run(
            [sys.executable, "-m", "tinkex.cli", "serve", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
        assert second.returncode == 1
        assert f"data directory {default} is in use by another tinkex local server" in (
            second.stderr
        )
        assert f"(pid {first.pid})" in second.stderr and "--ephemeral" in second.stderr
        ephemeral = _serve("--ephemeral", "--log-level", "warning", env=env)
        try:
            _ready(ephemeral)
            assert _stop(ephemeral) == ""  # warning level: no request or lifecycle lines
        finally:
            if ephemeral.poll() is None:
                ephemeral.kill()
                ephemeral.wait()
        _stop(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_tinkex_serve_bad_faults_exit_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tinkex.cli", "serve", "--port", "0", "--faults", "nope:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "nope:1" in done.stderr
