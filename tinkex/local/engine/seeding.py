"""Deterministic sampling: seeds for sample requests that bring none (``sampling_seed``).

A sample request without ``SamplingParams.seed`` is drawn from fresh entropy, so two runs of
the same RL loop never log the same rewards. With ``LocalServer(sampling_seed=N)`` (``tinkex
serve --sampling-seed N``) such a request gets a seed derived from ``N``, the sampler's weights,
the prompt, the sampling settings, ``num_samples`` and the request's number: its ``seq_id``
(the sampling client numbers its requests in the order they are made, 0, 1, 2, ...), or, for a
request without one, how many identical requests the sampling session made before it.

Nothing that varies between runs enters the seed (not the session or sampler ids, not the
order in which requests arrive), so the same program against a fresh server samples the same
tokens, concurrent requests included, as long as each sampling client makes its requests in
the same order; identical requests still get different samples (their numbers differ). Not
reproducible: requests retried with a new ``seq_id`` after a failure, and copies of a
SamplingClient unpickled in another process (they number their requests from a random offset).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from tinkex.local.model import SamplerWeights, SampleSettings

__all__ = ["SeedBasis", "SeedCounter", "derive_seed"]


@dataclasses.dataclass(frozen=True)
class SeedBasis:
    """What an unseeded request's seed is derived from, besides the sampler's weights and the
    request's content: the server's base seed and the request's number."""

    base_seed: int
    number: int


def _request_key(prompt: npt.NDArray[np.int64], settings: SampleSettings, num_samples: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(prompt, dtype="<i8").tobytes())
    digest.update(repr((dataclasses.replace(settings, seed=None), num_samples)).encode())
    return digest.hexdigest()


class SeedCounter:
    """Numbers the unseeded requests of each sampling session (loop thread only)."""

    def __init__(self, base_seed: int, max_keys: int = 200_000) -> None:
        self.base_seed = base_seed
        self.max_keys = max_keys
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    def basis(
        self,
        sampler_id: str,
        prompt: npt.NDArray[np.int64],
        settings: SampleSettings,
        num_samples: int,
        seq_id: int | None,
    ) -> SeedBasis:
        """The seed basis of request ``seq_id`` of ``sampler_id`` (without a seq_id: of the
        next request with these inputs)."""
        if seq_id is not None:
            return SeedBasis(self.base_seed, seq_id)
        key = (sampler_id, _request_key(prompt, settings, num_samples))
        occurrence = self._counts.get(key, 0)
        self._counts[key] = occurrence + 1
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        # numbered below the seq_ids' range, so the two kinds never share a number
        return SeedBasis(self.base_seed, -1 - occurrence)


def derive_seed(
    basis: SeedBasis,
    weights: SamplerWeights,
    prompt: npt.NDArray[np.int64],
    settings: SampleSettings,
    num_samples: int,
) -> int:
    """The seed of one unseeded request (a 63-bit int)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{basis.base_seed}|{basis.number}|{weights.digest()}|".encode())
    digest.update(_request_key(prompt, settings, num_samples).encode())
    return int.from_bytes(digest.digest(), "little") >> 1
