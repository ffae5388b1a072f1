"""``forward_backward_custom`` returns the same metrics as the OFFICIAL ``tinker`` 0.38 client.

Both clients train a fresh LoRA model of the same base on one local server with the same
torch loss, so the forward logprobs, the custom loss and the backward pass are the same; the
result's metrics must then have the same keys and values: the server's backward metrics with
its ``loss:sum`` renamed ``surrogate_loss:sum``, the loss function's metrics, and ``loss:sum``
= the custom loss (tinker-cookbook's DPO logs exactly these, step by step).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

torch = pytest.importorskip("torch")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    tinker = pytest.importorskip("tinker")

import tinkex  # noqa: E402
from tinkex.local import LocalServer  # noqa: E402
from tinkex.regularizers import L2  # noqa: E402

pytestmark = [
    pytest.mark.compat,
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

BASE_MODEL = "Qwen/Qwen3-8B"
TOKENS = [[72, 101, 108, 108, 111], [87, 111, 114, 108, 100, 33]]


def batch(types: Any) -> list[Any]:
    return [
        types.Datum(
            model_input=types.ModelInput.from_ints(tokens),
            loss_fn_inputs={"target_tokens": [*tokens[1:], 10]},
        )
        for tokens in TOKENS
    ]


def margin_loss(data: list[Any], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
    """A DPO-like loss over the two sequences, with metrics of its own."""
    first, second = (lp.sum() for lp in logprobs)
    loss = -torch.nn.functional.logsigmoid(first - second)
    margin = float((first - second).detach())
    return loss, {"margin": margin, "accuracy": float(margin > 0)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    data_dir = tmp_path_factory.mktemp("custom-loss")
    with LocalServer(data_dir=str(data_dir), long_poll_seconds=1.0) as srv:
        yield srv


def official_metrics(server: LocalServer) -> dict[str, float]:
    with tinker.ServiceClient(base_url=server.base_url, api_key="tml-local") as service:
        created = service.create_lora_training_client(BASE_MODEL, rank=4)
        trainer = created.result() if hasattr(created, "result") else created
        out = trainer.forward_backward_custom(batch(tinker.types), margin_loss).result()
    return dict(out.metrics)


def tinkex_trainer(service: tinkex.ServiceClient) -> tinkex.TrainingClient:
    return service.create_lora_training_client(BASE_MODEL, rank=4)


def test_metrics_match_the_official_client(server: LocalServer) -> None:
    theirs = official_metrics(server)
    with tinkex.ServiceClient(base_url=server.base_url, api_key="tml-local") as service:
        out = tinkex_trainer(service).forward_backward_custom(batch(tinkex.types), margin_loss)
        ours = dict(out.result(timeout=60).metrics)
    assert list(ours) == list(theirs)  # same keys, in the same order
    assert ours == theirs  # both hand the loss float32 tensors of the same logprobs
    assert set(theirs) == {"margin", "accuracy", "loss:sum", "surrogate_loss:sum"}


def loss_input_dtypes(service: Any, types: Any) -> set[Any]:
    """The dtypes of the logprobs tensors the client hands a custom loss."""
    seen: set[Any] = set()

    def recording_loss(data: list[Any], logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        seen.update(lp.dtype for lp in logprobs)
        return margin_loss(data, logprobs)

    created = service.create_lora_training_client(BASE_MODEL, rank=4)
    trainer = created.result() if hasattr(created, "result") else created
    trainer.forward_backward_custom(batch(types), recording_loss).result()
    return seen


def test_the_loss_sees_the_tensor_dtype_the_official_client_hands_it(server: LocalServer) -> None:
    with tinker.ServiceClient(base_url=server.base_url, api_key="tml-local") as service:
        theirs = loss_input_dtypes(service, tinker.types)
    with tinkex.ServiceClient(base_url=server.base_url, api_key="tml-local") as service:
        ours = loss_input_dtypes(service, tinkex.types)
    assert theirs == {torch.get_default_dtype()}
    assert ours == theirs


def test_regularizers_add_their_metrics(server: LocalServer) -> None:
    # A tinkex extra: with regularizers the result also says what each one contributed.
    with tinkex.ServiceClient(base_url=server.base_url, api_key="tml-local") as service:
        out = tinkex_trainer(service).forward_backward_custom(
            batch(tinkex.types), margin_loss, regularizers=[L2().spec(0.5)]
        )
        metrics = out.result(timeout=60).metrics
    output = out.result().custom_loss_output
    assert output is not None
    assert metrics["loss:sum"] == pytest.approx(output.loss_total)
    assert metrics["base_loss:sum"] == pytest.approx(output.base_loss)
    assert metrics["regularizer/l2:sum"] == pytest.approx(output.regularizers["l2"].value)
    assert {"margin", "accuracy", "surrogate_loss:sum", "regularizer_total:sum"} <= set(metrics)
