"""Deterministic sampling: seeds for sample requests that bring none (``sampling_seed``).

A sample request without ``SamplingParams.seed`` is drawn from fresh entropy, so two runs of
the same RL loop never log the same rewards. With ``LocalServer(sampling_seed=N)`` (``tinkex
serve --sampling-seed N``) such a request gets a seed derived from ``N``, the sampler's weights,
the prompt, the sampling settings, ``num_samples`` and the request's number, which is two
parts:

* its **position**: the ``seq_id`` within its client's block of :data:`CLONE_STRIDE` numbers.
  A sampling client numbers its requests 0, 1, 2, ... in the order they are made; a copy
  unpickled in another process numbers them the same way from a random block
  (``k * CLONE_STRIDE``, tinker's clone id), so the block is left out and only the position
  counts;
* its **occurrence**: how many accepted requests of the same sampling session with the same
  position and the same content came before it. It tells apart identical requests of two
  copies (both at position 0, say); for a request without ``seq_id`` it is the whole number.

Nothing that varies between runs enters the seed (not the session or sampler ids, not the
clone blocks, not the order in which different requests arrive), so the same program against a
fresh server samples the same tokens, concurrent requests and spawn-worker copies included;
identical requests still get different samples (their positions or occurrences differ). Only
identical requests of different copies racing each other may trade answers between runs. A
resend under the same ``seq_id`` is answered with the original future before any of this, and a
request refused before it is accepted (a 429) is not counted, so its retry gets the seed the
first attempt would have had. Not reproducible: requests retried under a new ``seq_id``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from tinkex.local.model import SamplerWeights, SampleSettings

__all__ = ["CLONE_STRIDE", "SeedBasis", "SeedCounter", "derive_seed"]


#: the block of seq_ids one sampling client numbers its requests in (tinker's clone id times it)
CLONE_STRIDE = 1_000_000_000


@dataclasses.dataclass(frozen=True)
class SeedBasis:
    """What an unseeded request's seed is derived from, besides the sampler's weights and the
    request's content: the server's base seed, the request's position (its ``seq_id`` modulo
    :data:`CLONE_STRIDE`; None without a ``seq_id``) and its occurrence."""

    base_seed: int
    position: int | None
    occurrence: int


def _request_key(prompt: npt.NDArray[np.int64], settings: SampleSettings, num_samples: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(prompt, dtype="<i8").tobytes())
    digest.update(repr((dataclasses.replace(settings, seed=None), num_samples)).encode())
    return digest.hexdigest()


class SeedCounter:
    """Counts the occurrences of each unseeded request per sampling session and position
    (loop thread only; the ``max_keys`` most recent are kept)."""

    def __init__(self, base_seed: int, max_keys: int = 200_000) -> None:
        self.base_seed = base_seed
        self.max_keys = max_keys
        self._counts: OrderedDict[tuple[str, int | None, str], int] = OrderedDict()

    def basis(
        self,
        sampler_id: str,
        prompt: npt.NDArray[np.int64],
        settings: SampleSettings,
        num_samples: int,
        seq_id: int | None,
    ) -> SeedBasis:
        """The seed basis of the accepted request ``seq_id`` of ``sampler_id`` (counts it: call
        once per accepted request, never for a resend or a refused one)."""
        position = None if seq_id is None else seq_id % CLONE_STRIDE
        key = (sampler_id, position, _request_key(prompt, settings, num_samples))
        occurrence = self._counts.get(key, 0)
        self._counts[key] = occurrence + 1
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return SeedBasis(self.base_seed, position, occurrence)


def derive_seed(
    basis: SeedBasis,
    weights: SamplerWeights,
    prompt: npt.NDArray[np.int64],
    settings: SampleSettings,
    num_samples: int,
) -> int:
    """The seed of one unseeded request (a 63-bit int)."""
    position = "-" if basis.position is None else str(basis.position)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{basis.base_seed}|{position}|{basis.occurrence}|{weights.digest()}|".encode())
    digest.update(_request_key(prompt, settings, num_samples).encode())
    return int.from_bytes(digest.digest(), "little") >> 1
