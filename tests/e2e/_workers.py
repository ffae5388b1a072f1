"""Functions run in spawned child processes (importable by module name)."""

from __future__ import annotations

import pickle

from tinkex import types


def sample_in_child(pickled_client: bytes) -> list[int]:
    """Unpickle a SamplingClient and sample from it; returns the sampled tokens."""
    client = pickle.loads(pickled_client)
    params = types.SamplingParams(max_tokens=4, seed=1, temperature=0.0)
    result = client.sample(types.ModelInput.from_ints([1, 2, 3]), 1, params).result(timeout=30)
    return list(result.sequences[0].tokens)
