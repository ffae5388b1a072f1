"""Splitting forward/backward batches into chunks and combining their results.

The rules are docs/protocol.md, "Forward/backward".
"""

from __future__ import annotations

import hashlib
import logging
import math
import struct
from collections.abc import Sequence

from tinkex._transport.estimates import estimate_datum_bytes
from tinkex.types import Datum, ForwardBackwardOutput

__all__ = ["Chunk", "chunk_datums", "combine_outputs", "hash_unordered", "reduce_metrics"]

logger = logging.getLogger("tinkex")


class Chunk:
    """Consecutive datums sent as one request, with their estimated size in bytes."""

    __slots__ = ("data", "nbytes")

    def __init__(self, data: list[Datum], nbytes: int) -> None:
        self.data = data
        self.nbytes = nbytes


def chunk_datums(data: Sequence[Datum], max_len: int, max_bytes: int) -> list[Chunk]:
    """Split ``data`` into chunks of at most ``max_len`` datums and ``max_bytes`` estimated bytes.

    A datum larger than ``max_bytes`` still forms a chunk of its own.
    """
    if max_len < 1:
        raise ValueError(f"fwdbwd_max_chunk_len must be >= 1, got {max_len}")
    sizes = [estimate_datum_bytes(datum) for datum in data]
    chunks: list[Chunk] = []
    start = current_bytes = 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_len or current_bytes + size > max_bytes):
            chunks.append(Chunk(list(data[start:i]), current_bytes))
            start, current_bytes = i, 0
        current_bytes += size
    if start < len(sizes):
        chunks.append(Chunk(list(data[start:]), current_bytes))
    return chunks


def _reduce(key: str, values: list[float], weights: list[int]) -> dict[str, float]:
    reduction = key.split(":", 1)[1]
    total_weight = sum(weights) or 1
    if reduction == "sum":
        return {key: float(sum(values))}
    if reduction == "mean":
        return {key: sum(v * w for v, w in zip(values, weights, strict=True)) / total_weight}
    if reduction == "min":
        return {key: min(values)}
    if reduction == "max":
        return {key: max(values)}
    if reduction == "slack":
        mean = sum(v * w for v, w in zip(values, weights, strict=True)) / total_weight
        return {key: max(values) - mean}
    if reduction == "hash2":
        acc = 0
        for v in values:
            acc = (acc + (int(v) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        return {key: float(acc)}
    if reduction == "hash_unordered":
        return {key: hash_unordered(values)}
    if reduction == "unique":
        # The first value keeps the key; the others get ``_1``, ``_2``, ... (official SDK).
        out = {key: values[0]}
        for i, v in enumerate(values[1:], start=1):
            out[f"{key}_{i}"] = v
        return out
    logger.debug("dropping metric %r: unknown reduction %r", key, reduction)
    return {}


def hash_unordered(values: Sequence[float]) -> float:
    """An order-independent fingerprint of ``values`` (Elixir Tinkex's ``hash_unordered``
    reduction): equal for the same values in any order, in any process.

    A digest of the sorted float64 values (NaNs last), cut to 53 bits so that it is an
    integer a float holds exactly (metrics are floats, and JSON-safe).
    """
    ordered = sorted((float(v) for v in values), key=lambda v: (math.isnan(v), v))
    packed = struct.pack(f"<{len(ordered)}d", *ordered)
    digest = hashlib.blake2b(packed, digest_size=8).digest()
    return float(int.from_bytes(digest, "big") >> 11)


def reduce_metrics(metrics: Sequence[dict[str, float]], weights: Sequence[int]) -> dict[str, float]:
    """Combine per-chunk metrics by the reduction named after the key's ``:``.

    Only keys present in every chunk are kept. ``weights`` are the chunks' datum counts.
    """
    if not metrics:
        return {}
    # A single chunk goes through the same reductions (unknown ones dropped, keys checked).
    out: dict[str, float] = {}
    for key in metrics[0]:
        _check_key(key)
        if all(key in m for m in metrics):
            out.update(_reduce(key, [m[key] for m in metrics], list(weights)))
    return out


def _check_key(key: str) -> None:
    if key.count(":") != 1:
        raise ValueError(
            f"metric key {key!r} from the server must have the form 'name:reduction' "
            "(exactly one ':')"
        )


def combine_outputs(
    outputs: Sequence[ForwardBackwardOutput], sizes: Sequence[int]
) -> ForwardBackwardOutput:
    """Concatenate per-chunk outputs in order and reduce their metrics."""
    return ForwardBackwardOutput(
        loss_fn_output_type=outputs[0].loss_fn_output_type,
        loss_fn_outputs=[o for out in outputs for o in out.loss_fn_outputs],
        metrics=reduce_metrics([o.metrics for o in outputs], sizes),
    )
