"""No silent multi-minute waits (issue 12, "a new user's first hour"): the SDK retries a busy or
unreachable server for minutes, so every command and the demo say on stderr that they are still
waiting once a result takes longer than a few seconds (``tinkex.cli._progress.wait_for``)."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
from _child_env import child_env
from cli_standins import Reply, StandIn, forward_to

from tinkex.cli._progress import NOTICE_AFTER, wait_for

#: How long the stand-ins below hold one answer: past the first notice, far below a timeout.
STALL = NOTICE_AFTER + 1.5


class _SlowFuture:
    """A future that is not done for its first ``pending`` waits (no clock involved)."""

    def __init__(self, pending: int, outcome: object) -> None:
        self.pending = pending
        self.outcome = outcome
        self.timeouts: list[float | None] = []

    def result(self, timeout: float | None = None) -> object:
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.pending:
            raise TimeoutError("not ready")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def done(self) -> bool:
        return len(self.timeouts) > self.pending


def test_wait_for_says_it_is_still_waiting_until_the_result_comes():
    stream = io.StringIO()
    future = _SlowFuture(pending=2, outcome="samples")
    assert wait_for(future, "the samples", notice_after=5, every=15, stream=stream) == "samples"
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and all(
        line.startswith("still waiting for the samples (") for line in lines
    )
    assert "Ctrl-C" in lines[0]
    first, second, _ = future.timeouts
    assert first == pytest.approx(5, abs=0.5) and second == pytest.approx(15, abs=0.5)


def test_wait_for_is_quiet_when_the_result_is_quick():
    stream = io.StringIO()
    assert wait_for(_SlowFuture(pending=0, outcome=3), "x", stream=stream) == 3
    assert stream.getvalue() == ""


def test_wait_for_passes_on_the_operations_own_timeout():
    stream = io.StringIO()
    failed = _SlowFuture(pending=0, outcome=TimeoutError("the request timed out"))
    with pytest.raises(TimeoutError, match="the request timed out"):
        wait_for(failed, "x", stream=stream)
    assert stream.getvalue() == ""


def _env(base_url: str, api_key: str = "tml-test") -> dict[str, str]:
    return child_env(base_url, api_key)


def _run(args: list[str], env: dict[str, str], cwd: str | None = None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=180, cwd=cwd
    )


@pytest.mark.e2e
def test_cli_command_on_a_slow_server_says_it_is_waiting():
    page = {"training_runs": [], "cursor": {"offset": 0, "limit": 20, "total_count": 0}}

    def slow(_request):
        time.sleep(STALL)
        return Reply(json_body=page)

    with StandIn({("GET", "/api/v1/training_runs"): slow}) as api:
        done = _run(["-m", "tinkex.cli", "-f", "json", "run", "list"], _env(api.url))
    assert done.returncode == 0, done.stderr
    assert '"runs": []' in done.stdout  # stdout stays clean JSON
    assert "still waiting for the list of training runs (0:0" in done.stderr, done.stderr


@pytest.mark.e2e
def test_demo_on_a_slow_server_says_what_it_is_waiting_for(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path / "data")) as server:
        forward = forward_to(server.base_url)

        def slow_create_model(request):
            time.sleep(STALL)
            return forward(request)

        routes = {("POST", "/api/v1/create_model"): slow_create_model}
        with StandIn(routes, fallback=forward) as api:
            args = ["-m", "tinkex.demo", "--steps", "2", "--output-dir", "out"]
            done = _run(args, _env(api.url, server.api_key), cwd=str(tmp_path))
    assert done.returncode in (0, 1), done.stderr  # 2 steps may not lower the loss
    assert "samples (greedy" in done.stdout, done.stdout + done.stderr  # it ran to the end
    assert "still waiting for a LoRA training client for " in done.stderr, done.stderr
