"""Every ``python`` code block of the guides runs against a local server (or says why not).

See ``doc_blocks.py`` for the marker convention.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from _child_env import child_env
from doc_blocks import NOT_CODE, ROOT, RUNNABLE, Block, blocks, pages

pytestmark = [pytest.mark.e2e]

PAGES = pages()


def _clean_env(base_url: str, api_key: str) -> dict[str, str]:
    env = child_env(base_url, api_key)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture(scope="module")
def doc_server(tmp_path_factory):
    """A local server holding one training run with a training and a sampler checkpoint."""
    import tinkex
    from tinkex import types
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path_factory.mktemp("doc-server"))) as server:
        with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
            training = service.create_lora_training_client("tinkex/tiny", rank=4).result()
            datum = types.Datum(
                model_input=types.ModelInput.from_ints([81, 58]),
                loss_fn_inputs={"target_tokens": [58, 32]},
            )
            training.forward_backward([datum], "cross_entropy").result()
            training.optim_step(types.AdamParams(learning_rate=1e-3)).result()
            training.save_state("docs-seed").result()
            training.save_weights_for_sampler("docs-seed").result()
        yield server


def test_every_python_block_is_runnable_or_says_why_not():
    problems = []
    for page in PAGES:
        for block in blocks(page):
            if block.lang in ("py", "python3"):
                problems.append(f"{block.label}: tag the fence 'python', not {block.lang!r}")
            if block.marker == "not-run" and not (block.reason or "").strip():
                problems.append(f"{block.label}: <!-- not-run: ... --> needs a reason")
            if block.lang not in RUNNABLE | NOT_CODE:
                problems.append(
                    f"{block.label}: fence language {block.lang!r} is neither runnable "
                    f"({sorted(RUNNABLE)}) nor 'text'"
                )
            if block.marker and block.lang not in RUNNABLE:
                problems.append(f"{block.label}: markers only apply to {sorted(RUNNABLE)} blocks")
            if block.marker == "pytest" and block.lang != "python":
                problems.append(f"{block.label}: <!-- pytest --> needs a python block")
    assert not problems, "\n".join(problems)


def test_docs_exist_for_every_topic():
    names = {p.name for p in PAGES}
    expected = {
        "getting-started.md",
        "configuration.md",
        "training.md",
        "forward-inference.md",
        "custom-loss-and-regularizers.md",
        "sampling.md",
        "tokenization.md",
        "kimi-k2-tokenization.md",
        "model-info-and-unload.md",
        "api-reference.md",
        "futures-and-concurrency.md",
        "retries-and-errors.md",
        "rate-limiting-and-flow-control.md",
        "checkpoints.md",
        "local-server-and-testing.md",
        "telemetry-and-metrics.md",
        "recovery.md",
        "cli.md",
        "migrating-from-tinker.md",
        "troubleshooting.md",
    }
    assert expected <= names, f"missing guides: {sorted(expected - names)}"


_DRIVER = textwrap.dedent(
    """
    import json, sys
    blocks = json.loads(sys.stdin.read())
    namespace = {"__name__": "__main__"}
    for block in blocks:
        print(f"--- running {block['label']}", flush=True)
        code = "\\n" * (block["line"] - 1) + block["code"]
        exec(compile(code, block["path"], "exec"), namespace)
    """
)


def _run(block_list: list[Block], env: dict[str, str], cwd: str) -> None:
    payload = json.dumps(
        [
            {"label": b.label, "line": b.line, "code": b.code, "path": str(b.page)}
            for b in block_list
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=150,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"
    # Guides teach the current API: running them must not trigger deprecation warnings.
    deprecated = [
        line
        for line in done.stderr.splitlines()
        if "FutureWarning" in line or "DeprecationWarning" in line
    ]
    assert not deprecated, "\n".join(deprecated)


def _run_bash(block: Block, env: dict[str, str], cwd: str) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=150,
    )
    assert done.returncode == 0, (
        f"{block.label} (bash) exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\n"
        f"stderr:\n{done.stderr[-4000:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_code_blocks_run(page, doc_server, tmp_path):
    all_blocks = [b for b in blocks(page) if b.lang == "python"]
    runnable = [b for b in all_blocks if b.marker is None]
    pytest_blocks = [b for b in all_blocks if b.marker == "pytest"]
    bash_blocks = [b for b in blocks(page) if b.lang == "bash" and b.marker is None]
    if not runnable and not pytest_blocks and not bash_blocks:
        pytest.skip(f"{page.name} has no runnable blocks")
    env = _clean_env(doc_server.base_url, doc_server.api_key)
    # `tinkex` and `python3` resolve to this interpreter's environment.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    for block in bash_blocks:
        _run_bash(block, env, str(tmp_path))
    if runnable:
        _run(runnable, env, str(tmp_path))
    for n, block in enumerate(pytest_blocks):
        test_file = tmp_path / f"test_doc_block_{n}.py"
        test_file.write_text(block.code, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
            capture_output=True,
            text=True,
            env=env,
            cwd=str(tmp_path),
            timeout=150,
        )
        assert done.returncode == 0, f"{block.label} (pytest block):\n{done.stdout[-4000:]}"


def test_api_reference_lists_every_public_client_method():
    import inspect

    import tinkex

    page = (ROOT / "docs" / "api-reference.md").read_text(encoding="utf-8")
    missing = [
        f"{cls.__name__}.{name}"
        for cls in (
            tinkex.ServiceClient,
            tinkex.TrainingClient,
            tinkex.SamplingClient,
            tinkex.RestClient,
            tinkex.AdminClient,
        )
        for name, value in inspect.getmembers(cls)
        if callable(value) and not name.startswith("_") and not name.endswith("_async")
        if f"`{name}(" not in page.split(f"## `{cls.__name__}`", 1)[-1].split("\n## ", 1)[0]
    ]
    assert not missing, f"docs/api-reference.md does not list {missing}"


def _environment_names_in_the_source() -> set[str]:
    """Quoted TINKER_*/TINKEX_*/... names in tinkex/, less module-level constants' names."""
    import re

    quoted = re.compile(
        r"[\"']((?:TINKER|TINKEX|CLOUDFLARE|HF|HUGGINGFACE|TRANSFORMERS)_[A-Z_]+)[\"']"
    )
    sources = [path.read_text(encoding="utf-8") for path in (ROOT / "tinkex").rglob("*.py")]
    names = {name for text in sources for name in quoted.findall(text)}
    constants = {
        name
        for name in names
        for text in sources
        if re.search(rf"^{name}\s*(?::|=)", text, re.MULTILINE)  # e.g. TINKER_MODULES: dict
    }
    return names - constants


def test_configuration_lists_every_variable_and_option():
    import inspect

    import tinkex
    from tinkex import environment
    from tinkex.clients._http_options import HTTP_OPTIONS

    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = page.split("## Every setting", 1)[1].split("\n## ", 1)[0]
    known = {variable.name for variable in environment.VARIABLES}
    unknown = _environment_names_in_the_source() - known
    assert not unknown, f"tinkex reads {sorted(unknown)}: add them to tinkex.environment.VARIABLES"
    undocumented = sorted(name for name in known if f"`{name}`" not in table)
    assert not undocumented, f"docs/configuration.md's table does not list {undocumented}"
    arguments = {
        name
        for client in (tinkex.ServiceClient, tinkex.RestClient)
        for name, parameter in inspect.signature(client.__init__).parameters.items()
        if parameter.kind is not parameter.VAR_KEYWORD and not name.startswith("_")
    } - {"self"}
    missing = sorted(name for name in arguments | set(HTTP_OPTIONS) if f"`{name}`" not in table)
    assert not missing, f"docs/configuration.md's table does not list the arguments {missing}"
