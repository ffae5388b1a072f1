"""From client runs to figures: per-run figures, medians over rounds, ratios, goals, table."""

from __future__ import annotations

import statistics
from typing import Any

from _harness import ClientRun
from _workloads import EXTRA_FIGURES, FIGURES, GOALS, SDK_TITLES, SDKS, Goal, Workload

FIGURES_ALL = {**FIGURES, **EXTRA_FIGURES}
RATIOS = {"tinkex/floor": ("tinkex", "floor"), "tinker/tinkex": ("tinker", "tinkex")}


def run_figures(run: ClientRun, server_cpu_s: float) -> dict[str, float]:
    """The figures of one client run: the window's, the whole process's, the server's."""
    record = run.record
    window = record["window"]
    cpu = window["cpu_user_s"] + window["cpu_sys_s"]
    figures = {
        "cpu_s": cpu,
        "wall_s": window["wall_s"],
        "peak_rss_mb": run.peak_rss_mb,
        "peak_threads": float(run.peak_threads),
        "cpu_user_s": window["cpu_user_s"],
        "cpu_sys_s": window["cpu_sys_s"],
        "cpu_per_item_ms": cpu / record["count"] * 1000.0,
        "process_cpu_s": run.process_cpu_user_s + run.process_cpu_sys_s,
        "process_wall_s": run.process_wall_s,
        "server_cpu_s": server_cpu_s,
    }
    for key in ("import_s", "setup_s", "first_sample_s", "first_step_s"):
        if key in record:
            figures[key] = record[key]
    if record.get("step_s"):
        figures["first_step_s"] = record["step_s"][0]
        figures["last_step_s"] = record["step_s"][-1]
    return figures


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Median of every figure over the rounds."""
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def ratios(by_sdk: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """``tinkex/floor`` and ``tinker/tinkex`` of every figure both sides have."""
    out: dict[str, dict[str, float]] = {}
    for name, (top, bottom) in RATIOS.items():
        if top in by_sdk and bottom in by_sdk:
            out[name] = {
                key: by_sdk[top][key] / by_sdk[bottom][key]
                for key in by_sdk[top]
                if key in by_sdk[bottom] and by_sdk[bottom][key] > 0
            }
    return out


def judge(goal: Goal, workload: dict[str, Any] | None, default_sizes: bool) -> dict[str, Any]:
    """The verdict on one goal: value, met, how much tinkex must shrink, or why not judged."""
    verdict: dict[str, Any] = {
        "workload": goal.workload,
        "figure": goal.figure,
        "goal": goal.text,
        "note": goal.note,
        "source": goal.source,
        "value": None,
        "met": None,
        "tinkex_cut": None,
        "not_judged": "",
    }
    if workload is None:
        verdict["not_judged"] = "workload not run"
        return verdict
    if goal.measure == "tinkex":
        value = workload["medians"].get("tinkex", {}).get(goal.figure)
        if value is not None and not default_sizes:
            verdict["value"] = value
            verdict["not_judged"] = "absolute goal, non-default sizes"
            return verdict
    else:
        value = workload["ratios"].get(goal.measure, {}).get(goal.figure)
    if value is None:
        verdict["not_judged"] = f"{goal.measure} not measured"
        return verdict
    verdict["value"] = value
    verdict["met"] = goal.met(value)
    verdict["tinkex_cut"] = goal.tinkex_cut(value)
    return verdict


def build_report(
    workloads: list[Workload],
    runs: dict[str, dict[str, list[dict[str, float]]]],
    *,
    default_sizes: bool,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The JSON report: per workload the rounds, medians and ratios; the goals' verdicts."""
    report_workloads: dict[str, Any] = {}
    for workload in workloads:
        by_sdk = runs.get(workload.name, {})
        if not by_sdk:
            continue
        sdk_medians = {sdk: medians(rounds) for sdk, rounds in by_sdk.items()}
        report_workloads[workload.name] = {
            "label": workload.label,
            "server_latency_s": workload.latency,
            "server_sample_limit": workload.sample_limit,
            "wall_note": workload.wall_note,
            "medians": sdk_medians,
            "ratios": ratios(sdk_medians),
            "rounds": by_sdk,
        }
    goals = [judge(g, report_workloads.get(g.workload), default_sizes) for g in GOALS]
    return {"meta": meta, "workloads": report_workloads, "goals": goals}


def _format(figure: str, value: float) -> str:
    if figure == "peak_threads":
        return f"{value:.0f}"
    if figure == "peak_rss_mb":
        return f"{value:.0f} MB"
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    milliseconds = value * 1000
    return f"{milliseconds:.0f} ms" if milliseconds >= 100 else f"{milliseconds:.3g} ms"


def _goal_cell(verdict: dict[str, Any]) -> str:
    text = f"{verdict['goal']}" + (f" ({verdict['note']})" if verdict["note"] else "")
    if verdict["not_judged"]:
        return f"{text}: n/a ({verdict['not_judged']})"
    if verdict["met"]:
        return f"{text}: **met**"
    return f"{text}: **not met**, tinkex must cut it by {verdict['tinkex_cut'] * 100:.0f}%"


def markdown(report: dict[str, Any], workloads: list[Workload]) -> str:
    """The report as a markdown table (what the README carries) with a line about the run."""
    meta = report["meta"]
    verdicts: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for verdict in report["goals"]:
        verdicts.setdefault((verdict["workload"], verdict["figure"]), []).append(verdict)
    titles = " | ".join(SDK_TITLES[s] for s in SDKS)
    lines = [
        f"Measured {meta['started']} on {meta['host']} ({meta['cpus']} CPUs, load average "
        f"{meta['load_start']:.2f} at start, {meta['load_end']:.2f} at end); median of "
        f"{meta['rounds']} alternating round(s) ({', '.join(meta['sdks'])}); client CPU = "
        "user + sys of the client process, all threads, over the measured window; "
        f"server `tinkex serve`, model `tinkex/null`; torch {meta['torch']}.",
        "",
        f"| workload | figure | {titles} | tinkex/floor | tinker/tinkex | goal |",
        "|---|---|" + "---|" * len(SDKS) + "---|---|---|",
    ]
    for workload in workloads:
        entry = report["workloads"].get(workload.name)
        if entry is None:
            continue
        figures = {**FIGURES, **{k: EXTRA_FIGURES[k] for k in workload.extra_figures}}
        for index, (figure, title) in enumerate(figures.items()):
            cells = [workload.label if index == 0 else "", title]
            for sdk in SDKS:
                value = entry["medians"].get(sdk, {}).get(figure)
                cells.append("—" if value is None else _format(figure, value))
            for ratio in ("tinkex/floor", "tinker/tinkex"):
                value = entry["ratios"].get(ratio, {}).get(figure)
                cells.append("—" if value is None else f"{value:.2f}x")
            goal_cells = [_goal_cell(v) for v in verdicts.get((workload.name, figure), [])]
            if figure == "wall_s" and workload.wall_note:
                goal_cells.append(workload.wall_note)
            cells.append("; ".join(goal_cells))
            lines.append("| " + " | ".join(cells) + " |")
    unmeasured = [v for v in report["goals"] if v["workload"] not in report["workloads"]]
    if unmeasured:
        lines.append("")
        lines += [
            f"- {v['workload']} {FIGURES_ALL[v['figure']]}: {_goal_cell(v)}" for v in unmeasured
        ]
    return "\n".join(lines) + "\n"
