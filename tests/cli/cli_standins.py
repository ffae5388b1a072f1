"""Loopback stand-ins for the CLI tests: a route table served over real HTTP on 127.0.0.1.

``StandIn`` answers ``(method, path)`` pairs with canned responses and records every request
(method, path, query, headers, body), so a test can check what a client sent. Each stand-in is a
:class:`_loopback.LoopbackServer`: serving from construction, stopped at the ``with`` block's end.
"""

from __future__ import annotations

import http.server
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _loopback import LoopbackServer, QuietHandler


@dataclass
class Recorded:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    """A canned answer: status, headers and body (``json_body`` is encoded when given)."""

    status: int = 200
    json_body: Any = None
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return json.dumps(self.json_body).encode() if self.json_body is not None else self.body


Handler = Callable[[Recorded], Reply]

CLIENT_CONFIG = {"pjwt_auth_enabled": False}


class StandIn(LoopbackServer):
    """``with StandIn({("GET", "/x"): Reply(...)}) as s: ... s.url ... s.requests``.

    ``routes`` values are a :class:`Reply` or a function of the :class:`Recorded` request;
    unknown routes answer 404 JSON. ``tinker_api=True`` adds ``POST /api/v1/client/config``.
    """

    def __init__(
        self,
        routes: dict[tuple[str, str], Reply | Handler],
        *,
        tinker_api: bool = True,
        fallback: Handler | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.fallback = fallback
        if tinker_api:
            self.routes.setdefault(
                ("POST", "/api/v1/client/config"), Reply(json_body=CLIENT_CONFIG)
            )
        self.requests: list[Recorded] = []
        stand_in = self

        class _Handler(QuietHandler):
            def _answer(self) -> None:
                body = self.read_body()
                parts = urllib.parse.urlsplit(self.path)
                recorded = Recorded(
                    self.command,
                    parts.path,
                    urllib.parse.parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                stand_in.requests.append(recorded)
                route = stand_in.routes.get((self.command, parts.path)) or stand_in.fallback
                if route is None:
                    reply = Reply(404, {"detail": f"no route {self.command} {parts.path}"})
                else:
                    reply = route(recorded) if callable(route) else route
                payload = reply.encoded()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        super().__init__(_Handler, name="cli-stand-in")

    def paths(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request so far."""
        return [(r.method, r.path) for r in self.requests]


_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "content-encoding", "host"}


def forward_to(base_url: str) -> Handler:
    """A handler that passes the request on to a real server at ``base_url`` (a
    :class:`StandIn` in front of a ``LocalServer``, to make one route slow or odd)."""
    import requests

    def forward(request: Recorded) -> Reply:
        headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
        headers["accept-encoding"] = "identity"
        answer = requests.request(
            request.method,
            base_url + request.path,
            params=request.query,
            headers=headers,
            data=request.body,
            timeout=60,
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        content_type = kept.pop("Content-Type", "application/json")
        return Reply(
            answer.status_code, body=answer.content, content_type=content_type, headers=kept
        )

    return forward


class StaticWebServer(LoopbackServer):
    """``python3 -m http.server`` in-process: a web server that is not a Tinker API."""

    def __init__(self, directory: str) -> None:
        import functools

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
        handler.log_message = lambda *a, **k: None  # type: ignore[assignment,method-assign]
        super().__init__(handler, name="static-web-server")


class HubStandIn(StandIn):
    """The few Hugging Face Hub API calls ``HfApi.upload_folder`` makes, for one user.

    ``repos`` maps a repo id to ``{"private": bool, "branches": {name: {path: bytes}}}``;
    files arrive base64 in the commit call (every file is announced as a "regular" upload).
    Requests need ``Authorization: Bearer <token>``.
    """

    def __init__(self, token: str, user: str = "tester") -> None:
        self.token = token
        self.user = user
        self.repos: dict[str, dict[str, Any]] = {}
        self.commits: list[dict[str, Any]] = []
        super().__init__({}, tinker_api=False, fallback=self._route)

    def _route(self, request: Recorded) -> Reply:
        import base64
        import re

        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"error": "Invalid credentials in Authorization header"})
        path = request.path
        if (request.method, path) == ("GET", "/api/whoami-v2"):
            return Reply(json_body={"name": self.user, "type": "user", "orgs": []})
        if (request.method, path) == ("POST", "/api/validate-yaml"):
            return Reply(json_body={"errors": [], "warnings": []})
        if (request.method, path) == ("POST", "/api/repos/create"):
            body = json.loads(request.body)
            repo_id = f"{body.get('organization') or self.user}/{body['name']}"
            repo = self.repos.setdefault(repo_id, {"branches": {"main": {}}})
            # older huggingface_hub sends "private": bool, newer ones "visibility"
            private = body.get("private", body.get("visibility", "private") != "public")
            repo["private"] = bool(private)
            return Reply(json_body={"url": f"{self.url}/{repo_id}", "name": repo_id})
        found = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)", path)
        if found and request.method == "POST":
            repo_id, action, revision = found.groups()
            revision = urllib.parse.unquote(revision)
            repo = self.repos.get(repo_id)
            if repo is None:
                return Reply(404, {"error": "Repository not found"})
            if action == "branch":
                repo["branches"].setdefault(revision, dict(repo["branches"]["main"]))
                return Reply(json_body={})
            if revision not in repo["branches"]:
                return Reply(404, {"error": f"Invalid rev id: {revision}"})
            if action == "preupload":
                files = json.loads(request.body)["files"]
                modes = [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ]
                return Reply(json_body={"files": modes})
            lines = [json.loads(line) for line in request.body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            files = {
                line["value"]["path"]: base64.b64decode(line["value"]["content"])
                for line in lines
                if line["key"] == "file"
            }
            repo["branches"][revision].update(files)
            self.commits.append({"repo": repo_id, "revision": revision, **header})
            oid = "0" * 40
            return Reply(
                json_body={
                    "commitUrl": f"{self.url}/{repo_id}/commit/{oid}",
                    "commitOid": oid,
                    "pullRequestUrl": None,
                }
            )
        return Reply(404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"})
