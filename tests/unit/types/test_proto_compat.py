"""Byte compatibility of tinkex's protobuf codec with the official SDK's generated classes.

Encode with tinkex and parse with ``tinker.proto.tinker_public_pb2`` (and vice versa); skipped
when the official ``tinker`` package is not installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinkex.types import (
    Datum,
    DmelChunk,
    EncodedTextChunk,
    ForwardBackwardInput,
    ForwardBackwardOutput,
    ForwardBackwardRequest,
    ForwardRequest,
    ImageChunk,
    ModelInput,
    PromptAltTokens,
    PromptProvenanceSpan,
    SampledProvenanceSpan,
    SampledSequence,
    SampleResponse,
    TensorData,
    TopkLogprobs,
)
from tinkex.types._proto import (
    decode_forward_backward_output,
    decode_forward_backward_request,
    decode_sample_response,
    encode_forward_backward_output,
    encode_forward_backward_request,
    encode_sample_response,
)

pb: Any = pytest.importorskip("tinker.proto.tinker_public_pb2")

PROTO_FILE = Path(__file__).parents[3] / "tinkex" / "types" / "tinker_public.proto"


def _i32(values: list[int]) -> bytes:
    return np.array(values, dtype="<i4").tobytes()


def _i64(values: list[int]) -> bytes:
    return np.array(values, dtype="<i8").tobytes()


def _f32(values: list[float]) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


# -- schema --------------------------------------------------------------------------------------


def _parse_proto_file(text: str) -> dict[str, dict[str, int]]:
    """{message or enum name: {field or value name: number}} of our flat .proto file."""
    out: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        head = re.match(r"^(message|enum) (\w+) \{$", line)
        if head:
            current = out.setdefault(head.group(2), {})
            continue
        item = re.match(
            r"^(?:(?:optional|repeated) )?(?:(?:[\w.]+|map<\w+, \w+>) )?(\w+) = (\d+);$", line
        )
        if item and current is not None:
            current[item.group(1)] = int(item.group(2))
    return out


def test_proto_file_matches_sdk_schema() -> None:
    ours = _parse_proto_file(PROTO_FILE.read_text())
    theirs: dict[str, dict[str, int]] = {}
    for name, desc in pb.DESCRIPTOR.message_types_by_name.items():
        theirs[name] = {f.name: f.number for f in desc.fields}
    for name, desc in pb.DESCRIPTOR.enum_types_by_name.items():
        theirs[name] = {v.name: v.number for v in desc.values}
    assert ours == theirs


# -- ForwardBackwardRequest ----------------------------------------------------------------------


def _request() -> ForwardBackwardRequest:
    datums = [
        Datum(
            model_input=ModelInput(
                chunks=[
                    EncodedTextChunk(tokens=[151644, 872, 198]),
                    ImageChunk(data=b"\x89PNGdata", format="png", expected_tokens=0),
                    ImageChunk(data=b"\xff\xd8", format="jpeg"),
                    DmelChunk(dmel=b"\x01\x01\x02ab"),
                ]
            ),
            loss_fn_inputs={
                "target_tokens": TensorData(np.array([1, 2, 3]), "int64", [3]),
                "weights": TensorData(
                    np.array([0.0, 2.0], dtype=np.float32), "float32", [2, 3], [0, 1, 2], [1, 2]
                ),
            },
            model_input_spans=[PromptProvenanceSpan(sequence_id="sq", offset=1, length=2)],
            loss_fn_input_spans=[SampledProvenanceSpan(sequence_id="sq2", offset=0, length=3)],
        ),
        Datum(model_input=ModelInput.from_ints([5])),
    ]
    return ForwardBackwardRequest(
        ForwardBackwardInput(
            datums, "ppo", {"clip_high_threshold": 1.2, "clip_low_threshold": 0.8, "variant": "tok"}
        ),
        "sess:train:0",
        42,
    )


def _expected_request_pb() -> Any:
    msg = pb.ForwardBackwardRequest(model_id="sess:train:0", seq_id=42, loss_fn="ppo")
    msg.loss_fn_config["clip_high_threshold"] = 1.2
    msg.loss_fn_config["clip_low_threshold"] = 0.8
    msg.loss_fn_config_v2["clip_high_threshold"].number = 1.2
    msg.loss_fn_config_v2["clip_low_threshold"].number = 0.8
    msg.loss_fn_config_v2["variant"].text = "tok"
    d = msg.data.add()
    d.model_input.add().encoded_text.tokens = _i32([151644, 872, 198])
    img = d.model_input.add().image
    img.data, img.format, img.expected_tokens = b"\x89PNGdata", "png", 0
    img2 = d.model_input.add().image
    img2.data, img2.format = b"\xff\xd8", "jpeg"
    d.model_input.add().dmel.dmel = b"\x01\x01\x02ab"
    tt = d.loss_fn_inputs["target_tokens"]
    tt.dense, tt.dtype = _i64([1, 2, 3]), pb.DTYPE_INT64
    tt.shape.extend([3])
    w = d.loss_fn_inputs["weights"]
    w.sparse_csr.values = _f32([0.0, 2.0])
    w.sparse_csr.crow_indices = _i64([0, 1, 2])
    w.sparse_csr.col_indices = _i64([1, 2])
    w.dtype = pb.DTYPE_FLOAT32
    w.shape.extend([2, 3])
    span = d.model_input_spans.add().prompt_tokens
    span.sequence_id, span.offset, span.length = "sq", 1, 2
    span2 = d.loss_fn_input_spans.add().sampled_tokens
    span2.sequence_id, span2.offset, span2.length = "sq2", 0, 3
    d2 = msg.data.add()
    d2.model_input.add().encoded_text.tokens = _i32([5])
    return msg


def test_request_ours_parsed_by_sdk() -> None:
    data = encode_forward_backward_request(_request())
    parsed = pb.ForwardBackwardRequest()
    parsed.ParseFromString(data)
    expected = _expected_request_pb()
    assert parsed == expected
    assert parsed.forward_only is False
    assert parsed.data[0].model_input[1].image.HasField("expected_tokens")
    assert not parsed.data[0].model_input[2].image.HasField("expected_tokens")
    # Same bytes as the SDK's deterministic serialization (our map keys are already sorted).
    assert data == expected.SerializeToString(deterministic=True)


def test_request_sdk_parsed_by_ours() -> None:
    msg = _expected_request_pb()
    got = decode_forward_backward_request(msg.SerializeToString())
    assert isinstance(got, ForwardBackwardRequest)
    want = _request()
    assert got.model_id == want.model_id
    assert got.seq_id == want.seq_id
    assert got.forward_backward_input.loss_fn_config == want.forward_backward_input.loss_fn_config
    for a, b in zip(got.forward_backward_input.data, want.forward_backward_input.data, strict=True):
        assert a.model_input == b.model_input
        assert a.model_input_spans == b.model_input_spans
        assert a.loss_fn_input_spans == b.loss_fn_input_spans
        assert a.loss_fn_inputs.keys() == b.loss_fn_inputs.keys()
        for key, td in a.loss_fn_inputs.items():
            other = b.loss_fn_inputs[key]
            assert (td.dtype, td.shape) == (other.dtype, other.shape)
            assert td.sparse_crow_indices == other.sparse_crow_indices
            assert td.sparse_col_indices == other.sparse_col_indices
            np.testing.assert_array_equal(td.to_numpy(), other.to_numpy())


def test_forward_request_sets_forward_only() -> None:
    req = ForwardRequest(
        ForwardBackwardInput([Datum(model_input=ModelInput.from_ints([1]))], "cross_entropy"),
        "m",
        None,
    )
    parsed = pb.ForwardBackwardRequest()
    parsed.ParseFromString(encode_forward_backward_request(req))
    assert parsed.forward_only is True
    assert parsed.seq_id == 0
    assert len(parsed.loss_fn_config) == 0
    assert len(parsed.loss_fn_config_v2) == 0
    msg = pb.ForwardBackwardRequest(model_id="m", loss_fn="cross_entropy", forward_only=True)
    msg.data.add().model_input.add().encoded_text.tokens = _i32([1])
    assert isinstance(decode_forward_backward_request(msg.SerializeToString()), ForwardRequest)


def test_request_unpacked_shape_from_sdk_style_writer() -> None:
    # proto3 parsers must accept unpacked repeated scalars; build one by hand around SDK bytes.
    msg = pb.ForwardBackwardRequest(model_id="m", loss_fn="cross_entropy")
    d = msg.data.add()
    d.model_input.add().encoded_text.tokens = _i32([1, 2])
    t = d.loss_fn_inputs["x"]
    t.dense, t.dtype = _f32([1.0, 2.0, 3.0, 4.0]), pb.DTYPE_FLOAT32
    packed = msg.SerializeToString()
    tensor = pb.Tensor(dense=_f32([1.0, 2.0, 3.0, 4.0]), dtype=pb.DTYPE_FLOAT32).SerializeToString()
    tensor += b"\x20\x02\x20\x02"  # shape 2, 2 unpacked
    entry = b"\x0a\x01x\x12" + bytes([len(tensor)]) + tensor
    chunk = pb.Chunk()
    chunk.encoded_text.tokens = _i32([1, 2])
    chunk_bytes = chunk.SerializeToString()
    datum = b"\x0a" + bytes([len(chunk_bytes)]) + chunk_bytes
    datum += b"\x12" + bytes([len(entry)]) + entry
    data = b"\x0a\x01m\x1a" + bytes([len(datum)]) + datum + b"\x22\x0dcross_entropy"
    reparsed = pb.ForwardBackwardRequest()
    reparsed.ParseFromString(data)
    assert list(reparsed.data[0].loss_fn_inputs["x"].shape) == [2, 2]
    got = decode_forward_backward_request(data)
    td = got.forward_backward_input.data[0].loss_fn_inputs["x"]  # type: ignore[union-attr]
    assert td.shape == [2, 2]
    assert td.to_numpy().tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert decode_forward_backward_request(packed).model_id == "m"


# -- ForwardBackwardOutput -----------------------------------------------------------------------


def test_output_ours_parsed_by_sdk() -> None:
    outputs = [
        {
            "logprobs": TensorData(np.array([-0.5, -1.0], dtype=np.float32), "float32", [2]),
            "ids": TensorData(np.array([[1, 2], [3, 4]]), "int64", [2, 2]),
        },
        {
            "logprobs": TensorData(np.array([-2.0], dtype=np.float32), "float32", [1]),
            "ids": TensorData(np.array([[5, 6]]), "int64", [1, 2]),
        },
    ]
    data = encode_forward_backward_output(
        ForwardBackwardOutput("ArrayRecord", outputs, {"loss:sum": 3.5})
    )
    msg = pb.ForwardBackwardOutput()
    msg.ParseFromString(data)
    assert msg.loss_fn_output_type == "ArrayRecord"
    assert dict(msg.metrics) == {"loss:sum": 3.5}
    [record] = msg.loss_fn_outputs
    assert record.num_datums == 2
    lp = record.fields["logprobs"]
    assert lp.dtype == pb.DTYPE_FLOAT32
    assert list(lp.trailing_shape) == []
    assert np.frombuffer(lp.offsets, "<i8").tolist() == [0, 8, 12]
    assert np.frombuffer(lp.data, "<f4").tolist() == [-0.5, -1.0, -2.0]
    ids = record.fields["ids"]
    assert ids.dtype == pb.DTYPE_INT64
    assert list(ids.trailing_shape) == [2]
    assert np.frombuffer(ids.offsets, "<i8").tolist() == [0, 32, 48]
    assert np.frombuffer(ids.data, "<i8").tolist() == [1, 2, 3, 4, 5, 6]


def test_output_sdk_parsed_by_ours() -> None:
    msg = pb.ForwardBackwardOutput(loss_fn_output_type="tinker.types:ArrayRecord")
    msg.metrics["loss:sum"] = 1.25
    r1 = msg.loss_fn_outputs.add(num_datums=2)
    r1.fields["logprobs"].CopyFrom(
        pb.BatchedTensor(
            data=(np.array([1.0, 2.0, 3.0], dtype=np.float32).view(np.uint32) >> 16)
            .astype("<u2")
            .tobytes(),
            offsets=_i64([0, 2, 6]),
            dtype=pb.DTYPE_BFLOAT16,
        )
    )
    r2 = msg.loss_fn_outputs.add(num_datums=1)
    r2.fields["logprobs"].CopyFrom(
        pb.BatchedTensor(
            data=_i32([7, 8]), offsets=_i64([0, 8]), dtype=pb.DTYPE_INT32, trailing_shape=[2]
        )
    )
    got = decode_forward_backward_output(msg.SerializeToString())
    assert got.loss_fn_output_type == "ArrayRecord"
    assert got.metrics == {"loss:sum": 1.25}
    lps = [o["logprobs"] for o in got.loss_fn_outputs]
    assert [(t.dtype, t.shape) for t in lps] == [
        ("float32", [1]),
        ("float32", [2]),
        ("int64", [1, 2]),
    ]
    assert [t.to_numpy().tolist() for t in lps] == [[1.0], [2.0, 3.0], [[7, 8]]]


def test_output_empty_both_ways() -> None:
    assert pb.ForwardBackwardOutput().SerializeToString() == b""
    assert encode_forward_backward_output(ForwardBackwardOutput("", [], {})) == b""
    got = decode_forward_backward_output(pb.ForwardBackwardOutput().SerializeToString())
    assert (got.loss_fn_output_type, got.loss_fn_outputs, got.metrics) == ("ArrayRecord", [], {})


# -- SampleResponse ------------------------------------------------------------------------------


def _sample_response() -> SampleResponse:
    return SampleResponse(
        sequences=[
            SampledSequence(
                stop_reason="length",
                tokens_np=np.array([11, 12], dtype=np.int32),
                logprobs_np=np.array([-0.5, -0.25], dtype=np.float32),
                topk_logprobs_np=TopkLogprobs(
                    np.array([[11, 3], [12, 0]], dtype=np.int32),
                    np.array([[-0.5, -2.0], [-0.25, -99999.0]], dtype=np.float32),
                ),
            ),
            SampledSequence(stop_reason="stop", tokens_np=np.array([13], dtype=np.int32)),
        ],
        prompt_logprobs_np=np.array([np.nan, -1.0, -2.0], dtype=np.float32),
        topk_prompt_logprobs_np=TopkLogprobs(
            np.array([[0], [7], [8]], dtype=np.int32),
            np.array([[-99999.0], [-0.5], [-0.75]], dtype=np.float32),
        ),
        prompt_cache_hit_tokens=3,
        target_prompt_logprobs=TensorData(
            np.array([-1.0, 0.0, -2.0, -3.0], dtype=np.float32), "float32", [2, 2]
        ),
        prompt_alt_tokens=PromptAltTokens(
            TensorData(np.array([[4, 5], [6, 7]]), "int64", [2, 2]),
            TensorData(np.array([[-1.0, -2.0], [-3.0, -4.0]], dtype=np.float32), "float32", [2, 2]),
        ),
    )


def _expected_sample_pb() -> Any:
    msg = pb.SampleResponse(prompt_cache_hit_tokens=3)
    s1 = msg.sequences.add(
        stop_reason=pb.STOP_REASON_LENGTH, tokens=_i32([11, 12]), logprobs=_f32([-0.5, -0.25])
    )
    s1.topk_sampled_logprobs.CopyFrom(
        pb.TopkLogprobs(
            token_ids=_i32([11, 3, 12, 0]),
            logprobs=_f32([-0.5, -2.0, -0.25, -99999.0]),
            k=2,
            length=2,
        )
    )
    msg.sequences.add(stop_reason=pb.STOP_REASON_STOP, tokens=_i32([13]))
    msg.prompt_logprobs = _f32([float("nan"), -1.0, -2.0])
    msg.topk_prompt_logprobs.CopyFrom(
        pb.TopkLogprobs(
            token_ids=_i32([0, 7, 8]), logprobs=_f32([-99999.0, -0.5, -0.75]), k=1, length=3
        )
    )
    msg.target_prompt_logprobs.CopyFrom(
        pb.Tensor(dense=_f32([-1.0, 0.0, -2.0, -3.0]), dtype=pb.DTYPE_FLOAT32, shape=[2, 2])
    )
    msg.prompt_alt_tokens.tokens.CopyFrom(
        pb.Tensor(dense=_i64([4, 5, 6, 7]), dtype=pb.DTYPE_INT64, shape=[2, 2])
    )
    msg.prompt_alt_tokens.logprobs.CopyFrom(
        pb.Tensor(dense=_f32([-1.0, -2.0, -3.0, -4.0]), dtype=pb.DTYPE_FLOAT32, shape=[2, 2])
    )
    return msg


def test_sample_response_ours_parsed_by_sdk() -> None:
    data = encode_sample_response(_sample_response())
    expected = _expected_sample_pb()
    assert data == expected.SerializeToString()
    parsed = pb.SampleResponse()
    parsed.ParseFromString(data)
    assert parsed.HasField("prompt_logprobs")
    assert parsed.sequences[0].HasField("logprobs")
    assert not parsed.sequences[1].HasField("logprobs")
    assert not parsed.sequences[1].HasField("topk_sampled_logprobs")


def test_sample_response_sdk_parsed_by_ours() -> None:
    got = decode_sample_response(_expected_sample_pb().SerializeToString())
    want = _sample_response()
    assert got.prompt_cache_hit_tokens == 3
    assert got.prompt_logprobs == [None, -1.0, -2.0]
    assert got.topk_prompt_logprobs == want.topk_prompt_logprobs
    assert [s.stop_reason for s in got.sequences] == ["length", "stop"]
    assert [s.tokens for s in got.sequences] == [[11, 12], [13]]
    assert [s.logprobs for s in got.sequences] == [[-0.5, -0.25], None]
    assert got.sequences[0].topk_logprobs == [[(11, -0.5), (3, -2.0)], [(12, -0.25)]]
    assert got.target_prompt_logprobs is not None
    assert got.target_prompt_logprobs.tolist() == [[-1.0, 0.0], [-2.0, -3.0]]
    assert got.prompt_alt_tokens is not None
    assert got.prompt_alt_tokens.tokens.dtype == "int64"
    assert got.prompt_alt_tokens.tokens.tolist() == [[4, 5], [6, 7]]
    assert got.prompt_alt_tokens.logprobs.tolist() == [[-1.0, -2.0], [-3.0, -4.0]]


def test_sample_response_sdk_int32_alt_tokens_and_sparse_target() -> None:
    msg = pb.SampleResponse()
    msg.sequences.add(tokens=_i32([1]))
    msg.prompt_alt_tokens.tokens.CopyFrom(
        pb.Tensor(dense=_i32([4, 5]), dtype=pb.DTYPE_INT32, shape=[1, 2])
    )
    msg.prompt_alt_tokens.logprobs.CopyFrom(
        pb.Tensor(dense=_f32([-1.0, -2.0]), dtype=pb.DTYPE_FLOAT32, shape=[1, 2])
    )
    target = msg.target_prompt_logprobs
    target.sparse_csr.values = _f32([-0.5, -0.25])
    target.sparse_csr.crow_indices = _i64([0, 0, 1, 2])
    target.sparse_csr.col_indices = _i64([1, 0])
    target.dtype = pb.DTYPE_FLOAT32
    target.shape.extend([3, 2])
    got = decode_sample_response(msg.SerializeToString())
    assert got.prompt_alt_tokens is not None
    assert got.prompt_alt_tokens.tokens.dtype == "int64"
    assert got.prompt_alt_tokens.tokens.tolist() == [[4, 5]]
    assert got.target_prompt_logprobs is not None
    assert got.target_prompt_logprobs.sparse_crow_indices == [0, 0, 1, 2]
    assert got.target_prompt_logprobs.tolist() == [[0.0, 0.0], [0.0, -0.5], [-0.25, 0.0]]
    assert got.sequences[0].stop_reason == "stop"
    # and back: our encoding of the decoded response parses to the same message
    reparsed = pb.SampleResponse()
    reparsed.ParseFromString(encode_sample_response(got))
    assert reparsed.target_prompt_logprobs == msg.target_prompt_logprobs
    assert list(reparsed.prompt_alt_tokens.tokens.shape) == [1, 2]
    assert np.frombuffer(reparsed.prompt_alt_tokens.tokens.dense, "<i8").tolist() == [4, 5]
