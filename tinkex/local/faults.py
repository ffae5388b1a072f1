"""Fault injection for the local server (``tinkex serve --faults SPEC``, ``LocalServer(faults=)``).

A spec is a comma-separated list of tokens. Two kinds of rules can be mixed:

Deterministic rules ``ENDPOINT:ACTION:COUNT`` fail the first COUNT requests to ENDPOINT
(the last path segment after ``/api/v1/``, e.g. ``asample``, ``retrieve_future``,
``forward_backward``; ``*`` matches every endpoint). ACTION is an HTTP status (``429`` answers
with ``Retry-After``, ``410`` on ``retrieve_future`` means "future gone", any 4xx/5xx is
answered with ``{"detail": ...}``), ``reset_before`` (drop the connection without applying the
request) or ``reset_after`` (apply the request, then drop the connection). On
``retrieve_future`` only, ``paused_capacity`` or ``paused_rate_limit`` answer ``try_again`` with
that ``queue_state`` and a ``queue_state_reason``, as a busy hosted service does (the request
itself goes on; a later poll gets its result)::

    asample:429:3,retrieve_future:500:2,forward_backward:503:1,retrieve_future:paused_capacity:2

Probabilistic rules ``NAME=P`` hit a fraction P (0..1) of the requests, drawn from a seeded
random generator; a single request (same path and body) is failed at
most ``max_per_request`` times, so clients that retry always get through:

==================  ==============================================================
``http_5xx=P``      answer 500 or 503 before applying the request
``http_429=P``      answer 429 with ``Retry-After``
``reset_before=P``  drop the connection before applying the request
``reset_after=P``   apply the request, then drop the connection
``gone_410=P``      ``retrieve_future`` of a sample answers 410 (the client resubmits)
``slow=P``          delay the answer by ``slow_delay``
==================  ==============================================================

Settings: ``seed=N`` (default 0), ``latency=DURATION`` (added to every request),
``slow_delay=DURATION`` (default 200ms), ``retry_after=DURATION`` (the 429 back-off hint,
default 50ms, sent as ``retry-after-ms`` and rounded up in ``Retry-After``),
``max_per_request=N`` (default 2), ``corrupt_after=N`` (after the N-th optimizer step of a
training run, the run is marked corrupted: ``GET /api/v1/training_runs/{id}`` reports
``corrupted: true`` and its later requests fail with category ``server``; for testing recovery).
Durations: ``20ms``, ``0.5s`` or plain seconds.

Faults never apply to ``/api/v1/healthz``, ``/api/v1/client/config`` and file downloads. A bad
spec raises ``ValueError`` naming the token.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["QUEUE_STATE_REASONS", "FaultAction", "FaultInjector", "FaultSpec", "parse_faults"]

_PROBABILISTIC = ("http_5xx", "http_429", "reset_before", "reset_after", "gone_410", "slow")
_EXEMPT = frozenset({"healthz", "config"})


@dataclass(frozen=True)
class Rule:
    """A deterministic rule: the first ``count`` requests to ``endpoint`` get ``action``."""

    endpoint: str
    action: str  # "429", "500", ..., "reset_before", "reset_after"
    count: int


@dataclass
class FaultSpec:
    """A parsed fault specification (see the module docstring)."""

    rules: list[Rule] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    latency: float = 0.0
    slow_delay: float = 0.2
    retry_after: float = 0.05
    max_per_request: int = 2
    corrupt_after: int | None = None

    @property
    def empty(self) -> bool:
        """True when the spec injects nothing."""
        return (
            not self.rules
            and not any(self.rates.values())
            and self.latency <= 0
            and self.corrupt_after is None
        )


@dataclass(frozen=True)
class FaultAction:
    """What to do with one request: ``kind`` is status|reset_before|reset_after|delay|paused
    (``queue_state`` names the paused state)."""

    kind: str
    status: int = 0
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    queue_state: str = ""


#: Rule actions that answer a ``retrieve_future`` poll with a paused queue state, and the
#: ``queue_state_reason`` sent with it.
QUEUE_STATE_REASONS = {
    "paused_capacity": "injected fault: the service is short on capacity",
    "paused_rate_limit": "injected fault: too many requests from this user",
}


def _duration(token: str, value: str) -> float:
    text = value.strip().lower()
    try:
        if text.endswith("ms"):
            seconds = float(text[:-2]) / 1000.0
        elif text.endswith("s"):
            seconds = float(text[:-1])
        else:
            seconds = float(text)
    except ValueError:
        raise ValueError(
            f"fault spec token {token!r}: {value!r} is not a duration (use 20ms, 0.5s or 1)"
        ) from None
    if seconds < 0:
        raise ValueError(f"fault spec token {token!r}: duration must be >= 0, got {value!r}")
    return seconds


def parse_faults(spec: str | FaultSpec | None) -> FaultSpec:
    """Parse ``spec``; ``None``/``""`` give an empty spec.

    Raises:
        ValueError: a token is malformed; the message names it.
    """
    if isinstance(spec, FaultSpec):
        return spec
    result = FaultSpec()
    if not spec:
        return result
    if not isinstance(spec, str):
        raise ValueError(f"faults must be a string spec, got {type(spec).__name__}")
    for raw in spec.split(","):
        token = raw.strip()
        if not token:
            continue
        if "=" in token:
            _apply_setting(result, token)
        else:
            result.rules.append(_parse_rule(token))
    return result


_INT_SETTINGS = ("seed", "max_per_request", "corrupt_after")
_DURATION_SETTINGS = ("latency", "slow_delay", "retry_after")


def _apply_setting(result: FaultSpec, token: str) -> None:
    """``NAME=VALUE``: a probabilistic rule's rate or a setting."""
    name, _, value = token.partition("=")
    name = name.strip()
    if name in _PROBABILISTIC:
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(
                f"fault spec token {token!r}: {value!r} is not a probability"
            ) from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(
                f"fault spec token {token!r}: probability must be in [0, 1], got {rate}"
            )
        result.rates[name] = rate
    elif name in _INT_SETTINGS:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"fault spec token {token!r}: {value!r} is not an integer") from None
        if name == "max_per_request" and number < 0:
            raise ValueError(f"fault spec token {token!r}: must be >= 0")
        if name == "corrupt_after" and number < 1:
            raise ValueError(f"fault spec token {token!r}: must be >= 1")
        setattr(result, name, number)
    elif name in _DURATION_SETTINGS:
        setattr(result, name, _duration(token, value))
    else:
        known = ", ".join((*_PROBABILISTIC, "seed", *_DURATION_SETTINGS, "corrupt_after"))
        raise ValueError(f"fault spec token {token!r}: unknown setting {name!r} ({known})")


