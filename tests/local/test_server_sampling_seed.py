"""LocalServer(sampling_seed=N): unseeded sample requests get a seed derived from N and the
request, so a program run twice against fresh servers samples the same tokens."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tinkex.local import LocalServer
from tinkex.local.cli import add_serve_parser

from .conftest import Api

PROMPTS = [[256, 72, 105], [256, 79, 107, 33], [256, 104]]


def _tokens(api: Api, sampler_id: str, seq_id: int | None, prompt: list[int], **params: Any) -> Any:
    future = api.ok(
        "asample",
        {
            "sampling_session_id": sampler_id,
            **({} if seq_id is None else {"seq_id": seq_id}),
            "num_samples": 2,
            "prompt": {"chunks": [{"tokens": prompt, "type": "encoded_text"}]},
            "sampling_params": {"max_tokens": 12, "temperature": 1.0, "stop": [], **params},
        },
    )
    return [seq["tokens"] for seq in api.result(future["request_id"])["sequences"]]


def _run(server: LocalServer, *, concurrent: bool = False) -> list[Any]:
    """Each prompt twice (identical requests) on one sampler; concurrently or in order."""
    api = Api(server)
    sampler_id = api.sampler()
    jobs = [(i, prompt) for i, prompt in enumerate(PROMPTS * 2)]
    if not concurrent:
        return [_tokens(api, sampler_id, i, prompt) for i, prompt in jobs]
    with ThreadPoolExecutor(6) as pool:  # reversed submission, all in flight at once
        futures = {i: pool.submit(_tokens, Api(server), sampler_id, i, p) for i, p in jobs[::-1]}
        return [futures[i].result() for i, _ in jobs]


def test_unseeded_samples_repeat_across_servers() -> None:
    with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as first:
        reference = _run(first)
    with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as second:
        assert _run(second) == reference
    with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as third:
        assert _run(third, concurrent=True) == reference  # arrival order does not matter
    with LocalServer(sampling_seed=8, long_poll_seconds=0.5) as other:
        assert _run(other) != reference
    n = len(PROMPTS)
    for once, twice in zip(reference[:n], reference[n:], strict=True):
        assert once != twice  # identical requests of one session still get new samples
        assert once[0] != once[1]  # and the samples of one request differ


def test_requests_without_seq_id_are_numbered_by_occurrence() -> None:
    runs = []
    for _ in range(2):
        with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as server:
            api = Api(server)
            sampler_id = api.sampler()
            runs.append([_tokens(api, sampler_id, None, PROMPTS[0]) for _ in range(3)])
    assert runs[0] == runs[1]
    assert len({str(result) for result in runs[0]}) == 3


def test_an_explicit_seed_is_kept() -> None:
    with (
        LocalServer(sampling_seed=7, long_poll_seconds=0.5) as seeded,
        LocalServer(long_poll_seconds=0.5) as plain,
    ):
        results = []
        for server in (seeded, plain):
            api = Api(server)
            results.append(_tokens(api, api.sampler(), 0, PROMPTS[0], seed=3))
        assert results[0] == results[1]


def test_serve_has_a_sampling_seed_option() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "--sampling-seed", "5"]).sampling_seed == 5
    assert parser.parse_args(["serve"]).sampling_seed is None


STRIDE = 1_000_000_000  # the clone block of a seq_id (tinker's request_metadata_hash_tag)


def _clones_run(server: LocalServer, blocks: list[int]) -> list[Any]:
    """What a spawn-pool rollout does: the original client samples, then each unpickled copy
    (numbering its requests from ``block * STRIDE``) samples the same prompts in order."""
    api = Api(server)
    sampler_id = api.sampler()
    results = [_tokens(api, sampler_id, i, p) for i, p in enumerate(PROMPTS)]
    for block in blocks:
        results += [_tokens(api, sampler_id, block * STRIDE + i, p) for i, p in enumerate(PROMPTS)]
    return results


def test_unpickled_clients_sample_the_same_across_runs_whatever_their_offsets() -> None:
    """Before: the seed came from the whole seq_id, so copies of a SamplingClient unpickled in
    spawn workers (random offsets) sampled differently in every run (cookbook SPAWN_CLONES)."""
    with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as first:
        reference = _clones_run(first, [431_017, 88])
    with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as second:
        assert _clones_run(second, [5, 999_999_999]) == reference
    n = len(PROMPTS)
    original, clone_a, clone_b = reference[:n], reference[n : 2 * n], reference[2 * n :]
    for mine, a, b in zip(original, clone_a, clone_b, strict=True):
        # identical requests of different clients at the same position still differ
        assert mine != a and a != b and mine != b


def test_a_resend_gets_the_same_answer_and_a_429_consumes_no_seed() -> None:
    body = {
        "num_samples": 2,
        "prompt": {"chunks": [{"tokens": PROMPTS[0], "type": "encoded_text"}]},
        "sampling_params": {"max_tokens": 12, "temperature": 1.0, "stop": []},
        "seq_id": 3 * STRIDE,
    }
    runs = []
    for refuse_first in (False, True):
        with LocalServer(sampling_seed=7, long_poll_seconds=0.5) as server:
            api = Api(server)
            request = {**body, "sampling_session_id": api.sampler()}
            if refuse_first:  # as if the memory budget were busy: 429, the client retries
                busy = server.memory.hold("jobs", server.memory.limit - 1024)
                assert api.post("asample", request).status_code == 429
                busy.release()
            accepted = api.ok("asample", request)
            resent = api.ok("asample", request)  # the answer was lost: the same request again
            assert resent["request_id"] == accepted["request_id"]
            runs.append(api.result(accepted["request_id"])["sequences"])
            assert api.result(resent["request_id"])["sequences"] == runs[-1]
    assert runs[0] == runs[1]
