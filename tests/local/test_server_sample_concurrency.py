"""``LocalServer(sample_max_concurrent_requests=N)`` / ``tinkex serve --sample-max-concurrent N``:
what the client config advertises, and that both SDKs then keep at most N samples in flight."""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

import pytest

from tinkex.local import LocalServer
from tinkex.local.cli import add_serve_parser, server_options

from .conftest import Api

#: Added to every request, so requests in flight at once overlap by far more than the slack.
LATENCY = 0.2
SLACK = 0.05


def _advertised(server: LocalServer) -> Any:
    return Api(server).ok("client/config", {"sdk_version": "0.38.0"})[
        "sample_max_concurrent_requests"
    ]


def test_the_default_is_the_hosted_one_and_the_option_changes_it() -> None:
    with LocalServer() as default, LocalServer(sample_max_concurrent_requests=4000) as wide:
        assert _advertised(default) == 2000
        assert _advertised(wide) == 4000


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_a_bad_limit_is_refused_naming_the_option(bad: Any) -> None:
    with pytest.raises(ValueError, match="sample_max_concurrent_requests"):
        LocalServer(sample_max_concurrent_requests=bad)


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_serve_has_a_sample_max_concurrent_option() -> None:
    options = server_options(_serve_args("--sample-max-concurrent", "4000"))
    assert options["sample_max_concurrent_requests"] == 4000
    assert "sample_max_concurrent_requests" not in server_options(_serve_args())


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_serve_refuses_a_bad_sample_max_concurrent(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _serve_args("--sample-max-concurrent", bad)
    assert "--sample-max-concurrent" in capsys.readouterr().err


def _peak_overlap(caplog: pytest.LogCaptureFixture) -> int:
    """Most sample requests (asample, retrieve_future) the server was running at once, from
    the access log (logged as each ends, with its duration); each span is shortened by the
    slack at both ends so requests that merely follow each other do not count as overlapping."""
    spans = []
    for record in caplog.records:
        if record.name != "tinkex.local.access":
            continue
        _, path, _, millis, _ = record.args  # type: ignore[misc]
        if str(path).endswith(("/asample", "/retrieve_future")):
            started = record.created - float(millis) / 1000
            spans.append((started + SLACK, record.created - SLACK))
    assert spans, "the server logged no sample requests"
    return max(sum(1 for s, e in spans if s <= end <= e) for _, end in spans)


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize(("sdk", "limit"), [("tinkex", 1), ("tinkex", 2), ("tinker", 2)])
def test_each_sdk_keeps_at_most_the_advertised_samples_in_flight(
    sdk: str, limit: int, caplog: pytest.LogCaptureFixture
) -> None:
    package = pytest.importorskip(sdk)
    types = importlib.import_module(f"{sdk}.types")
    caplog.set_level(logging.INFO, logger="tinkex.local.access")
    with (
        LocalServer(sample_max_concurrent_requests=limit, faults=f"latency={LATENCY}s") as server,
        package.ServiceClient(base_url=server.base_url, api_key="tml-local") as client,
    ):
        created = client.create_sampling_client(base_model="tinkex/null")
        sampler = created.result() if hasattr(created, "result") else created
        params = types.SamplingParams(max_tokens=2, seed=1)
        prompt = types.ModelInput.from_ints([5, 6, 7])
        caplog.clear()
        futures = [sampler.sample(prompt, 1, params) for _ in range(3 * limit)]
        assert all(f.result(timeout=60).sequences for f in futures)
    # without the limit all of them would be sent at once
    assert _peak_overlap(caplog) == limit
