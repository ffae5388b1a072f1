"""The SQLite index of the local server (sessions, runs, samplers, checkpoints, futures).

Layout of ``data_dir``::

    index.sqlite3                                   sessions, training runs, samplers, checkpoints,
                                                    future records (state only, never payloads)
    checkpoints/<run>/<kind>/<name>/                one directory per checkpoint
        (files: see :mod:`tinkex.local.storage.checkpoints`)
    traces/<session>.json                           exported session traces
    tokenizers/tinkex-byte-tokenizer/               the tokenizer in Hugging Face format (its path
                                                    is the tokenizer id the server answers)

Thread-safe: one connection guarded by a lock (the index is small; writes are rare).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinkex.local.storage.lock import DataDirLock
from tinkex.local.storage.paths import KINDS, OWNER, iso, tinker_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    user_metadata TEXT NOT NULL DEFAULT '{}',
    project_id TEXT,
    display_name TEXT,
    sdk_version TEXT,
    status TEXT NOT NULL DEFAULT '{"type": "active"}',
    last_heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS training_runs (
    run_id TEXT PRIMARY KEY,
    session_id TEXT,
    base_model TEXT NOT NULL,
    lora_config TEXT NOT NULL,
    user_metadata TEXT,
    optimizer_config TEXT NOT NULL DEFAULT '{"type": "adamw"}',
    created_at REAL NOT NULL,
    last_request_time REAL NOT NULL,
    corrupted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS samplers (
    sampler_id TEXT PRIMARY KEY,
    session_id TEXT,
    base_model TEXT NOT NULL,
    model_path TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    size_bytes INTEGER NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    expires_at REAL,
    user_metadata TEXT,
    rel_dir TEXT NOT NULL,
    PRIMARY KEY (run_id, checkpoint_id)
);
CREATE INDEX IF NOT EXISTS checkpoints_created ON checkpoints (created_at);
CREATE TABLE IF NOT EXISTS futures (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner_id TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    error TEXT,
    category TEXT,
    clone INTEGER
);
CREATE INDEX IF NOT EXISTS futures_updated ON futures (updated_at);
"""


# --- rows --------------------------------------------------------------------------------------


def _safe(segment: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in segment) or "_"


@dataclass
class CheckpointRow:
    """One checkpoint of the index."""

    run_id: str
    kind: str
    name: str
    created_at: float
    size_bytes: int
    public: bool
    expires_at: float | None
    user_metadata: dict[str, str] | None
    rel_dir: str

    @property
    def checkpoint_id(self) -> str:
        """``<kind>/<name>``."""
        return f"{self.kind}/{self.name}"

    @property
    def tinker_path(self) -> str:
        """``tinker://<run>/<kind>/<name>``."""
        return tinker_path(self.run_id, self.kind, self.name)

    def to_wire(self) -> dict[str, Any]:
        """The ``Checkpoint`` JSON object."""
        return {
            "checkpoint_id": self.checkpoint_id,
            "checkpoint_type": KINDS[self.kind],
            "time": iso(self.created_at),
            "tinker_path": self.tinker_path,
            "size_bytes": self.size_bytes,
            "public": self.public,
            "user_metadata": self.user_metadata,
            "expires_at": iso(self.expires_at),
        }


@dataclass
class FutureRow:
    """The persisted metadata of one future (its payload is never stored)."""

    request_id: str
    kind: str
    owner_id: str | None
    #: ``pending``, ``complete`` or ``failed``
    state: str
    created_at: float
    updated_at: float
    error: str | None = None
    category: str | None = None
    #: the clone id of a sample of a sampling session (reported by retrieve_futures)
    clone: int | None = None


