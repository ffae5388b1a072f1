"""Where a client spends its CPU: one client run under the py-spy sampling profiler.

py-spy samples every thread of the client from outside (no instrumentation inside the process).
Only samples of the thread holding the GIL are kept (``--gil``): that is the Python work the
threads queue for; system calls that release the GIL (socket reads and writes) are not in it.
py-spy writes collapsed stacks (``frame;frame;... count`` per line); the summary adds them up by
package, source file and function (self and inclusive) and names each hot function's nearest
tinkex caller, which tells body building, converter, headers, futures and thread handoffs
apart. The whole process is sampled, so client setup is in it (argument parsing and imports are
left out). The profiled run is extra: it never counts towards the measured figures.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: Samples per second per thread.
RATE = 1000
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def find_py_spy() -> str:
    """Path of the ``py-spy`` executable (next to this interpreter, or on PATH).

    Raises:
        RuntimeError: py-spy is not installed; the message says how to install it.
    """
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise RuntimeError(
            "--profile needs the py-spy sampling profiler: `pip install py-spy` into this "
            f"environment ({sys.executable})"
        )
    return found


def py_spy_command(output: Path) -> list[str]:
    """Command prefix running a client under py-spy; collapsed stacks go to ``output``."""
    return [
        find_py_spy(),
        "record",
        "--format",
        "raw",
        "--rate",
        str(RATE),
        "--nonblocking",
        "--gil",
        "--full-filenames",
        "--output",
        str(output),
        "--",
    ]


def _short_file(path: str) -> str:
    """``urllib3/connectionpool.py``, ``threading.py``, ``tinkex/_futures.py`` from full paths."""
    for marker in ("/site-packages/", "/tinkex/", "/benchmarks/"):
        if marker in path:
            tail = path.rsplit(marker, 1)[1]
            return tail if marker == "/site-packages/" else marker.strip("/") + "/" + tail
    stdlib = re.search(r"/lib/python3\.\d+/(.*)$", path)
    return stdlib[1] if stdlib else path


def _frame_key(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["function"], _short_file(match["file"])


def _package(file: str) -> str:
    """``tinkex/_transport``, ``requests``, ``http``, ``threading``: what a file belongs to."""
    parts = file.split("/")
    if parts[0] == "tinkex" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py")


@dataclass(frozen=True)
class ProfileSummary:
    """Samples added up by function, file and package; ``via``: nearest tinkex caller."""

    total: int
    self_by_function: Counter[str]
    inclusive_by_function: Counter[str]
    self_by_file: Counter[str]
    self_by_package: Counter[str]
    inclusive_by_package: Counter[str]
    via: dict[str, Counter[str]]

    def text(self, top: int = 25) -> str:
        """Readable tables of the top entries, as percentages of all samples."""

        def share(count: int) -> str:
            return f"{100.0 * count / self.total:5.1f}%"

        def table(title: str, counts: Counter[str], limit: int = top) -> list[str]:
            rows = [f"{title} (% of {self.total} samples holding the GIL)"]
            rows += [f"  {share(count)}  {name}" for name, count in counts.most_common(limit)]
            return rows

        lines = table("self time by package", self.self_by_package, 15)
        lines += table("inclusive time by package", self.inclusive_by_package, 15)
        lines += table("self time by source file", self.self_by_file)
        lines.append(
            f"self time by function, with its most frequent tinkex caller "
            f"(% of {self.total} samples)"
        )
        for name, count in self.self_by_function.most_common(top):
            callers = self.via.get(name)
            caller = f"  <- {callers.most_common(1)[0][0]}" if callers else ""
            lines.append(f"  {share(count)}  {name}{caller}")
        tinkex = Counter({k: v for k, v in self.inclusive_by_function.items() if "(tinkex/" in k})
        lines += table("inclusive time by tinkex function", tinkex)
        return "\n".join(lines)


#: Stacks of the benchmark's own setup (argument parsing, imports) are left out.
_SKIPPED = ("_find_and_load", "parse_args (benchmarks/")


def summarize(collapsed: str) -> ProfileSummary:
    """Add up py-spy collapsed stacks (one ``frame;frame;... count`` per line)."""
    self_by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_by_file: Counter[str] = Counter()
    self_by_package: Counter[str] = Counter()
    inclusive_by_package: Counter[str] = Counter()
    via: dict[str, Counter[str]] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_key(f) for f in stack.split(";") if f.strip()]
        names = [f"{function} ({file})" for function, file in frames]
        if not frames or any(skip in name for name in names for skip in _SKIPPED):
            continue
        count = int(count_text)
        total += count
        leaf, (_, leaf_file) = names[-1], frames[-1]
        self_by_function[leaf] += count
        self_by_file[leaf_file or "?"] += count
        self_by_package[_package(leaf_file or "?")] += count
        for name in set(names):
            inclusive[name] += count
        for package in {_package(file) for _, file in frames}:
            inclusive_by_package[package] += count
        tinkex_callers = [n for n in names[:-1] if "(tinkex/" in n]
        if tinkex_callers and "(tinkex/" not in leaf:
            via.setdefault(leaf, Counter())[tinkex_callers[-1]] += count
    return ProfileSummary(
        max(total, 1),
        self_by_function,
        inclusive,
        self_by_file,
        self_by_package,
        inclusive_by_package,
        via,
    )
