"""A guard of the whole suite: no test leaves a tinkex thread that talks to a server on its own.

A telemetry reporter or session heartbeat that outlives its test keeps sending requests to a
server that is gone; in a clean-clone CI run one logged "dropping 2 telemetry events after 4
failed attempts ... connection refused" in the middle of an unrelated later test. Each test's
new threads of those names are noted with the test that started them (a module or session
fixture's with the first test that used it); at the end of the session, once every fixture is
torn down, any of them still alive fails the run and is named with its test. It is judged at
the end (after a short join) rather than after each test, so a thread its owner has just told
to stop is not a failure on a loaded machine. Idle worker pools are not watched: they make no
requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

#: Names of the threads that send requests by themselves while their client is idle.
TALKING_THREADS = frozenset({"tinkex-telemetry-reporter", "tinkex-heartbeat"})

#: How long the end-of-session check waits, in all, for noted threads to finish stopping.
STOP_GRACE_SECONDS = 5.0

_started_by: dict[threading.Thread, str] = {}


def _talking_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name in TALKING_THREADS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """Note the talking threads that ``item`` (setup, call, teardown) started and left alive."""
    before = _talking_threads()
    yield
    for thread in _talking_threads() - before:
        _started_by.setdefault(thread, item.nodeid)


def _left_running() -> list[tuple[threading.Thread, str]]:
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for thread in _started_by:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [(thread, nodeid) for thread, nodeid in _started_by.items() if thread.is_alive()]


#: where a pytest-xdist worker puts its findings for the controller (``workeroutput``)
_WORKER_KEY = "tinkex_threads_left_running"
#: what pytest-xdist workers reported left running (``make test`` runs the suite on workers)
_left_in_workers: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist, on the controller: keep what a finished worker left running."""
    _left_in_workers.extend(getattr(node, "workeroutput", {}).get(_WORKER_KEY, []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a noted thread still runs: name it and the test that started it.

    A pytest-xdist worker hands its findings to the controller, which reports them all.
    """
    lines = [f"{thread.name} started by {nodeid}" for thread, nodeid in _left_running()]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_KEY] = lines
        return
    lines += _left_in_workers
    if not lines:
        return
    title = "tinkex threads that send requests are still running after the session"
    lines.append("close the client or ServiceClient that owns each (e.g. with a `with` block)")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # end the progress line
        reporter.write_sep("=", title, red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print(title, *lines, sep="\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
