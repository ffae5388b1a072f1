"""The floor: the same HTTP exchanges as an SDK with as little client work as Python allows.

Raw ``urllib3`` on one connection pool, no SDK:

* sampling: every ``asample`` body is JSON built before the measured window; each sample runs
  on a worker of a ``ThreadPoolExecutor`` (one worker per sample unless ``--floor-threads``):
  submit, then long-poll ``retrieve_future`` until the protobuf ``SampleResponse`` arrives,
  whose token bytes are read as int32 (docs/protocol.md, "Protobuf messages").
* training: each ``forward_backward`` body is the protobuf ``ForwardBackwardRequest``
  (docs/protocol.md, "Protobuf messages") framed around the raw bytes of prebuilt numpy
  token/target/weight arrays, sent as one request; the protobuf ``ForwardBackwardOutput`` is
  read as per-datum views into its ``logprobs`` bytes (no per-element copies).

Session, model and sampler creation happen before the window, as in the SDK workloads.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from _clientlib import (
    MAX_TOKENS,
    NULL_MODEL,
    PROMPT_TOKENS,
    TRAIN_VOCAB,
    Window,
    cold_fwdbwd_lists,
)

JSON_TYPE = "application/json"
PROTOBUF_TYPE = "application/x-protobuf"


class FloorConnection:
    """One urllib3 connection pool to the server with the fixed headers."""

    def __init__(self, base_url: str, max_connections: int) -> None:
        import urllib3

        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"floor client needs an http://HOST:PORT base URL, got {base_url!r}")
        self.pool = urllib3.HTTPConnectionPool(
            parts.hostname,
            parts.port,
            maxsize=max_connections,
            block=False,
            retries=False,
            timeout=urllib3.Timeout(connect=5.0, read=60.0),
        )
        self.prefix = parts.path.rstrip("/") + "/api/v1/"
        key = "tml-local"
        self.json_headers = {"X-API-Key": key, "Content-Type": JSON_TYPE, "Accept": JSON_TYPE}
        self.proto_json_headers = {**self.json_headers, "Accept": PROTOBUF_TYPE}
        self.proto_headers = {
            "X-API-Key": key,
            "Content-Type": PROTOBUF_TYPE,
            "Accept": JSON_TYPE,
        }

    def post(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Any:
        """POST ``body``; returns the urllib3 response (status 200 checked)."""
        response = self.pool.urlopen("POST", self.prefix + endpoint, body=body, headers=headers)
        if response.status != 200:
            raise RuntimeError(
                f"POST {self.prefix}{endpoint} answered {response.status}: {response.data[:500]!r}"
            )
        return response

    def post_json(self, endpoint: str, payload: dict[str, Any]) -> Any:
        """POST a JSON object; returns the decoded JSON answer."""
        return json.loads(self.post(endpoint, json.dumps(payload).encode(), self.json_headers).data)

    def _poll(self, request_id: str, headers: dict[str, str]) -> tuple[bytes, Any]:
        """Long-poll ``retrieve_future`` until done: (protobuf bytes, None) or (b"", JSON)."""
        body = b'{"request_id": "%s", "allow_metadata_only": false}' % request_id.encode()
        while True:
            response = self.post("retrieve_future", body, headers)
            if response.headers.get("content-type", "").startswith(PROTOBUF_TYPE):
                return response.data, None
            answer = json.loads(response.data)
            if answer.get("type") == "try_again":
                continue
            if "error" in answer:
                raise RuntimeError(f"request {request_id} failed: {answer}")
            return b"", answer

    def protobuf_result(self, request_id: str) -> bytes:
        """The protobuf payload of a finished Sample/ForwardBackward request."""
        payload, answer = self._poll(request_id, self.proto_json_headers)
        if answer is not None:
            raise RuntimeError(f"request {request_id}: expected protobuf, got JSON {answer!r}")
        return payload

    def json_result(self, request_id: str) -> Any:
        """The JSON result of a finished request."""
        payload, answer = self._poll(request_id, self.json_headers)
        if answer is None:
            raise RuntimeError(f"request {request_id}: expected JSON, got {len(payload)} bytes")
        return answer


def run(args: argparse.Namespace, base_url: str, window: Window) -> dict[str, Any]:
    """Run ``args.workload`` with the floor client; returns the workload's fields."""
    if args.workload == "cold":
        with window.measure():
            start = time.perf_counter()
            import urllib3  # noqa: F401  (what the floor imports)

            imported = time.perf_counter()
            connection = FloorConnection(base_url, 1)
            sampler_id = _sampler(connection)
            ready = time.perf_counter()
            _sample(connection, _sample_bodies(sampler_id, 1)[0])
            sampled = time.perf_counter()
        return {
            "count": 1,
            "failures": 0,
            "import_s": imported - start,
            "setup_s": ready - imported,
            "first_sample_s": sampled - ready,
        }
    if args.workload == "cold_fwdbwd":
        return _cold_fwdbwd(base_url, window)
    threads = args.floor_threads or args.samples
    connection = FloorConnection(base_url, threads if args.workload == "sample" else 4)
    if args.workload == "sample":
        return _sample_workload(connection, args, threads, window)
    return _fwdbwd_workload(connection, args, window)


