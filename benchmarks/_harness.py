"""Process plumbing for the benchmarks: local servers, client subprocesses and their figures.

The one place that spawns processes and samples them:

* :class:`Server` runs ``tinkex serve`` (optionally with a ``latency=`` fault) on 127.0.0.1 and
  reports its own CPU time, so the harness can say how busy the server was.
* :func:`run_client` runs one client workload in a fresh interpreter and measures that process
  from outside: CPU (user + sys, all threads) and peak RSS from ``wait4``'s rusage, peak thread
  count by sampling ``/proc/<pid>/status``. The client prints one ``RESULT {json}`` line with the
  figures of its measured window (see ``_client.py``).

Linux only (``/proc``), which is what the figures are for.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS_DIR = Path(__file__).resolve().parent
CLIENT_SCRIPT = BENCHMARKS_DIR / "_client.py"
API_KEY = "tml-local"
RESULT_PREFIX = "RESULT "
#: How often the peak thread count of a running client is sampled.
THREAD_SAMPLE_SECONDS = 0.005
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (all threads), read from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the ")" of the command name: state is field 3, utime 14, stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _thread_count(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


class Server:
    """One ``tinkex serve`` process on a free loopback port; use as a context manager.

    ``latency`` seconds are added to every request (the local server's ``latency=`` fault);
    ``sample_limit`` is the ``sample_max_concurrent_requests`` it advertises (None: its default).
    """

    def __init__(
        self, latency: float = 0.0, sample_limit: int | None = None, *, start_timeout: float = 60.0
    ) -> None:
        self.latency = latency
        argv = [sys.executable, "-m", "tinkex.cli.main", "serve", "--host", "127.0.0.1"]
        argv += ["--port", "0", "--ephemeral", "--log-level", "warning"]
        if latency > 0:
            argv += ["--faults", f"latency={latency}s"]
        if sample_limit is not None:
            argv += ["--sample-max-concurrent", str(sample_limit)]
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close())
        self._process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._log, text=True, env=_server_env()
        )
        self.base_url = self._wait_for_address(start_timeout)

    def _wait_for_address(self, timeout: float) -> str:
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            if "listening on" in line:
                return line.strip().rsplit(" ", 1)[-1]
        self.close()
        self._log.seek(0)
        raise RuntimeError(
            f"tinkex serve (latency {self.latency}s) did not report its address within "
            f"{timeout:.0f} s; its stderr:\n{self._log.read()[-3000:]}"
        )

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._process.pid

    def cpu_seconds(self) -> float:
        """CPU seconds the server has used so far."""
        return process_cpu_seconds(self._process.pid)

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TINKER_BASE_URL", None)
    return env


def client_env(base_url: str) -> dict[str, str]:
    """Environment of a client process: the server, the local API key, telemetry off."""
    return dict(
        os.environ,
        TINKER_BASE_URL=base_url,
        TINKER_API_KEY=API_KEY,
        TINKER_TELEMETRY="0",
        PYTHONUNBUFFERED="1",
    )


@dataclass(frozen=True)
class ClientRun:
    """What one client process reported and what was measured from outside it.

    ``record`` is the client's RESULT object: ``window`` (wall/CPU of the measured part) and
    workload-specific fields. The ``process_*`` figures cover the whole process lifetime.
    """

    record: dict[str, Any]
    process_wall_s: float
    process_cpu_user_s: float
    process_cpu_sys_s: float
    peak_rss_mb: float
    peak_threads: int
    stderr: str


class ClientError(RuntimeError):
    """A client process failed, timed out, or printed no RESULT line."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        #: the client's exit status when it exited non-zero, else None
        self.returncode = returncode


def run_client(
    argv: list[str], env: dict[str, str], *, timeout: float, wrap: list[str] | None = None
) -> ClientRun:
    """Run ``_client.py argv`` in a fresh interpreter and measure it.

    ``wrap`` prefixes the command (e.g. a profiler); the figures then include the wrapper.

    Raises:
        ClientError: non-zero exit, timeout (the process is killed) or no RESULT line; the
            message has the command and the tail of its stderr.
    """
    command = [*(wrap or []), sys.executable, str(CLIENT_SCRIPT), *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        try:
            peak_threads, status, usage = _wait_sampling_threads(process, timeout)
        except BaseException:  # e.g. Ctrl-C: never leave the client running
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - start
        # wait4 reaped the child: tell Popen, so it does not try again
        process.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    where = " ".join(argv)
    if status is None:
        raise ClientError(
            f"client `{where}` ran past {timeout:.0f} s and was killed:\n{stderr[-3000:]}"
        )
    if process.returncode != 0:
        raise ClientError(
            f"client `{where}` exited with {process.returncode}:\n{stderr[-3000:]}",
            returncode=process.returncode,
        )
    record = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            record = json.loads(line[len(RESULT_PREFIX) :])
    if record is None:
        raise ClientError(f"client `{where}` printed no RESULT line:\n{stderr[-3000:]}")
    assert usage is not None
    return ClientRun(
        record=record,
        process_wall_s=wall,
        process_cpu_user_s=usage.ru_utime,
        process_cpu_sys_s=usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024.0,  # KiB on Linux
        peak_threads=peak_threads,
        stderr=stderr,
    )


def _wait_sampling_threads(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int, int | None, resource.struct_rusage | None]:
    """Reap ``process`` with ``wait4`` while sampling its thread count.

    Returns (peak threads, wait status or None when killed for the timeout, rusage).
    """
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            return peak, status, usage
        peak = max(peak, _thread_count(process.pid))
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            _, _, usage = os.wait4(process.pid, 0)
            return peak, None, usage
        time.sleep(THREAD_SAMPLE_SECONDS)
