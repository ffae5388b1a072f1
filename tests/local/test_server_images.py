"""Image chunks on the local server (issue 14, multimodal): a vision script runs offline end to
end with both SDKs. An image reads as ``expected_tokens`` ids derived from its bytes, so it takes
the positions the client counted, the same image reads the same and another image differently;
bad images are 400s naming the chunk."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest
import tinker

import tinkex
from tinkex.local import LocalServer
from tinkex.local.codec import PROTOBUF, parse_forward_backward
from tinkex.local.codec.images import DEFAULT_IMAGE_TOKENS, MAX_IMAGE_TOKENS
from tinkex.types import _proto
from tinkex.types._converter import to_wire

from .conftest import Api, fwdbwd

TEXT = [256, 72, 105]
MODEL = "Qwen/Qwen3-VL-30B-A3B-Instruct"


def png(rgb: tuple[int, int, int]) -> bytes:
    """A real 1x1 PNG of colour ``rgb``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + bytes(rgb))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


RED, BLUE = png((255, 0, 0)), png((0, 0, 255))


def _prompt(sdk: Any, image: bytes, expected: int = 8) -> Any:
    return sdk.types.ModelInput(
        chunks=[
            sdk.types.EncodedTextChunk(tokens=TEXT),
            sdk.types.ImageChunk(data=image, format="png", expected_tokens=expected),
            sdk.types.EncodedTextChunk(tokens=[33]),
        ]
    )


@pytest.mark.parametrize("sdk", [tinker, tinkex], ids=["official", "tinkex"])
def test_a_vision_script_samples_and_trains_on_images(server: LocalServer, sdk: Any) -> None:
    with sdk.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(base_model=MODEL, rank=4).result()
        sampler = training.save_weights_and_get_sampling_client().result()
        red, blue = _prompt(sdk, RED), _prompt(sdk, BLUE)
        assert red.length == len(TEXT) + 8 + 1
        logprobs = [sampler.compute_logprobs(p).result() for p in (red, red, blue)]
        assert len(logprobs[0]) == red.length  # the image took the positions counted
        assert logprobs[0] == logprobs[1] and logprobs[0] != logprobs[2]
        params = sdk.types.SamplingParams(max_tokens=4, seed=1)
        sample = sampler.sample(red, num_samples=1, sampling_params=params).result()
        assert len(sample.sequences[0].tokens) >= 1
        datum = sdk.types.Datum(
            model_input=red,
            loss_fn_inputs={
                "target_tokens": [*range(65, 65 + red.length)],
                "weights": [1.0] * red.length,
            },
        )
        losses = []
        for _ in range(3):
            result = training.forward_backward([datum], "cross_entropy").result()
            losses.append(result.metrics["loss:sum"])
            training.optim_step(sdk.types.AdamParams(learning_rate=5e-2)).result()
        assert losses[-1] < losses[0]  # training on a datum with an image is real training


def _image_chunk(data: bytes, **extra: Any) -> dict[str, Any]:
    return {"type": "image", "data": base64.b64encode(data).decode(), "format": "png", **extra}


def _json_datum(chunks: list[dict[str, Any]], length: int) -> dict[str, Any]:
    return {
        "model_input": {"chunks": chunks},
        "loss_fn_inputs": {
            "target_tokens": {"data": [65] * length, "dtype": "int64", "shape": [length]},
            "weights": {"data": [1.0] * length, "dtype": "float32", "shape": [length]},
        },
    }


def test_json_images_asset_pointers_and_the_default_count(api: Api) -> None:
    model_id = api.model()
    text = {"type": "encoded_text", "tokens": TEXT}
    pointer = {"type": "image_asset_pointer", "location": "s3://bucket/cat.png", "format": "png"}
    chunks = [text, _image_chunk(RED), pointer]
    length = len(TEXT) + 2 * DEFAULT_IMAGE_TOKENS  # neither image says how many positions
    future = api.ok("forward_backward", fwdbwd(model_id, 1, [_json_datum(chunks, length)]))
    assert "loss:sum" in api.result(future["request_id"])["metrics"]
    wrong = api.post("forward_backward", fwdbwd(model_id, 2, [_json_datum(chunks, length + 1)]))
    assert wrong.status_code == 400, wrong.text  # the lengths are checked as for text


@pytest.mark.parametrize(
    "chunk, expected",
    [
        (
            {"type": "image", "data": base64.b64encode(RED).decode(), "format": "jpeg"},
            "data[0].model_input.chunks[1].data is not a jpeg image",
        ),
        (
            _image_chunk(RED, expected_tokens=MAX_IMAGE_TOKENS + 1),
            f"chunks[1].expected_tokens = {MAX_IMAGE_TOKENS + 1} is out of range",
        ),
        ({"type": "image", "data": "not base64!", "format": "png"}, "must be base64 text"),
        ({"type": "image", "data": base64.b64encode(RED).decode(), "format": "gif"}, "'gif'"),
    ],
)
def test_bad_images_are_400s_naming_the_chunk(
    api: Api, chunk: dict[str, Any], expected: str
) -> None:
    text = {"type": "encoded_text", "tokens": TEXT}
    body = fwdbwd(api.model(), 1, [_json_datum([text, chunk], len(TEXT) + 1)])
    answer = api.post("forward_backward", body)
    assert answer.status_code == 400 and expected in answer.json()["detail"], answer.text


def test_protobuf_bodies_with_images_read_as_json_ones() -> None:
    """The protobuf fast path reads text only; a datum with an image is read from the full
    decode, to the same ids as the JSON body."""
    datum = tinkex.types.Datum(
        model_input=_prompt(tinkex, BLUE, expected=5),
        loss_fn_inputs={"target_tokens": [65] * 9, "weights": [1.0] * 9},
    )
    request = tinkex.types.ForwardBackwardRequest(
        forward_backward_input=tinkex.types.ForwardBackwardInput(
            data=[datum], loss_fn="cross_entropy"
        ),
        model_id="m",
        seq_id=0,
    )
    proto = parse_forward_backward(
        _proto.encode_forward_backward_request(request), PROTOBUF, "", forward_only_endpoint=False
    )
    as_json = parse_forward_backward(
        json.dumps(to_wire(request)).encode(), "application/json", "", forward_only_endpoint=False
    )
    tokens = proto.data[0].tokens
    assert tokens.tolist() == as_json.data[0].tokens.tolist()
    assert len(tokens) == 9 and tokens[:3].tolist() == TEXT and tokens[-1] == 33
