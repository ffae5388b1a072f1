"""The soak run shared by the checks of ``test_soak.py``: one workload, many verdicts.

The server (``server_process.py``, every probabilistic fault on) and the client
(``workload.py``) each run in a process of their own: what the client measures (its memory, its
threads after ``close()``) is then the client's alone, whatever else this pytest process holds.
``TINKEX_SOAK=long`` selects the long form (a few minutes); the default is the short form of the
CI suite. The figures are printed in the terminal summary and, with
``TINKEX_SOAK_REPORT=PATH``, written there as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .workload import SETTLE_SECONDS, Ledger, SoakConfig

#: Every probabilistic fault of tinkex.local.faults, plus deterministic resets after the server
#: applied the first requests of each kind (the worst case for exactly-once: applied, no answer),
#: so every run shows them (and issue 10.1's double execution of samples).
FAULTS = ",".join(
    [
        "http_5xx=0.04",
        "http_429=0.04",
        "reset_before=0.03",
        "reset_after=0.03",
        "gone_410=0.08",
        "slow=0.05",
        "slow_delay=100ms",
        "latency=2ms",
        "retry_after=20ms",
        f"seed={os.environ.get('TINKEX_SOAK_SEED', '10')}",
        "asample:reset_after:2",
        "forward_backward:reset_after:1",
        "optim_step:reset_after:1",
        "save_weights:reset_after:1",
        "save_weights_for_sampler:reset_after:1",
    ]
)
PROBABILISTIC_FAULTS = ("500|503", "429", "reset_before", "reset_after", "410")

SHORT = SoakConfig(rounds=4, steps_per_round=4, pipeline_depth=3, fanout=16, round_deadline=60)
LONG = SoakConfig(rounds=60, steps_per_round=6, pipeline_depth=4, fanout=32, round_deadline=180)
FORM = os.environ.get("TINKEX_SOAK", "short")
CONFIG = LONG if FORM == "long" else SHORT
#: the longest the client process may run: every round at its deadline, plus setup and close
CLIENT_BOUND = CONFIG.rounds * CONFIG.round_deadline + 4 * SETTLE_SECONDS + 120
#: the longest the whole soak run may take (the client, then the server settling)
RUN_BOUND = CLIENT_BOUND + 2 * SETTLE_SECONDS + 60
_SUMMARY: list[str] = []


@dataclass
class SoakResult:
    """A soak run: the client's ledger, the server's counters, what was left behind."""

    form: str
    config: SoakConfig
    ledger: Ledger
    #: (kind, owner, outcome) -> executions, from the server
    finished: dict[tuple[str, str, str], int]
    server_pending: int
    #: (endpoint, fault) -> how many were injected
    faults: Counter[tuple[str, str]]
    server_rss: list[int] = field(default_factory=list)

    def executions(self, kind: str, owner: str | None = None, outcome: str = "complete") -> int:
        """Server-side executions of ``kind`` (of ``owner``, if given) with ``outcome``."""
        return sum(
            n
            for (k, o, out), n in self.finished.items()
            if k == kind and out == outcome and (owner is None or o == owner)
        )

    def injected(self, fault: str, endpoint: str | None = None) -> int:
        """Injected faults named ``fault`` (``"500|503"`` matches both), on ``endpoint``."""
        names = fault.split("|")
        return sum(
            n
            for (e, f), n in self.faults.items()
            if f in names and (endpoint is None or e == endpoint)
        )

    def figures(self) -> dict[str, Any]:
        """The numbers the soak reports (terminal summary / JSON)."""
        ledger = self.ledger
        rss = ledger.rss
        return {
            "form": self.form,
            "seconds": round(ledger.seconds, 1),
            "operations": dict(sorted(ledger.calls.items())),
            "operations_total": sum(ledger.calls.values()),
            "faults_injected": {f"{e}:{f}": n for (e, f), n in sorted(self.faults.items())},
            "faults_total": sum(self.faults.values()),
            "executions": {
                f"{kind}/{outcome}": self.executions(kind, outcome=outcome)
                for kind, outcome in sorted({(k, out) for k, _, out in self.finished})
            },
            "client_rss_mib": [round(b / 2**20, 1) for b in (rss[0], max(rss), rss[-1])]
            if rss
            else [],
            "server_rss_mib": [round(b / 2**20, 1) for b in self.server_rss],
            "peak_threads": ledger.peak_threads,
            "leaked_threads": ledger.leaked_threads,
            "pending_futures": len(ledger.pending),
            "server_pending": self.server_pending,
        }


class _ServerProcess:
    """The ``server_process.py`` child: start, ask for counters, stop."""

    def __init__(self, faults: str) -> None:
        script = Path(__file__).with_name("server_process.py")
        self._process = subprocess.Popen(
            [sys.executable, str(script), faults],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            self.base_url = str(self._read()["base_url"])
        except BaseException:
            self._process.kill()
            self.close()
            raise

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the soak server exited (status {self._process.wait(10)})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def counts(self) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write("counts\n")
        self._process.stdin.flush()
        return self._read()

    def settled_counts(self, timeout: float) -> dict[str, Any]:
        """Counters once no request is pending on the server (or after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while counts["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)
            counts = self.counts()
        return counts

    def close(self) -> None:
        try:
            if self._process.stdin is not None:
                self._process.stdin.close()
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        finally:
            if self._process.stdout is not None:
                self._process.stdout.close()


def _run_client(base_url: str, config: SoakConfig) -> Ledger:
    """Run ``workload.py`` in a fresh interpreter; its last output line is the ledger."""
    script = Path(__file__).with_name("workload.py")
    done = subprocess.run(
        [sys.executable, str(script), base_url, json.dumps(dataclasses.asdict(config))],
        capture_output=True,
        text=True,
        timeout=CLIENT_BOUND,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the soak client failed (status {done.returncode}):\n{done.stderr}")
    return Ledger.from_json(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def soak() -> Iterator[SoakResult]:
    """Run the soak workload once (short form, or long with ``TINKEX_SOAK=long``)."""
    form, config = FORM, CONFIG
    if form not in ("short", "long"):
        raise pytest.UsageError(f"TINKEX_SOAK must be 'short' or 'long', got {form!r}")
    server = _ServerProcess(FAULTS)
    try:
        start_rss = server.counts()["rss_bytes"]
        ledger = _run_client(server.base_url, config)
        counts = server.settled_counts(SETTLE_SECONDS)
    finally:
        server.close()
    result = SoakResult(
        form=form,
        config=config,
        ledger=ledger,
        finished={(k, o, out): n for k, o, out, n in counts["finished"]},
        server_pending=counts["pending"],
        faults=Counter({(e, f): n for e, f, n in counts["faults"]}),
        server_rss=[start_rss, counts["rss_bytes"]],
    )
    figures = result.figures()
    _SUMMARY.append(f"soak ({form}): {json.dumps(figures)}")
    report = os.environ.get("TINKEX_SOAK_REPORT")
    if report:
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    yield result


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the soak figures after the test summary."""
    for line in _SUMMARY:
        terminalreporter.write_line(line)
