"""What the SDK comparison measures: the workloads, their sizes, and the goals they are held to.

Goals come from issue 13 (client cost near the floor, no thread per in-flight sample, cold path)
and from the project brief (sampling fan-out, forward_backward and import speed-ups). Each goal
compares tinkex with the floor or with the official SDK, or holds a tinkex figure to an absolute
bound; absolute bounds only mean something at the default sizes, so they are judged only there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from _clientlib import COLD_FWDBWD_BATCH

SDKS = ("tinkex", "tinker", "floor")
SDK_TITLES = {"tinkex": "tinkex", "tinker": "tinker 0.38", "floor": "floor"}
#: Figures every run has, in table order, with their table titles.
FIGURES = {
    "cpu_s": "client CPU",
    "wall_s": "wall",
    "peak_rss_mb": "peak RSS",
    "peak_threads": "peak threads",
}
#: Extra figures some workloads have (shown in the table for those workloads).
EXTRA_FIGURES = {"import_s": "of which import"}


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; the defaults are the ones the goals are stated for."""

    samples: int = 1000
    latency_samples: int = 3000
    low_latency: float = 0.1
    high_latency: float = 1.0
    #: What the server of ``sample_latency_high_wide`` advertises as
    #: ``sample_max_concurrent_requests`` (the default server advertises the hosted 2000).
    wide_sample_limit: int = 4000
    fwdbwd_batch: int = 128
    fwdbwd_tokens: int = 1024
    fwdbwd_steps: int = 3
    #: Steps of ``fwdbwd_long``: the same calls over a window long enough that the scheduler
    #: noise of a 2-core machine (a few ms a step) averages out.
    fwdbwd_long_steps: int = 20
    #: Floor worker threads for the sample workloads; 0: one per sample.
    floor_threads: int = 0

    def as_dict(self) -> dict[str, float]:
        """The sizes as a JSON-able dict."""
        return asdict(self)


QUICK_SIZES = Sizes(samples=200, latency_samples=600, fwdbwd_batch=32)


@dataclass(frozen=True)
class Workload:
    """One measured workload: a client workload of ``_client.py`` against a server latency."""

    name: str
    label: str
    client_workload: str
    latency: float
    client_args: tuple[str, ...]
    extra_figures: tuple[str, ...] = ()
    #: the server's advertised ``sample_max_concurrent_requests`` (None: its default, 2000)
    sample_limit: int | None = None
    #: said in the goal column of the wall row (a bound that follows from the workload)
    wall_note: str = ""
    #: client args of one uncounted floor run on the server before round 1 (empty: none), so
    #: the server's first full-size step is paid by no measured client
    server_warm_up: tuple[str, ...] = ()

    @property
    def server_key(self) -> tuple[float, int | None]:
        """Workloads with equal keys share one server: (added latency, advertised limit)."""
        return (self.latency, self.sample_limit)


#: What ``tinkex serve`` advertises as ``sample_max_concurrent_requests`` by default.
SERVER_SAMPLE_LIMIT = 2000


def _seconds_label(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:g} s"


