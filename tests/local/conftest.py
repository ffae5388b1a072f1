"""Helpers for driving the local server over plain HTTP with ``requests``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tinkex.local import LocalServer

KEY = "tml-local"


class Api:
    """A tiny HTTP client for the local server's ``/api/v1`` endpoints."""

    def __init__(self, server: LocalServer, key: str = KEY) -> None:
        self.server = server
        self.base = server.base_url + "/api/v1/"
        self.http = requests.Session()
        self.http.headers["X-API-Key"] = key

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        return self.http.post(self.base + path, json=body if body is not None else {}, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.base + path, **kwargs)

    def ok(self, path: str, body: Any = None) -> Any:
        response = self.post(path, body)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def result(
        self, request_id: str, *, accept: str = "application/json", timeout: float = 30
    ) -> Any:
        """Poll retrieve_future until the request is done; returns the JSON (or raw) result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.post(
                "retrieve_future",
                {"request_id": request_id, "allow_metadata_only": True},
                headers={"Accept": accept},
            )
            assert response.status_code == 200, response.text
            if "protobuf" in response.headers.get("content-type", ""):
                return response.content
            body = response.json()
            if body.get("type") != "try_again":
                return body
        raise AssertionError(f"{request_id} did not finish in {timeout} s")

    def session(self) -> str:
        return str(self.ok("create_session", {"tags": [], "user_metadata": {}})["session_id"])

    def sampler(self, session: str | None = None, base_model: str = "tinkex/tiny") -> str:
        """A new sampling session of ``base_model`` (in a new session unless ``session``,
        sampling_session_seq_id 0); returns its id."""
        body = {
            "session_id": session or self.session(),
            "sampling_session_seq_id": 0,
            "base_model": base_model,
        }
        return str(self.ok("create_sampling_session", body)["sampling_session_id"])

    def model(
        self,
        base_model: str = "tinkex/tiny",
        rank: int = 4,
        session: str | None = None,
        model_seq_id: int = 0,
    ) -> str:
        session = session or self.session()
        future = self.ok(
            "create_model",
            create_model_body(
                session, {"rank": rank}, model_seq_id=model_seq_id, base_model=base_model
            ),
        )
        assert self.result(future["request_id"]) == {
            "model_id": future["model_id"],
            "type": "create_model",
        }
        return str(future["model_id"])


def create_model_body(
    session: str,
    lora_config: dict[str, Any],
    *,
    model_seq_id: int = 0,
    base_model: str = "tinkex/tiny",
    **extra: Any,
) -> dict[str, Any]:
    """A create_model request in JSON wire shape (``extra``: more fields, e.g. user_metadata)."""
    return {
        "session_id": session,
        "model_seq_id": model_seq_id,
        "base_model": base_model,
        "lora_config": lora_config,
        **extra,
    }


def datum(tokens: list[int], targets: list[int] | None = None) -> dict[str, Any]:
    """A cross-entropy Datum in JSON wire shape."""
    targets = targets if targets is not None else [*tokens[1:], 33]
    return {
        "model_input": {"chunks": [{"tokens": tokens, "type": "encoded_text"}]},
        "loss_fn_inputs": {
            "target_tokens": {"data": targets, "dtype": "int64", "shape": [len(targets)]},
            "weights": {"data": [1.0] * len(targets), "dtype": "float32", "shape": [len(targets)]},
        },
    }


def fwdbwd(
    model_id: str, seq_id: int, data: list[dict[str, Any]], loss_fn: str = "cross_entropy"
) -> dict[str, Any]:
    return {
        "forward_backward_input": {"data": data, "loss_fn": loss_fn},
        "model_id": model_id,
        "seq_id": seq_id,
    }


def optim(model_id: str, seq_id: int, lr: float = 1e-2) -> dict[str, Any]:
    return {
        "adam_params": {"learning_rate": lr},
        "model_id": model_id,
        "seq_id": seq_id,
        "type": "optim_step",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One short-long-poll server per test module."""
    with LocalServer(data_dir=str(tmp_path_factory.mktemp("local")), long_poll_seconds=0.5) as srv:
        yield srv


@pytest.fixture()
def api(server: LocalServer) -> Api:
    return Api(server)
