"""Bad input never gets a 500: body limits (413, also after decompression and for chunked
bodies), malformed protobuf naming the field, seq_id conflicts, expired sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import requests
import zstandard

from tinkex.local import LocalServer
from tinkex.local.engine import TrainingModel

from .conftest import KEY, Api, datum, fwdbwd, optim

TOKENS = [72, 101, 108, 108, 111]
LIMIT = 4096


def test_chunked_body_above_the_limit_is_413() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    with LocalServer(max_body_bytes=LIMIT) as server:
        response = requests.post(
            server.base_url + "/api/v1/telemetry",
            data=chunks(),
            headers={"X-API-Key": KEY, "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert str(LIMIT) in response.json()["detail"]
        assert requests.get(server.base_url + "/api/v1/healthz").status_code == 200


def test_compressed_body_is_limited_after_decompression() -> None:
    bomb = zstandard.ZstdCompressor().compress(b"{" + b" " * (LIMIT * 50) + b"}")
    assert len(bomb) < LIMIT
    with LocalServer(max_body_bytes=LIMIT, long_poll_seconds=0.2) as server:
        api = Api(server)
        for path, content_type in (
            ("forward_backward", "application/x-protobuf"),
            ("create_session", "application/json"),
        ):
            response = api.http.post(
                api.base + path,
                data=bomb,
                headers={"Content-Type": content_type, "Content-Encoding": "zstd"},
            )
            assert response.status_code == 413, (path, response.text)
            detail = response.json()["detail"]
            assert "decompresses" in detail and str(LIMIT) in detail
        small = zstandard.ZstdCompressor().compress(b'{"tags": ["zstd"]}')
        created = api.http.post(
            api.base + "create_session",
            data=small,
            headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
        )
        assert created.status_code == 200 and created.json()["session_id"]
        gzip_bad = api.http.post(
            api.base + "create_session",
            data=b"not gzip",
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert gzip_bad.status_code == 400 and "gzip" in gzip_bad.json()["detail"]


def test_malformed_protobuf_names_the_field(api: Api) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    cases = {
        # model_id "m:1", then seq_id (field 2) sent as a length-delimited field
        "ForwardBackwardRequest.seq_id": b"\x0a\x03m:1\x12\x01x",
        # model_id claims 10 bytes but the body ends after 1
        "ForwardBackwardRequest.model_id": b"\x0a\x0am",
    }
    for field, body in cases.items():
        response = api.http.post(api.base + "forward_backward", data=body, headers=headers)
        assert response.status_code == 400, response.text
        assert field in response.json()["detail"], response.json()


def test_same_seq_id_with_another_payload_is_400(api: Api) -> None:
    model_id = api.model()
    first = api.ok("optim_step", optim(model_id, 1, lr=1e-3))
    assert api.ok("optim_step", optim(model_id, 1, lr=1e-3))["request_id"] == first["request_id"]
    conflict = api.post("optim_step", optim(model_id, 1, lr=5e-3))
    assert conflict.status_code == 400
    detail = conflict.json()["detail"]
    assert "seq_id 1" in detail and first["request_id"] in detail
    save = {"model_id": model_id, "seq_id": 2, "path": "a", "type": "save_weights"}
    saved = api.ok("save_weights", save)
    other = api.post("save_weights", {**save, "path": "b"})
    assert other.status_code == 400 and "seq_id 2" in other.json()["detail"]
    assert api.result(saved["request_id"])["path"].endswith("/weights/a")
    # exactly one optimizer step ran for seq_id 1
    assert server_model(api, model_id).optim_steps == 1


def server_model(api: Api, model_id: str) -> TrainingModel:
    assert api.server.app is not None
    return api.server.app.models[model_id]


def test_expired_session_fails_queued_requests_clearly() -> None:
    with LocalServer(heartbeat_timeout=0.3, long_poll_seconds=0.2, gap_timeout=600) as server:
        api = Api(server)
        session = api.session()
        model_id = api.model(session=session)
        queued = api.ok("forward_backward", fwdbwd(model_id, 5, [datum(TOKENS)]))  # waits for 1
        deadline = time.monotonic() + 5
        result = api.result(queued["request_id"], timeout=5)
        assert time.monotonic() < deadline
        assert result["category"] == "user"
        assert "unloaded" in result["error"] and "expired" in result["error"]
        assert session in result["error"]
        later = api.post("optim_step", optim(model_id, 1))
        assert later.status_code == 400
        assert "no longer loaded" in later.json()["detail"] and "expired" in later.json()["detail"]
        info = api.post("get_info", {"model_id": model_id})
        assert info.status_code == 400 and "expired" in info.json()["detail"]
