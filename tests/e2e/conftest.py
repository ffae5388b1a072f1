"""Fixtures for end-to-end tests: tinkex clients against a real LocalServer over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

import tinkex
from tinkex import types

if TYPE_CHECKING:
    from tinkex.local import LocalServer

BASE_MODEL = "tinkex/tiny"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_PROJECT_ID", "TINKER_TAGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TINKER_TELEMETRY", "0")


@pytest.fixture
def service(tinker_server: LocalServer) -> Iterator[tinkex.ServiceClient]:
    client = tinkex.ServiceClient(base_url=tinker_server.base_url, api_key=tinker_server.api_key)
    yield client
    client.close()


@pytest.fixture
def training(service: tinkex.ServiceClient) -> tinkex.TrainingClient:
    client: tinkex.TrainingClient = service.create_lora_training_client(
        BASE_MODEL, rank=4, seed=0
    ).result(timeout=30)
    return client


def make_datum(tokens: list[int]) -> types.Datum:
    """Next-token prediction on ``tokens`` (inputs[:-1] -> targets[1:])."""
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={
            "target_tokens": tokens[1:],
            "weights": [1.0] * (len(tokens) - 1),
        },
    )


BATCH = [make_datum([10, 20, 30, 40, 50, 60]), make_datum([70, 80, 90, 100, 110])]
