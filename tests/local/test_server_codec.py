"""Wire formats: protobuf (+zstd) forward_backward bodies, protobuf/JSON results, JSON parsing."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import zstandard

from tinkex import types
from tinkex.local import LocalServer
from tinkex.local.codec import CodecError, parse_forward_backward, tensor_from_json
from tinkex.types import _proto
from tinkex.types._converter import to_wire

from .conftest import Api, datum, fwdbwd

TOKENS = [72, 101, 108, 108, 111]


def proto_body(model_id: str, seq_id: int, *, forward_only: bool = False) -> bytes:
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints(TOKENS),
            loss_fn_inputs={"target_tokens": [*TOKENS[1:], 33], "weights": [1.0] * 5},
        )
    ]
    fb_input = types.ForwardBackwardInput(data=data, loss_fn="cross_entropy")
    if forward_only:
        request: types.ForwardRequest | types.ForwardBackwardRequest = types.ForwardRequest(
            forward_input=fb_input, model_id=model_id, seq_id=seq_id
        )
    else:
        request = types.ForwardBackwardRequest(
            forward_backward_input=fb_input, model_id=model_id, seq_id=seq_id
        )
    return _proto.encode_forward_backward_request(request)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "zstd"])
def test_protobuf_forward_backward_over_http(api: Api, compress: bool) -> None:
    model_id = api.model()
    body = proto_body(model_id, 1)
    headers = {"Content-Type": "application/x-protobuf"}
    if compress:
        body = zstandard.ZstdCompressor().compress(body)
        headers["Content-Encoding"] = "zstd"
    response = api.http.post(api.base + "forward_backward", data=body, headers=headers)
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    raw = api.result(request_id, accept="application/x-protobuf")
    output = _proto.decode_forward_backward_output(raw)
    assert len(output.loss_fn_outputs) == 1 and "loss:sum" in output.metrics
    as_json = api.result(request_id)
    assert as_json["metrics"]["loss:sum"] == pytest.approx(output.metrics["loss:sum"])
    logprobs = output.loss_fn_outputs[0]["logprobs"].to_numpy()
    assert np.allclose(logprobs, as_json["loss_fn_outputs"][0]["logprobs"]["data"], atol=1e-6)
    # a resent protobuf body dedupes to the same request
    again = api.http.post(api.base + "forward_backward", data=body, headers=headers)
    assert again.json()["request_id"] == request_id


def test_malformed_bodies_are_400(api: Api) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    garbage = api.http.post(api.base + "forward_backward", data=b"\xff\xff\xff", headers=headers)
    assert garbage.status_code == 400 and "protobuf" in garbage.json()["detail"]
    bad_zstd = api.http.post(
        api.base + "forward_backward", data=b"nope", headers={**headers, "Content-Encoding": "zstd"}
    )
    assert bad_zstd.status_code == 400 and "zstd" in bad_zstd.json()["detail"]
    model_id = api.model()
    missing = api.post("forward_backward", {"model_id": model_id, "seq_id": 1})
    assert missing.status_code == 400 and "forward_backward_input" in missing.json()["detail"]
    bad_tokens = fwdbwd(model_id, 1, [datum(TOKENS)])
    bad_tokens["forward_backward_input"]["data"][0]["model_input"]["chunks"][0]["tokens"] = "x"
    response = api.post("forward_backward", bad_tokens)
    assert response.status_code == 400
    assert "data[0].model_input.chunks[0].tokens" in response.json()["detail"]


def test_json_tensor_parsing() -> None:
    dense = tensor_from_json({"data": [1, 2, 3, 4], "dtype": "int64", "shape": [2, 2]}, "t")
    assert dense.dtype == np.int64 and dense.tolist() == [[1, 2], [3, 4]]
    sparse = tensor_from_json(
        {
            "data": [5.0, 9.0],
            "dtype": "float32",
            "shape": [2, 3],
            "sparse_crow_indices": [0, 1, 2],
            "sparse_col_indices": [2, 0],
        },
        "t",
    )
    assert sparse.tolist() == [[0, 0, 5.0], [9.0, 0, 0]]
    assert tensor_from_json([1.0, 2.0], "t").tolist() == [1.0, 2.0]
    with pytest.raises(CodecError, match=r"t\.shape"):
        tensor_from_json({"data": [1, 2, 3], "dtype": "int64", "shape": [2, 2]}, "t")
    with pytest.raises(CodecError, match=r"t\.dtype"):
        tensor_from_json({"data": [1], "dtype": "complex64"}, "t")
    with pytest.raises(CodecError, match="not valid JSON"):
        parse_forward_backward(b"{", "application/json", "", forward_only_endpoint=False)


def test_factory_fixture_starts_dedicated_servers(
    tinker_server_factory: Callable[..., LocalServer],
) -> None:
    first = tinker_server_factory(api_key="tml-one")
    second = tinker_server_factory(faults="create_session:503:1")
    assert first.port != second.port and first.api_key == "tml-one"
    assert Api(second).post("create_session", {}).status_code == 503


@pytest.mark.parametrize("base_model", ["tinkex/null", "tinkex/tiny"])
def test_plain_protobuf_batches_answer_as_their_json_twins(api: Api, base_model: str) -> None:
    """A protobuf batch of plain datums (read, run and encoded as columns on the null model)
    gets the very answer of the same batch sent as JSON (read and run datum by datum)."""
    rng = np.random.default_rng(2)
    lists = [rng.integers(0, 250, n + 1).tolist() for n in (5, 5, 64, 1, 64)]
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints(seq[:-1]),
            loss_fn_inputs={
                "target_tokens": seq[1:],
                "weights": rng.random(len(seq) - 1).astype(np.float32).tolist(),
            },
        )
        for seq in lists
    ]
    answers = []
    for wire in ("protobuf", "json"):
        model_id = api.model(base_model)
        request = types.ForwardBackwardRequest(
            forward_backward_input=types.ForwardBackwardInput(data=data, loss_fn="cross_entropy"),
            model_id=model_id,
            seq_id=1,
        )
        if wire == "protobuf":
            body = _proto.encode_forward_backward_request(request)
            headers = {"Content-Type": "application/x-protobuf"}
            response = api.http.post(api.base + "forward_backward", data=body, headers=headers)
        else:
            response = api.http.post(api.base + "forward_backward", json=to_wire(request))
        assert response.status_code == 200, response.text
        request_id = response.json()["request_id"]
        raw = api.result(request_id, accept="application/x-protobuf")
        answers.append((raw, api.result(request_id)))
    (proto_raw, proto_json), (json_raw, json_json) = answers
    assert proto_raw == json_raw
    assert proto_json == json_json
    output = _proto.decode_forward_backward_output(proto_raw)
    assert [len(o["logprobs"].to_numpy()) for o in output.loss_fn_outputs] == [5, 5, 64, 1, 64]