def _waves_note(samples: int, latency: float) -> str:
    """The wall-time bound of ``samples`` samples at ``latency`` against the default limit."""
    waves = -(-samples // SERVER_SAMPLE_LIMIT)
    if waves < 2:
        return ""
    bound = waves * 2 * latency
    return (
        f"bound: {waves} waves of ≤ {SERVER_SAMPLE_LIMIT} samples (the advertised limit, which "
        f"both SDKs honour) x 2 round trips = ≥ {bound:g} s by construction; the ≤ 3 s goal is "
        "judged on the row where the server advertises more"
    )


def workloads(sizes: Sizes) -> list[Workload]:
    """The workloads at ``sizes``, in run order."""
    floor = ("--floor-threads", str(sizes.floor_threads))
    high = _seconds_label(sizes.high_latency)
    batch = ("--batch", str(sizes.fwdbwd_batch), "--tokens", str(sizes.fwdbwd_tokens))
    return [
        Workload(
            "sample_burst",
            f"{sizes.samples} concurrent `sample()`, no added latency",
            "sample",
            0.0,
            ("--samples", str(sizes.samples), *floor),
        ),
        Workload(
            "sample_latency_low",
            f"{sizes.latency_samples} concurrent `sample()`, server adds "
            f"{_seconds_label(sizes.low_latency)} per request",
            "sample",
            sizes.low_latency,
            ("--samples", str(sizes.latency_samples), *floor),
        ),
        Workload(
            "sample_latency_high",
            f"{sizes.latency_samples} concurrent `sample()`, server adds {high} per request",
            "sample",
            sizes.high_latency,
            ("--samples", str(sizes.latency_samples), *floor),
            wall_note=_waves_note(sizes.latency_samples, sizes.high_latency),
        ),
        Workload(
            "sample_latency_high_wide",
            f"{sizes.latency_samples} concurrent `sample()`, server adds {high} per request "
            f"and advertises {sizes.wide_sample_limit} samples in flight",
            "sample",
            sizes.high_latency,
            ("--samples", str(sizes.latency_samples), *floor),
            sample_limit=sizes.wide_sample_limit,
        ),
        Workload(
            "fwdbwd",
            f"{sizes.fwdbwd_steps} x `forward_backward` of {sizes.fwdbwd_batch} x "
            f"{sizes.fwdbwd_tokens} tokens",
            "fwdbwd",
            0.0,
            (*batch, "--steps", str(sizes.fwdbwd_steps)),
            server_warm_up=(*batch, "--steps", "1"),
        ),
        Workload(
            "fwdbwd_long",
            f"{sizes.fwdbwd_long_steps} x `forward_backward` of {sizes.fwdbwd_batch} x "
            f"{sizes.fwdbwd_tokens} tokens (the goal row's calls over a steadier window)",
            "fwdbwd",
            0.0,
            (*batch, "--steps", str(sizes.fwdbwd_long_steps)),
            server_warm_up=(*batch, "--steps", "1"),
        ),
        Workload(
            "cold",
            "cold path: fresh interpreter, import + first `sample()`",
            "cold",
            0.0,
            (),
            extra_figures=("import_s",),
        ),
        Workload(
            "cold_fwdbwd",
            "cold path: fresh interpreter, import + first `forward_backward` "
            f"({COLD_FWDBWD_BATCH[0]} x {COLD_FWDBWD_BATCH[1]} tokens)",
            "cold_fwdbwd",
            0.0,
            (),
            extra_figures=("import_s",),
        ),
    ]


WORKLOAD_NAMES = tuple(w.name for w in workloads(Sizes()))

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    ">": operator.gt,
}
_SYMBOLS = {"<=": "≤", ">=": "≥", ">": ">"}


@dataclass(frozen=True)
class Goal:
    """A target for one figure of one workload.

    ``measure`` is ``"tinkex/floor"`` or ``"tinker/tinkex"`` (ratios of medians) or ``"tinkex"``
    (the absolute median, judged at the default sizes only).
    """

    workload: str
    figure: str
    measure: str
    op: str
    target: float
    source: str
    unit: str = "x"
    note: str = field(default="")

    @property
    def text(self) -> str:
        """The goal as the table shows it, e.g. ``tinkex/floor ≤ 1.3x``."""
        target = (
            f"{self.target:g}{self.unit}" if self.unit == "x" else f"{self.target:g} {self.unit}"
        )
        return f"{self.measure} {_SYMBOLS[self.op]} {target}"

    def met(self, value: float) -> bool:
        """Whether ``value`` (of :attr:`measure`) meets the goal."""
        return _OPERATORS[self.op](value, self.target)

    def tinkex_cut(self, value: float) -> float:
        """By what fraction tinkex's figure must shrink to meet the goal (0 when met)."""
        if self.met(value):
            return 0.0
        if self.measure == "tinker/tinkex":  # tinkex must shrink to tinker / target
            return 1.0 - value / self.target
        return 1.0 - self.target / value  # tinkex/floor or tinkex: shrink to target


GOALS = (
    Goal("sample_burst", "cpu_s", "tinkex/floor", "<=", 1.3, "issue 13"),
    Goal("sample_burst", "wall_s", "tinker/tinkex", ">=", 1.5, "brief"),
    Goal("sample_latency_high_wide", "wall_s", "tinkex", "<=", 3.0, "issue 13", unit="s"),
    Goal(
        "sample_latency_high",
        "peak_rss_mb",
        "tinker/tinkex",
        ">=",
        2.0,
        "issue 13",
        note="tinkex ≤ 0.5x tinker",
    ),
    Goal("fwdbwd", "cpu_s", "tinker/tinkex", ">=", 2.0, "issue 13", note="tinkex ≤ 0.5x tinker"),
    Goal("fwdbwd", "wall_s", "tinker/tinkex", ">=", 1.4, "issue 13, brief"),
    Goal("cold", "wall_s", "tinker/tinkex", ">", 1.0, "issue 13", note="cheaper than tinker"),
    Goal("cold", "import_s", "tinker/tinkex", ">=", 3.0, "brief"),
    Goal(
        "cold_fwdbwd", "wall_s", "tinker/tinkex", ">", 1.0, "issue 13", note="cheaper than tinker"
    ),
)