def _parse_rule(token: str) -> Rule:
    """``ENDPOINT:ACTION:COUNT``."""
    parts = token.split(":")
    if len(parts) != 3:
        raise ValueError(
            f"fault spec token {token!r}: expected ENDPOINT:STATUS:COUNT "
            "(e.g. asample:429:3) or NAME=VALUE (e.g. http_5xx=0.1)"
        )
    endpoint, action, count_text = (p.strip() for p in parts)
    if not endpoint:
        raise ValueError(f"fault spec token {token!r}: empty endpoint")
    if action in QUEUE_STATE_REASONS and endpoint != "retrieve_future":
        raise ValueError(f"fault spec token {token!r}: {action} applies to retrieve_future only")
    if action not in ("reset_before", "reset_after", *QUEUE_STATE_REASONS) and (
        not action.isdigit() or not 400 <= int(action) <= 599
    ):
        raise ValueError(
            f"fault spec token {token!r}: action {action!r} must be an HTTP status "
            "400-599, reset_before, reset_after, paused_capacity or paused_rate_limit"
        )
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(
            f"fault spec token {token!r}: count {count_text!r} is not an integer"
        ) from None
    if count < 0:
        raise ValueError(f"fault spec token {token!r}: count must be >= 0, got {count}")
    return Rule(endpoint, action, count)