def _session(connection: FloorConnection) -> str:
    answer = connection.post_json(
        "create_session",
        {"tags": [], "user_metadata": {}, "sdk_version": "0.38.0", "type": "create_session"},
    )
    session_id: str = answer["session_id"]
    return session_id


def _sampler(connection: FloorConnection) -> str:
    answer = connection.post_json(
        "create_sampling_session",
        {
            "session_id": _session(connection),
            "sampling_session_seq_id": 0,
            "base_model": NULL_MODEL,
            "type": "create_sampling_session",
        },
    )
    sampler_id: str = answer["sampling_session_id"]
    return sampler_id


def _sample_bodies(sampler_id: str, count: int) -> list[bytes]:
    """``count`` asample bodies (seq ids 0..count-1), built up front."""
    return [
        json.dumps(
            {
                "num_samples": 1,
                "prompt": {"chunks": [{"tokens": PROMPT_TOKENS, "type": "encoded_text"}]},
                "sampling_params": {"max_tokens": MAX_TOKENS, "seed": 1, "temperature": 1.0},
                "sampling_session_id": sampler_id,
                "seq_id": seq_id,
                "type": "sample",
            }
        ).encode()
        for seq_id in range(count)
    ]


def _sample(connection: FloorConnection, body: bytes) -> list[int]:
    """Submit one sample and wait for it; returns the tokens of its one sequence."""
    request_id = json.loads(connection.post("asample", body, connection.json_headers).data)[
        "request_id"
    ]
    return _sample_tokens(connection.protobuf_result(request_id))


def _sample_workload(
    connection: FloorConnection, args: argparse.Namespace, threads: int, window: Window
) -> dict[str, Any]:
    bodies = _sample_bodies(_sampler(connection), args.samples + 1)
    _sample(connection, bodies[0])  # warm-up
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        with window.measure():
            futures = [pool.submit(_sample, connection, body) for body in bodies[1:]]
            _, not_done = concurrent.futures.wait(futures, timeout=args.timeout)
        failures = 0
        first_error = f"{len(not_done)} not done after {args.timeout} s" if not_done else ""
        for future in futures:
            if future in not_done:
                failures += 1
                future.cancel()
            elif future.exception() is not None or not 0 < len(future.result()) <= MAX_TOKENS:
                failures += 1
                first_error = first_error or repr(future.exception() or future.result())
    return {"count": args.samples, "failures": failures, "first_error": first_error}


# --- protobuf framing (docs/protocol.md, "Protobuf messages"): what the floor sends and reads --


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor(data: bytes, dtype: int, length: int) -> bytes:
    """``Tensor`` message: dense bytes (1), dtype enum (3), packed shape (4)."""
    return (
        _bytes_field(1, data) + _varint(3 << 3) + _varint(dtype) + _bytes_field(4, _varint(length))
    )


def _fwdbwd_body(model_id: str, seq_id: int, arrays: list[tuple[Any, Any, Any]]) -> bytes:
    """``ForwardBackwardRequest`` with one text chunk and two dense loss inputs per datum."""
    data = []
    for tokens, targets, weights in arrays:
        chunk = _bytes_field(1, _bytes_field(1, tokens.tobytes()))  # Chunk.encoded_text.tokens
        target_entry = _bytes_field(1, b"target_tokens") + _bytes_field(
            2,
            _tensor(targets.tobytes(), 2, len(targets)),  # INT64
        )
        weight_entry = _bytes_field(1, b"weights") + _bytes_field(
            2,
            _tensor(weights.tobytes(), 1, len(weights)),  # FLOAT32
        )
        datum = (
            _bytes_field(1, chunk) + _bytes_field(2, target_entry) + _bytes_field(2, weight_entry)
        )
        data.append(_bytes_field(3, datum))
    header = _bytes_field(1, model_id.encode()) + _varint(2 << 3) + _varint(seq_id)
    return header + b"".join(data) + _bytes_field(4, b"cross_entropy")


