"""The server's memory budget: what a request will make the server hold is admitted against
it before anything is allocated (``LocalServer(memory_budget=...)``, ``tinkex serve
--memory-budget``).

Four kinds of holdings, estimated from shapes (:mod:`tinkex.local.model.footprint`) or measured:

==========  ===============================================================  ==============
kind        what                                                             until
==========  ===============================================================  ==============
runs        loaded training runs: LoRA weights, gradients, Adam moments      unloaded
snapshots   sampler weights: a LoRA snapshot and its merged weights          sampler dropped
jobs        admitted requests: inputs, peak working memory, outputs          finished
results     finished results kept for ``retrieve_future``                    released
==========  ===============================================================  ==============

:meth:`MemoryBudget.admit` decides, in this order:

1. more than the budget minus what runs and snapshots hold: :class:`MemoryBudgetError` with
   ``busy=False`` (a 400: it cannot fit while they are loaded; the message says what holds
   the memory);
2. more than is free now: first ``reclaim`` (delivered results are dropped, oldest first),
   then, if it still does not fit, ``busy=True`` (a 429 with ``Retry-After``: jobs in flight
   and undelivered results free their memory soon);
3. otherwise a :class:`Holding`, to be released when what it holds is gone.

Thread-safe (holdings are taken on the event loop and released wherever their job ends).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "KINDS",
    "Holding",
    "MemoryBudget",
    "MemoryBudgetError",
    "format_bytes",
    "parse_bytes",
    "return_memory_to_the_os",
]

#: 2 GiB: room for dozens of training runs of the tiny model and the largest sample requests.
DEFAULT_MEMORY_BUDGET = 2 << 30

KINDS = ("runs", "snapshots", "jobs", "results")
_PERSISTENT = ("runs", "snapshots")


class MemoryBudgetError(Exception):
    """A request that does not fit the memory budget; ``busy`` when it would fit later."""

    def __init__(self, message: str, *, busy: bool) -> None:
        super().__init__(message)
        self.busy = busy


@dataclass
class Holding:
    """Bytes of one kind held against the budget until :meth:`release` (idempotent)."""

    kind: str
    nbytes: int
    _budget: MemoryBudget | None = field(default=None, repr=False)

    def release(self) -> None:
        """Give the bytes back to the budget (again: no effect)."""
        budget, self._budget = self._budget, None
        if budget is not None:
            budget._give_back(self.kind, self.nbytes)


class MemoryBudget:
    """``limit`` bytes shared by every holding; see the module docstring.

    Args:
        limit: the budget in bytes (>= 1).
        reclaim: ``reclaim(nbytes)`` frees up to ``nbytes`` of reclaimable results and returns
            how many it freed; called (outside the lock) when an admission does not fit.
    """

    def __init__(self, limit: int, reclaim: Callable[[int], int] | None = None) -> None:
        if limit < 1:
            raise ValueError(f"MemoryBudget(limit=...) must be >= 1 byte, got {limit}")
        self.limit = limit
        self.reclaim = reclaim
        self._lock = threading.Lock()
        self._held = dict.fromkeys(KINDS, 0)

    def held(self, kind: str | None = None) -> int:
        """Bytes held, of one kind or in total."""
        with self._lock:
            return self._held[kind] if kind is not None else sum(self._held.values())

    def admit(self, kind: str, nbytes: int, what: str) -> Holding:
        """A holding of ``nbytes`` for ``what`` (named in errors), if the budget allows it.

        Raises:
            MemoryBudgetError: it cannot fit (``busy=False``) or not now (``busy=True``).
        """
        self._check_kind(kind)
        with self._lock:
            persistent = sum(self._held[k] for k in _PERSISTENT)
            if nbytes > self.limit - persistent:
                raise MemoryBudgetError(self._never_fits(what, nbytes), busy=False)
            shortfall = nbytes - (self.limit - sum(self._held.values()))
        if shortfall > 0 and self.reclaim is not None:
            self.reclaim(shortfall)
        with self._lock:
            if nbytes > self.limit - sum(self._held.values()):
                raise MemoryBudgetError(self._not_now(what, nbytes), busy=True)
            self._held[kind] += nbytes
        return Holding(kind, nbytes, self)

    def hold(self, kind: str, nbytes: int) -> Holding:
        """A holding for memory that exists already (a finished result): never refused."""
        self._check_kind(kind)
        with self._lock:
            self._held[kind] += nbytes
        return Holding(kind, nbytes, self)

    def _give_back(self, kind: str, nbytes: int) -> None:
        with self._lock:
            self._held[kind] -= nbytes

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"memory kind {kind!r} is unknown (expected one of {KINDS})")

    def _usage(self) -> str:
        parts = [f"{kind} {format_bytes(self._held[kind])}" for kind in KINDS if self._held[kind]]
        return ", ".join(parts) or "nothing"

    def _never_fits(self, what: str, nbytes: int) -> str:
        return (
            f"{what} needs an estimated {format_bytes(nbytes)}, more than this server's memory "
            f"budget of {format_bytes(self.limit)} leaves while loaded runs and sampler "
            f"snapshots are held (held now: {self._usage()}); make the request smaller, unload "
            "training runs, or start the server with a larger --memory-budget"
        )

    def _not_now(self, what: str, nbytes: int) -> str:
        return (
            f"{what} needs an estimated {format_bytes(nbytes)} and the server's memory budget "
            f"of {format_bytes(self.limit)} is busy (held now: {self._usage()}); retry when "
            "running requests finish and their results are fetched"
        )

    def __repr__(self) -> str:
        with self._lock:
            return f"MemoryBudget(limit={format_bytes(self.limit)}, held: {self._usage()})"


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """``"2GiB"``, ``"512M"``, ``"1.5g"``, ``"1000000"`` -> bytes (binary units).

    Raises:
        ValueError: not a size (the message shows the accepted forms).
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size; use e.g. 2GiB, 512MiB, 1.5G or a byte count")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_bytes(nbytes: int) -> str:
    """``1536`` -> ``"1.5 KiB"`` (binary units, for messages)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


def return_memory_to_the_os() -> None:
    """Collect garbage, then ask the C allocator to give its free pages back (glibc's
    ``malloc_trim``; elsewhere only the collection). Freed arrays otherwise stay in the
    process as free heap, and an idle server would keep its peak size."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


_LIBC: list[ctypes.CDLL | None] = []


def _libc() -> ctypes.CDLL | None:
    if not _LIBC:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
        except OSError:
            libc = None
        _LIBC.append(libc if libc is not None and hasattr(libc, "malloc_trim") else None)
    return _LIBC[0]
