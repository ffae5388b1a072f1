"""Session endpoints: create, heartbeat, finish, list/get/search, project, trace export.

A session stays active while it sends heartbeats (or any request naming it); after
``heartbeat_timeout`` without one it is cancelled and its models are unloaded.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from tinkex import types
from tinkex.local.app.parsing import (
    SessionFinishBody,
    SessionProjectBody,
    limit_offset,
    parse,
)
from tinkex.local.app.routing import Call, route
from tinkex.local.app.state import ServerState
from tinkex.local.http import HTTPError, Response, json_response
from tinkex.local.storage import OWNER, iso

__all__ = ["ROUTES"]

#: Fields the SDK always sends that the local server does not need.
_SESSION_DEFAULTS = {"tags": [], "user_metadata": {}, "sdk_version": "unknown"}


async def create_session(call: Call) -> Response:
    body = parse(call, types.CreateSessionRequest, defaults=_SESSION_DEFAULTS)
    call.state.check_metadata("tags", list(body.tags))
    call.state.check_metadata("user_metadata", body.user_metadata)
    session_id = str(uuid.uuid4())
    call.state.store.add_session(
        session_id,
        tags=list(body.tags),
        user_metadata=dict(body.user_metadata or {}),
        project_id=body.project_id,
        display_name=body.display_name,
        sdk_version=body.sdk_version,
    )
    call.state.session_seen[session_id] = time.time()
    return json_response(
        {
            "type": "create_session",
            "session_id": session_id,
            "info_message": None,
            "warning_message": None,
            "error_message": None,
        }
    )


async def session_heartbeat(call: Call) -> Response:
    body = parse(call, types.SessionHeartbeatRequest)
    session = call.state.session_or_404(body.session_id)
    if session["status"].get("type") != "active":
        raise HTTPError(
            410, f"session {body.session_id} has finished ({session['status']['type']})"
        )
    call.state.session_seen[body.session_id] = time.time()
    return json_response({"type": "session_heartbeat"})


async def session_finish(call: Call) -> Response:
    state = call.state
    session_id = call.params["session_id"]
    session = state.session_or_404(session_id)
    body = parse(call, SessionFinishBody)
    if session["status"].get("type") == "active":
        status: dict[str, Any] = {"type": "client_finished", "reason": {"type": body.reason.type}}
        if body.detail is not None:
            status["detail"] = body.detail
        state.store.set_session_status(session_id, status)
    state.session_seen.pop(session_id, None)
    ended = f"session {session_id} finished"
    for model in list(state.models.values()):
        if model.session_id == session_id and not model.pending and not model.busy:
            state.sequencer.unload(model, ended)
    state.close_samplers(session_id, ended)
    return json_response({})


async def list_sessions(call: Call) -> Response:
    limit, offset = limit_offset(call.request.query, 20)
    sessions, _total = call.state.store.list_sessions(limit, offset)
    return json_response({"sessions": [s["session_id"] for s in sessions]})


def _metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in metadata.items()}


async def get_session(call: Call) -> Response:
    session = call.state.session_or_404(call.params["session_id"])
    runs, samplers = call.state.store.session_children(session["session_id"])
    return json_response(
        {
            "training_run_ids": runs,
            "sampler_ids": samplers,
            "user_metadata": _metadata_strings(session["user_metadata"]),
            "display_name": session["display_name"],
        }
    )


async def session_project(call: Call) -> Response:
    session_id = call.params["session_id"]
    call.state.session_or_404(session_id)
    body = parse(call, SessionProjectBody)
    call.state.store.set_session_project(session_id, body.project_id)
    return json_response({})


def _session_summary(state: ServerState, session: Mapping[str, Any]) -> dict[str, Any]:
    runs, _ = state.store.session_children(session["session_id"])
    count = 0
    size = 0
    for run_id in runs:
        rows, _ = state.store.list_checkpoints(run_id, None, 0)
        count += len(rows)
        size += sum(r.size_bytes for r in rows)
    return {
        "session_id": session["session_id"],
        "created_at": iso(session["created_at"]),
        "owner": OWNER,
        "project_id": session["project_id"] or "default",
        "status": session["status"],
        "checkpoints_count": count,
        "display_name": session["display_name"],
        "user_metadata": _metadata_strings(session["user_metadata"]),
        "checkpoint_storage_bytes": size,
    }


def _search_matches(query: types.SessionSearchRequest, session: Mapping[str, Any]) -> bool:
    if query.session_id or query.display_name:
        name = (session["display_name"] or "").lower()
        id_ok = query.session_id is not None and session["session_id"] == query.session_id
        name_ok = query.display_name is not None and all(
            word in name for word in query.display_name.lower().split()
        )
        if not (id_ok or name_ok):
            return False
    metadata = session["user_metadata"]
    if any(str(metadata.get(k)) != str(v) for k, v in query.user_metadata.items()):
        return False
    if query.project_ids is not None and (session["project_id"] or "default") not in (
        query.project_ids
    ):
        return False
    if query.statuses is not None:
        return session["status"].get("type") in {s.type for s in query.statuses}
    return True


async def search_sessions(call: Call) -> Response:
    query = parse(call, types.SessionSearchRequest)
    results = [s for s in call.state.store.all_sessions() if _search_matches(query, s)]
    if query.cursor is not None:
        ids = [s["session_id"] for s in results]
        if query.cursor.last_session_id in ids:
            results = results[ids.index(query.cursor.last_session_id) + 1 :]
    page = results[: query.limit]
    next_cursor = None
    if len(results) > query.limit:
        last = page[-1]
        next_cursor = {
            "last_created_at": iso(last["created_at"]),
            "last_session_id": last["session_id"],
        }
    summaries = [_session_summary(call.state, s) for s in page]
    return json_response({"sessions": summaries, "next_cursor": next_cursor})


async def trace_export(call: Call) -> Response:
    state = call.state
    session = state.session_or_404(call.params["session_id"])
    runs, samplers = state.store.session_children(session["session_id"])
    trace = {
        "session_id": session["session_id"],
        "created_at": iso(session["created_at"]),
        "status": session["status"],
        "training_run_ids": runs,
        "sampler_ids": samplers,
        "traceEvents": [],
    }
    directory = os.path.join(state.store.data_dir, "traces")
    filename = f"{session['session_id']}.json"
    with open(os.path.join(directory, filename), "w") as handle:
        json.dump(trace, handle)
    token, _ = state.file_token(directory)
    return json_response({"status": "ready", "url": state.file_url(token, filename)})


ROUTES = [
    route("POST", "create_session", "create_session", create_session),
    route("POST", "session_heartbeat", "session_heartbeat", session_heartbeat),
    route("POST", "sessions/{session_id}/finish", "session_finish", session_finish),
    route("GET", "sessions", "list_sessions", list_sessions),
    route("POST", "sessions/search", "search_sessions", search_sessions),
    route("GET", "sessions/{session_id}", "get_session", get_session),
    route("PUT", "sessions/{session_id}/project", "session_project", session_project),
    route("GET", "sessions/{session_id}/trace_export", "trace_export", trace_export),
]
