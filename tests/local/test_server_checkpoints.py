"""Checkpoints and REST endpoints over HTTP, and persistence across a server restart."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

import requests

from tinkex.local import LocalServer

from .conftest import Api, datum, fwdbwd, optim

TOKENS = [72, 101, 108, 108, 111]


def save(api: Api, model_id: str, seq_id: int, name: str, **extra: object) -> str:
    future = api.ok(
        "save_weights",
        {"model_id": model_id, "seq_id": seq_id, "path": name, "type": "save_weights", **extra},
    )
    result = api.result(future["request_id"])
    assert result["type"] == "save_weights", result
    return str(result["path"])


def test_save_list_and_checkpoint_rest(api: Api) -> None:
    model_id = api.model()
    first = save(api, model_id, 1, "first", user_metadata={"step": "1"})
    time.sleep(0.01)
    second = save(api, model_id, 2, "second")
    assert first == f"tinker://{model_id}/weights/first"
    listing = api.get(f"training_runs/{model_id}/checkpoints").json()
    assert [c["tinker_path"] for c in listing["checkpoints"]] == [second, first]
    ckpt = listing["checkpoints"][1]
    assert ckpt["checkpoint_id"] == "weights/first" and ckpt["checkpoint_type"] == "training"
    assert ckpt["user_metadata"] == {"step": "1"} and ckpt["size_bytes"] > 0
    run = api.get(f"training_runs/{model_id}").json()
    assert run["last_checkpoint"]["tinker_path"] == second and run["lora_rank"] == 4
    page = api.get("checkpoints", params={"limit": 1, "offset": 0}).json()
    assert len(page["checkpoints"]) == 1 and page["cursor"]["total_count"] >= 2
    # publish / unpublish (409 when already in that state)
    base = f"training_runs/{model_id}/checkpoints/weights/first"
    assert api.http.post(api.base + base + "/publish").status_code == 200
    assert api.http.post(api.base + base + "/publish").status_code == 409
    assert api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"][1]["public"]
    assert api.http.delete(api.base + base + "/publish").status_code == 200
    assert api.http.delete(api.base + base + "/publish").status_code == 409
    # ttl
    assert api.http.put(api.base + base + "/ttl", json={"ttl_seconds": 7200}).status_code == 200
    expires = api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"][1]
    assert expires["expires_at"] is not None
    assert api.http.put(api.base + base + "/ttl", json={"ttl_seconds": None}).status_code == 200
    # weights_info
    info = api.ok("weights_info", {"tinker_path": first})
    assert info["base_model"] == "tinkex/tiny" and info["lora_rank"] == 4 and info["is_lora"]
    # delete
    assert api.http.delete(api.base + base).status_code == 200
    assert api.http.delete(api.base + base).status_code == 404
    remaining = api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert [c["tinker_path"] for c in remaining] == [second]


def test_duplicate_name_is_400_and_overwrite_replaces(api: Api) -> None:
    model_id = api.model()
    save(api, model_id, 1, "dup")
    response = api.post("save_weights", {"model_id": model_id, "seq_id": 2, "path": "dup"})
    assert response.status_code == 400 and "already exists" in response.json()["detail"]
    save(api, model_id, 3, "dup", overwrite=True, user_metadata={"v": "2"})
    ckpts = api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
    assert len(ckpts) == 1 and ckpts[0]["user_metadata"] == {"v": "2"}
    bad_name = api.post("save_weights", {"model_id": model_id, "seq_id": 4, "path": "a/b"})
    assert bad_name.status_code == 400 and "'a/b'" in bad_name.json()["detail"]


def test_short_ttl_expires_checkpoint(api: Api) -> None:
    model_id = api.model()
    save(api, model_id, 1, "brief", ttl_seconds=1)
    assert len(api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]) == 1
    time.sleep(1.1)
    assert api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"] == []


def test_external_weights_urls_serve_peft_files(api: Api) -> None:
    model_id = api.model()
    future = api.ok("save_weights_external", {"model_id": model_id, "seq_id": 1, "path": "hf"})
    result = api.result(future["request_id"])
    assert result["path"] == f"tinker://{model_id}/external_weights/hf"
    assert result["size_bytes"] > 0
    urls = api.get(
        f"training_runs/{model_id}/checkpoints/external_weights/hf/external_weights_urls"
    ).json()
    assert set(urls["urls"]) == {"adapter_config.json", "adapter_model.safetensors"}
    assert urls["expires"]
    config = requests.get(urls["urls"]["adapter_config.json"]).json()  # no API key needed
    assert config["peft_type"] == "LORA" and config["r"] == 4
    tensors = requests.get(urls["urls"]["adapter_model.safetensors"]).content
    from safetensors.numpy import load

    loaded = load(tensors)
    assert all(k.startswith("base_model.model.") for k in loaded)
    assert requests.get(urls["urls"]["adapter_config.json"] + "x").status_code == 404


def test_archive_download_is_a_tar(api: Api) -> None:
    model_id = api.model()
    save(api, model_id, 1, "arch")
    response = api.get(f"training_runs/{model_id}/checkpoints/weights/arch/archive")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.content)) as archive:
        names = set(archive.getnames())
    assert names == {"adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors"}
    # quoted run ids (as tinkex's downloader sends them) route too
    quoted = model_id.replace(":", "%3A")
    assert api.get(f"training_runs/{quoted}/checkpoints/weights/arch/archive").status_code == 200


def test_copy_weights_and_sessions_rest(api: Api) -> None:
    session = api.ok(
        "create_session",
        {"tags": ["t"], "user_metadata": {"who": "me"}, "display_name": "nightly run"},
    )["session_id"]
    model_id = api.model(session=session)
    path = save(api, model_id, 1, "orig")
    copied = api.ok("copy_weights", {"source_path": path, "destination_project_id": "p"})
    assert copied["tinker_path"].endswith("/weights/orig") and copied["tinker_path"] != path
    assert api.ok("weights_info", {"tinker_path": copied["tinker_path"]})["lora_rank"] == 4
    got = api.get(f"sessions/{session}").json()
    assert got["training_run_ids"] == [model_id] and got["user_metadata"] == {"who": "me"}
    assert got["display_name"] == "nightly run"
    assert session in api.get("sessions", params={"limit": 1000}).json()["sessions"]
    found = api.ok("sessions/search", {"display_name": "nightly"})["sessions"]
    assert any(s["session_id"] == session for s in found)
    assert api.ok("sessions/search", {"user_metadata": {"who": "nobody"}})["sessions"] == []
    assert (
        api.http.put(
            api.base + f"sessions/{session}/project", json={"project_id": "p2"}
        ).status_code
        == 200
    )
    trace = api.get(f"sessions/{session}/trace_export").json()
    assert trace["status"] == "ready"
    exported = requests.get(trace["url"]).json()
    assert exported["session_id"] == session and exported["training_run_ids"] == [model_id]
    assert api.get("sessions/nope").status_code == 404


def test_persistence_across_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.5) as first:
        api = Api(first)
        model_id = api.model()
        for step in range(3):
            api.ok("forward_backward", fwdbwd(model_id, 2 * step + 1, [datum(TOKENS)]))
            api.ok("optim_step", optim(model_id, 2 * step + 2))
        path = save(api, model_id, 7, "persisted")
        probe = api.ok(
            "forward",
            {
                "forward_input": {"data": [datum(TOKENS)], "loss_fn": "cross_entropy"},
                "model_id": model_id,
                "seq_id": 8,
            },
        )
        loss_before = api.result(probe["request_id"])["metrics"]["loss:sum"]
        sampler_path = api.result(
            api.ok("save_weights_for_sampler", {"model_id": model_id, "seq_id": 9, "path": "s"})[
                "request_id"
            ]
        )["path"]
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.5) as second:
        api = Api(second)
        runs = api.get("training_runs").json()["training_runs"]
        assert [r["training_run_id"] for r in runs] == [model_id]
        listed = api.get(f"training_runs/{model_id}/checkpoints").json()["checkpoints"]
        assert {c["tinker_path"] for c in listed} == {path, sampler_path}
        # the old model is not loaded any more; create a new one from the checkpoint
        stale = api.post("forward_backward", fwdbwd(model_id, 10, [datum(TOKENS)]))
        assert stale.status_code == 400 and "restart" in stale.json()["detail"]
        session = api.session()
        loaded = api.ok(
            "load_weights",
            {
                "session_id": session,
                "model_seq_id": 0,
                "path": path,
                "optimizer": True,
                "type": "load_weights",
            },
        )
        new_id = f"{session}:train:0"
        assert loaded["model_id"] == new_id
        assert api.result(loaded["request_id"]) == {
            "model_id": new_id,
            "path": path,
            "type": "load_weights",
        }
        info = api.ok("get_info", {"model_id": new_id})
        assert info["lora_rank"] == 4 and info["model_data"]["model_name"] == "tinkex/tiny"
        probe = api.ok(
            "forward",
            {
                "forward_input": {"data": [datum(TOKENS)], "loss_fn": "cross_entropy"},
                "model_id": new_id,
                "seq_id": 1,
            },
        )
        assert abs(api.result(probe["request_id"])["metrics"]["loss:sum"] - loss_before) < 1e-4
        sampler = api.ok(
            "create_sampling_session",
            {"session_id": session, "sampling_session_seq_id": 0, "model_path": sampler_path},
        )
        assert sampler["sampling_session_id"] == f"{session}:sample:0"
        files = sorted(p.name for p in Path(data_dir).rglob("*.safetensors"))
        assert "adapter_model.safetensors" in files and "optimizer.safetensors" in files
        config = json.loads(next(Path(data_dir).rglob("adapter_config.json")).read_text())
        assert config["tinkex"]["base_model"] == "tinkex/tiny"
