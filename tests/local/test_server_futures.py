"""Future records persist in SQLite: after a restart, old request ids fail clearly (not 404)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tinkex.local import LocalServer
from tinkex.local.engine import FutureTable
from tinkex.local.storage import FutureRow, Store

from .conftest import Api, datum, fwdbwd, optim

TOKENS = [72, 101, 108, 108, 111]
RESTARTED = "the local server restarted before this request's result was delivered; resubmit it"


def test_futures_of_an_earlier_run_fail_with_a_restart_error(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.2, gap_timeout=600) as first:
        api = Api(first)
        model_id = api.model()
        done = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))
        assert "metrics" in api.result(done["request_id"])
        undelivered = api.ok("optim_step", optim(model_id, 2))["request_id"]
        # seq_id 4 waits for seq_id 3, which never comes: pending when the server stops
        pending = api.ok("optim_step", optim(model_id, 4))["request_id"]
        assert api.post("retrieve_future", {"request_id": pending}).json()["type"] == "try_again"
        sample_session = api.ok(
            "create_sampling_session",
            {
                "session_id": api.session(),
                "sampling_session_seq_id": 0,
                "base_model": "tinkex/tiny",
            },
        )["sampling_session_id"]
        sampled = api.ok(
            "asample",
            {
                "sampling_session_id": sample_session,
                "seq_id": 0,
                "prompt": {"chunks": [{"tokens": [1, 2], "type": "encoded_text"}]},
                "sampling_params": {"max_tokens": 2, "seed": 1},
            },
        )["request_id"]
        api.result(sampled)
    with sqlite3.connect(Path(data_dir) / "index.sqlite3") as db:
        states = dict(db.execute("SELECT request_id, state FROM futures").fetchall())
        kinds = dict(db.execute("SELECT request_id, kind FROM futures").fetchall())
        owners = dict(db.execute("SELECT request_id, owner_id FROM futures").fetchall())
    assert states[done["request_id"]] == "complete" and states[pending] == "pending"
    assert kinds[sampled] == "Sample" and owners[sampled] == sample_session
    assert kinds[pending] == "OptimStep" and owners[pending] == model_id
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.2) as second:
        api = Api(second)
        for request_id in (done["request_id"], undelivered, pending, sampled):
            response = api.post("retrieve_future", {"request_id": request_id})
            assert response.status_code == 200, (request_id, response.text)
            assert response.json() == {"error": RESTARTED, "category": "server"}
            assert response.headers["x-request-id"] == request_id
        unknown = api.post("retrieve_future", {"request_id": "req-abcdef-1"})
        assert unknown.status_code == 404 and "req-abcdef-1" in unknown.json()["detail"]
        # ids of the running server are never looked up in the old records
        model_id = api.model()
        fresh = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))["request_id"]
        assert "metrics" in api.result(fresh)


def test_failed_futures_keep_their_error_across_a_restart(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.2) as first:
        api = Api(first)
        model_id = api.model()
        ppo = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)], loss_fn="ppo"))
        error = api.result(ppo["request_id"])
        assert error["category"] == "user" and "logprobs" in error["error"]
    with LocalServer(data_dir=data_dir, long_poll_seconds=0.2) as second:
        again = Api(second).post("retrieve_future", {"request_id": ppo["request_id"]})
        assert again.status_code == 200 and again.json() == error


def test_old_future_records_are_purged_on_start(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "data")
    store = Store(data_dir)
    store.save_futures(
        [
            FutureRow("req-old-1", "Sample", "s", "complete", 1.0, 1.0),
            FutureRow("req-old-2", "Sample", "s", "pending", 2.0, 2.0),
        ]
    )
    assert store.get_future("req-old-1") is not None
    store.close()
    with LocalServer(data_dir=data_dir, future_ttl=60) as server:
        response = Api(server).post("retrieve_future", {"request_id": "req-old-2"})
        assert response.status_code == 404


def test_future_table_batches_journal_writes() -> None:
    batches: list[list[FutureRow]] = []

    async def scenario() -> None:
        table = FutureTable(
            loop=asyncio.get_running_loop(), journal=batches.append, flush_delay=0.01
        )
        records = [table.new("Sample", "sampler-1") for _ in range(50)]
        for record in records[:20]:
            table.complete(record, "payload")
        table.fail(records[20], "boom", "user")
        await asyncio.sleep(0.05)
        assert table.owns(records[0].request_id) and not table.owns("req-other-1")

    asyncio.run(scenario())
    assert len(batches) == 1 and len(batches[0]) == 50  # one write, latest state per record
    states = [row.state for row in batches[0]]
    assert states.count("complete") == 20 and states.count("failed") == 1
    assert states.count("pending") == 29
    failed = next(row for row in batches[0] if row.state == "failed")
    assert (failed.error, failed.category, failed.owner_id) == ("boom", "user", "sampler-1")


def test_finished_requests_count_executions_not_resends() -> None:
    """LocalServer.finished_requests(): one count per executed request (what soak tests check),
    by kind, owner and outcome; a resend the server recognises is not counted again."""
    with LocalServer(long_poll_seconds=0.2) as server:
        api = Api(server)
        model_id = api.model()
        step = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))["request_id"]
        resent = api.ok("forward_backward", fwdbwd(model_id, 1, [datum(TOKENS)]))["request_id"]
        assert resent == step
        api.result(step)
        bad = fwdbwd(model_id, 2, [datum(TOKENS)], loss_fn="ppo")  # fails when it runs
        api.result(api.ok("forward_backward", bad)["request_id"])
        api.result(api.ok("optim_step", optim(model_id, 3))["request_id"])
        assert server.finished_requests() == {
            ("CreateModel", model_id, "complete"): 1,
            ("ForwardBackward", model_id, "complete"): 1,
            ("ForwardBackward", model_id, "failed"): 1,
            ("OptimStep", model_id, "complete"): 1,
        }
        assert server.pending_requests() == 0
        waiting = api.ok("optim_step", optim(model_id, 5))  # seq_id 4 never comes
        assert server.pending_requests() == 1 and waiting["request_id"]
    with pytest.raises(RuntimeError, match="not running"):
        server.finished_requests()
