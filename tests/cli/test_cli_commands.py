"""The commands and flags tinkex adds for parity (issue 12 items 5, 9, 10): ``auth``,
``session export-trace``, ``checkpoint push-hf``, ``doctor``, ``--offset``, ``--access-scope``,
``--timeout``, the enforced TTL range, and hints that name commands that exist."""

from __future__ import annotations

import json
import stat
import sys
import time

import pytest
from _child_env import child_env
from _child_exit import time_exit_after
from cli_run import ok
from cli_run import run_cli as tinkex
from cli_standins import HubStandIn, Reply, StandIn, StaticWebServer

pytestmark = [pytest.mark.e2e]

BASE_MODEL = "Qwen/Qwen3-8B"


def _env(home, base_url: str | None = None, key: str | None = None, **extra: str):
    return child_env(base_url or None, key or None, drop=("HF_",), HOME=str(home), **extra)


def error(done, status: int = 1) -> str:
    assert done.returncode == status, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stderr


@pytest.fixture(scope="module")
def trained(server):
    import tinkex
    from tinkex import types

    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        runs = []
        for rank in (4, 8):
            training = service.create_lora_training_client(BASE_MODEL, rank=rank).result()
            datum = types.Datum(
                model_input=types.ModelInput.from_ints([72, 105]),
                loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
            )
            training.forward_backward([datum], "cross_entropy")
            training.optim_step(types.AdamParams(learning_rate=1e-2))
            runs.append(training.save_state("final").result().path)
        session_id = service.holder.session_id()
    return {"weights": runs, "session_id": session_id}


# --- auth --------------------------------------------------------------------------------------

ME = {
    "key_id": 42,
    "name": "laptop",
    "note": "made in the console",
    "details": {"org_details": {"name": "Acme"}, "user_details": {"email": "ada@acme.test"}},
}


def test_auth_login_stores_a_verified_key_both_sdks_read(tmp_path):
    routes = {("GET", "/api/v1/auth/apikey/me"): Reply(json_body=ME)}
    with StandIn(routes) as api:
        env = _env(tmp_path, api.url)
        out = ok(tinkex("auth", "login", env=env, input="tml-pasted-key\n"))
        assert api.requests[-1].headers["x-api-key"] == "tml-pasted-key"
    assert "Logged in as ada@acme.test (Acme)" in out
    path = tmp_path / ".tinker" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    from tinkex._config import ClientSettings

    resolved = ClientSettings.resolve(environ={}, credentials_path=path)
    assert resolved.api_key == "tml-pasted-key" and resolved.api_key_source == "credentials_file"
    tinker_credentials = pytest.importorskip("tinker.lib.credentials")
    store = tinker_credentials.JsonCredentialStore(path)
    assert store.get_default_key().key == "tml-pasted-key" and store.get_default_key_id() == "42"
    # A second login refuses; logout removes the key and says it is still active.
    assert "already logged in" in error(tinkex("auth", "login", env=env, input="tml-x\n"))
    out = ok(tinkex("auth", "logout", env=env))
    assert "still active" in out and "/keys/42" in out
    assert json.loads(path.read_text())["keys"] == {}
    assert "nothing to log out" in error(tinkex("auth", "logout", env=env))


def test_auth_logout_revokes_a_generated_key(tmp_path):
    path = tmp_path / ".tinker" / "credentials.json"
    path.parent.mkdir()
    record = {"type": "generated", "key": "tml-minted", "name": "cli", "details": ME["details"]}
    path.write_text(json.dumps({"version": 1, "default": "7", "keys": {"7": record}}))
    routes = {("DELETE", "/api/v1/auth/apikey/me"): Reply(json_body={})}
    with StandIn(routes) as api:
        out = ok(tinkex("auth", "logout", env=_env(tmp_path, api.url)))
    assert ("DELETE", "/api/v1/auth/apikey/me") in api.paths()
    assert "deleted its API key on the server" in out


