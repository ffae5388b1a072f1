"""tinker-cookbook 0.6.1 workflows against the local server, with both clients.

Each workflow of ``workflows.py`` runs in its own interpreter, once with the official ``tinker``
client and once with tinkex installed as tinker (``python -m tinkex.as_tinker``), against one
module-scoped LocalServer on 127.0.0.1, offline (``HF_HUB_OFFLINE=1``, the tokenizer laid out
as a Hub cache entry in a temporary ``HF_HOME``, non-loopback name lookups refused). The two
runs of a workflow start together (2 cores: the second one's start-up overlaps the first's).

``test_workflow[NAME-official|tinkex]`` checks that a run succeeded and
``test_workflow_metrics_equal[NAME]`` that both clients logged the same metrics step by step
(wall-clock ``time`` keys aside; async RL, whose steps depend on the order rollouts finish, by
its order-free totals: ``assert_same_rollout_totals``). A
workflow that needs a missing piece elsewhere is ``xfail(strict=True)`` naming it, so it turns
into an unexpected pass (a failure to un-mark) when the piece lands.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("tinker_cookbook", reason="run `make install-cookbook`")

from tinkex.local import LocalServer
from tinkex.local.hf_tokenizer import QWEN3_LAYOUT, hub_cache_dir, write_hub_cache_entry


def _load_workflows() -> Any:
    """workflows.py (a script the runs execute) as a module, for its constants."""
    path = Path(__file__).with_name("workflows.py")
    spec = importlib.util.spec_from_file_location("cookbook_workflows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


workflows = _load_workflows()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.compat,
    pytest.mark.timeout(600),
]

WORKFLOWS_PY = Path(workflows.__file__)
CLIENTS = ("official", "tinkex")
#: seconds one workflow run may take (they take 5-15 s)
RUN_TIMEOUT = 300
#: metrics that measure wall-clock time, different in every run (``time/total``,
#: ``batch_time``: searched, not matched at the start)
TIMING_KEY = re.compile(r"(^|[/_])time([/_]|$)")


@dataclass(frozen=True)
class Workflow:
    """One cookbook workflow: ``workflows.py`` arguments and what is expected of it."""

    args: tuple[str, ...]
    #: xfail reason per client (absent: must pass)
    xfail: dict[str, str] = field(default_factory=dict)
    #: xfail reason of the metrics comparison (None: both clients log the same values)
    metrics_xfail: str | None = None
    #: how the clients' metrics are compared: "steps" (row by row) or "totals" (async RL:
    #: the rollout totals, see assert_same_rollout_totals)
    compare: str = "steps"
    #: run it with --crash-after-step CRASH_STEP first, then again answering "resume"
    crash_then_resume: bool = False


#: sl_basic checkpoints at step 2 (of 0-3); the crash comes after step 3, before the final one
CRASH_STEP = 3

WORKFLOWS: dict[str, Workflow] = {
    "sl_basic": Workflow(("sl_basic",)),
    "sl_resume": Workflow(("sl_basic",), crash_then_resume=True),
    "sl_loop": Workflow(("sl_loop",)),
    "rl_basic": Workflow(("rl_basic",)),
    # (no sample of the tiny model earns this recipe's reward, so its steps skip training)
    "rl_loop": Workflow(("rl_loop",)),
    "math_rl": Workflow(("math_rl",)),
    "async_rl": Workflow(
        ("math_rl", "--loss-fn", "importance_sampling", "--max-steps-off-policy", "1"),
        compare="totals",
    ),
    "spawn_rollouts": Workflow(("rl_basic", "--spawn-rollouts")),
    "dpo": Workflow(("dpo",)),
    "evaluators": Workflow(("evaluators",)),
    "weights_external": Workflow(("weights_download", "--kinds", "external")),
    "weights_state": Workflow(("weights_download", "--kinds", "state")),
}


@dataclass
class Run:
    """A finished workflow run."""

    command: list[str]
    returncode: int
    output: str
    log_path: Path
    seconds: float

    def metrics(self) -> list[dict[str, Any]]:
        """The rows of metrics.jsonl."""
        path = self.log_path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def describe(self) -> str:
        tail = "\n".join(self.output.splitlines()[-40:])
        return f"`{' '.join(self.command)}` exited {self.returncode}; last output:\n{tail}"


class Launched:
    """A workflow run in progress (its output goes to a file, so a full pipe never blocks)."""

    def __init__(self, command: list[str], env: dict[str, str], root: Path, stdin: str) -> None:
        self.command = command
        self.root = root
        self.output_path = root / "output.txt"
        self.started = time.monotonic()
        root.mkdir(parents=True, exist_ok=True)
        with self.output_path.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=root,
            )
        assert self.process.stdin is not None
        self.process.stdin.write(stdin.encode())
        self.process.stdin.close()

    def wait(self) -> Run:
        try:
            returncode = self.process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            returncode = -9
        output = self.output_path.read_text(errors="replace")
        if returncode == -9:
            output += f"\n[killed after {RUN_TIMEOUT} s]"
        return Run(
            self.command,
            returncode,
            output,
            self.root / "log",
            time.monotonic() - self.started,
        )


class Runner:
    """Starts workflow runs against ``server`` with the offline environment."""

    def __init__(self, server: LocalServer, hf_home: Path, root: Path) -> None:
        self.server = server
        self.root = root
        self.env = dict(os.environ)
        self.env.update(
            {
                "TINKER_BASE_URL": server.base_url,
                "TINKER_API_KEY": server.api_key,
                "HF_HOME": str(hf_home),
                "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "TINKER_TELEMETRY": "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.pop("TINKER_PROJECT_ID", None)

    def command(self, client: str, args: tuple[str, ...], root: Path) -> list[str]:
        launcher = [sys.executable] if client == "official" else [sys.executable, "-m"]
        if client == "tinkex":
            launcher.append("tinkex.as_tinker")
        return [
            *launcher,
            str(WORKFLOWS_PY),
            *args,
            "--base-url",
            self.server.base_url,
            "--log-path",
            str(root / "log"),
            "--data-dir",
            str(root / "data"),
        ]

    def start(
        self, name: str, client: str, args: tuple[str, ...], stdin: str = "", attempt: str = ""
    ) -> Launched:
        root = self.root / name / (client + attempt)
        return Launched(self.command(client, args, root), self.env, root, stdin)


#: The official client's process sometimes dies of SIGABRT in native code, with no Python
#: traceback, mid-run or at exit (seen a few times a day in official-client subprocesses:
#: cookbook workflows, its CLI, the benchmarks; never in tinkex-as-tinker runs). Such a run of
#: the reference side is started once more in a fresh folder; the aborted one is kept in
#: ``Runs.aborted``. tinkex runs are never rerun.
OFFICIAL_ABORT = -signal.SIGABRT


class Runs:
    """Runs each workflow once per client, both clients together, on first request.

    A crash-then-resume workflow's result is its second (resuming) run; the first one is kept
    in ``crashed``. An official run that aborted (``OFFICIAL_ABORT``) is run once more.
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.launched: dict[tuple[str, str], Launched] = {}
        self.finished: dict[tuple[str, str], Run] = {}
        self.crashed: dict[tuple[str, str], Run] = {}
        self.aborted: dict[tuple[str, str], Run] = {}

    def get(self, name: str, client: str) -> Run:
        key = (name, client)
        if key not in self.finished:
            workflow = WORKFLOWS[name]
            args = workflow.args
            if workflow.crash_then_resume:
                args = (*args, "--crash-after-step", str(CRASH_STEP))
            if key not in self.launched:
                for each in CLIENTS:
                    self.launched[(name, each)] = self.runner.start(name, each, args)
            run = self.launched.pop(key).wait()
            attempt = ""
            if client == "official" and run.returncode == OFFICIAL_ABORT:
                self.aborted[key] = run
                attempt = "-rerun"
                run = self.runner.start(name, client, args, attempt=attempt).wait()
            if workflow.crash_then_resume:
                self.crashed[key] = run
                if run.returncode == workflows.CRASH_EXIT_CODE:
                    resume = self.runner.start(
                        name, client, workflow.args, stdin="resume\n", attempt=attempt
                    )
                    run = resume.wait()
            self.finished[key] = run
        return self.finished[key]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("cookbook-server")
    # sampling_seed: the cookbook samples without seeds; this makes its RL runs repeat
    with LocalServer(data_dir=str(data_dir), api_key="tml-cookbook", sampling_seed=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hf-home")
    write_hub_cache_entry(QWEN3_LAYOUT, hub_cache_dir(home), workflows.MODEL_NAME)
    return home


@pytest.fixture(scope="module")
def runner(server: LocalServer, hf_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    return Runner(server, hf_home, tmp_path_factory.mktemp("cookbook-runs"))


@pytest.fixture(scope="module")
def runs(runner: Runner) -> Runs:
    return Runs(runner)


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if not TIMING_KEY.search(k)} for row in rows]


