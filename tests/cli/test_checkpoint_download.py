"""``tinkex.checkpoint_download`` from Python (issue 12.11) and where credentials go (issue 10.2).

Downloads run against the real local server over loopback HTTP; the redirect and archive-answer
cases against loopback stand-ins on two different ports (two origins).
"""

from __future__ import annotations

import io
import json
import os
import tarfile

import pytest
from cli_standins import Reply, StandIn

import tinkex
from tinkex import types
from tinkex._config import ClientSettings
from tinkex.checkpoint_download import (
    CheckpointArchiveUrlResponse,
    DownloadError,
    UnsafeArchiveError,
    checkpoint_dir_name,
    download_checkpoint,
    download_file,
    get_checkpoint_archive_url,
)

pytestmark = [pytest.mark.e2e]

KEY = "tml-secret-key-for-origin-tests"


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def saved(server):
    """A training checkpoint, a sampler checkpoint and an external-weights export."""
    with tinkex.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client("Qwen/Qwen3-8B", rank=4).result()
        datum = types.Datum(
            model_input=types.ModelInput.from_ints([72, 105]),
            loss_fn_inputs={"target_tokens": [105, 33], "weights": [1.0, 1.0]},
        )
        training.forward_backward([datum], "cross_entropy")
        training.optim_step(types.AdamParams(learning_rate=1e-2))
        return {
            "weights": training.save_state("state").result().path,
            "sampler": training.save_weights_for_sampler("sampler").result().path,
            "external": training.save_weights_external("export").result().path,
        }


@pytest.fixture
def rest(server):
    with tinkex.RestClient(base_url=server.base_url, api_key=server.api_key) as client:
        yield client


def test_directory_name_is_the_official_clis():
    assert checkpoint_dir_name("tinker://run-1:train:0/weights/final") == (
        "run-1:train:0_weights_final"
    )
    with pytest.raises(ValueError):
        checkpoint_dir_name("tinker://..")


def test_training_checkpoint_downloads_as_a_peft_adapter(rest, saved, tmp_path):
    calls: list[tuple[str, int, int | None]] = []
    result = download_checkpoint(
        saved["weights"], tmp_path, rest_client=rest, progress=lambda *a: calls.append(a)
    )
    assert result.destination == str(tmp_path / checkpoint_dir_name(saved["weights"]))
    assert result.files == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((tmp_path / result.destination / "adapter_config.json").read_text())
    assert config["r"] == 4
    assert result.size_bytes == sum(
        os.path.getsize(os.path.join(result.destination, f)) for f in result.files
    )
    # progress: every file starts at 0 and ends at its full size
    for name in result.files:
        mine = [c for c in calls if c[0] == name]
        assert mine[0][1] == 0 and mine[-1][1] == os.path.getsize(
            os.path.join(result.destination, name)
        )
    # the temporary export was deleted again
    listing = rest.list_checkpoints(
        types.ParsedCheckpointTinkerPath.from_tinker_path(saved["weights"]).training_run_id
    ).result()
    assert not [c for c in listing.checkpoints if "download-" in c.checkpoint_id]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tinkex-download")]


def test_sampler_checkpoint_downloads_through_the_archive(rest, saved, tmp_path):
    archive = rest.get_checkpoint_archive_url_from_tinker_path(saved["sampler"]).result()
    assert isinstance(archive, CheckpointArchiveUrlResponse)
    assert archive.needs_credentials and archive.url.endswith("/archive")
    result = download_checkpoint(saved["sampler"], tmp_path, rest_client=rest)
    assert "adapter_model.safetensors" in result.files
    assert not any(f.endswith(".tar") for f in result.files)


def test_external_weights_download_file_by_file(server, saved, tmp_path):
    result = download_checkpoint(
        saved["external"], tmp_path, base_url=server.base_url, api_key=server.api_key
    )
    assert result.files == ["adapter_config.json", "adapter_model.safetensors"]


def test_existing_target_needs_force_and_is_replaced_only_when_complete(rest, saved, tmp_path):
    first = download_checkpoint(saved["external"], tmp_path, rest_client=rest)
    marker = os.path.join(first.destination, "mine.txt")
    open(marker, "w").close()
    with pytest.raises(FileExistsError, match="force=True"):
        download_checkpoint(saved["external"], tmp_path, rest_client=rest)
    assert os.path.exists(marker)
    download_checkpoint(saved["external"], tmp_path, rest_client=rest, force=True)
    assert not os.path.exists(marker)


# --- the archive endpoint's three answers ------------------------------------------------------

ARCHIVE = "/api/v1/training_runs/run-1/checkpoints/sampler_weights/s/archive"
PATH = "tinker://run-1/sampler_weights/s"


def _settings(url: str) -> ClientSettings:
    return ClientSettings.resolve(base_url=url, api_key=KEY, environ={})


