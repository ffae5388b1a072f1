"""``python -m tinkex.as_tinker``: runs a script or module as ``python`` would, with tinkex as
``tinker`` there and in its spawned worker processes (``TINKEX_AS_TINKER`` + the ``.pth`` hook).

Each run is compared with the same program started by ``python`` itself: ``sys.argv``,
``__name__``, ``__file__``, ``sys.path[0]``, exit status and tracebacks must match; only what
``import tinker`` gives differs.
"""

from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from _child import assert_ok, run_python

pytest.importorskip("tinker")

ROOT = Path(__file__).resolve().parents[2]
HOOK_SOURCE = ROOT / "tinkex" / "_alias" / "tinkex-as-tinker.pth"

PROBE = """\
import json, os, sys
import tinker, tinkex
print(json.dumps({
    "argv": sys.argv,
    "name": __name__,
    "file": __file__,
    "path0": sys.path[0],
    "spec": getattr(__spec__, "name", None),
    "main_is_me": sys.modules["__main__"].__dict__ is globals(),
    "tinker_is_tinkex": tinker.Datum is tinkex.Datum,
    "env": os.environ.get("TINKEX_AS_TINKER"),
}))
sys.exit(int(sys.argv[1]))
"""


def _probe(result: Any) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads(result.stdout)
    return seen


def _without_alias(seen: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in seen.items() if k not in ("tinker_is_tinkex", "env")}


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "probe.py").write_text(PROBE)
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(PROBE)
    return tmp_path


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_script_runs_as_python_script_would(
    probe_dir: Path, tmp_path: Path, relative: bool
) -> None:
    script = "probe.py" if relative else str(probe_dir / "probe.py")
    cwd = probe_dir if relative else tmp_path.parent
    args = [script, "3", "a b", "--flag", "-m"]
    plain = run_python(args, cwd=cwd)
    launched = run_python(["-m", "tinkex.as_tinker", *args], cwd=cwd)
    assert (plain.returncode, launched.returncode) == (3, 3), launched.stderr
    seen_plain, seen_launched = _probe(plain), _probe(launched)
    assert _without_alias(seen_launched) == _without_alias(seen_plain)
    assert seen_launched["argv"] == args and seen_launched["path0"] == str(probe_dir)
    assert (seen_plain["tinker_is_tinkex"], seen_plain["env"]) == (False, None)
    assert (seen_launched["tinker_is_tinkex"], seen_launched["env"]) == (True, "1")


@pytest.mark.parametrize("form", [["-m", "probe_pkg.mod"], ["-mprobe_pkg.mod"]])
def test_module_runs_as_python_dash_m_would(probe_dir: Path, form: list[str]) -> None:
    plain = run_python(["-m", "probe_pkg.mod", "4", "x"], cwd=probe_dir)
    launched = run_python(["-m", "tinkex.as_tinker", *form, "4", "x"], cwd=probe_dir)
    assert (plain.returncode, launched.returncode) == (4, 4), launched.stderr
    seen_plain, seen_launched = _probe(plain), _probe(launched)
    assert _without_alias(seen_launched) == _without_alias(seen_plain)
    assert seen_launched["argv"] == [str(probe_dir / "probe_pkg" / "mod.py"), "4", "x"]
    assert seen_launched["spec"] == "probe_pkg.mod" and seen_launched["name"] == "__main__"
    assert seen_launched["tinker_is_tinkex"] and not seen_plain["tinker_is_tinkex"]


def test_uncaught_exception_prints_the_programs_traceback_only(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("def inner():\n    raise ValueError('boom')\n\ninner()\n")
    plain = run_python([str(script)])
    launched = run_python(["-m", "tinkex.as_tinker", str(script)])
    assert (plain.returncode, launched.returncode) == (1, 1)
    assert launched.stderr == plain.stderr
    assert launched.stderr.splitlines()[-1] == "ValueError: boom"
    assert "as_tinker" not in launched.stderr


def test_sys_exit_message_and_status_pass_through(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit('stopping: bad config')\n")
    launched = run_python(["-m", "tinkex.as_tinker", str(script)])
    assert launched.returncode == 1
    assert launched.stderr == "stopping: bad config\n"


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "usage: python -m tinkex.as_tinker -m MODULE [ARGS...]"),
        (["-m"], 2, "Argument expected for the -m option"),
        (["--bogus"], 2, "unknown option '--bogus'"),
        (["no_such_script.py"], 2, "can't open file"),
        (["-m", "no_such_module_xyz"], 1, "No module named no_such_module_xyz"),
    ],
)
def test_usage_errors_exit_as_python_does(args: list[str], status: int, message: str) -> None:
    result = run_python(["-m", "tinkex.as_tinker", *args])
    assert result.returncode == status
    assert message in result.stderr
    assert result.stdout == ""


def test_help_goes_to_stdout() -> None:
    result = run_python(["-m", "tinkex.as_tinker", "--help"])
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m tinkex.as_tinker")