def assert_succeeded(run: Run) -> list[dict[str, Any]]:
    assert run.returncode == 0, run.describe()
    rows = run.metrics()
    assert rows, f"no metrics in {run.log_path / 'metrics.jsonl'}; " + run.describe()
    return rows


def assert_same_metrics(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    a, b = comparable(first), comparable(second)
    assert [row.get("step") for row in a] == [row.get("step") for row in b]
    for row_a, row_b in zip(a, b, strict=True):
        differing = {
            key: (row_a.get(key), row_b.get(key))
            for key in sorted(set(row_a) | set(row_b))
            if row_a.get(key) != row_b.get(key)
        }
        assert not differing, f"step {row_a.get('step')}: official vs tinkex {differing}"


def client_params() -> list[Any]:
    params = []
    for name, workflow in WORKFLOWS.items():
        for client in CLIENTS:
            reason = workflow.xfail.get(client)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, client, marks=marks, id=f"{name}-{client}"))
    return params


def metrics_params() -> list[Any]:
    params = []
    for name, workflow in WORKFLOWS.items():
        reasons = [workflow.xfail.get(c) for c in CLIENTS] + [workflow.metrics_xfail]
        reason = next((r for r in reasons if r), None)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize(("name", "client"), client_params())
def test_workflow(runs: Runs, name: str, client: str) -> None:
    run = runs.get(name, client)
    rows = assert_succeeded(run)
    assert all("step" in row for row in rows), rows
    if WORKFLOWS[name].crash_then_resume:
        assert_resumed_after_crash(runs, name, client)
    if "--spawn-rollouts" in WORKFLOWS[name].args:
        # the spawned worker imports tinker afresh: it must get the same package as the parent
        package = {"official": "tinker", "tinkex": "tinkex"}[client]
        (module,) = re.findall(re.escape(workflows.WORKER_TINKER_LINE) + r"(\S+)", run.output)
        assert module.split(".")[0] == package, f"rollout worker's tinker is {module}"


