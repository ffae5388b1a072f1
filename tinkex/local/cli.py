"""``tinkex serve``: run the local Tinker-compatible server in the foreground.

Prints exactly one line ``tinkex local server listening on http://HOST:PORT`` when ready and
shuts down cleanly (exit code 0) on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``serve`` subcommand on ``subparsers`` (an argparse subparsers action)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="Run a local Tinker-compatible server (tiny numpy model).",
        description="Run a local Tinker-compatible server backed by a tiny numpy model. Every "
        "base model the Tinker service serves (Qwen/Qwen3-8B, ...) is answered by the tiny "
        "model; use the API key 'tml-local' (the official SDK requires the tml- prefix).",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0: a free one)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="keep sessions, runs and checkpoints here (default: a temporary directory)",
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
    parser.set_defaults(handler=run_serve)
    return parser


def _size(text: str) -> int:
    from tinkex.local.engine.memory import parse_bytes

    try:
        return parse_bytes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit code."""
    from tinkex.local.server import LocalServer

    options: dict[str, Any] = {"any_model": bool(getattr(args, "any_model", False))}
    long_poll = getattr(args, "long_poll_seconds", None)
    if long_poll is not None:
        options["long_poll_seconds"] = long_poll
    memory_budget = getattr(args, "memory_budget", None)
    if memory_budget is not None:
        options["memory_budget"] = memory_budget
    sampling_seed = getattr(args, "sampling_seed", None)
    if sampling_seed is not None:
        options["sampling_seed"] = sampling_seed
    # `tinkex --api-key KEY serve` means the same as `tinkex serve --api-key KEY`
    api_key = getattr(args, "serve_api_key", None) or getattr(args, "api_key", None)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with LocalServer(
            data_dir=args.data_dir,
            api_key=api_key,
            faults=args.faults,
            host=args.host,
            port=args.port,
            **options,
        ) as server:
            print(f"tinkex local server listening on {server.base_url}", flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stdout.flush()
    return 0
