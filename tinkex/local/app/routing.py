"""The route table: ``(method, /api/v1/pattern)`` -> handler, and what a handler receives.

Each handler module lists its endpoints as ``ROUTES = [route("POST", "create_session",
"create_session", create_session), ...]``; the name is what fault specs and the idempotency
cache refer to. Patterns use ``{name}`` segments (``training_runs/{run_id}``); ``HEAD`` is
answered by the ``GET`` route.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinkex.local.http import Request, Response

if TYPE_CHECKING:
    from tinkex.local.app.state import ServerState

__all__ = ["API_PREFIX", "Call", "Handler", "Match", "Route", "RouteTable", "route"]

API_PREFIX = "/api/v1/"


@dataclass(frozen=True)
class Call:
    """One request on its way through middleware to its handler."""

    state: ServerState
    request: Request
    route: Route
    params: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """``"POST /api/v1/create_model"``: names the request in error messages."""
        return f"{self.request.method} {self.request.path}"


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path pattern (after ``/api/v1/``), name, handler."""

    method: str
    pattern: str
    name: str
    handler: Handler
    #: False for endpoints that need no API key (health checks)
    auth: bool = True

    @property
    def segments(self) -> tuple[str, ...]:
        """The pattern's path segments, prefix included."""
        return (*API_PREFIX.strip("/").split("/"), *self.pattern.split("/"))


def route(method: str, pattern: str, name: str, handler: Handler, *, auth: bool = True) -> Route:
    """A :class:`Route` (reads well in the handler modules' ``ROUTES`` lists)."""
    return Route(method, pattern, name, handler, auth)


@dataclass(frozen=True)
class Match:
    """What :meth:`RouteTable.match` found: the route and its path parameters.

    ``route`` is None when nothing matched; ``path_known`` then says whether the path exists
    for another method (405) or not at all (404).
    """

    route: Route | None
    params: dict[str, str]
    path_known: bool


class RouteTable:
    """Finds the route of a request: static paths by dict lookup, patterns by segments."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._static: dict[str, dict[str, Route]] = {}
        seen: set[tuple[str, str]] = set()
        for item in self.routes:
            key = (item.method, item.pattern)
            if key in seen:
                raise ValueError(f"route {item.method} {item.pattern} is registered twice")
            seen.add(key)
            if "{" not in item.pattern:
                self._static.setdefault(API_PREFIX + item.pattern, {})[item.method] = item

    def match(self, method: str, path: str) -> Match:
        """The route for ``method path`` (see :class:`Match`)."""
        static = self._static.get(path.rstrip("/"))
        if static is not None:
            found = static.get(method) or (static.get("GET") if method == "HEAD" else None)
            if found is not None:
                return Match(found, {}, True)
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        path_known = False
        for item in self.routes:
            params = _match_segments(item.segments, parts)
            if params is None:
                continue
            if item.method == method or (method == "HEAD" and item.method == "GET"):
                return Match(item, params, True)
            path_known = True
        return Match(None, {}, path_known)


def _match_segments(segments: tuple[str, ...], parts: list[str]) -> dict[str, str] | None:
    if len(segments) != len(parts):
        return None
    params: dict[str, str] = {}
    for pattern, part in zip(segments, parts, strict=True):
        if pattern.startswith("{"):
            if not part:
                return None
            params[pattern[1:-1]] = part
        elif pattern != part:
            return None
    return params