class FaultInjector:
    """Decides, per request, whether and how to fail it. Use from one thread (the loop)."""

    def __init__(self, spec: str | FaultSpec | None) -> None:
        self.spec = parse_faults(spec)
        self._random = random.Random(self.spec.seed)
        self._rule_hits: dict[int, int] = {}
        self._per_request: OrderedDict[str, int] = OrderedDict()
        self.injected: list[tuple[str, str]] = []

    @property
    def enabled(self) -> bool:
        """True when the spec can inject anything."""
        return not self.spec.empty

    @property
    def per_request(self) -> bool:
        """True when decisions depend on the request itself (its identity across resends,
        whether it may be answered 410): some probabilistic rule has a rate."""
        return any(self.spec.rates.values())

    def _retry_headers(self) -> dict[str, str]:
        seconds = self.spec.retry_after
        whole = max(1, int(-(-seconds // 1)))
        return {"Retry-After": str(whole), "retry-after-ms": str(max(1, int(seconds * 1000)))}

    def _action(self, action: str, endpoint: str) -> FaultAction:
        if action in ("reset_before", "reset_after"):
            return FaultAction(kind=action)
        if action in QUEUE_STATE_REASONS:
            return FaultAction(kind="paused", queue_state=action)
        status = int(action)
        headers = self._retry_headers() if status in (429, 503) else {}
        return FaultAction(kind="status", status=status, headers=headers)

    def decide(
        self, endpoint: str, request_key: str, *, gone_allowed: bool = True
    ) -> list[FaultAction]:
        """Actions for one request to ``endpoint`` (``request_key`` identifies resends).

        ``gone_allowed=False`` keeps the probabilistic ``gone_410`` away from this request.
        """
        if endpoint in _EXEMPT or not self.enabled:
            return []
        actions: list[FaultAction] = []
        if self.spec.latency > 0:
            actions.append(FaultAction(kind="delay", delay=self.spec.latency))
        for index, rule in enumerate(self.spec.rules):
            if rule.endpoint not in ("*", endpoint):
                continue
            hits = self._rule_hits.get(index, 0)
            if hits < rule.count:
                self._rule_hits[index] = hits + 1
                self.injected.append((endpoint, rule.action))
                actions.append(self._action(rule.action, endpoint))
                return actions
        rates = self.spec.rates
        if not any(rates.values()):
            return actions
        failures = self._per_request.get(request_key, 0)
        if rates.get("slow") and self._random.random() < rates["slow"]:
            self.injected.append((endpoint, "slow"))
            actions.append(FaultAction(kind="delay", delay=self.spec.slow_delay))
        if failures >= self.spec.max_per_request:
            return actions
        chosen: FaultAction | None = None
        if endpoint == "retrieve_future" and gone_allowed and self._hit("gone_410"):
            chosen = FaultAction(kind="status", status=410)
        elif self._hit("http_5xx"):
            status = 500 if self._random.random() < 0.5 else 503
            chosen = FaultAction(kind="status", status=status)
        elif self._hit("http_429"):
            chosen = FaultAction(kind="status", status=429, headers=self._retry_headers())
        elif self._hit("reset_before"):
            chosen = FaultAction(kind="reset_before")
        elif self._hit("reset_after"):
            chosen = FaultAction(kind="reset_after")
        if chosen is not None:
            self._per_request[request_key] = failures + 1
            self._per_request.move_to_end(request_key)
            while len(self._per_request) > 100_000:
                self._per_request.popitem(last=False)
            self.injected.append(
                (endpoint, chosen.kind if not chosen.status else str(chosen.status))
            )
            actions.append(chosen)
        return actions

    def _hit(self, name: str) -> bool:
        rate = self.spec.rates.get(name, 0.0)
        return rate > 0 and self._random.random() < rate


def request_key(path: str, body: bytes) -> str:
    """Identity of a request across resends (HTTP-layer and higher-level retries): path + body."""
    return f"{path}|{hashlib.blake2b(body, digest_size=16).hexdigest()}"
