"""Side by side: tinkex, the official ``tinker`` 0.38 SDK and a raw urllib3 floor client.

Every client runs in its own fresh interpreter against ``tinkex serve`` on 127.0.0.1 (model
``tinkex/null``, so the figures are client overhead, not model compute), and is measured from
outside: client CPU (user + sys, all threads; the server's CPU is not in it), wall time, peak
RSS, peak thread count. Workloads (``_workloads.py``):

* ``sample_burst``: 1000 concurrent ``sample()`` calls, no added latency;
* ``sample_latency_low`` / ``sample_latency_high``: 3000 concurrent ``sample()`` calls with the
  server adding 100 ms / 1 s to every request (the local server's ``latency=`` fault);
* ``sample_latency_high_wide``: the same at 1 s against a server that advertises 4000 samples
  in flight (``--sample-max-concurrent``) instead of the hosted 2000, so one wave suffices;
* ``fwdbwd``: 3 x ``forward_backward`` of 128 x 1024 tokens (the goal row); ``fwdbwd_long``:
  the same calls 20 times, a window long enough for a steadier wall ratio;
* ``cold``: fresh interpreter, import + first ``sample()``;
* ``cold_fwdbwd``: fresh interpreter, import + first (small) ``forward_backward``.

Rounds alternate the clients (tinkex, tinker, floor, tinkex, ...) so drift on the machine hits
all alike; the figures are medians over the rounds. The report (every round, medians, ratios
tinkex/floor and tinker/tinkex, goals met or the distance) is written as JSON under
``benchmarks/results/`` and printed as a markdown table.

Usage::

    python benchmarks/compare_sdks.py                  # 3 rounds at the goals' sizes
    python benchmarks/compare_sdks.py --quick          # smaller workloads, 1 round
    python benchmarks/compare_sdks.py --sdks tinkex,floor --workloads sample_burst --rounds 5
    python benchmarks/compare_sdks.py --profile        # + one tinkex sample_burst under py-spy
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import _harness
import _profile
import _report
from _workloads import QUICK_SIZES, SDKS, WORKLOAD_NAMES, Sizes, Workload, workloads

RESULTS_DIR = _harness.BENCHMARKS_DIR / "results"
_SIZE_FLAGS = {
    "samples": int,
    "latency_samples": int,
    "low_latency": float,
    "high_latency": float,
    "wide_sample_limit": int,
    "fwdbwd_batch": int,
    "fwdbwd_tokens": int,
    "fwdbwd_steps": int,
    "fwdbwd_long_steps": int,
    "floor_threads": int,
}


def _names(text: str, known: tuple[str, ...], flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{flag} {text!r}: choose from {', '.join(known)} (comma-separated)"
        )
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="smaller workloads, one round")
    parser.add_argument(
        "--sdks",
        type=lambda t: _names(t, SDKS, "--sdks"),
        default=list(SDKS),
        help=f"clients to run, in round order (default {','.join(SDKS)})",
    )
    parser.add_argument(
        "--workloads",
        type=lambda t: _names(t, WORKLOAD_NAMES, "--workloads"),
        default=list(WORKLOAD_NAMES),
        help=f"workloads to run (default all: {','.join(WORKLOAD_NAMES)})",
    )
    for name, kind in _SIZE_FLAGS.items():
        default = getattr(Sizes(), name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            help=f"workload size (default {default}; --quick: {getattr(QUICK_SIZES, name)})",
        )
    parser.add_argument(
        "--out-dir", type=Path, default=RESULTS_DIR, help="where the JSON/markdown go"
    )
    parser.add_argument("--json", type=Path, help="also write the JSON report to this file")
    parser.add_argument(
        "--save-reference",
        action="store_true",
        help="also write the report as results/reference.{json,md} (the committed run the "
        "README's table comes from)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="sample_burst",
        choices=WORKLOAD_NAMES,
        help="after the rounds, run one more client of this workload (default sample_burst) "
        "under py-spy and print where its CPU goes",
    )
    parser.add_argument("--profile-sdk", choices=SDKS, default="tinkex")
    parser.add_argument(
        "--client-timeout", type=float, default=600.0, help="seconds one client may run"
    )
    parser.add_argument(
        "--with-torch",
        action="store_true",
        help="let the clients import torch when it is installed (default: hidden, as in "
        "tinker's base install; tinker imports torch whenever it can)",
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    return args


def resolve_sizes(args: argparse.Namespace) -> Sizes:
    """Default (or --quick) sizes with the explicit size flags applied."""
    base = QUICK_SIZES if args.quick else Sizes()
    overrides = {n: getattr(args, n) for n in _SIZE_FLAGS if getattr(args, n) is not None}
    return dataclasses.replace(base, **overrides)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=_harness.BENCHMARKS_DIR,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("tinkex", "tinker", "urllib3"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = ""
    return found


@dataclasses.dataclass(frozen=True)
class ClientOptions:
    """How every client process runs: its time limit and whether torch is hidden from it."""

    timeout: float
    hide_torch: bool

    def argv(self, sdk: str, workload: Workload) -> list[str]:
        """The ``_client.py`` command line for ``sdk`` running ``workload``."""
        argv = [sdk, workload.client_workload, *workload.client_args]
        argv += ["--timeout", str(self.timeout)]
        return argv + (["--hide-torch"] if self.hide_torch else [])


def _torch_note(hide_torch: bool) -> str:
    from importlib.util import find_spec

    if find_spec("torch") is None:
        return "not installed"
    if hide_torch:
        return "hidden from the clients (tinker's base install; --with-torch to keep it)"
    return "importable by the clients (tinker imports it)"


#: Exit status of a process killed by SIGABRT, as subprocess reports it.
OFFICIAL_ABORT = -signal.SIGABRT


def _run_client(
    workload: Workload,
    sdk: str,
    server: _harness.Server,
    options: ClientOptions,
    wrap: list[str] | None,
) -> _harness.ClientRun:
    return _harness.run_client(
        options.argv(sdk, workload),
        _harness.client_env(server.base_url),
        timeout=options.timeout + 120,
        wrap=wrap,
    )


def measure(
    workload: Workload,
    sdk: str,
    server: _harness.Server,
    options: ClientOptions,
    wrap: list[str] | None = None,
) -> tuple[_harness.ClientRun, dict[str, float]]:
    """One client run of ``workload`` with ``sdk``; returns the run and its figures.

    Raises:
        ClientError: the client failed, or some of its requests did.
    """
    server_cpu = server.cpu_seconds()
    try:
        run = _run_client(workload, sdk, server, options, wrap)
    except _harness.ClientError as exc:
        if sdk != "tinker" or exc.returncode != OFFICIAL_ABORT:
            raise
        # The official SDK's process now and then dies of SIGABRT (no traceback, often at
        # interpreter exit; never seen with tinkex or the floor): that run is made once more.
        print(f"tinker {workload.name}: exited with SIGABRT; running it once more", file=sys.stderr)
        server_cpu = server.cpu_seconds()
        run = _run_client(workload, sdk, server, options, wrap)
    if options.hide_torch and run.record.get("torch_loaded"):
        raise _harness.ClientError(f"{sdk} {workload.name}: imported torch although it was hidden")
    if run.record.get("failures"):
        raise _harness.ClientError(
            f"{sdk} {workload.name}: {run.record['failures']} of {run.record['count']} "
            f"requests failed; first: {run.record.get('first_error')}"
        )
    return run, _report.run_figures(run, server.cpu_seconds() - server_cpu)


def _progress(label: str, figures: dict[str, float]) -> None:
    print(
        f"{label}: CPU {figures['cpu_s']:.3f} s, wall {figures['wall_s']:.3f} s, "
        f"RSS {figures['peak_rss_mb']:.0f} MB, threads {figures['peak_threads']:.0f}, "
        f"server CPU {figures['server_cpu_s']:.2f} s",
        file=sys.stderr,
        flush=True,
    )


ServerKey = tuple[float, int | None]


def _start_servers(keys: set[ServerKey]) -> dict[ServerKey, _harness.Server]:
    """One server per (latency, advertised sample limit), started in parallel."""
    ordered = sorted(keys, key=lambda k: (k[0], k[1] or 0))
    with ThreadPoolExecutor(max_workers=len(ordered)) as pool:
        started = {key: pool.submit(_harness.Server, *key) for key in ordered}
    servers = {}
    errors = []
    for key, future in started.items():
        try:
            servers[key] = future.result()
        except Exception as exc:
            errors.append(exc)
    if errors:
        for server in servers.values():
            server.close()
        raise errors[0]
    return servers


def warm_up_servers(
    selected: list[Workload], servers: dict[ServerKey, _harness.Server], options: ClientOptions
) -> None:
    """One uncounted floor run per workload that asks for it (``Workload.server_warm_up``),
    once per server and warm-up (``fwdbwd`` and ``fwdbwd_long`` share theirs).

    The server is shared across rounds; without this the first client of round 1 would pay the
    server's first full-size step (fresh memory, first vectorised model step), ~2x the steady
    server CPU, for that client alone.
    """
    done: set[tuple[ServerKey, tuple[str, ...]]] = set()
    for workload in selected:
        key = (workload.server_key, workload.server_warm_up)
        if workload.server_warm_up and key not in done:
            done.add(key)
            warm_up = dataclasses.replace(workload, client_args=workload.server_warm_up)
            _run_client(warm_up, "floor", servers[workload.server_key], options, None)


def run_rounds(
    selected: list[Workload],
    sdks: list[str],
    rounds: int,
    servers: dict[ServerKey, _harness.Server],
    options: ClientOptions,
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """All rounds: for each round, each workload, each client in order."""
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    for round_index in range(rounds):
        for workload in selected:
            for sdk in sdks:
                _, figures = measure(workload, sdk, servers[workload.server_key], options)
                runs.setdefault(workload.name, {}).setdefault(sdk, []).append(figures)
                _progress(f"round {round_index + 1}/{rounds} {workload.name} {sdk}", figures)
    return runs


def profile(
    workload: Workload,
    sdk: str,
    server: _harness.Server,
    options: ClientOptions,
    out_dir: Path,
    stamp: str,
) -> str:
    """One extra run under py-spy; writes the collapsed stacks and returns the summary text."""
    stacks = out_dir / f"profile-{stamp}-{workload.name}-{sdk}.txt"
    measure(workload, sdk, server, options, _profile.py_spy_command(stacks))
    summary = _profile.summarize(stacks.read_text()).text()
    summary_path = out_dir / f"profile-{stamp}-{workload.name}-{sdk}-summary.txt"
    summary_path.write_text(summary + "\n")
    print(f"profiled {workload.name} {sdk}: {stacks}, {summary_path}", file=sys.stderr)
    return f"Profile of one {sdk} {workload.name} run (py-spy, {_profile.RATE} Hz):\n{summary}"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; prints the markdown table, writes the JSON report."""
    args = parse_args(argv)
    sizes = resolve_sizes(args)
    rounds = args.rounds or (1 if args.quick else 3)
    selected = [w for w in workloads(sizes) if w.name in args.workloads]
    if args.profile:
        _profile.find_py_spy()  # fail before the rounds, not after
    args.out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "versions": _versions(),
        "commit": _git_commit(),
        "command": ["compare_sdks.py", *(sys.argv[1:] if argv is None else argv)],
        "rounds": rounds,
        "sdks": args.sdks,
        "sizes": sizes.as_dict(),
        "default_sizes": sizes == Sizes(),
        "load_start": os.getloadavg()[0],
        "torch": _torch_note(not args.with_torch),
    }
    options = ClientOptions(args.client_timeout, hide_torch=not args.with_torch)
    profiled = next((w for w in workloads(sizes) if w.name == args.profile), None)
    servers = _start_servers({w.server_key for w in [*selected, *([profiled] if profiled else [])]})
    profile_text = ""
    try:
        warm_up_servers(selected, servers, options)
        begin = time.perf_counter()
        runs = run_rounds(selected, args.sdks, rounds, servers, options)
        meta["seconds"] = time.perf_counter() - begin
        meta["load_end"] = os.getloadavg()[0]
        if profiled is not None:
            profile_text = profile(
                profiled,
                args.profile_sdk,
                servers[profiled.server_key],
                options,
                args.out_dir,
                stamp,
            )
    except _harness.ClientError as exc:
        print(f"benchmark failed, no report written: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            server.close()
    report = _report.build_report(selected, runs, default_sizes=sizes == Sizes(), meta=meta)
    table = _report.markdown(report, selected)
    text = json.dumps(report, indent=2) + "\n"
    written = [args.out_dir / f"run-{stamp}.json", args.out_dir / "latest.json"]
    written += [args.json] if args.json else []
    tables = [args.out_dir / "latest.md"]
    if args.save_reference:
        written.append(args.out_dir / "reference.json")
        tables.append(args.out_dir / "reference.md")
    for path in written:
        path.write_text(text)
    for path in tables:
        path.write_text(table)
    print(table)
    if profile_text:
        print(profile_text)
    print(f"report: {args.out_dir / f'run-{stamp}.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
