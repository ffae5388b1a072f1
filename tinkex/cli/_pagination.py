"""Listing commands fetch page by page: ``--limit N`` (0 = all) items after ``--offset``.

One loop for every listing (checkpoints, training runs, sessions): ask for at most
:data:`PAGE_SIZE` items a time, stop at a short page or once the server's total is reached.
When more than one page is needed and the output is a table, a progress bar on stderr says how
far the fetching is (the official CLI draws one too; JSON output stays quiet).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from tinkex.cli._parsers import non_negative_int
from tinkex.cli._progress import ProgressBar

T = TypeVar("T")

#: Items asked for per request.
PAGE_SIZE = 100

#: ``fetch(page_size, offset) -> (items, total)``: one page, and the server's total count of
#: items (None when it does not say).
FetchPage = Callable[[int, int], tuple[list[T], int | None]]


def add_paging_options(parser: argparse.ArgumentParser, noun: str, *, scope: str = "") -> None:
    """``--limit N`` (default 20, 0 = all) and ``--offset N`` (default 0) of a listing of
    ``noun`` (``"runs"``); ``scope`` follows in the help (``" when listing across runs"``)."""
    parser.add_argument(
        "--limit",
        metavar="N",
        type=non_negative_int,
        default=20,
        help=f"maximum number of {noun}{scope} (default 20, 0 = all)",
    )
    parser.add_argument(
        "--offset",
        metavar="N",
        type=non_negative_int,
        default=0,
        help=f"skip the N newest {noun} first{scope} (default 0)",
    )


def fetch_pages(
    fetch: FetchPage[T], limit: int, offset: int, what: str, *, progress: bool = False
) -> tuple[list[T], int | None]:
    """Up to ``limit`` (0 = all) items after the first ``offset``, in the server's order; also
    the server's total count (None when it does not say).

    With ``progress``, a bar labelled ``Fetching WHAT`` on stderr from the second page on.
    """
    found: list[T] = []
    total: int | None = None
    bar: ProgressBar | None = None
    try:
        while limit == 0 or len(found) < limit:
            page_size = PAGE_SIZE if limit == 0 else min(PAGE_SIZE, limit - len(found))
            items, total = fetch(page_size, offset + len(found))
            found.extend(items)
            if bar is not None:
                bar.update(len(items))
            if len(items) < page_size or (total is not None and offset + len(found) >= total):
                break
            if progress and bar is None:
                bar = ProgressBar(_target(limit, offset, total), label=f"Fetching {what}")
                bar.update(len(found))
    finally:
        if bar is not None:
            bar.close()
    return found, total


def _target(limit: int, offset: int, total: int | None) -> int | None:
    """How many items the listing will show, when that is known."""
    available = None if total is None else max(total - offset, 0)
    if limit == 0:
        return available
    return limit if available is None else min(limit, available)
