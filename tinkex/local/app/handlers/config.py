"""Client configuration, auth, capabilities, health, telemetry, audit and billing endpoints.

Their answers are constant or nearly so: the local server has one user, bills nothing and
keeps telemetry events in memory (``LocalServer.telemetry_events``).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from tinkex.local.app.base_models import SUPPORTED_MODELS
from tinkex.local.app.parsing import TelemetryBody, parse
from tinkex.local.app.routing import Call, route
from tinkex.local.http import Response, json_response
from tinkex.local.model import resolve_arch
from tinkex.local.storage import OWNER

__all__ = ["ROUTES"]

#: What ``/client/config`` answers: the SDK's tunables as the hosted service sets them. The two
#: a server is started with (``sample_max_concurrent_requests``, ``sample_use_retrieve_futures``)
#: come from its ``AppOptions``, the one place of their defaults: see :func:`client_config`.
CLIENT_CONFIG: dict[str, Any] = {
    "pjwt_auth_enabled": False,
    "credential_default_source": "api_key",
    "sample_dispatch_bytes_semaphore_size": 10_485_760,
    "inflight_response_bytes_semaphore_size": 52_428_800,
    "parallel_fwdbwd_chunks": True,
    "proto_compress_fwdbwd": False,
    "fwdbwd_max_chunk_len": 1024,
    "fwdbwd_max_chunk_bytes_count": 5_000_000,
    "fwdbwd_dispatch_bytes_semaphore_size": 50_000_000,
    "billing_exception_max_pause_duration_sec": 3600,
    "sample_no_retries": False,
    "sample_enable_stuck_detection": True,
    "use_pyqwest_transport": True,
    "custom_loss_server_side": False,
    "sample_join_sampling_session": False,
}

DYNAMIC_CONFIG: dict[str, Any] = {
    "refresh_interval_sec": 300,
    "sample_cancel_enabled": False,
    "sample_cancel_max_batch_size": 64,
}


async def client_config(call: Call) -> Response:
    options = call.state.options
    return json_response(
        {
            **CLIENT_CONFIG,
            "sample_max_concurrent_requests": options.sample_max_concurrent_requests,
            # the session futures poller is advertised when the server serves retrieve_futures
            "sample_use_retrieve_futures": options.session_futures,
        }
    )


async def dynamic_config(call: Call) -> Response:
    return json_response(DYNAMIC_CONFIG)


async def auth_token(call: Call) -> Response:
    """An unsigned JWT for the local user (the SDK only decodes its claims)."""
    now = int(time.time())

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": OWNER, "org_id": "local", "iat": now, "exp": now + 3600, "iss": "tinkex-local"}
    return json_response({"jwt": f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."})


async def apikey_me(call: Call) -> Response:
    return json_response(
        {
            "key_id": 1,
            "name": "tinkex-local",
            "note": "local server key",
            "details": {
                "org_details": {"name": "local"},
                "user_details": {"email": "local@localhost"},
            },
        }
    )


async def capabilities(call: Call) -> Response:
    models = [
        {
            "model_name": name,
            "max_context_length": resolve_arch(name).max_seq_len,
            "trainable": True,
            "sampleable": True,
        }
        for name in SUPPORTED_MODELS
    ]
    return json_response({"supported_models": models})


async def healthz(call: Call) -> Response:
    return json_response({"status": "ok"})


async def telemetry(call: Call) -> Response:
    body = parse(call, TelemetryBody)
    for event in body.events:
        call.state.telemetry.append({**event, "_session_id": body.session_id})
    return json_response({"status": "accepted"})


async def audit(call: Call) -> Response:
    return json_response({"entries": []})


async def billing_events(call: Call) -> Response:
    return json_response({"data": [], "sessions": {}, "cost_data_through": None})


async def billing_storage(call: Call) -> Response:
    rows, _ = call.state.store.list_checkpoints(None, None, 0)
    size = sum(r.size_bytes for r in rows)
    item = {
        "project_id": call.request.query.get("project_id"),
        "org_user_urn": OWNER,
        "user_email": "local@localhost",
        "user_name": "local",
        "checkpoint_count": len(rows),
        "size_bytes": size,
        "size_gigabytes": size / 1e9,
        "estimated_monthly_cost_usd": 0.0,
    }
    return json_response({"effective_rate_usd_per_gigabyte_month": 0.0, "data": [item]})


ROUTES = [
    route("POST", "client/config", "config", client_config),
    route("POST", "client/dynamic_config", "dynamic_config", dynamic_config),
    route("POST", "auth/token", "auth_token", auth_token),
    route("GET", "auth/apikey/me", "apikey_me", apikey_me),
    route("DELETE", "auth/apikey/me", "apikey_me", apikey_me),
    route("GET", "get_server_capabilities", "get_server_capabilities", capabilities),
    route("GET", "healthz", "healthz", healthz, auth=False),
    route("POST", "telemetry", "telemetry", telemetry),
    route("GET", "audit", "audit", audit),
    route("GET", "billing/usage/events", "billing_events", billing_events),
    route("GET", "billing/usage/checkpoints/current", "billing_storage", billing_storage),
]