def test_archive_url_from_a_redirect_is_not_followed():
    where = {
        "Location": "http://127.0.0.1:1/signed.tar?sig=abc",
        "Expires": "Wed, 01 Jan 2031 00:00:00 GMT",
    }
    with StandIn({("GET", ARCHIVE): Reply(302, headers=where)}) as api:
        answer = get_checkpoint_archive_url(_settings(api.url), PATH)
    assert answer.url == "http://127.0.0.1:1/signed.tar?sig=abc" and not answer.needs_credentials
    assert answer.expires is not None and answer.expires.year == 2031
    assert api.paths() == [("GET", ARCHIVE)]


def test_archive_url_from_json():
    body = {"url": "https://storage.example/x.tar", "expires": "2031-01-01T00:00:00Z"}
    with StandIn({("GET", ARCHIVE): Reply(json_body=body)}) as api:
        answer = get_checkpoint_archive_url(_settings(api.url), PATH)
    assert answer.url == body["url"] and answer.expires is not None


def test_archive_url_missing_checkpoint_is_a_404():
    with StandIn({}) as api, pytest.raises(tinkex.NotFoundError):
        get_checkpoint_archive_url(_settings(api.url), PATH)


# --- credentials never leave the API's origin (issue 10.2) -------------------------------------


def test_cross_origin_redirect_drops_the_api_key(tmp_path):
    tar = _tar_bytes({"adapter_config.json": b"{}", "adapter_model.safetensors": b"w"})
    with StandIn(
        {("GET", "/bucket/x.tar"): Reply(body=tar, content_type="application/x-tar")},
        tinker_api=False,
    ) as storage:
        hop = Reply(302, headers={"Location": f"{storage.url}/bucket/x.tar"})
        with StandIn({("GET", "/api/v1/files/x.tar"): hop}) as api:
            download_file(
                f"{api.url}/api/v1/files/x.tar",
                str(tmp_path / "x.tar"),
                headers={"X-API-Key": KEY, "CF-Access-Client-Secret": "cf"},
                credentials_origin=api.url,
            )
    assert api.requests[0].headers.get("x-api-key") == KEY  # same origin: sent
    sent_to_storage = storage.requests[0].headers
    assert "x-api-key" not in sent_to_storage and "cf-access-client-secret" not in sent_to_storage
    assert KEY not in json.dumps(sent_to_storage)
    assert (tmp_path / "x.tar").read_bytes() == tar


def test_same_origin_redirect_keeps_the_api_key(tmp_path):
    routes = {
        ("GET", "/api/v1/a"): Reply(307, headers={"Location": "/api/v1/b"}),
        ("GET", "/api/v1/b"): Reply(body=b"data", content_type="application/octet-stream"),
    }
    with StandIn(routes) as api:
        download_file(
            f"{api.url}/api/v1/a",
            str(tmp_path / "f"),
            headers={"X-API-Key": KEY},
            credentials_origin=api.url,
        )
    assert [r.headers.get("x-api-key") for r in api.requests] == [KEY, KEY]


def test_archive_redirected_to_storage_downloads_without_credentials(tmp_path):
    """The whole route: the API points at another origin; the key stays with the API."""
    tar = _tar_bytes({"adapter_config.json": b"{}", "adapter_model.safetensors": b"w"})
    with StandIn(
        {("GET", "/x.tar"): Reply(body=tar, content_type="application/x-tar")}, tinker_api=False
    ) as storage:
        routes = {("GET", ARCHIVE): Reply(302, headers={"Location": f"{storage.url}/x.tar"})}
        with StandIn(routes) as api, tinkex.RestClient(base_url=api.url, api_key=KEY) as rest:
            result = download_checkpoint(PATH, tmp_path, rest_client=rest)
    assert result.files == ["adapter_config.json", "adapter_model.safetensors"]
    assert all("x-api-key" not in r.headers for r in storage.requests)


def test_download_errors_name_the_url_without_its_query(tmp_path):
    with StandIn({}, tinker_api=False) as storage, pytest.raises(DownloadError) as info:
        download_file(f"{storage.url}/missing?X-Amz-Signature=secret", str(tmp_path / "f"))
    assert "HTTP 404" in str(info.value) and "secret" not in str(info.value)


def test_unsafe_archive_from_a_server_writes_nothing(tmp_path):
    tar = _tar_bytes({"ok.txt": b"1", "../escape.txt": b"2"})
    routes = {("GET", ARCHIVE): Reply(body=tar, content_type="application/x-tar")}
    with (
        StandIn(routes) as api,
        tinkex.RestClient(base_url=api.url, api_key=KEY) as rest,
        pytest.raises(UnsafeArchiveError),
    ):
        download_checkpoint(PATH, tmp_path / "out", rest_client=rest)
    assert os.listdir(tmp_path / "out") == [] and not (tmp_path / "escape.txt").exists()
