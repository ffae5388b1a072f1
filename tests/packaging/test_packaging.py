"""Packaging (issue 12.7): the declared minimum versions are the ones CI tests, the wheel
carries LICENSE and CHANGELOG and complete metadata, and ``make install`` installs the runtime
package only."""

from __future__ import annotations

import configparser
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MIN_VERSIONS = ROOT / ".ci" / "min-versions.txt"


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _requirements(text: str) -> dict[str, str]:
    """``name>=X`` lines -> ``{name: X}`` (names normalized)."""
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", line)
        if match:
            found[_normalize(match.group(1))] = match.group(2)
    return found


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in MIN_VERSIONS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_normalize(name)] = version.strip()
    return pins


def test_every_declared_minimum_is_pinned_for_the_lowest_versions_job():
    config = _setup_cfg()
    declared = _requirements(config["options"]["install_requires"])
    extras = config["options.extras_require"]
    for extra in extras:
        if extra != "dev":  # the toolchain, not something tinkex needs at run time
            declared.update(_requirements(extras[extra]))
    assert declared, "no requirements parsed from setup.cfg"
    unbounded = [
        line.strip()
        for line in config["options"]["install_requires"].splitlines()
        if line.strip() and ">=" not in line
    ]
    assert not unbounded, f"runtime requirements without a tested minimum: {unbounded}"
    from packaging.version import Version

    pins = {name: Version(v) for name, v in _pins().items()}
    assert pins == {name: Version(v) for name, v in declared.items()}, (
        "setup.cfg's minimums and .ci/min-versions.txt (what `make test-min` installs) differ"
    )


def test_ci_runs_the_lowest_versions_job():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test-min" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert "-c $(MIN_CONSTRAINTS)" in makefile


def _make_dry_run(target: str, tmp_path: pathlib.Path) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        [make, "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_install_is_the_runtime_package_only(tmp_path):
    installs = [
        line for line in _make_dry_run("install", tmp_path).splitlines() if "pip install" in line
    ]
    assert any(line.rstrip().endswith("-e .") for line in installs), installs
    assert not any("[dev]" in line or "cookbook" in line for line in installs), installs
    dev = _make_dry_run("dev", tmp_path)
    assert "-e '.[dev]'" in dev and "tinker-cookbook" in dev
    assert "-e '.[dev]'" in _make_dry_run("install-dev", tmp_path)


def test_make_test_installs_what_the_suite_needs_before_running_it(tmp_path):
    # .ci/run on a clean clone is `make test`: it has to install the dev extras (pytest, the
    # official tinker, transformers) and the cookbook suite's packages by itself, first.
    lines = _make_dry_run("test", tmp_path).splitlines()
    runs = [i for i, line in enumerate(lines) if "-m pytest" in line]
    dev = [i for i, line in enumerate(lines) if "pip install" in line and "-e '.[dev]'" in line]
    cookbook = [i for i, line in enumerate(lines) if "tinker-cookbook==" in line]
    assert runs and dev and cookbook, lines
    assert max(dev + cookbook) < min(runs), lines


@pytest.mark.parametrize("target", ["test", "demo", "install"])
def test_every_install_step_says_what_it_installs_first(target, tmp_path):
    # pip runs with --quiet; a fresh clone's first `make demo` / `make test` spends minutes
    # there, so each step announces itself instead of sitting silently.
    lines = _make_dry_run(target, tmp_path).splitlines()

    def installs(line: str) -> bool:
        return "pip install" in line and "--upgrade pip" not in line

    steps = [i for i, line in enumerate(lines) if installs(line) and not installs(lines[i - 1])]
    assert steps, lines
    for i in steps:
        assert lines[i - 1].startswith("echo ") and "Installing" in lines[i - 1], lines[
            i - 1 : i + 1
        ]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[pathlib.Path, str]:
    """A wheel built from this checkout (no network: the build backend is installed)."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("tinkex-*.whl")
    return built, done.stdout + done.stderr


def test_wheel_ships_license_and_changelog(wheel):
    path, _ = wheel
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        license_files = [n for n in names if n.endswith("LICENSE") and ".dist-info/" in n]
        assert license_files, names
        text = archive.read(license_files[0]).decode()
        assert "Apache License" in text and "Version 2.0, January 2004" in text
        assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer
        changelog = [n for n in names if n.endswith("share/doc/tinkex/CHANGELOG.md")]
        assert changelog, [n for n in names if "data" in n]
        assert archive.read(changelog[0]).decode().startswith("# Changelog")
        assert "tinkex/demo_data/qa.json" in names and "tinkex/demo_data/__init__.py" in names


def test_wheel_metadata_is_complete(wheel):
    path, _ = wheel
    with zipfile.ZipFile(path) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(meta).decode()
    headers = metadata.split("\n\n", 1)[0]
    assert re.search(r"^Author: .+", headers, re.M)
    assert re.search(r"^Project-URL: .+, https://", headers, re.M)
    assert re.search(r"^License(-Expression)?: Apache-2.0", headers, re.M)
    versions = re.findall(
        r"^Classifier: Programming Language :: Python :: (3\.\d+)$", headers, re.M
    )
    assert versions == ["3.11", "3.12", "3.13"]
    assert "Requires-Python: >=3.11" in headers
    assert "Provides-Extra: hf" in headers


def test_building_the_wheel_warns_about_no_package_data(wheel):
    _, log = wheel
    # setuptools' BuildBackendWarning for data directories that are not packages (it named
    # tinkex.demo_data before that directory became a package).
    assert "is absent from the `packages` configuration" not in log, log
