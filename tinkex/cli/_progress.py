"""A tiny dependency-free progress bar, used by downloads and by ``python -m tinkex.demo``,
and :func:`wait_for`, which says so on stderr when a result takes long.

On a terminal the bar redraws in place; in a pipe or a CI log it prints a plain line at most
every ``log_interval`` seconds and once at the end, so logs stay readable. While the total is
known and not reached, the line ends with the elapsed time and an ETA (``0:12 ETA 0:30``).
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: A result not ready after this many seconds gets a "still waiting" line on stderr, then one
#: more every NOTICE_EVERY seconds: the SDK retries an unreachable or busy server for minutes,
#: and a command or the demo must not sit there silently meanwhile.
NOTICE_AFTER = 5.0
NOTICE_EVERY = 15.0


class _Waitable(Protocol[T_co]):
    def result(self, timeout: float | None = None) -> T_co: ...

    def done(self) -> bool: ...


class ProgressBar:
    """Progress towards ``total`` units, with free-form ``key value`` fields after the bar.

    Example::

        with ProgressBar(total=60, label="train", unit="step") as bar:
            for step in range(60):
                ...
                bar.update(1, loss=f"{loss:.3f}", **{"tok/s": "4.1k"})
    """

    def __init__(
        self,
        total: float | None,
        *,
        label: str = "",
        unit: str = "",
        width: int = 24,
        stream: TextIO | None = None,
        byte_units: bool = False,
        log_interval: float = 5.0,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.byte_units = byte_units
        self.log_interval = log_interval
        self.count: float = 0
        self.fields: dict[str, str] = {}
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._last_log = self._start
        self._closed = False
        isatty = getattr(self.stream, "isatty", None)
        self._interactive = bool(isatty()) if callable(isatty) else False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return time.monotonic() - self._start

    def update(self, n: float = 1, **fields: str) -> None:
        """Advance by ``n`` units and replace the given display fields."""
        self.count += n
        self.fields.update(fields)
        now = time.monotonic()
        if self._interactive:
            if now - self._last_draw >= 0.05 or self._done():
                self._last_draw = now
                self.stream.write("\r" + self.render() + "\x1b[K")
                self.stream.flush()
        elif now - self._last_log >= self.log_interval and not self._done():
            self._last_log = now
            self.stream.write(self.render() + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        prefix = "\r" if self._interactive else ""
        suffix = "\x1b[K\n" if self._interactive else "\n"
        self.stream.write(prefix + self.render() + suffix)
        self.stream.flush()

    def render(self) -> str:
        """The current bar as one line of text."""
        parts = [self.label] if self.label else []
        if self.total:
            frac = min(max(self.count / self.total, 0.0), 1.0)
            filled = round(frac * self.width)
            parts.append("[" + "#" * filled + "-" * (self.width - filled) + "]")
            amount = f"{self._amount(self.count)}/{self._amount(self.total)}"
        else:
            amount = self._amount(self.count)
        parts.append(f"{amount} {self.unit}" if self.unit else amount)
        parts.extend(f"{key} {value}" for key, value in self.fields.items())
        elapsed = self.elapsed
        if self.byte_units and elapsed > 0:
            parts.append(f"{format_bytes(self.count / elapsed)}/s")
        parts.append(_clock(elapsed))
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        return " ".join(parts)

    def eta(self) -> float | None:
        """Seconds left at the average rate so far; None when unknown or done."""
        if not self.total or self.count <= 0 or self._done():
            return None
        return (self.total - self.count) * self.elapsed / self.count

    def _done(self) -> bool:
        return self.total is not None and self.count >= self.total

    def _amount(self, value: float) -> str:
        if self.byte_units:
            return format_bytes(value)
        return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"


class FileProgress:
    """A ``progress(name, bytes_done, bytes_total)`` callback (the one
    :func:`tinkex.checkpoint_download.download_checkpoint` takes) drawing one bar per file.

    With ``enabled=False`` (``--format json``) it draws nothing.
    """

    def __init__(self, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream
        self._name: str | None = None
        self._bar: ProgressBar | None = None
        self._done = 0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if name != self._name or self._bar is None:
            self.close()
            self._name, self._done = name, 0
            self._bar = ProgressBar(total, label=name, byte_units=True, stream=self.stream)
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        """Finish the current bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> FileProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for(
    future: _Waitable[T],
    what: str,
    *,
    notice_after: float = NOTICE_AFTER,
    every: float = NOTICE_EVERY,
    stream: TextIO | None = None,
) -> T:
    """``future.result()``, printing ``still waiting for WHAT (0:05) ...`` on stderr once the
    wait passes ``notice_after`` seconds, and again every ``every`` seconds until it ends."""
    start = time.monotonic()
    next_notice = notice_after
    while True:
        try:
            return future.result(timeout=max(next_notice - (time.monotonic() - start), 0.0))
        except TimeoutError:
            if future.done():  # the operation itself failed with a timeout
                raise
        waited = time.monotonic() - start
        out = stream if stream is not None else sys.stderr
        isatty = getattr(out, "isatty", None)
        erase = "\r\x1b[K" if callable(isatty) and isatty() else ""  # over a progress bar
        out.write(
            f"{erase}still waiting for {what} ({_clock(waited)}): the server has not answered "
            "yet (the SDK retries while it is busy or unreachable; Ctrl-C stops)\n"
        )
        out.flush()
        next_notice = waited + every


def format_bytes(value: float) -> str:
    """``1536`` -> ``"1.5KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}GiB"  # pragma: no cover


def format_rate(per_second: float) -> str:
    """``4123.0`` -> ``"4.1k"`` (compact numbers for ``tokens/s``)."""
    if per_second >= 1_000_000:
        return f"{per_second / 1_000_000:.1f}M"
    if per_second >= 1_000:
        return f"{per_second / 1_000:.1f}k"
    return f"{per_second:.0f}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"
