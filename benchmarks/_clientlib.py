"""What every benchmark client shares: the workload constants and the measured window."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

NULL_MODEL = "tinkex/null"
#: Prompt and sampling parameters every sample workload uses.
PROMPT_TOKENS = list(range(1, 33))
MAX_TOKENS = 8
#: Token ids used in training batches stay below this (the null model's vocabulary is larger).
TRAIN_VOCAB = 250


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
