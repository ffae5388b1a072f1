"""``POST /api/v1/retrieve_futures`` over HTTP: one long poll per sampling session (clone)
reports its finished and failed samples; cursors acknowledge; ``timeout: 0`` answers at once;
reported ``retrieved_request_ids`` free the results; a server without the option answers 404."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tinkex.local import LocalServer
from tinkex.local.app.state import AppOptions, ServerState
from tinkex.local.engine.completions import CompletionFeeds
from tinkex.local.faults import FaultInjector
from tinkex.local.storage import FutureRow, Store

from .conftest import Api
from .test_server_sampling import asample, sampler

CLONE = 1_000_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with LocalServer(
        data_dir=str(tmp_path_factory.mktemp("local")),
        long_poll_seconds=3.0,
        session_futures=True,
        sample_workers=1,
    ) as srv:
        yield srv


def poll(api: Api, sampler_id: str, cursor: int = 0, **fields: Any) -> dict[str, Any]:
    body = {
        "target": {"type": "sampling_session", "sampling_session_id": sampler_id, **fields},
        "prev_cursor": cursor,
        **fields.pop("body", {}),
    }
    return dict(api.ok("retrieve_futures", body))


def collect(api: Api, sampler_id: str, count: int, clone: int = 0) -> tuple[list[Any], int]:
    """Long-poll (acknowledging as it goes) until ``count`` completions came."""
    seen: list[Any] = []
    cursor = 0
    deadline = time.monotonic() + 30
    while len(seen) < count and time.monotonic() < deadline:
        answer = poll(api, sampler_id, cursor, cloned_sampler_id=clone)
        seen += answer["completions"]
        cursor = answer["cursor"]
    return seen, cursor


def test_client_config_advertises_it(api: Api) -> None:
    assert api.ok("client/config", {"sdk_version": "0.38.0"})["sample_use_retrieve_futures"]


def test_one_poll_reports_the_samples_of_its_clone_only(api: Api) -> None:
    sid = sampler(api)
    mine = {asample(api, sid, seq)["request_id"] for seq in range(5)}
    other = asample(api, sid, CLONE + 7)["request_id"]
    seen, cursor = collect(api, sid, 5)
    assert {c["request_id"] for c in seen} == mine
    assert all(c["state"] == "finished" for c in seen)
    # the clone's own poll reports the clone's sample, and nothing of clone 0
    assert [c["request_id"] for c in collect(api, sid, 1, clone=1)[0]] == [other]
    # the results are then fetched as usual, at once
    for request_id in mine:
        assert len(api.result(request_id, timeout=2)["sequences"]) == 2
    # all acknowledged: nothing more to report
    assert poll(api, sid, cursor, body={"timeout": 0}) == {"completions": [], "cursor": cursor}


def test_unacknowledged_completions_are_answered_again(api: Api) -> None:
    sid = sampler(api)
    request_id = asample(api, sid, 0)["request_id"]
    first, cursor = collect(api, sid, 1)
    assert [c["request_id"] for c in first] == [request_id] and cursor > 0
    # a client that lost that answer polls with its old cursor and gets it again
    again = poll(api, sid, 0)
    assert again == {"completions": first, "cursor": cursor}
    # a cursor of an earlier server run (smaller than any of this run) acknowledges nothing
    assert poll(api, sid, 17)["completions"] == first


def test_a_poll_waits_for_the_next_completion_and_timeout_zero_does_not(api: Api) -> None:
    sid = sampler(api)
    started = time.monotonic()
    assert poll(api, sid, body={"timeout": 0}) == {"completions": [], "cursor": 0}
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    assert poll(api, sid, body={"timeout": 0.3}) == {"completions": [], "cursor": 0}
    assert 0.25 <= time.monotonic() - started < 2.5
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, Api(api.server), sid)
        time.sleep(0.2)
        assert not waiting.done()
        request_id = asample(api, sid, 0)["request_id"]
        answer = waiting.result(timeout=10)
    assert [c["request_id"] for c in answer["completions"]] == [request_id]


def test_a_held_poll_answers_empty_after_long_poll_seconds(api: Api) -> None:
    sid = sampler(api)
    started = time.monotonic()
    assert poll(api, sid, 5) == {"completions": [], "cursor": 5}
    assert 2.5 <= time.monotonic() - started < 10


def test_a_failed_sample_is_reported_failed(api: Api, server: LocalServer) -> None:
    assert server.app is not None
    gate = threading.Event()
    # the only sampling worker is busy, so the next sample stays queued until it is cancelled
    server.app.state.sample_pool.submit(gate.wait, 30)
    try:
        sid = sampler(api)
        request_id = asample(api, sid, 0)["request_id"]
        api.ok("cancel_future", {"request_id": request_id})
    finally:
        gate.set()
    seen, _ = collect(api, sid, 1)
    assert seen == [{"state": "failed", "request_id": request_id}]
    assert "cancelled" in api.result(request_id, timeout=2)["error"]


def test_retrieved_request_ids_release_the_results(api: Api) -> None:
    sid = sampler(api)
    request_id = asample(api, sid, 0)["request_id"]
    _, cursor = collect(api, sid, 1)
    assert "sequences" in api.result(request_id, timeout=2)
    poll(api, sid, cursor, body={"timeout": 0, "retrieved_request_ids": [request_id]})
    late = api.result(request_id, timeout=2)
    assert "already delivered and has been released" in late["error"]


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ({"sampling_session_id": "nope:sample:0"}, {}, "'nope:sample:0' is unknown"),
        ({"cloned_sampler_id": -1}, {}, "cloned_sampler_id"),
        ({"type": "training_run"}, {}, "type"),
        ({}, {"timeout": -1}, "timeout"),
        ({}, {"prev_cursor": "x"}, "prev_cursor"),
    ],
)
def test_bad_polls_are_400_naming_the_field(
    api: Api, target: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    full = {"type": "sampling_session", "sampling_session_id": sampler(api), **target}
    response = api.post("retrieve_futures", {"target": full, "prev_cursor": 0, **extra})
    assert response.status_code == 400, response.text
    assert message in response.text


def test_a_server_without_the_option_answers_404() -> None:
    with LocalServer(long_poll_seconds=0.5) as plain:
        api = Api(plain)
        assert not api.ok("client/config", {})["sample_use_retrieve_futures"]
        sid = sampler(api)
        body = {"target": {"sampling_session_id": sid}, "prev_cursor": 0}
        response = api.post("retrieve_futures", body)
        assert response.status_code == 404
        assert "--session-futures" in response.text


def test_feeds_forget_ended_sessions_and_evict_old_completions() -> None:
    now = [1000.0]
    feeds = CompletionFeeds(clock=lambda: now[0])

    async def scenario() -> None:
        feeds.add(("a", 0), "req-1", failed=False)
        now[0] += 10
        feeds.add(("a", 0), "req-2", failed=True)
        feeds.add(("b", 0), "req-3", failed=False)
        first = feeds.after(("a", 0), 0)
        assert [(c.request_id, c.failed) for c in first] == [("req-1", False), ("req-2", True)]
        # cursors increase across feeds and start above any cursor of an earlier run
        assert first[0].cursor > 1000 * 1_000_000 and first[1].cursor > first[0].cursor
        assert feeds.evict(before=1005.0) == 1 and feeds.pending() == 2
        # a held poll of a session that ends wakes at once, with nothing to report
        waiting = asyncio.ensure_future(feeds.wait(("b", 1), 0, timeout=30))
        await asyncio.sleep(0)
        feeds.drop({"b"})
        assert await asyncio.wait_for(waiting, 1) == []
        assert feeds.pending() == 1 and feeds.after(("b", 0), 0) == []

    asyncio.run(scenario())


def test_samples_an_earlier_run_never_finished_are_reported_failed(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    store = Store(data_dir)
    now = time.time()
    store.save_futures(
        [
            FutureRow("req-old-1", "Sample", "s:sample:0", "pending", now, now, clone=1),
            FutureRow("req-old-2", "Sample", "s:sample:0", "complete", now, now, clone=1),
            FutureRow("req-old-3", "Sample", "direct|m|None", "pending", now, now),
            FutureRow("req-old-4", "OptimStep", "s:train:0", "pending", now, now),
        ]
    )
    assert store.get_future("req-old-1") == FutureRow(
        "req-old-1", "Sample", "s:sample:0", "pending", now, now, clone=1
    )

    async def start(session_futures: bool) -> list[Any]:
        options = AppOptions(session_futures=session_futures)
        state = ServerState(asyncio.get_running_loop(), store, options, FaultInjector(None))
        try:
            return [(c.request_id, c.failed) for c in state.completions.after(("s:sample:0", 1), 0)]
        finally:
            state.shutdown_pools()

    assert asyncio.run(start(True)) == [("req-old-1", True)]
    assert asyncio.run(start(False)) == []
    store.close()


def test_an_index_without_the_clone_column_gets_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "index.sqlite3") as db:
        db.execute(
            "CREATE TABLE futures (request_id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner_id "
            "TEXT, state TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL, "
            "error TEXT, category TEXT)"
        )
        db.execute(
            "INSERT INTO futures VALUES ('req-a', 'Sample', 's', 'pending', 1, 1, NULL, NULL)"
        )
    store = Store(str(data_dir))
    try:
        assert store.get_future("req-a") == FutureRow("req-a", "Sample", "s", "pending", 1, 1)
        assert store.pending_session_samples() == []
    finally:
        store.close()
