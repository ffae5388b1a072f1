"""RestClient/AdminClient: paths, query parameters, bodies, results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

import tinkex

from .conftest import API_KEY, BASE_URL, FakeTinker

RUN = "run-1:train:0"
CKPT = f"tinker://{RUN}/weights/step-1"
CHECKPOINT = {
    "checkpoint_id": "weights/step-1",
    "checkpoint_type": "training",
    "time": "2026-01-05T09:59:00Z",
    "tinker_path": CKPT,
    "size_bytes": 10,
    "public": False,
}
TRAINING_RUN = {
    "training_run_id": RUN,
    "base_model": "tiny-base",
    "model_owner": "tml:user:u1",
    "is_lora": True,
    "lora_rank": 4,
    "last_request_time": "2026-01-05T10:00:00Z",
    "last_checkpoint": CHECKPOINT,
}


@pytest.fixture
def rest(fake: FakeTinker) -> Iterator[tinkex.RestClient]:
    client = tinkex.RestClient(base_url=BASE_URL, api_key=API_KEY)
    yield client
    client.close()


def query(fake: FakeTinker) -> dict[str, list[str]]:
    return parse_qs(fake.calls[-1].query)


def test_construction_fetches_the_config(fake: FakeTinker) -> None:
    with tinkex.RestClient(base_url=BASE_URL, api_key=API_KEY):
        # as the official RestClient: the client config, then the dynamic config
        assert fake.paths() == ["/api/v1/client/config", "/api/v1/client/dynamic_config"]
    assert fake.requests_to("/api/v1/create_session") == []


def test_list_training_runs(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply(
        "GET",
        "/api/v1/training_runs",
        (
            200,
            {
                "training_runs": [TRAINING_RUN],
                "cursor": {"offset": 0, "limit": 20, "total_count": 1},
            },
        ),
    )
    runs = rest.list_training_runs().result(timeout=10)
    assert runs.training_runs[0].training_run_id == RUN
    assert runs.training_runs[0].last_checkpoint.tinker_path == CKPT
    assert runs.cursor.total_count == 1
    assert query(fake) == {"limit": ["20"], "offset": ["0"], "access_scope": ["owned"]}
    assert fake.calls[-1].headers["x-sdk-method"] == "RestClient.list_training_runs"
    rest.list_training_runs(limit=5, offset=10, access_scope="accessible", project_id="p").result(
        timeout=10
    )
    assert query(fake) == {
        "limit": ["5"],
        "offset": ["10"],
        "access_scope": ["accessible"],
        "project_id": ["p"],
    }


def test_get_training_run(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply("GET", f"/api/v1/training_runs/{RUN}", (200, TRAINING_RUN))
    run = rest.get_training_run(RUN).result(timeout=10)
    assert run.base_model == "tiny-base"
    assert query(fake) == {"access_scope": ["owned"]}
    by_path = rest.get_training_run_by_tinker_path(CKPT, access_scope="accessible").result(
        timeout=10
    )
    assert by_path.training_run_id == RUN
    assert fake.calls[-1].path == f"/api/v1/training_runs/{RUN}"
    assert query(fake) == {"access_scope": ["accessible"]}


def test_checkpoint_listing(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    body = {"checkpoints": [CHECKPOINT], "cursor": None}
    fake.reply("GET", f"/api/v1/training_runs/{RUN}/checkpoints", (200, body))
    fake.reply("GET", "/api/v1/checkpoints", (200, body))
    listed = rest.list_checkpoints(RUN).result(timeout=10)
    assert listed.checkpoints[0].checkpoint_id == "weights/step-1"
    assert listed.checkpoints[0].time == dt.datetime(2026, 1, 5, 9, 59, tzinfo=dt.UTC)
    mine = rest.list_user_checkpoints().result(timeout=10)
    assert len(mine.checkpoints) == 1
    assert query(fake) == {"limit": ["100"], "offset": ["0"]}


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (
            lambda r: r.delete_checkpoint_from_tinker_path(CKPT),
            "DELETE",
            f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1",
            None,
        ),
        (
            lambda r: r.delete_checkpoint(RUN, "sampler_weights/s1"),
            "DELETE",
            f"/api/v1/training_runs/{RUN}/checkpoints/sampler_weights/s1",
            None,
        ),
        (
            lambda r: r.publish_checkpoint_from_tinker_path(CKPT),
            "POST",
            f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1/publish",
            None,
        ),
        (
            lambda r: r.unpublish_checkpoint_from_tinker_path(CKPT),
            "DELETE",
            f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1/publish",
            None,
        ),
        (
            lambda r: r.set_checkpoint_ttl_from_tinker_path(CKPT, 7200),
            "PUT",
            f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1/ttl",
            {"ttl_seconds": 7200},
        ),
        (
            lambda r: r.set_checkpoint_ttl_from_tinker_path(CKPT, None),
            "PUT",
            f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1/ttl",
            {"ttl_seconds": None},
        ),
        (
            lambda r: r.assign_session_project("sess-9", "proj-2"),
            "PUT",
            "/api/v1/sessions/sess-9/project",
            {"project_id": "proj-2"},
        ),
    ],
)
def test_mutations(
    fake: FakeTinker,
    rest: tinkex.RestClient,
    call: Callable[[tinkex.RestClient], Any],
    method: str,
    path: str,
    body: object,
) -> None:
    assert call(rest).result(timeout=10) is None
    last = fake.calls[-1]
    assert (last.method, last.path) == (method, path)
    assert last.json == body


def test_bad_paths_are_rejected_before_sending(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    before = len(fake.calls)
    with pytest.raises(ValueError):
        rest.delete_checkpoint_from_tinker_path("tinker://only-two/parts")
    with pytest.raises(ValueError, match="external_weights"):
        rest.get_external_weights_urls(CKPT)
    with pytest.raises(ValueError):
        rest.set_checkpoint_ttl_from_tinker_path(CKPT, -5)
    assert len(fake.calls) == before


def test_errors_carry_status(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply(
        "DELETE",
        f"/api/v1/training_runs/{RUN}/checkpoints/weights/step-1",
        (404, {"detail": "no such checkpoint"}),
    )
    with pytest.raises(tinkex.NotFoundError) as info:
        rest.delete_checkpoint_from_tinker_path(CKPT).result(timeout=10)
    assert info.value.status_code == 404
    assert info.value.request == f"DELETE /api/v1/training_runs/{RUN}/checkpoints/weights/step-1"


def test_sessions(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply("GET", "/api/v1/sessions", (200, {"sessions": ["a", "b"]}))
    fake.reply(
        "GET",
        "/api/v1/sessions/a",
        (200, {"training_run_ids": [RUN], "sampler_ids": [], "user_metadata": {}}),
    )
    assert rest.list_sessions(limit=2).result(timeout=10).sessions == ["a", "b"]
    assert query(fake) == {"limit": ["2"], "offset": ["0"], "access_scope": ["owned"]}
    assert rest.get_session("a").result(timeout=10).training_run_ids == [RUN]
    assert query(fake) == {"access_scope": ["owned"]}


def test_weights_info_and_capabilities(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply(
        "POST",
        "/api/v1/weights_info",
        (200, {"base_model": "tiny-base", "is_lora": True, "lora_rank": 4}),
    )
    fake.reply(
        "GET",
        "/api/v1/get_server_capabilities",
        (200, {"supported_models": [{"model_name": "tiny-base", "trainable": True}]}),
    )
    info = rest.get_weights_info_by_tinker_path(CKPT).result(timeout=10)
    assert info.lora_rank == 4
    assert fake.calls[-1].json == {"tinker_path": CKPT}
    caps = rest.get_server_capabilities().result(timeout=10)
    assert caps.supported_models[0].model_name == "tiny-base"
    assert fake.calls[-1].method == "GET"


def test_health_check(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply("GET", "/api/v1/healthz", (200, {"status": "ok"}))
    assert rest.health_check().result(timeout=10) == tinkex.types.HealthResponse(status="ok")
    assert fake.calls[-1].headers["x-sdk-method"] == "RestClient.health_check"
    fake.reply("GET", "/api/v1/healthz", (404, {"detail": "no such route"}))
    with pytest.raises(tinkex.NotFoundError):
        rest.health_check().result(timeout=10)


def test_external_weights_urls(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    path = f"tinker://{RUN}/external_weights/hf"
    url_path = f"/api/v1/training_runs/{RUN}/checkpoints/external_weights/hf/external_weights_urls"
    fake.reply(
        "GET",
        url_path,
        (200, {"urls": {"model.safetensors": "https://x/y"}, "expires": "2026-01-05T10:00:00Z"}),
    )
    urls = rest.get_external_weights_urls(path).result(timeout=10)
    assert urls.urls == {"model.safetensors": "https://x/y"}


def test_copy_weights(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply("POST", "/api/v1/copy_weights", (200, {"tinker_path": "tinker://new/weights/x"}))
    copied = rest.copy_weights(
        CKPT, "proj-archive", ttl_seconds=3600, weights_access_token="tok"
    ).result(timeout=10)
    assert copied == "tinker://new/weights/x"
    call = fake.calls[-1]
    assert call.json == {
        "source_path": CKPT,
        "destination_project_id": "proj-archive",
        "ttl_seconds": 3600,
    }
    assert call.headers["X-Tinker-Weights-Access-Token"] == "tok"
    assert call.headers["X-Idempotency-Key"]
    with pytest.raises(ValueError, match="destination_project_id"):
        rest.copy_weights(CKPT)


def test_sampler_lookup(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    fake.reply(
        "GET",
        "/api/v1/samplers/s:sample:0",
        (200, {"sampler_id": "s:sample:0", "base_model": "tiny-base"}),
    )
    assert rest.get_sampler("s:sample:0").result(timeout=10).base_model == "tiny-base"


def test_deprecated_async_twin(fake: FakeTinker, rest: tinkex.RestClient) -> None:
    import asyncio

    fake.reply("GET", "/api/v1/sessions", (200, {"sessions": []}))
    with pytest.warns(FutureWarning, match="list_sessions_async"):
        result = asyncio.run(rest.list_sessions_async(limit=3))
    assert result.sessions == []
    assert query(fake)["limit"] == ["3"]


def test_admin_client(fake: FakeTinker) -> None:
    fake.reply("GET", "/api/v1/audit", (200, {"entries": []}))
    fake.reply(
        "GET",
        "/api/v1/billing/usage/events",
        (200, {"data": [], "sessions": {}, "cost_data_through": None}),
    )
    fake.reply(
        "GET",
        "/api/v1/billing/usage/checkpoints/current",
        (200, {"effective_rate_usd_per_gigabyte_month": 0.1, "data": []}),
    )
    with tinkex.AdminClient(base_url=BASE_URL, api_key=API_KEY) as admin:
        admin.get_audit_log("checkpoints", dt.date(2026, 1, 5)).result(timeout=10)
        assert query(fake) == {"event_type": ["checkpoints"], "day": ["2026-01-05"]}
        start = dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
        admin.get_billing_usage(start, "2026-01-06T10:00:00Z").result(timeout=10)
        assert query(fake) == {
            "starting_on": ["2026-01-05T10:00:00Z"],
            "ending_before": ["2026-01-06T10:00:00Z"],
        }
        usage = admin.get_current_checkpoint_storage_usage("p").result(timeout=10)
        assert usage.data == []
        assert query(fake) == {"project_id": ["p"]}
        assert fake.calls[-1].headers["x-sdk-method"] == (
            "AdminClient.get_current_checkpoint_storage_usage"
        )