@pytest.mark.parametrize("name", metrics_params())
def test_workflow_metrics_equal(runs: Runs, name: str) -> None:
    official, tinkex_run = (assert_succeeded(runs.get(name, c)) for c in CLIENTS)
    if WORKFLOWS[name].compare == "totals":
        assert_same_rollout_totals(official, tinkex_run)
    else:
        assert_same_metrics(official, tinkex_run)


#: Rollout counters of a training step: summed over the steps they give the run's totals.
ROLLOUT_COUNTERS = (
    "env/all/total_episodes",
    "env/all/total_turns",
    "env/all/total_ac_tokens",
    "env/all/total_ob_tokens",
    "env/all/total_cached_ob_tokens",
    "tokens/sampled",
    "tokens/prefill_uncached",
    "tokens/prefill_cached",
    "tokens/trained",
)


def rollout_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What an async RL run sampled and trained on, whatever the order: the steps, the metrics
    each step logged, the rollout counters and the reward summed over the steps, and the last
    cumulative token counts."""
    steps = [row for row in rows if "env/all/total_episodes" in row]
    assert steps, f"no training step logged rollout metrics: {rows}"
    cumulative = [row for row in rows if "tokens/cumulative/sampled" in row][-1]
    return {
        "steps": [row["step"] for row in rows],
        "keys": [sorted(row) for row in rows],
        **{key: sum(row[key] for row in steps) for key in ROLLOUT_COUNTERS},
        "reward": pytest.approx(
            sum(row["env/all/reward/total"] * row["env/all/total_episodes"] for row in steps)
        ),
        **{key: value for key, value in cumulative.items() if key.startswith("tokens/cumulative/")},
    }


def assert_same_rollout_totals(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> None:
    """Async RL (max_steps_off_policy) hands rollout groups to the training steps in the order
    they finish, which varies from run to run, two official runs included: here the four groups
    sampled from the first weights are trained two per step, and which two come first varies.
    Comparing rows step by step is then wrong, and so is comparing them as a multiset: a
    step's optimizer metrics (optim/entropy, optim/kl_*, grad_norm) depend on what the steps
    before it trained on (two official runs logged identical env/* rows with different
    optim/entropy). What does not depend on the order is compared: the steps, the metrics each
    logs, the rollouts' tokens and reward summed over the steps, and the cumulative counts
    (so both clients sampled the same rollouts and trained on all of them)."""
    a, b = rollout_totals(comparable(first)), rollout_totals(comparable(second))
    assert a == b, f"official vs tinkex rollout totals: {a} != {b}"


def assert_resumed_after_crash(runs: Runs, name: str, client: str) -> None:
    """The first run died after step CRASH_STEP with only the step-2 checkpoint saved; the
    second resumed from it: every step logged once, the steps before the checkpoint as the
    uninterrupted sl_basic run logged them."""
    crashed, resumed = runs.crashed[(name, client)], runs.finished[(name, client)]
    assert crashed.returncode == workflows.CRASH_EXIT_CODE, crashed.describe()
    checkpoints = [
        json.loads(line)
        for line in (resumed.log_path / "checkpoints.jsonl").read_text().splitlines()
    ]
    # the crashed run saved 000002; the resumed one re-runs step 2, saving it again, and ends
    assert [c["name"] for c in checkpoints] == ["000002", "000002", "final"]
    assert f"Resumed training from {checkpoints[0]['state_path']}" in resumed.output
    rows = comparable(resumed.metrics())
    assert [row["step"] for row in rows] == [0, 1, 2, 3]
    uninterrupted = comparable(assert_succeeded(runs.get("sl_basic", client)))
    assert rows[:2] == uninterrupted[:2]
