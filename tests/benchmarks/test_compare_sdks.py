"""The benchmark harness (benchmarks/compare_sdks.py) works and produces every figure.

The smoke test runs the real harness in its smallest form (a few samples, one round, all three
clients against real local servers) and checks that every figure, ratio and goal verdict is
there. Speed is never asserted here: speed targets live in the benchmarks.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.slow
# The run is bounded by its own subprocess timeout (300 s, below); the suite-wide 120 s would cut
# it off first on a loaded machine (it starts ~30 interpreters, the official SDK among them).
@pytest.mark.timeout(360)
def test_smallest_run_produces_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("tinker")  # the harness runs every workload with the official SDK too
    workloads_module = _module("_workloads")
    command = [
        sys.executable,
        str(BENCHMARKS / "compare_sdks.py"),
        "--rounds", "1",
        "--samples", "3",
        "--latency-samples", "3",
        "--low-latency", "0.01",
        "--high-latency", "0.02",
        "--fwdbwd-batch", "2",
        "--fwdbwd-tokens", "8",
        "--fwdbwd-steps", "1",
        "--fwdbwd-long-steps", "2",
        "--client-timeout", "60",
        "--out-dir", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["meta"]["rounds"] == 1
    assert report["meta"]["default_sizes"] is False
    assert report["meta"]["torch"]  # hidden from the clients or not installed: said either way
    assert set(report["workloads"]) == set(workloads_module.WORKLOAD_NAMES)
    for name, entry in report["workloads"].items():
        assert set(entry["medians"]) == {"tinkex", "tinker", "floor"}, name
        for sdk, figures in entry["medians"].items():
            assert len(entry["rounds"][sdk]) == 1
            for figure in ("cpu_s", "wall_s", "peak_rss_mb", "peak_threads"):
                assert figures[figure] > 0, (name, sdk, figure)
            assert figures["cpu_s"] == pytest.approx(figures["cpu_user_s"] + figures["cpu_sys_s"])
            assert figures["server_cpu_s"] >= 0
            if name == "cold":
                assert 0 < figures["import_s"] < figures["wall_s"], sdk
        for ratio, (top, bottom) in {
            "tinkex/floor": ("tinkex", "floor"),
            "tinker/tinkex": ("tinker", "tinkex"),
        }.items():
            for figure in ("cpu_s", "wall_s", "peak_rss_mb", "peak_threads"):
                expected = entry["medians"][top][figure] / entry["medians"][bottom][figure]
                assert entry["ratios"][ratio][figure] == pytest.approx(expected)
    verdicts = report["goals"]
    assert len(verdicts) == len(workloads_module.GOALS)
    for verdict in verdicts:
        assert verdict["value"] is not None, verdict
        if verdict["goal"].startswith("tinkex "):  # absolute: judged at default sizes only
            assert verdict["met"] is None and verdict["not_judged"]
        else:
            assert isinstance(verdict["met"], bool), verdict
            assert verdict["tinkex_cut"] == 0 if verdict["met"] else verdict["tinkex_cut"] > 0

    table = (tmp_path / "latest.md").read_text()
    assert table in done.stdout
    assert (
        "| workload | figure | tinkex | tinker 0.38 | floor | tinkex/floor | tinker/tinkex |"
        in table
    )
    for name, entry in report["workloads"].items():
        assert entry["label"] in table, name
    assert list(tmp_path.glob("run-*.json"))


def test_goal_distance_is_how_much_tinkex_must_shrink() -> None:
    goal_class = _module("_workloads").Goal
    floor_goal = goal_class("sample_burst", "cpu_s", "tinkex/floor", "<=", 1.3, "issue 13")
    assert floor_goal.met(1.2) and floor_goal.tinkex_cut(1.2) == 0
    assert not floor_goal.met(1.65)
    assert floor_goal.tinkex_cut(1.65) == pytest.approx(1 - 1.3 / 1.65)
    speedup = goal_class("fwdbwd", "wall_s", "tinker/tinkex", ">=", 1.4, "brief")
    assert speedup.tinkex_cut(1.0) == pytest.approx(1 - 1.0 / 1.4)
    absolute = goal_class("sample_latency_high", "wall_s", "tinkex", "<=", 3.0, "issue 13", "s")
    assert absolute.text == "tinkex ≤ 3 s"
    assert absolute.tinkex_cut(9.9) == pytest.approx(1 - 3.0 / 9.9)


def test_absolute_goal_is_not_judged_at_other_sizes() -> None:
    report = _module("_report")
    goal = _module("_workloads").Goal("w", "wall_s", "tinkex", "<=", 3.0, "issue 13", "s")
    workload = {"medians": {"tinkex": {"wall_s": 9.9}}, "ratios": {}}
    assert report.judge(goal, workload, default_sizes=True)["met"] is False
    verdict = report.judge(goal, workload, default_sizes=False)
    assert verdict["met"] is None and verdict["value"] == 9.9 and verdict["not_judged"]
    assert report.judge(goal, None, default_sizes=True)["not_judged"] == "workload not run"


def test_profile_summary_adds_up_stacks_and_names_tinkex_callers() -> None:
    profile = _module("_profile")
    site = "/venv/lib/python3.11/site-packages"
    collapsed = "\n".join(
        [
            "work (/repo/tinkex/_futures.py:10);request (/repo/tinkex/_transport/transport.py:5);"
            f"send ({site}/requests/sessions.py:7);isdir (<frozen genericpath>:1) 6",
            "work (/repo/tinkex/_futures.py:11);"
            "iterencode (/usr/lib/python3.11/json/encoder.py:3) 4",
            "<module> (/repo/benchmarks/_client.py:1);"
            "_find_and_load (<frozen importlib._bootstrap>:1) 50",
        ]
    )
    summary = profile.summarize(collapsed)
    assert summary.total == 10  # the import stack is left out
    assert summary.self_by_function["isdir (<frozen genericpath>)"] == 6
    assert summary.self_by_file["json/encoder.py"] == 4
    assert summary.inclusive_by_function["work (tinkex/_futures.py)"] == 10
    assert summary.inclusive_by_package["requests"] == 6
    assert summary.self_by_package["json"] == 4
    caller = summary.via["isdir (<frozen genericpath>)"].most_common(1)[0][0]
    assert caller == "request (tinkex/_transport/transport.py)"
    assert "60.0%  isdir" in summary.text()


def test_floor_forward_backward_body_decodes_as_the_same_batch() -> None:
    floor = _module("_client_floor")
    from tinkex.types._proto import decode_forward_backward_request

    tokens = np.array([5, 6, 7], dtype=np.int32)
    targets = np.array([6, 7, 8], dtype=np.int64)
    weights = np.array([1.0, 0.5, 0.0], dtype=np.float32)
    body = floor._fwdbwd_body("s:train:0", 4, [(tokens, targets, weights)] * 2)
    request = decode_forward_backward_request(body)
    assert request.model_id == "s:train:0" and request.seq_id == 4
    assert request.forward_backward_input.loss_fn == "cross_entropy"
    data = request.forward_backward_input.data
    assert len(data) == 2
    assert data[1].model_input.to_ints() == [5, 6, 7]
    assert data[1].loss_fn_inputs["target_tokens"].to_numpy().tolist() == [6, 7, 8]
    assert data[1].loss_fn_inputs["weights"].to_numpy().tolist() == [1.0, 0.5, 0.0]


def test_floor_reads_what_the_server_codec_writes() -> None:
    floor = _module("_client_floor")
    from tinkex import types
    from tinkex.types._proto import encode_forward_backward_output, encode_sample_response

    logprobs = [np.array([-1.0, -2.0], dtype=np.float32), np.array([-3.0], dtype=np.float32)]
    output = types.ForwardBackwardOutput(
        loss_fn_output_type="ArrayRecord",
        loss_fn_outputs=[{"logprobs": types.TensorData.from_numpy(a)} for a in logprobs],
        metrics={"loss:sum": 6.0},
    )
    views = floor._logprob_views(encode_forward_backward_output(output))
    assert [v.tolist() for v in views] == [[-1.0, -2.0], [-3.0]]

    sequence = types.SampledSequence(
        stop_reason="length", tokens_np=np.array([9, 300, 2], dtype=np.int32)
    )
    payload = encode_sample_response(types.SampleResponse(sequences=[sequence]))
    assert floor._sample_tokens(payload) == [9, 300, 2]


def test_hidden_package_looks_not_installed() -> None:
    code = (
        "import importlib.util, _clientlib\n"
        "_clientlib.hide_packages('numpy')\n"
        "assert importlib.util.find_spec('numpy') is None\n"
        "try:\n"
        "    import numpy.linalg\n"
        "except ModuleNotFoundError:\n"
        "    print('hidden')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=BENCHMARKS, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hidden"


class _FakeServer:
    base_url = "http://127.0.0.1:9"

    def cpu_seconds(self) -> float:
        return 0.0


@pytest.mark.parametrize("sdk", ["tinker", "tinkex"])
def test_only_an_official_client_killed_by_sigabrt_is_run_once_more(
    sdk: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    compare = _module("compare_sdks")
    harness = _module("_harness")
    workload = _module("_workloads").workloads(_module("_workloads").Sizes())[0]
    run = harness.ClientRun(
        record={"window": {"wall_s": 1.0, "cpu_user_s": 0.5, "cpu_sys_s": 0.1}, "count": 1},
        process_wall_s=1.5,
        process_cpu_user_s=0.6,
        process_cpu_sys_s=0.1,
        peak_rss_mb=50.0,
        peak_threads=3,
        stderr="",
    )
    calls: list[list[str]] = []

    def run_client(argv: list[str], *args: object, **kwargs: object) -> object:
        calls.append(argv)
        if len(calls) == 1:
            raise harness.ClientError("exited with -6", returncode=compare.OFFICIAL_ABORT)
        return run

    monkeypatch.setattr(harness, "run_client", run_client)
    options = compare.ClientOptions(timeout=10, hide_torch=False)
    if sdk == "tinker":
        assert compare.measure(workload, sdk, _FakeServer(), options)[0] is run
        assert len(calls) == 2 and calls[0] == calls[1]
    else:
        with pytest.raises(harness.ClientError, match="-6"):
            compare.measure(workload, sdk, _FakeServer(), options)
        assert len(calls) == 1


def test_default_latency_row_states_the_two_wave_bound_and_the_wide_row_carries_the_goal() -> None:
    workloads_module = _module("_workloads")
    by_name = {w.name: w for w in workloads_module.workloads(workloads_module.Sizes())}
    default, wide = by_name["sample_latency_high"], by_name["sample_latency_high_wide"]
    assert default.sample_limit is None and wide.sample_limit == 4000
    assert default.server_key != wide.server_key
    assert "2 waves" in default.wall_note and "≥ 4 s" in default.wall_note
    assert wide.wall_note == ""
    absolute = [g for g in workloads_module.GOALS if g.measure == "tinkex"]
    assert [(g.workload, g.figure) for g in absolute] == [("sample_latency_high_wide", "wall_s")]
    # one wave (fewer samples than the limit) has no such bound
    small = workloads_module.workloads(workloads_module.Sizes(latency_samples=1500))
    assert all(w.wall_note == "" for w in small)


def test_the_wall_row_of_the_table_shows_the_bound(tmp_path: Path) -> None:
    report_module = _module("_report")
    workloads_module = _module("_workloads")
    selected = [
        w
        for w in workloads_module.workloads(workloads_module.Sizes())
        if w.name == "sample_latency_high"
    ]
    figures = {"cpu_s": 1.0, "wall_s": 5.0, "peak_rss_mb": 90.0, "peak_threads": 5.0}
    runs = {"sample_latency_high": {"tinkex": [figures]}}
    meta = {
        "started": "now",
        "host": "h",
        "cpus": 2,
        "load_start": 0.1,
        "load_end": 0.2,
        "rounds": 1,
        "sdks": ["tinkex"],
        "torch": "hidden",
    }
    report = report_module.build_report(selected, runs, default_sizes=True, meta=meta)
    wall_row = next(
        line for line in report_module.markdown(report, selected).splitlines() if "| wall |" in line
    )
    assert selected[0].wall_note in wall_row
    assert report["workloads"]["sample_latency_high"]["server_sample_limit"] is None


def test_a_full_size_warm_up_step_runs_on_the_server_before_round_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compare = _module("compare_sdks")
    harness = _module("_harness")
    workloads_module = _module("_workloads")
    sizes = workloads_module.Sizes(fwdbwd_batch=7, fwdbwd_tokens=9, fwdbwd_steps=4)
    selected = workloads_module.workloads(sizes)
    calls: list[list[str]] = []

    def run_client(argv: list[str], *args: object, **kwargs: object) -> object:
        calls.append(argv)
        return None

    monkeypatch.setattr(harness, "run_client", run_client)
    servers = {w.server_key: _FakeServer() for w in selected}
    compare.warm_up_servers(selected, servers, compare.ClientOptions(timeout=10, hide_torch=False))

    # one uncounted floor run, the measured batch size, one step; no other workload asks
    assert calls == [
        ["floor", "fwdbwd", "--batch", "7", "--tokens", "9", "--steps", "1", "--timeout", "10"]
    ]


def test_the_long_fwdbwd_row_runs_the_goal_rows_calls_for_more_steps() -> None:
    workloads_module = _module("_workloads")
    sizes = workloads_module.Sizes(fwdbwd_batch=7, fwdbwd_tokens=9, fwdbwd_long_steps=11)
    by_name = {w.name: w for w in workloads_module.workloads(sizes)}
    goal, long = by_name["fwdbwd"], by_name["fwdbwd_long"]

    assert long.client_workload == goal.client_workload == "fwdbwd"
    assert long.client_args == ("--batch", "7", "--tokens", "9", "--steps", "11")
    assert (long.server_key, long.server_warm_up) == (goal.server_key, goal.server_warm_up)
    # the goals stay on the 3-step row
    assert not [g for g in workloads_module.GOALS if g.workload == "fwdbwd_long"]
