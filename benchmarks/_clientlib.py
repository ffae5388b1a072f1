"""What every benchmark client shares: the workload constants and the measured window."""

from __future__ import annotations

import importlib.machinery
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NULL_MODEL = "tinkex/null"
#: Prompt and sampling parameters every sample workload uses.
PROMPT_TOKENS = list(range(1, 33))
MAX_TOKENS = 8
#: Token ids used in training batches stay below this (the null model's vocabulary is larger).
TRAIN_VOCAB = 250
#: The first ``forward_backward`` of the ``cold_fwdbwd`` workload: datums x tokens (first use,
#: not throughput, is measured).
COLD_FWDBWD_BATCH = (4, 128)


def cold_fwdbwd_lists() -> list[tuple[list[int], list[int], list[float]]]:
    """(tokens, target tokens, weights) per datum of the cold ``forward_backward``, as lists."""
    datums, tokens = COLD_FWDBWD_BATCH
    return [
        (
            [(d * 31 + i) % TRAIN_VOCAB for i in range(tokens)],
            [(d * 31 + i + 1) % TRAIN_VOCAB for i in range(tokens)],
            [1.0] * tokens,
        )
        for d in range(datums)
    ]


class Window:
    """Wall and CPU time (user, sys: the whole process, all threads) of a measured window."""

    def __init__(self) -> None:
        self.figures: dict[str, float] = {}

    @contextmanager
    def measure(self) -> Iterator[Window]:
        """Time the ``with`` body; the figures land in :attr:`figures`."""
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        yield self
        wall = time.perf_counter() - start
        end = resource.getrusage(resource.RUSAGE_SELF)
        self.figures = {
            "wall_s": wall,
            "cpu_user_s": end.ru_utime - cpu.ru_utime,
            "cpu_sys_s": end.ru_stime - cpu.ru_stime,
        }


class _PathFinderWithout:
    """``importlib.machinery.PathFinder`` that does not see some top-level packages."""

    def __init__(self, inner: Any, hidden: frozenset[str]) -> None:
        self._inner = inner
        self._hidden = hidden

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name.partition(".")[0] in self._hidden:
            return None
        return self._inner.find_spec(name, path, target)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def hide_packages(*names: str) -> None:
    """Make this interpreter behave as if ``names`` were not installed.

    ``import torch`` then raises ``ModuleNotFoundError`` and ``importlib.util.find_spec``
    answers None, as without the package: tinker's base install has no torch (it is the
    ``tinker[torch]`` extra), but the dev venv has it for the cookbook suite, and tinker
    imports it whenever it can.
    """
    hidden = frozenset(names)
    sys.meta_path[:] = [
        _PathFinderWithout(f, hidden) if f is importlib.machinery.PathFinder else f
        for f in sys.meta_path
    ]