def test_auth_login_rejected_key_stores_nothing(tmp_path):
    routes = {("GET", "/api/v1/auth/apikey/me"): Reply(401, {"detail": "invalid API key"})}
    with StandIn(routes) as api:
        done = tinkex("auth", "login", env=_env(tmp_path, api.url), input="tml-bad\n")
    assert "invalid API key" in error(done) and "HTTP 401" in done.stderr
    assert not (tmp_path / ".tinker" / "credentials.json").exists()


def test_auth_login_on_a_local_server_then_status(server, tmp_path):
    env = _env(tmp_path, server.base_url)
    ok(tinkex("auth", "login", "--api-key", "tml-local", env=env))
    out = ok(tinkex("auth", "status", env=env))
    assert "Credentials available: yes" in out and "Tinker accessible: yes" in out
    status = json.loads(ok(tinkex("-f", "json", "auth", "status", env=env)))
    assert status["credential_source"] == "credentials_file" and status["accessible"] is True


def test_auth_status_without_credentials_fails(server, tmp_path):
    done = tinkex("auth", "status", env=_env(tmp_path, server.base_url))
    assert "Credentials available: no" in done.stdout
    assert "tinkex auth login" in error(done)


def test_auth_whoami_explains_servers_without_jwt(server, tmp_path):
    done = tinkex("auth", "whoami", env=_env(tmp_path, server.base_url, server.api_key))
    assert "JWT" in error(done)


# --- session export-trace ------------------------------------------------------------------------


def test_session_export_trace(server, trained, tmp_path):
    env = _env(tmp_path, server.base_url, server.api_key)
    sid = trained["session_id"]
    out = ok(tinkex("session", "export-trace", sid, env=env, cwd=str(tmp_path)))
    trace = tmp_path / f"{sid}.pftrace"
    assert trace.stat().st_size > 0 and "Saved to" in out
    custom = tmp_path / "sub" / "t.trace"
    data = json.loads(
        ok(tinkex("-f", "json", "session", "export-trace", sid, "-o", str(custom), env=env))
    )
    assert data == {
        "session_id": sid,
        "destination": str(custom),
        "file_size_bytes": custom.stat().st_size,
    }
    url = ok(tinkex("session", "export-trace", sid, "--url-only", env=env)).strip()
    assert url.startswith(server.base_url) and "\n" not in url


# --- flags: --offset, --access-scope, --timeout, TTL range --------------------------------------


def test_offset_pages_through_runs_and_checkpoints(server, trained, tmp_path):
    env = _env(tmp_path, server.base_url, server.api_key)
    both = json.loads(ok(tinkex("-f", "json", "run", "list", "--limit", "2", env=env)))["runs"]
    second = json.loads(
        ok(tinkex("-f", "json", "run", "list", "--limit", "1", "--offset", "1", env=env))
    )["runs"]
    assert [r["training_run_id"] for r in second] == [both[1]["training_run_id"]]
    checkpoints = json.loads(
        ok(tinkex("-f", "json", "checkpoint", "list", "--limit", "1", "--offset", "1", env=env))
    )["checkpoints"]
    everything = json.loads(
        ok(tinkex("-f", "json", "checkpoint", "list", "--limit", "0", env=env))
    )["checkpoints"]
    assert checkpoints == everything[1:2]


def test_access_scope_reaches_the_server(tmp_path):
    page = {"training_runs": [], "cursor": {"offset": 0, "limit": 20, "total_count": 0}}
    routes = {("GET", "/api/v1/training_runs"): Reply(json_body=page)}
    with StandIn(routes) as api:
        env = _env(tmp_path, api.url, "tml-x")
        ok(tinkex("run", "list", "--access-scope", "accessible", env=env))
        ok(tinkex("run", "list", env=env))
    scopes = [r.query.get("access_scope") for r in api.requests if r.path.endswith("runs")]
    assert scopes == [["accessible"], ["owned"]]


