"""Speed of the type layer alone: building, encoding and decoding the hot messages (no HTTP).

Measures (median of ``--rounds`` runs, seconds):

* ``build_fwdbwd``: building a 256 x 512-token batch of ``Datum``s from Python lists (the
  ``forward_backward`` workload of ``compare_sdks.py``) into a ``ForwardBackwardRequest``;
* ``encode_fwdbwd_proto`` / ``encode_fwdbwd_json``: encoding that request as the protobuf body
  (the default) and as the JSON body (``to_wire`` + ``json.dumps``);
* ``encode_1000_sample_requests``: ``to_wire`` of 1000 ``SampleRequest``s (one per ``sample``);
* ``decode_1000_samples_json`` / ``decode_1000_samples_proto``: decoding 1000 sample results
  (one 32-token sequence with logprobs each) from parsed JSON (``from_wire``) and from protobuf.

Usage::

    python benchmarks/types_codec.py [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
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
    """Median wall seconds of ``fn()`` over ``rounds`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    request = build_request()
    samples = [sample_json(i) for i in range(SAMPLES)]
    proto_samples = [encode_sample_response(from_wire(s, types.SampleResponse)) for s in samples]
    sample_requests = [sample_request(i) for i in range(SAMPLES)]
    results = {
        "build_fwdbwd": timed(build_request, args.rounds),
        "encode_fwdbwd_proto": timed(lambda: encode_forward_backward_request(request), args.rounds),
        "encode_fwdbwd_json": timed(lambda: json.dumps(to_wire(request)), args.rounds),
        "encode_1000_sample_requests": timed(
            lambda: [to_wire(r) for r in sample_requests], args.rounds
        ),
        "decode_1000_samples_json": timed(
            lambda: [from_wire(s, types.SampleResponse) for s in samples], args.rounds
        ),
        "decode_1000_samples_proto": timed(
            lambda: [decode_sample_response(b) for b in proto_samples], args.rounds
        ),
    }
    for name, seconds in results.items():
        print(f"{name:32s} {seconds * 1000:9.2f} ms")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
