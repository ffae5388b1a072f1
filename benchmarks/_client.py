"""One benchmark client process: ``python _client.py SDK WORKLOAD [options]``.

SDK is ``tinkex`` or ``tinker`` (the same workload code through either package, see
``_client_sdk.py``) or ``floor`` (raw urllib3, see ``_client_floor.py``). The server comes from
``TINKER_BASE_URL``. The process prints one line ``RESULT {json}`` with ``window``: wall and CPU
(user/sys, all threads) of the measured part only — setup, warm-up and teardown are outside it —
plus workload-specific fields. Module imports here are stdlib only, so the ``cold`` workload
(import + first sample) starts from a bare interpreter.

Workloads:

* ``sample``: N concurrent ``sample()`` calls after one warm-up sample; window = first
  submission to the last result.
* ``fwdbwd``: STEPS sequential ``forward_backward`` calls of BATCH x TOKENS tokens after a
  one-datum warm-up call; window = the STEPS calls.
* ``cold``: import the client package, create the clients, first ``sample()``; window = all of it.
* ``cold_fwdbwd``: the same with a training client and a first (small) ``forward_backward``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from _clientlib import Window, hide_packages


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command line of a client process (the harness builds it; see ``compare_sdks.py``)."""
    parser = argparse.ArgumentParser(description="one benchmark client process")
    parser.add_argument("sdk", choices=("tinkex", "tinker", "floor"))
    parser.add_argument("workload", choices=("sample", "fwdbwd", "cold", "cold_fwdbwd"))
    parser.add_argument("--samples", type=int, default=1000, help="concurrent sample() calls")
    parser.add_argument("--batch", type=int, default=128, help="datums per forward_backward")
    parser.add_argument("--tokens", type=int, default=1024, help="tokens per datum")
    parser.add_argument("--steps", type=int, default=3, help="forward_backward calls")
    parser.add_argument(
        "--floor-threads", type=int, default=0, help="floor pool size (0: one per sample)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for results")
    parser.add_argument(
        "--hide-torch", action="store_true", help="run as if torch were not installed"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Run one workload and print its RESULT line."""
    args = parse_args(argv)
    if args.hide_torch:
        hide_packages("torch")
    base_url = os.environ["TINKER_BASE_URL"]
    window = Window()
    record: dict[str, Any]
    if args.sdk == "floor":
        import _client_floor

        record = _client_floor.run(args, base_url, window)
    else:
        import _client_sdk

        record = _client_sdk.run(args, window)
    record["window"] = window.figures
    record["torch_loaded"] = "torch" in sys.modules
    print("RESULT " + json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
