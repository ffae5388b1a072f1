"""``tinkex serve``: run the local Tinker-compatible server in the foreground.

When ready it prints two lines on stdout::

    tinkex local server listening on http://127.0.0.1:8080
    export TINKER_BASE_URL=http://127.0.0.1:8080 TINKER_API_KEY=tml-local

and logs to stderr (``--log-level``, default ``info``): where its data lives, one line per
request (method, path, status, milliseconds, request id; never a body) and its shutdown. It
stops cleanly (exit code 0) on Ctrl-C / SIGTERM. The data directory defaults to a per-user
cache directory (:func:`default_data_dir`), so checkpoints and runs survive restarts;
``--ephemeral`` uses a temporary one.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinkex.local.server import LocalServer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
LOG_LEVELS = ("debug", "info", "warning", "error")
#: ``gc.set_threshold`` of a ``tinkex serve`` process (see :func:`tune_gc_for_serving`).
SERVE_GC_THRESHOLD = (20_000, 10, 10)


def default_data_dir() -> str:
    """Where ``tinkex serve`` keeps its data without ``--data-dir``: a per-user cache directory
    (``$XDG_CACHE_HOME/tinkex/local-server``, else ``~/.cache/tinkex/local-server``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "tinkex", "local-server")


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` subcommand on ``subparsers`` (an argparse subparsers action)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="Run a local Tinker-compatible server (tiny numpy model).",
        description="Run a local Tinker-compatible server backed by a tiny numpy model. Every "
        "base model the Tinker service serves (Qwen/Qwen3-8B, ...) is answered by the tiny "
        "model; use the API key 'tml-local' (the official SDK requires the tml- prefix).",
    )
    _add_place_options(parser)
    _add_access_options(parser)
    _add_model_options(parser)
    parser.set_defaults(handler=run_serve)
    return parser


def _add_place_options(parser: argparse.ArgumentParser) -> None:
    """Where the server listens and where it keeps its data."""
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: a free one)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="keep sessions, runs and checkpoints here (default: a per-user cache directory, "
        "$XDG_CACHE_HOME/tinkex/local-server or ~/.cache/tinkex/local-server)",
    )
    where.add_argument(
        "--ephemeral",
        action="store_true",
        help="use a temporary data directory, deleted when the server stops",
    )


def _add_access_options(parser: argparse.ArgumentParser) -> None:
    """What the server logs, which key it accepts and which faults it injects."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="log to stderr at this level (default info: one line per request, never a body)",
    )
    parser.add_argument(
        "--api-key",
        dest="serve_api_key",
        metavar="KEY",
        default=None,
        help="accept only this X-API-Key (default: accept any key)",
    )
    parser.add_argument(
        "--faults",
        metavar="SPEC",
        default=None,
        help="inject faults, e.g. 'http_5xx=0.1,seed=1' or 'asample:429:3' "
        "(grammar: tinkex.local.faults)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """Which models the server answers for and how its engine behaves."""
    names = parser.add_mutually_exclusive_group()
    names.add_argument(
        "--any-model",
        action="store_true",
        help="accept any base-model name (default: only the names the Tinker service serves, "
        "plus tinkex/tiny and tinkex/null; others get 400 with a 'did you mean')",
    )
    names.add_argument(
        "--strict-models",
        action="store_true",
        help="accept only the names the Tinker service serves (the default; kept for scripts)",
    )
    parser.add_argument(
        "--long-poll-seconds",
        type=float,
        default=None,
        metavar="S",
        help="how long retrieve_future holds a pending request (default 20)",
    )
    parser.add_argument(
        "--session-futures",
        action="store_true",
        default=None,
        help="serve POST /api/v1/retrieve_futures and advertise it to clients "
        "(sample_use_retrieve_futures): one long poll per sampling session collects its "
        "completions instead of one per sample",
    )
    parser.add_argument(
        "--sample-max-concurrent",
        type=_positive_int,
        default=None,
        metavar="N",
        help="advertise N as sample_max_concurrent_requests: the samples each SamplingClient "
        "(tinkex or tinker) keeps in flight at once (default 2000, the hosted service's)",
    )
    parser.add_argument(
        "--memory-budget",
        type=_size,
        default=None,
        metavar="SIZE",
        help="what the server may hold for training runs, sampler weights, requests in flight "
        "and kept results, e.g. 4GiB (default 2GiB); larger work is refused with 400, work "
        "that does not fit now with 429",
    )
    parser.add_argument(
        "--sampling-seed",
        type=int,
        default=None,
        metavar="N",
        help="give sample requests without a seed one derived from N and the request, so "
        "repeated runs sample the same tokens (default: fresh randomness)",
    )
    parser.add_argument(
        "--tokenizer-id",
        default=None,
        metavar="ID",
        help="the tokenizer id to answer every client (default: the path of the server's "
        "tokenizer folder to clients on this machine, tinkex/byte-tokenizer to others)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _size(text: str) -> int:
    from tinkex.local.engine.memory import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit code."""
    from tinkex.local.server import LocalServer

    _configure_logging(getattr(args, "log_level", "info"))
    log = logging.getLogger("tinkex.local")
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalServer(**server_options(args)) as server:
            frozen = tune_gc_for_serving()
            log.debug(
                "garbage collector: %d start-up objects frozen, threshold %s",
                frozen,
                gc.get_threshold(),
            )
            _announce(server, args)
            while not stop.wait(0.5):
                pass
            log.info(
                "shutting down (%s): %d requests pending", received[0], server.pending_requests()
            )
        log.info("stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.flush()
    return 0


def tune_gc_for_serving() -> int:
    """Tune the garbage collector of a process that only serves (``tinkex serve``).

    Thousands of requests in flight each keep ~100 tracked objects (connection, coroutine
    frames, future record) alive for a second or more: at the default threshold (700) young
    collections promote them all, and every 25% of heap growth triggers a full collection
    over the whole heap, start-up objects included (3000 samples at +1 s: ~0.3 s of the loop's
    CPU). Start-up objects are frozen (never traversed again) and young collections run every
    :data:`SERVE_GC_THRESHOLD` allocations, so short-lived requests die young. Only the serve
    command calls this; an embedded ``LocalServer`` leaves its host process's GC alone.
    Returns how many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVE_GC_THRESHOLD)
    return gc.get_freeze_count()


def server_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``LocalServer`` keyword arguments the parsed ``serve`` options ask for."""
    options: dict[str, Any] = {"any_model": bool(getattr(args, "any_model", False))}
    for name in (
        "long_poll_seconds",
        "session_futures",
        "memory_budget",
        "sampling_seed",
        "tokenizer_id",
    ):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if getattr(args, "sample_max_concurrent", None) is not None:
        options["sample_max_concurrent_requests"] = args.sample_max_concurrent
    # `tinkex --api-key KEY serve` means the same as `tinkex serve --api-key KEY`
    api_key = getattr(args, "serve_api_key", None) or getattr(args, "api_key", None)
    ephemeral = bool(getattr(args, "ephemeral", False))
    return {
        "data_dir": None if ephemeral else (args.data_dir or default_data_dir()),
        "api_key": api_key,
        "faults": args.faults,
        "host": args.host,
        "port": args.port,
        **options,
    }


def _announce(server: LocalServer, args: argparse.Namespace) -> None:
    """Log the data directory, budget and faults; print the two ready lines on stdout."""
    from tinkex.local.engine.memory import format_bytes

    log = logging.getLogger("tinkex.local")
    ephemeral = bool(getattr(args, "ephemeral", False))
    kept = "temporary, deleted on exit" if ephemeral else "kept across restarts"
    log.info("data directory %s (%s)", server.data_dir, kept)
    log.info("memory budget %s", format_bytes(server.memory.limit))
    if args.faults:
        log.info("injecting faults: %s", args.faults)
    print(f"tinkex local server listening on {server.base_url}", flush=True)
    print(f"export TINKER_BASE_URL={server.base_url} TINKER_API_KEY={server.api_key}", flush=True)


_HANDLER: logging.Handler | None = None


def _configure_logging(level: str) -> None:
    """The server's logs (``tinkex.local`` and below) to stderr at ``level``."""
    global _HANDLER
    logger = logging.getLogger("tinkex.local")
    if _HANDLER is None:
        _HANDLER = logging.StreamHandler(sys.stderr)
        _HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(_HANDLER)
    logger.setLevel(level.upper())
    logger.propagate = False
