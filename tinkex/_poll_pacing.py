"""How patiently a future is polled: a pause between "not yet" answers and an overall deadline.

By default a poll the server answers "not ready yet" (its long poll ran out, a 408, a 5xx) is
sent again at once — the server's long poll is the wait — and polling goes on until the result
arrives (with warnings on long waits, docs/protocol.md "Futures"). :class:`PollPacing` changes
both, as Elixir Tinkex's ``poll_backoff`` and ``poll_timeout`` options do: a pause before each
such re-poll that grows with the number in a row, and a deadline after which the future fails
with :class:`PollTimeoutError`. Set per client (``ServiceClient(poll_backoff=, poll_timeout=)``)
or by ``TINKEX_POLL_BACKOFF`` / ``TINKEX_POLL_TIMEOUT`` (docs/configuration.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from tinkex._exceptions import PollTimeoutError, TinkerError

__all__ = [
    "NO_PACING",
    "ExponentialBackoff",
    "PollBackoff",
    "PollBackoffOption",
    "PollPacing",
    "PollTimeoutError",
    "poll_pacing",
]

#: Seconds to pause before the next poll, given how many polls in a row were answered "not yet"
#: and sent again at once (0 for the first).
PollBackoff = Callable[[int], float]

#: What ``poll_backoff=`` takes: a form name, ``("exponential", INITIAL, MAX)`` or a callable.
PollBackoffOption = str | tuple[str, float, float] | PollBackoff | None

_BACKOFF_FORMS = "'none', 'exponential' or 'exponential:INITIAL:MAX' (seconds)"


@attrs.frozen
class ExponentialBackoff:
    """``initial * 2**n`` seconds before the poll after ``n`` "not yet" answers in a row, at
    most ``maximum``."""

    initial: float = 1.0
    maximum: float = 30.0

    def __attrs_post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise TinkerError(
                f"exponential poll back-off needs 0 < initial <= maximum, got "
                f"initial={self.initial!r}, maximum={self.maximum!r}"
            )

    def __call__(self, in_a_row: int) -> float:
        return min(self.initial * 2.0 ** min(in_a_row, 64), self.maximum)


@attrs.frozen
class PollPacing:
    """The pause before an immediate re-poll (``backoff``; None: none) and the overall deadline
    of polling one future in seconds (``deadline``; None: none)."""

    backoff: PollBackoff | None = None
    deadline: float | None = None

    def timeout_error(self, request: str, server: str) -> PollTimeoutError:
        """The error of ``request`` (``"req-1 (Sample)"``) at ``server`` past the deadline."""
        return PollTimeoutError(
            f"no result for request {request} from {server} after {self.deadline:g} s of "
            "polling (poll_timeout / TINKEX_POLL_TIMEOUT); the request may still finish on the "
            "server: raise the deadline, or unset it to wait as long as the server works on it"
        )


#: The default: re-poll at once, no deadline (the official SDK's behaviour).
NO_PACING = PollPacing()


def _backoff_from_text(text: str, name: str) -> PollBackoff | None:
    form = text.strip().lower()
    if form in ("", "none"):
        return None
    kind, _, bounds = form.partition(":")
    if kind == "exponential" and not bounds:
        return ExponentialBackoff()
    if kind == "exponential":
        try:
            initial, maximum = (float(part) for part in bounds.split(":"))
        except ValueError:
            pass
        else:
            return ExponentialBackoff(initial, maximum)
    raise TinkerError(f"{name}={text!r} is not a poll back-off; use {_BACKOFF_FORMS}")


def _backoff(value: PollBackoffOption, env: Mapping[str, str]) -> PollBackoff | None:
    if value is None:
        return _backoff_from_text(env.get("TINKEX_POLL_BACKOFF", ""), "TINKEX_POLL_BACKOFF")
    if isinstance(value, str):
        return _backoff_from_text(value, "poll_backoff")
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "exponential":
        return ExponentialBackoff(float(value[1]), float(value[2]))
    if callable(value):
        backoff: PollBackoff = value
        return backoff
    raise TinkerError(
        f"poll_backoff={value!r} is not a poll back-off; use {_BACKOFF_FORMS}, "
        "('exponential', INITIAL, MAX) or a callable (polls in a row -> seconds)"
    )


def _deadline(value: float | None, env: Mapping[str, str]) -> float | None:
    name = "poll_timeout"
    if value is None:
        text = env.get("TINKEX_POLL_TIMEOUT", "").strip()
        if not text:
            return None
        name = "TINKEX_POLL_TIMEOUT"
        try:
            value = float(text)
        except ValueError:
            raise TinkerError(f"TINKEX_POLL_TIMEOUT={text!r} is not a number of seconds") from None
    if not value > 0:
        raise TinkerError(f"{name}={value!r} must be a positive number of seconds")
    return float(value)


def poll_pacing(
    poll_backoff: PollBackoffOption, poll_timeout: float | None, env: Mapping[str, str]
) -> PollPacing:
    """The pacing of explicit ``poll_backoff``/``poll_timeout`` (None: from ``env``).

    ``poll_backoff``: ``"none"``, ``"exponential"`` (1 s doubling to 30 s),
    ``"exponential:INITIAL:MAX"``, ``("exponential", INITIAL, MAX)`` or a callable taking the
    number of "not yet" answers in a row and returning seconds.

    Raises:
        TinkerError: a value of another form, naming the option or variable and the forms.
    """
    return PollPacing(backoff=_backoff(poll_backoff, env), deadline=_deadline(poll_timeout, env))
