"""``python -m tinkex.demo`` (``make demo``) trains, shows learning, writes the PNG, exits 0."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest
from _child_env import child_env

pytestmark = [pytest.mark.e2e]


def _env(**extra: str) -> dict[str, str]:
    return child_env(MPLBACKEND="Agg", **extra)


def _run(
    args: list[str], env: dict[str, str], cwd: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=str(cwd), timeout=120
    )


def test_demo_embedded_server_learns_and_plots(tmp_path):
    done = _run(["-m", "tinkex.demo", "--output-dir", "out"], _env(), tmp_path)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "embedded local server" in done.stdout
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    losses = metrics["losses"]
    assert losses[-1] < 0.1 * losses[0], losses
    png = tmp_path / "out" / "loss_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss curve: {png}" in done.stdout
    # Visible learning: most fine-tuned answers are exact, the base model gets none.
    samples = metrics["samples"]
    tuned_ok = sum(s["fine_tuned"].strip() == s["expected"].strip() for s in samples)
    base_ok = sum(s["base"].strip() == s["expected"].strip() for s in samples)
    assert tuned_ok >= len(samples) - 2 and base_ok == 0
    assert metrics["sampler_path"].startswith("tinker://")


def test_demo_without_matplotlib_skips_the_png(tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None; from tinkex.demo import main;"
        "sys.exit(main(['--steps', '5', '--output-dir', 'out']))"
    )
    done = _run(["-c", code], _env(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped (matplotlib missing" in done.stdout
    assert not (tmp_path / "out" / "loss_curve.png").exists()


def test_demo_uses_tinker_base_url(tmp_path):
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path / "data")) as server:
        env = _env(TINKER_BASE_URL=server.base_url, TINKER_API_KEY=server.api_key)
        done = _run(["-m", "tinkex.demo", "--steps", "10", "--output-dir", "out"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"server: {server.base_url} (from TINKER_BASE_URL)" in done.stdout