def test_timeout_bounds_a_command_that_does_not_finish(tmp_path):
    def stall(_request):
        time.sleep(20)
        return Reply(json_body={"training_runs": [], "cursor": None})

    api_key = "tml-x"
    start = time.monotonic()
    tinkex("version", env=_env(tmp_path))  # the start-up cost, to time the command itself
    startup = time.monotonic() - start
    with StandIn({("GET", "/api/v1/training_runs"): stall}) as api:
        start = time.monotonic()
        done = tinkex("--timeout", "1.5", "run", "list", env=_env(tmp_path, api.url, api_key))
        elapsed = time.monotonic() - start - startup
    assert "did not finish within 1.5 s (--timeout)" in error(done)
    assert elapsed < 8  # the stalled request would hold it for 20 s


def test_timeout_exits_at_once_without_flushing_telemetry(tmp_path):
    """A command abandoned at its --timeout does not then wait to deliver the telemetry its
    session queued to a server that does not answer (it waited ~4 s at exit for that)."""

    def stall(_request):
        time.sleep(20)
        return Reply(json_body={})

    session = {"type": "create_session", "session_id": "s-1"}
    routes = {
        ("POST", "/api/v1/client/dynamic_config"): Reply(json_body={}),
        ("POST", "/api/v1/create_session"): Reply(json_body=session),
    }
    # 6 s: time to reach the session even at high load (it starts the telemetry reporter)
    command = ["--timeout", "6", "sample", "--base-model", "tinkex/tiny", "hi"]
    with StandIn(routes, fallback=stall) as api:
        env = _env(tmp_path, api.url, "tml-x", TINKER_TELEMETRY="1")
        done = time_exit_after(
            [sys.executable, "-m", "tinkex.cli", *command], "(--timeout)", env=env
        )
        paths = [r.path for r in api.requests]
    assert done.returncode == 1, done.output
    assert "did not finish within 6 s (--timeout)" in done.output
    assert "/api/v1/create_session" in paths  # the session (and its telemetry) had started
    assert done.exit_seconds is not None and done.exit_seconds < 1.5, (
        f"exited {done.exit_seconds:.1f} s after reporting the timeout\n{done.output}"
    )


@pytest.mark.parametrize("ttl", ["60", "3599", "315360001"])
def test_ttl_outside_the_stated_range_is_a_usage_error(tmp_path, ttl):
    done = tinkex("checkpoint", "set-ttl", "tinker://r/weights/x", "--ttl", ttl, env=_env(tmp_path))
    assert "between 1 hour and 10 years (3600..315360000)" in error(done, status=2)


def test_ttl_bounds_are_accepted(server, trained, tmp_path):
    env = _env(tmp_path, server.base_url, server.api_key)
    for ttl in ("3600", "315360000"):
        ok(tinkex("checkpoint", "set-ttl", trained["weights"][0], "--ttl", ttl, env=env))


# --- push-hf against a loopback Hub ------------------------------------------------------------


def test_push_hf_uploads_a_peft_adapter_with_a_model_card(server, trained, tmp_path):
    pytest.importorskip("huggingface_hub")
    with HubStandIn(token="hf_test_token") as hub:
        env = _env(
            tmp_path,
            server.base_url,
            server.api_key,
            HF_ENDPOINT=hub.url,
            HF_TOKEN="hf_test_token",
            HF_HOME=str(tmp_path / "hf"),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_XET="1",
        )
        path = trained["weights"][0]
        data = json.loads(
            ok(
                tinkex(
                    "-f",
                    "json",
                    "checkpoint",
                    "push-hf",
                    path,
                    "-r",
                    "tester/adapter",
                    "--public",
                    env=env,
                )
            )
        )
        assert data == {"checkpoint_path": path, "repo_id": "tester/adapter", "public": True}
        files = hub.repos["tester/adapter"]["branches"]["main"]
        assert set(files) == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
        assert hub.repos["tester/adapter"]["private"] is False
        card = files["README.md"].decode()
        assert path in card and "base_model: Qwen/Qwen3-8B" in card and "library_name: peft" in card
        config = json.loads(files["adapter_config.json"])
        assert config["base_model_name_or_path"]
        # Derived repo id and branch when --repo is not given; private by default.
        data = json.loads(
            ok(
                tinkex(
                    "-f",
                    "json",
                    "checkpoint",
                    "push-hf",
                    trained["weights"][1],
                    "--no-model-card",
                    env=env,
                )
            )
        )
        assert data["repo_id"].startswith("tester/tinker-Qwen3-8B-")
        assert data["revision"] == "weights-final"
        repo = hub.repos[data["repo_id"]]
        assert repo["private"] is True and "README.md" not in repo["branches"]["weights-final"]
        # A wrong token is one clear error line.
        env["HF_TOKEN"] = "hf_wrong"
        done = tinkex("checkpoint", "push-hf", path, "-r", "tester/adapter", env=env)
    assert "not logged in to the Hugging Face Hub" in error(done) and "hf auth login" in done.stderr