def test_startup_hook_is_installed_in_this_environment() -> None:
    """``pip install -e`` (``make install``) put the hook into site-packages."""
    installed = Path(sysconfig.get_paths()["purelib"]) / HOOK_SOURCE.name
    assert installed.is_file(), f"{installed} is missing: run `make install` (pip install -e .)"
    assert installed.read_text() == HOOK_SOURCE.read_text()


@pytest.mark.parametrize(
    ("value", "alias", "stderr"),
    [
        ("1", True, ""),
        ("true", True, ""),
        ("0", False, ""),
        ("", False, ""),
        ("maybe", False, "tinkex: ignoring TINKEX_AS_TINKER='maybe'"),
    ],
)
def test_environment_variable_alone_installs_the_alias(
    value: str, alias: bool, stderr: str
) -> None:
    code = "import tinker, tinkex; print(tinker.Datum is tinkex.Datum)"
    result = run_python(["-W", "ignore", "-c", code], env={"TINKEX_AS_TINKER": value})
    assert assert_ok(result).strip() == str(alias)
    assert result.stderr.startswith(stderr) if stderr else result.stderr == ""


def test_hook_loads_nothing_when_the_variable_is_unset() -> None:
    result = run_python(["-X", "importtime", "-c", "pass"])
    imported = [
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    ]
    assert "site" in imported  # the start-up (and its .pth files) ran
    assert not [name for name in imported if name == "tinkex" or name.startswith("tinkex.")]


ROLLOUT = """\
import concurrent.futures, json, multiprocessing, os, sys
import tinker


def rollout(client, prompt):
    # A fresh "spawn" interpreter: its `import tinker` came from the start-up hook.
    import tinkex
    official = [m for m, mod in sys.modules.items()
                if m.startswith("tinker") and getattr(mod, "__file__", None)]
    result = client.sample(prompt, 1, tinker.SamplingParams(max_tokens=3, seed=1)).result(60)
    return {
        "tinker_is_tinkex": tinker.SamplingClient is tinkex.SamplingClient,
        "client_type_ok": isinstance(client, tinker.SamplingClient),
        "official_modules": official,
        "env": os.environ.get("TINKEX_AS_TINKER"),
        "tokens": len(result.sequences[0].tokens),
        "pid": os.getpid(),
    }


if __name__ == "__main__":
    from tinkex.local import LocalServer

    with LocalServer() as server:
        service = tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key)
        sampler = service.create_sampling_client(base_model="tinkex/tiny")
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            prompt = tinker.ModelInput.from_ints([1, 2, 3])
            seen = pool.submit(rollout, sampler, prompt).result(timeout=90)
        seen["other_process"] = seen.pop("pid") != os.getpid()
        print(json.dumps(seen))
        service.close()
"""


@pytest.mark.e2e
def test_spawned_worker_processes_get_tinkex_as_tinker(tmp_path: Path) -> None:
    script = tmp_path / "rollout.py"
    script.write_text(ROLLOUT)
    result = run_python(["-m", "tinkex.as_tinker", str(script)], env={"TINKER_TELEMETRY": "0"})
    seen = json.loads(assert_ok(result))
    assert seen == {
        "tinker_is_tinkex": True,
        "client_type_ok": True,
        "official_modules": [],
        "env": "1",
        "tokens": 3,
        "other_process": True,
    }


@pytest.mark.slow
def test_wheel_installs_the_startup_hook(tmp_path: Path) -> None:
    """A wheel (built here, installed into a fresh venv) carries the hook; uninstall removes it."""
    import shutil
    import zipfile

    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "tinkex", source / "tinkex", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    built = run_python(
        [*pip[1:], "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    )
    assert_ok(built)
    (wheel,) = wheels.glob("tinkex-*.whl")
    assert HOOK_SOURCE.name in zipfile.ZipFile(wheel).namelist()

    venv = tmp_path / "venv"
    assert_ok(run_python(["-m", "venv", "--without-pip", str(venv)]))
    python = str(venv / "bin" / "python")
    assert_ok(run_python([*pip[1:], "--python", python, "install", "--no-deps", str(wheel)]))
    purelib = Path(
        assert_ok(
            run_python(
                ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], python=python
            )
        ).strip()
    )
    assert (purelib / HOOK_SOURCE.name).read_text() == HOOK_SOURCE.read_text()
    # tinkex's dependencies come from this environment, appended after the venv's own tree
    # (a path line: Python reads no .pth files in that directory).
    (purelib / "00-dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = "import tinker, tinkex; print(tinker.Datum is tinkex.Datum, tinkex.__file__)"
    out = assert_ok(run_python(["-c", code], env={"TINKEX_AS_TINKER": "1"}, python=python))
    alias, location = out.split()
    assert alias == "True" and Path(location).is_relative_to(purelib)

    assert_ok(run_python([*pip[1:], "--python", python, "uninstall", "--yes", "tinkex"]))
    assert not (purelib / HOOK_SOURCE.name).exists()
