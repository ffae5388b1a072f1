"""Speed of the type layer alone: building, encoding and decoding the hot messages (no HTTP).

Measures (CPU seconds of this process, the best of ``--rounds`` runs: robust on a shared
machine; the code is single-threaded):

* ``build_fwdbwd``: building a 256 x 512-token batch of ``Datum``s from Python lists (the
  ``forward_backward`` workload of ``compare_sdks.py``) into a ``ForwardBackwardRequest``;
* ``encode_fwdbwd_proto`` / ``encode_fwdbwd_json``: encoding that request as the protobuf body
  (the default) and as the JSON body (``to_wire`` + ``json.dumps``);
* ``encode_1000_sample_requests``: ``to_wire`` of 1000 ``SampleRequest``s (one per ``sample``);
* ``decode_1000_samples_json`` / ``decode_1000_samples_proto``: decoding 1000 sample results
  (one 32-token sequence with logprobs each) from parsed JSON (``from_wire``) and from protobuf.

Each figure is measured in a fresh interpreter. Usage::

    python benchmarks/types_codec.py [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinkex import types
from tinkex.types._converter import from_wire, to_wire
from tinkex.types._proto import (
    decode_sample_response,
    encode_forward_backward_request,
    encode_sample_response,
)

BATCH, TOKENS, SAMPLES = 256, 512, 1000


def build_request() -> types.ForwardBackwardRequest:
    """The 256 x 512 cross-entropy batch of ``compare_sdks.py``."""
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints([(i + j) % 250 for j in range(TOKENS)]),
            loss_fn_inputs={
                "target_tokens": [(i + j + 1) % 250 for j in range(TOKENS)],
                "weights": [1.0] * TOKENS,
            },
        )
        for i in range(BATCH)
    ]
    return types.ForwardBackwardRequest(
        types.ForwardBackwardInput(data, "cross_entropy"), "bench:train:0", 1
    )


def sample_request(i: int) -> types.SampleRequest:
    """One ``sample`` call's body."""
    return types.SampleRequest(
        prompt=types.ModelInput.from_ints(list(range(1, 33))),
        sampling_params=types.SamplingParams(max_tokens=8, temperature=1.0, seed=i),
        sampling_session_id="bench:sample:0",
        seq_id=i,
    )


def sample_json(i: int) -> dict[str, Any]:
    """A sample result as the JSON the server answers."""
    return {
        "type": "sample",
        "sequences": [
            {
                "stop_reason": "length",
                "tokens": [(i + j) % 250 for j in range(32)],
                "logprobs": [-0.5 - j / 100 for j in range(32)],
            }
        ],
        "prompt_logprobs": None,
        "topk_prompt_logprobs": None,
    }


def timed(fn: Callable[[], Any], rounds: int) -> float:
    """Best CPU seconds of ``fn()`` over ``rounds`` runs (after one warm-up), with the cyclic
    garbage collector off while timing, as ``timeit`` does (its pauses depend on what else the
    process holds, not on the code measured)."""
    fn()
    times = []
    for _ in range(rounds):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            fn()
            times.append(time.process_time() - start)
        finally:
            gc.enable()
    return min(times)


def _measurements(rounds: int, name: str) -> float:
    """Seconds of measurement ``name`` (its inputs are built first, as the others' are not)."""
    if name == "build_fwdbwd":
        return timed(build_request, rounds)
    if name.startswith("encode_fwdbwd"):
        request = build_request()
        if name == "encode_fwdbwd_proto":
            return timed(lambda: encode_forward_backward_request(request), rounds)
        return timed(lambda: json.dumps(to_wire(request)), rounds)
    if name == "encode_1000_sample_requests":
        sample_requests = [sample_request(i) for i in range(SAMPLES)]
        return timed(lambda: [to_wire(r) for r in sample_requests], rounds)
    samples = [sample_json(i) for i in range(SAMPLES)]
    if name == "decode_1000_samples_json":
        return timed(lambda: [from_wire(s, types.SampleResponse) for s in samples], rounds)
    proto = [encode_sample_response(from_wire(s, types.SampleResponse)) for s in samples]
    return timed(lambda: [decode_sample_response(b) for b in proto], rounds)


NAMES = (
    "build_fwdbwd",
    "encode_fwdbwd_proto",
    "encode_fwdbwd_json",
    "encode_1000_sample_requests",
    "decode_1000_samples_json",
    "decode_1000_samples_proto",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--one", choices=NAMES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(_measurements(args.rounds, args.one))
        return 0
    # Each figure in a fresh interpreter: the allocator's state (e.g. glibc's adaptive mmap
    # threshold, which decides whether a 2 MB request body costs page faults) depends on what
    # the process did before, and would otherwise make the figures depend on their order.
    results = {}
    for name in NAMES:
        out = subprocess.run(
            [sys.executable, __file__, "--one", name, "--rounds", str(args.rounds)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[name] = float(out.stdout.strip().splitlines()[-1])
        print(f"{name:32s} {results[name] * 1000:9.2f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