def test_push_hf_refuses_sampler_checkpoints(tmp_path):
    done = tinkex("checkpoint", "push-hf", "tinker://r/sampler_weights/s", env=_env(tmp_path))
    assert "sampler checkpoint" in error(done)


# --- doctor --------------------------------------------------------------------------------------


def test_doctor_on_a_working_setup(server, tmp_path):
    secret = "tml-do-not-print-this-key-1234"
    from tinkex.local import LocalServer

    with LocalServer(data_dir=str(tmp_path / "d"), api_key=secret) as protected:
        env = _env(
            tmp_path,
            protected.base_url,
            secret,
            HTTPS_PROXY="http://user:hunter2@proxy.invalid:3128",
            NO_PROXY="127.0.0.1,localhost",
        )
        done = tinkex("doctor", env=env)
        data = json.loads(ok(tinkex("-f", "json", "doctor", env=env)))
    text = ok(done)
    assert secret not in text + json.dumps(data) and "hunter2" not in text
    assert "user:***@proxy.invalid" in text and "127.0.0.1 is direct" in text
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ok"] is True
    assert checks["server URL"]["detail"].endswith("(from TINKER_BASE_URL)")
    assert f"{len(secret)} characters" in checks["API key"]["detail"]
    assert "tinkex local server" in checks["models"]["detail"]
    assert {
        "tinkex",
        "server URL",
        "API key",
        "proxy",
        "server",
        "clock",
        "models",
        "tokenizers",
    } <= set(checks)


def test_doctor_says_what_to_fix(tmp_path):
    with StaticWebServer(str(tmp_path)) as web:
        done = tinkex("-f", "json", "doctor", env=_env(tmp_path, web.url))
    assert done.returncode == 1
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["API key"]["status"] == "fail" and "tinkex auth login" in checks["API key"]["fix"]
    assert checks["server"]["status"] == "fail" and "not a Tinker API" in checks["server"]["detail"]


# --- hints name commands that exist (issue 12.5) -----------------------------------------------


def test_missing_key_hint_names_a_tinkex_command_that_exists(tmp_path):
    from tinkex._config import ClientSettings
    from tinkex._exceptions import TinkerError

    with pytest.raises(TinkerError) as info:
        ClientSettings.resolve(environ={}, credentials_path=tmp_path / "none.json")
    assert "tinkex auth login" in str(info.value) and "tinker auth login" not in str(info.value)
    ok(tinkex("auth", "login", "--help", env=_env(tmp_path)))


def test_tokenizer_hint_names_the_hf_command_huggingface_hub_ships():
    from importlib.metadata import entry_points

    from tinkex.tokenizer import TokenizerNotFoundError, get_tokenizer

    with pytest.raises(TokenizerNotFoundError) as info:
        get_tokenizer("no-such-org/no-such-model")
    message = str(info.value)
    scripts = {e.name for e in entry_points(group="console_scripts")}
    # huggingface_hub >= 0.34 ships `hf` (and deprecates huggingface-cli); older ones only the
    # latter: the hint names the one this environment has.
    command = "hf" if "hf" in scripts or "huggingface-cli" not in scripts else "huggingface-cli"
    assert f"{command} download no-such-org/no-such-model" in message
    assert command in scripts or not {"hf", "huggingface-cli"} & scripts
