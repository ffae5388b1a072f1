"""REST endpoints of training runs and checkpoints, and the signed file URLs they hand out.

Listing, publishing, TTLs, deletion, tar archives, external-weights download URLs, weights
info and copies. Files are served at ``/files/<token>/<name>``: tokens are unguessable and
expire after an hour.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid

from tinkex import types
from tinkex.local.app.parsing import (
    CheckpointTtlBody,
    WeightsInfoBody,
    json_body,
    limit_offset,
    parse,
)
from tinkex.local.app.routing import Call, route
from tinkex.local.http import HTTPError, Request, Response, error_response, json_response
from tinkex.local.storage import CheckpointRow, iso
from tinkex.local.storage.checkpoints import tar_directory

__all__ = ["ROUTES", "serve_file"]

_CHECKPOINT = "training_runs/{run_id}/checkpoints/{kind}/{name}"


def _page(rows: list[CheckpointRow], offset: int, limit: int, total: int) -> Response:
    return json_response(
        {
            "checkpoints": [r.to_wire() for r in rows],
            "cursor": {"offset": offset, "limit": limit, "total_count": total},
        }
    )


async def list_runs(call: Call) -> Response:
    limit, offset = limit_offset(call.request.query, 20)
    store = call.state.store
    runs, total = store.list_runs(limit, offset)
    return json_response(
        {
            "training_runs": [store.run_to_wire(r) for r in runs],
            "cursor": {"offset": offset, "limit": limit, "total_count": total},
        }
    )


async def get_run(call: Call) -> Response:
    run = call.state.run_or_404(call.params["run_id"])
    return json_response(call.state.store.run_to_wire(run))


async def run_checkpoints(call: Call) -> Response:
    call.state.run_or_404(call.params["run_id"])
    rows, total = call.state.store.list_checkpoints(call.params["run_id"], None, 0)
    return _page(rows, 0, len(rows), total)


async def user_checkpoints(call: Call) -> Response:
    limit, offset = limit_offset(call.request.query, 100)
    rows, total = call.state.store.list_checkpoints(None, limit, offset)
    return _page(rows, offset, limit, total)


async def delete_checkpoint(call: Call) -> Response:
    row = call.state.checkpoint_or_404(call.params)
    await call.state.in_io(call.state.store.delete_checkpoint, row)
    return json_response({})


async def publish(call: Call) -> Response:
    row = call.state.checkpoint_or_404(call.params)
    if row.public:
        raise HTTPError(409, f"checkpoint {row.tinker_path} is already public")
    call.state.store.set_public(row, True)
    return json_response({})


async def unpublish(call: Call) -> Response:
    row = call.state.checkpoint_or_404(call.params)
    if not row.public:
        raise HTTPError(409, f"checkpoint {row.tinker_path} is already private")
    call.state.store.set_public(row, False)
    return json_response({})


async def set_ttl(call: Call) -> Response:
    row = call.state.checkpoint_or_404(call.params)
    raw = json_body(call)
    if "ttl_seconds" not in raw:
        raise HTTPError(400, "field 'ttl_seconds' is required (an int, or null for no expiry)")
    body = parse(call, CheckpointTtlBody, body=raw)
    ttl = call.state.ttl(body.ttl_seconds)
    call.state.store.set_ttl(row, ttl)
    return json_response({})


async def external_urls(call: Call) -> Response:
    state = call.state
    row = state.checkpoint_or_404({**call.params, "kind": "external_weights"})
    directory = state.store.checkpoint_dir(row)
    token, expires = state.file_token(directory)
    urls = {rel: state.file_url(token, rel) for rel in sorted(os.listdir(directory))}
    return json_response({"urls": urls, "expires": iso(expires)})


async def archive(call: Call) -> Response:
    row = call.state.checkpoint_or_404(call.params)
    directory = call.state.store.checkpoint_dir(row)
    files = sorted(os.listdir(directory))
    data = await call.state.in_io(tar_directory, directory, files)
    filename = f"{row.run_id}_{row.kind}_{row.name}.tar".replace(":", "_")
    return Response(
        200,
        data,
        "application/x-tar",
        {"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def weights_info(call: Call) -> Response:
    path = parse(call, WeightsInfoBody).tinker_path
    _row, run = call.state.checkpoint_run(path, "tinker_path")
    lora = run["lora_config"]
    return json_response(
        {
            "base_model": run["base_model"],
            "optimizer_config": run["optimizer_config"],
            "is_lora": True,
            "lora_rank": lora.get("rank"),
            "train_unembed": lora.get("train_unembed", True),
            "train_mlp": lora.get("train_mlp", True),
            "train_attn": lora.get("train_attn", True),
        }
    )


async def copy_weights(call: Call) -> Response:
    state = call.state
    body = parse(call, types.CopyWeightsRequest)
    row, run = state.checkpoint_run(body.source_path, "source_path")
    if body.session_id is not None and body.model_seq_id is not None:
        new_run = f"{body.session_id}:train:{body.model_seq_id}"
    else:
        new_run = f"{uuid.uuid4()}:train:0"
    if state.store.get_run(new_run) is None:
        state.store.add_run(
            new_run,
            session_id=body.session_id,
            base_model=run["base_model"],
            lora_config=run["lora_config"],
            user_metadata=run["user_metadata"],
            optimizer_config=run["optimizer_config"],
        )
    directory = state.store.checkpoint_dir(row)
    ttl = call.state.ttl(body.ttl_seconds)

    def copy() -> CheckpointRow:
        files = {}
        for rel in os.listdir(directory):
            with open(os.path.join(directory, rel), "rb") as handle:
                files[rel] = handle.read()
        return state.store.write_checkpoint(
            new_run,
            row.kind,
            row.name,
            files,
            ttl_seconds=ttl,
            user_metadata=row.user_metadata,
            overwrite=True,
        )

    new_row = await state.in_io(copy)
    return json_response({"tinker_path": new_row.tinker_path})


async def serve_file(call: Call) -> Response:
    """``GET /files/<token>/<relpath>``: files behind signed (unguessable, expiring) URLs."""
    request: Request = call.request
    if request.method not in ("GET", "HEAD"):
        return error_response(405, f"method {request.method} is not allowed on {request.path}")
    parts = request.path.split("/", 3)
    if len(parts) < 4:
        return error_response(404, f"no file at {request.path}")
    rel = urllib.parse.unquote(parts[3])
    target = call.state.file_path(parts[2], rel)

    def read() -> bytes:
        with open(target, "rb") as handle:
            return handle.read()

    data = await call.state.in_io(read)
    content_type = "application/json" if rel.endswith(".json") else "application/octet-stream"
    return Response(200, data, content_type)


ROUTES = [
    route("GET", "training_runs", "list_training_runs", list_runs),
    route("GET", "training_runs/{run_id}", "get_training_run", get_run),
    route("GET", "training_runs/{run_id}/checkpoints", "list_checkpoints", run_checkpoints),
    route("GET", "checkpoints", "list_user_checkpoints", user_checkpoints),
    route("DELETE", _CHECKPOINT, "delete_checkpoint", delete_checkpoint),
    route("POST", f"{_CHECKPOINT}/publish", "publish_checkpoint", publish),
    route("DELETE", f"{_CHECKPOINT}/publish", "unpublish_checkpoint", unpublish),
    route("PUT", f"{_CHECKPOINT}/ttl", "set_checkpoint_ttl", set_ttl),
    route("GET", f"{_CHECKPOINT}/archive", "checkpoint_archive", archive),
    route(
        "GET",
        "training_runs/{run_id}/checkpoints/external_weights/{name}/external_weights_urls",
        "external_weights_urls",
        external_urls,
    ),
    route("POST", "weights_info", "weights_info", weights_info),
    route("POST", "copy_weights", "copy_weights", copy_weights),
]