class Store:
    """SQLite index + checkpoint directories under ``data_dir`` (locked while open: one server
    per data directory, see :mod:`.lock`).

    Raises:
        DataDirInUseError: another running server uses ``data_dir``.
    """

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(os.path.join(self.data_dir, "checkpoints"), exist_ok=True)
        os.makedirs(os.path.join(self.data_dir, "traces"), exist_ok=True)
        self._dir_lock = DataDirLock(self.data_dir)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            os.path.join(self.data_dir, "index.sqlite3"),
            check_same_thread=False,
            isolation_level=None,
        )
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(futures)")}
            if "clone" not in columns:  # an index written before the column existed
                self._db.execute("ALTER TABLE futures ADD COLUMN clone INTEGER")

    def close(self) -> None:
        """Close the database connection and give the data directory up."""
        with self._lock:
            self._db.close()
        self._dir_lock.release()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return int(self._db.execute(sql, params).rowcount)

    # --- sessions ------------------------------------------------------------------------------

    def add_session(
        self,
        session_id: str,
        *,
        tags: list[str],
        user_metadata: Mapping[str, Any],
        project_id: str | None,
        display_name: str | None,
        sdk_version: str | None,
    ) -> None:
        """Record a new session."""
        now = time.time()
        self._exec(
            "INSERT INTO sessions (session_id, created_at, tags, user_metadata, project_id,"
            " display_name, sdk_version, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                now,
                json.dumps(tags),
                json.dumps(dict(user_metadata)),
                project_id,
                display_name,
                sdk_version,
                now,
            ),
        )

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """The session row as a dict (JSON columns decoded), or None."""
        rows = self._query("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        return self._session_dict(rows[0]) if rows else None

    @staticmethod
    def _session_dict(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        data["tags"] = json.loads(data["tags"])
        data["user_metadata"] = json.loads(data["user_metadata"])
        data["status"] = json.loads(data["status"])
        return data

    def list_sessions(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Sessions newest first, and the total count."""
        total = int(self._query("SELECT COUNT(*) FROM sessions")[0][0])
        rows = self._query(
            "SELECT * FROM sessions ORDER BY created_at DESC, session_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [self._session_dict(r) for r in rows], total

    def all_sessions(self) -> list[dict[str, Any]]:
        """Every session, newest first."""
        rows = self._query("SELECT * FROM sessions ORDER BY created_at DESC, session_id DESC")
        return [self._session_dict(r) for r in rows]

    def set_session_status(self, session_id: str, status: Mapping[str, Any]) -> None:
        """Replace the session status object."""
        self._exec(
            "UPDATE sessions SET status = ? WHERE session_id = ?",
            (json.dumps(dict(status)), session_id),
        )

    def set_session_project(self, session_id: str, project_id: str | None) -> None:
        """Assign the session to a project."""
        self._exec(
            "UPDATE sessions SET project_id = ? WHERE session_id = ?", (project_id, session_id)
        )

    def session_children(self, session_id: str) -> tuple[list[str], list[str]]:
        """``(training_run_ids, sampler_ids)`` created by the session."""
        runs = self._query(
            "SELECT run_id FROM training_runs WHERE session_id = ? ORDER BY created_at",
            (session_id,),
        )
        samplers = self._query(
            "SELECT sampler_id FROM samplers WHERE session_id = ? ORDER BY created_at",
            (session_id,),
        )
        return [r[0] for r in runs], [s[0] for s in samplers]

    # --- training runs -------------------------------------------------------------------------

    def add_run(
        self,
        run_id: str,
        *,
        session_id: str | None,
        base_model: str,
        lora_config: Mapping[str, Any],
        user_metadata: Mapping[str, Any] | None,
        optimizer_config: Mapping[str, Any] | None,
    ) -> None:
        """Record (or replace) a training run."""
        now = time.time()
        self._exec(
            "INSERT OR REPLACE INTO training_runs (run_id, session_id, base_model, lora_config,"
            " user_metadata, optimizer_config, created_at, last_request_time)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                session_id,
                base_model,
                json.dumps(dict(lora_config)),
                json.dumps(dict(user_metadata)) if user_metadata is not None else None,
                json.dumps(dict(optimizer_config or {"type": "adamw"})),
                now,
                now,
            ),
        )

    def set_run_corrupted(self, run_id: str, corrupted: bool = True) -> bool:
        """Flag a training run as corrupted (or clear the flag); False if the run is unknown."""
        return (
            self._exec(
                "UPDATE training_runs SET corrupted = ? WHERE run_id = ?", (int(corrupted), run_id)
            )
            > 0
        )

    def touch_run(self, run_id: str) -> None:
        """Update the run's last request time."""
        self._exec(
            "UPDATE training_runs SET last_request_time = ? WHERE run_id = ?", (time.time(), run_id)
        )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row (JSON columns decoded), or None."""
        rows = self._query("SELECT * FROM training_runs WHERE run_id = ?", (run_id,))
        return self._run_dict(rows[0]) if rows else None

    @staticmethod
    def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
        data = dict(row)
        data["lora_config"] = json.loads(data["lora_config"])
        data["user_metadata"] = (
            json.loads(data["user_metadata"]) if data["user_metadata"] is not None else None
        )
        data["optimizer_config"] = json.loads(data["optimizer_config"])
        return data

    def list_runs(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Runs newest first, and the total count."""
        total = int(self._query("SELECT COUNT(*) FROM training_runs")[0][0])
        rows = self._query(
            "SELECT * FROM training_runs ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [self._run_dict(r) for r in rows], total

    def run_to_wire(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """The ``TrainingRun`` JSON object of a run row."""
        last = self._query(
            "SELECT * FROM checkpoints WHERE run_id = ? AND kind = 'weights'"
            " ORDER BY created_at DESC LIMIT 1",
            (run["run_id"],),
        )
        last_sampler = self._query(
            "SELECT * FROM checkpoints WHERE run_id = ? AND kind = 'sampler_weights'"
            " ORDER BY created_at DESC LIMIT 1",
            (run["run_id"],),
        )
        metadata = run["user_metadata"]
        return {
            "training_run_id": run["run_id"],
            "base_model": run["base_model"],
            "model_owner": OWNER,
            "is_lora": True,
            "corrupted": bool(run["corrupted"]),
            "lora_rank": run["lora_config"].get("rank"),
            "last_request_time": iso(run["last_request_time"]),
            "last_checkpoint": self._ckpt(last[0]).to_wire() if last else None,
            "last_sampler_checkpoint": self._ckpt(last_sampler[0]).to_wire()
            if last_sampler
            else None,
            "user_metadata": {str(k): str(v) for k, v in metadata.items()}
            if metadata is not None
            else None,
        }

    # --- samplers ------------------------------------------------------------------------------

    def add_sampler(
        self, sampler_id: str, *, session_id: str | None, base_model: str, model_path: str | None
    ) -> None:
        """Record a sampling session."""
        self._exec(
            "INSERT OR REPLACE INTO samplers (sampler_id, session_id, base_model, model_path,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (sampler_id, session_id, base_model, model_path, time.time()),
        )

    def get_sampler(self, sampler_id: str) -> dict[str, Any] | None:
        """The sampler row, or None."""
        rows = self._query("SELECT * FROM samplers WHERE sampler_id = ?", (sampler_id,))
        return dict(rows[0]) if rows else None

    # --- futures -------------------------------------------------------------------------------

    def save_futures(self, rows: list[FutureRow]) -> None:
        """Insert or update future records, all in one transaction."""
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO futures (request_id, kind, owner_id, state, created_at,"
                    " updated_at, error, category, clone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (request_id) DO UPDATE SET state = excluded.state,"
                    " updated_at = excluded.updated_at, error = excluded.error,"
                    " category = excluded.category",
                    [
                        (
                            r.request_id,
                            r.kind,
                            r.owner_id,
                            r.state,
                            r.created_at,
                            r.updated_at,
                            r.error,
                            r.category,
                            r.clone,
                        )
                        for r in rows
                    ],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_future(self, request_id: str) -> FutureRow | None:
        """The stored record of future ``request_id``, or None."""
        rows = self._query("SELECT * FROM futures WHERE request_id = ?", (request_id,))
        if not rows:
            return None
        row = rows[0]
        return FutureRow(
            request_id=row["request_id"],
            kind=row["kind"],
            owner_id=row["owner_id"],
            state=row["state"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            error=row["error"],
            category=row["category"],
            clone=row["clone"],
        )

    def pending_session_samples(self) -> list[tuple[str, str, int]]:
        """``(request_id, sampling session id, clone id)`` of the samples of sampling
        sessions still pending in the index (at startup: those an earlier run never finished)."""
        rows = self._query(
            "SELECT request_id, owner_id, clone FROM futures WHERE state = 'pending'"
            " AND kind = 'Sample' AND clone IS NOT NULL AND owner_id IS NOT NULL"
        )
        return [(row["request_id"], row["owner_id"], row["clone"]) for row in rows]

    def purge_futures(self, updated_before: float) -> int:
        """Delete future records last updated before ``updated_before``; returns how many."""
        return self._exec("DELETE FROM futures WHERE updated_at < ?", (updated_before,))

    # --- checkpoints ---------------------------------------------------------------------------

    @staticmethod
    def _ckpt(row: sqlite3.Row) -> CheckpointRow:
        return CheckpointRow(
            run_id=row["run_id"],
            kind=row["kind"],
            name=row["name"],
            created_at=row["created_at"],
            size_bytes=row["size_bytes"],
            public=bool(row["public"]),
            expires_at=row["expires_at"],
            user_metadata=json.loads(row["user_metadata"]) if row["user_metadata"] else None,
            rel_dir=row["rel_dir"],
        )

    def checkpoint_dir(self, row: CheckpointRow) -> str:
        """Absolute directory of a checkpoint's files."""
        return os.path.join(self.data_dir, row.rel_dir)

    def get_checkpoint(self, run_id: str, kind: str, name: str) -> CheckpointRow | None:
        """The checkpoint, or None when missing or expired."""
        rows = self._query(
            "SELECT * FROM checkpoints WHERE run_id = ? AND checkpoint_id = ?",
            (run_id, f"{kind}/{name}"),
        )
        if not rows:
            return None
        row = self._ckpt(rows[0])
        if row.expires_at is not None and row.expires_at <= time.time():
            return None
        return row

    def write_checkpoint(
        self,
        run_id: str,
        kind: str,
        name: str,
        files: Mapping[str, bytes],
        *,
        ttl_seconds: float | None,
        user_metadata: Mapping[str, str] | None,
        overwrite: bool,
    ) -> CheckpointRow:
        """Write ``files`` (relative name -> content) as checkpoint ``kind/name`` of ``run_id``.

        Raises:
            FileExistsError: the checkpoint exists and ``overwrite`` is false.
        """
        rel_dir = os.path.join("checkpoints", _safe(run_id), kind, _safe(name))
        target = os.path.join(self.data_dir, rel_dir)
        if not overwrite and self.get_checkpoint(run_id, kind, name) is not None:
            raise FileExistsError(f"checkpoint {tinker_path(run_id, kind, name)} already exists")
        staging = f"{target}.tmp-{uuid.uuid4().hex[:8]}"
        os.makedirs(staging)
        size = 0
        for rel, content in files.items():
            with open(os.path.join(staging, rel), "wb") as handle:
                handle.write(content)
            size += len(content)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)
        now = time.time()
        expires = now + ttl_seconds if ttl_seconds is not None else None
        self._exec(
            "INSERT OR REPLACE INTO checkpoints (run_id, checkpoint_id, kind, name, created_at,"
            " size_bytes, public, expires_at, user_metadata, rel_dir)"
            " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (
                run_id,
                f"{kind}/{name}",
                kind,
                name,
                now,
                size,
                expires,
                json.dumps(dict(user_metadata)) if user_metadata is not None else None,
                rel_dir,
            ),
        )
        row = self.get_checkpoint(run_id, kind, name)
        assert row is not None
        return row

    def list_checkpoints(
        self, run_id: str | None, limit: int | None, offset: int
    ) -> tuple[list[CheckpointRow], int]:
        """Live checkpoints (of one run, or all) newest first, and the total count."""
        now = time.time()
        where = "(expires_at IS NULL OR expires_at > ?)"
        params: tuple[Any, ...] = (now,)
        if run_id is not None:
            where += " AND run_id = ?"
            params += (run_id,)
        total = int(self._query(f"SELECT COUNT(*) FROM checkpoints WHERE {where}", params)[0][0])
        sql = (
            f"SELECT * FROM checkpoints WHERE {where} ORDER BY created_at DESC, checkpoint_id DESC"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += (limit, offset)
        elif offset:
            sql += " LIMIT -1 OFFSET ?"
            params += (offset,)
        return [self._ckpt(r) for r in self._query(sql, params)], total

    def delete_checkpoint(self, row: CheckpointRow) -> None:
        """Remove a checkpoint from the index and disk."""
        self._exec(
            "DELETE FROM checkpoints WHERE run_id = ? AND checkpoint_id = ?",
            (row.run_id, row.checkpoint_id),
        )
        shutil.rmtree(self.checkpoint_dir(row), ignore_errors=True)

    def set_public(self, row: CheckpointRow, public: bool) -> None:
        """Publish or unpublish a checkpoint."""
        self._exec(
            "UPDATE checkpoints SET public = ? WHERE run_id = ? AND checkpoint_id = ?",
            (int(public), row.run_id, row.checkpoint_id),
        )

    def set_ttl(self, row: CheckpointRow, ttl_seconds: float | None) -> None:
        """Set the expiry to now + ttl (None: never)."""
        expires = time.time() + ttl_seconds if ttl_seconds is not None else None
        self._exec(
            "UPDATE checkpoints SET expires_at = ? WHERE run_id = ? AND checkpoint_id = ?",
            (expires, row.run_id, row.checkpoint_id),
        )

    def purge_expired(self) -> int:
        """Delete expired checkpoints (files too); returns how many."""
        rows = self._query(
            "SELECT * FROM checkpoints WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (time.time(),),
        )
        for row in rows:
            self.delete_checkpoint(self._ckpt(row))
        return len(rows)
