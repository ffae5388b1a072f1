"""The OFFICIAL ``tinker`` 0.38 client's session futures poller against the local server.

With ``LocalServer(session_futures=True)`` the server's client config says
``sample_use_retrieve_futures: true``, and the official SamplingClient then waits for its
samples through one ``retrieve_futures`` long poll per sampling session, fetching each result
with ``retrieve_future`` once reported. Its behaviour is the judge of wire compatibility: every
sample completes, the polls are few, and its acknowledgements (``retrieved_request_ids``) free
the results on the server long before ``delivered_result_ttl``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest

tinker = pytest.importorskip("tinker")
from tinker import types  # noqa: E402

from tinkex.local import LocalServer  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

SAMPLES = 200


def _endpoint_counts(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """``POST /api/v1/<endpoint>`` requests the server logged, by endpoint."""
    counts: Counter[str] = Counter()
    for record in caplog.records:
        if record.name == "tinkex.local.access":
            counts[str(record.args[1]).rsplit("/", 1)[-1]] += 1  # type: ignore[index]
    return counts


def test_official_client_samples_through_retrieve_futures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tinkex.local.access")
    with (
        LocalServer(
            long_poll_seconds=2.0, session_futures=True, delivered_result_ttl=600
        ) as server,
        tinker.ServiceClient(base_url=server.base_url, api_key="tml-local") as client,
    ):
        created = client.create_sampling_client(base_model="tinkex/null")
        sampler = created.result() if hasattr(created, "result") else created
        params = types.SamplingParams(max_tokens=3, seed=1, temperature=1.0)
        prompt = types.ModelInput.from_ints([5, 6, 7])
        futures = [sampler.sample(prompt, 1, params) for _ in range(SAMPLES)]
        results = [f.result(timeout=120) for f in futures]
        assert all(len(r.sequences) == 1 and r.sequences[0].tokens for r in results)
        # the poller's acknowledgements free the results (well before delivered_result_ttl)
        deadline = time.monotonic() + 20
        while server.memory.held("results") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.memory.held("results") == 0
    counts = _endpoint_counts(caplog)
    assert counts["asample"] == SAMPLES
    # each result is fetched once, after the session poll reported it
    assert counts["retrieve_future"] == SAMPLES
    assert 1 <= counts["retrieve_futures"] < SAMPLES // 4, counts