def _fields(buffer: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of a protobuf message: ints for varints, views for the rest."""
    position, end = 0, len(buffer)
    while position < end:
        key, position = _read_varint(buffer, position)
        wire_type = key & 7
        if wire_type == 0:
            value, position = _read_varint(buffer, position)
            yield key >> 3, value
        elif wire_type == 2:
            length, position = _read_varint(buffer, position)
            yield key >> 3, buffer[position : position + length]
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            yield key >> 3, buffer[position : position + size]
            position += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type} at byte {position}")


def _read_varint(buffer: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _view(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ValueError(f"expected a length-delimited protobuf field, got varint {value}")
    return value


def _sample_tokens(payload: bytes) -> list[int]:
    """Tokens of the first sequence of a ``SampleResponse`` (field 1, tokens = field 2)."""
    for number, value in _fields(memoryview(payload)):
        if number == 1:
            for inner, tokens in _fields(_view(value)):
                if inner == 2:
                    return _view(tokens).cast("i").tolist()
    raise ValueError("SampleResponse without a sequence with tokens")


def _logprob_views(payload: bytes) -> list[Any]:
    """Per-datum ``logprobs`` arrays (views) of a protobuf ``ForwardBackwardOutput``."""
    import numpy as np

    views: list[Any] = []
    for number, record in _fields(memoryview(payload)):
        if number != 2:  # loss_fn_outputs: ArrayRecord
            continue
        for field_number, entry in _fields(_view(record)):
            if field_number != 2:  # fields: map<string, BatchedTensor>
                continue
            parts = dict(_fields(_view(entry)))
            if bytes(_view(parts[1])) != b"logprobs":
                continue
            tensor = dict(_fields(_view(parts[2])))
            values = np.frombuffer(_view(tensor[1]), dtype=np.float32)
            offsets = np.frombuffer(_view(tensor[2]), dtype=np.int64) // 4
            views.extend(np.split(values, offsets[1:-1]))
    return views


def _model(connection: FloorConnection) -> str:
    created = connection.post_json(
        "create_model",
        {
            "session_id": _session(connection),
            "model_seq_id": 0,
            "base_model": NULL_MODEL,
            "lora_config": {"rank": 8},
            "type": "create_model",
        },
    )
    model_id: str = connection.json_result(created["request_id"])["model_id"]
    return model_id


def _forward_backward(
    connection: FloorConnection, model_id: str, seq_id: int, batch: list[tuple[Any, Any, Any]]
) -> int:
    """One ``forward_backward`` call; returns the number of per-datum logprob arrays."""
    body = _fwdbwd_body(model_id, seq_id, batch)
    submitted = json.loads(connection.post("forward_backward", body, connection.proto_headers).data)
    return len(_logprob_views(connection.protobuf_result(submitted["request_id"])))


def _fwdbwd_workload(
    connection: FloorConnection, args: argparse.Namespace, window: Window
) -> dict[str, Any]:
    import numpy as np

    model_id = _model(connection)
    rng = np.random.default_rng(0)

    def arrays(tokens: int) -> tuple[Any, Any, Any]:
        sequence = rng.integers(0, TRAIN_VOCAB, size=tokens + 1, dtype=np.int64)
        return (
            sequence[:-1].astype(np.int32),
            sequence[1:].copy(),
            np.ones(tokens, dtype=np.float32),
        )

    _forward_backward(connection, model_id, 1, [arrays(8)])  # warm-up
    batch = [arrays(args.tokens) for _ in range(args.batch)]
    step_seconds = []
    with window.measure():
        for step in range(args.steps):
            start = time.perf_counter()
            outputs = _forward_backward(connection, model_id, 2 + step, batch)
            step_seconds.append(time.perf_counter() - start)
            if outputs != args.batch:
                raise RuntimeError(f"forward_backward returned {outputs} outputs for {args.batch}")
    return {
        "count": args.steps,
        "failures": 0,
        "tokens": args.batch * args.tokens,
        "step_s": step_seconds,
    }


def _cold_fwdbwd(base_url: str, window: Window) -> dict[str, Any]:
    lists = cold_fwdbwd_lists()
    with window.measure():
        start = time.perf_counter()
        import numpy as np
        import urllib3  # noqa: F401  (what the floor imports)

        imported = time.perf_counter()
        connection = FloorConnection(base_url, 1)
        model_id = _model(connection)
        ready = time.perf_counter()
        batch = [
            (
                np.array(tokens, dtype=np.int32),
                np.array(targets, dtype=np.int64),
                np.array(weights, dtype=np.float32),
            )
            for tokens, targets, weights in lists
        ]
        outputs = _forward_backward(connection, model_id, 1, batch)
        stepped = time.perf_counter()
    if outputs != len(lists):
        raise RuntimeError(f"cold forward_backward returned {outputs} outputs")
    return {
        "count": 1,
        "failures": 0,
        "import_s": imported - start,
        "setup_s": ready - imported,
        "first_step_s": stepped - ready,
    }
