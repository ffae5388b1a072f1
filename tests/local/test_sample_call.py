"""plain_sample_call reads only bodies the SDK converter takes as they are, and gives the values
the converter gives; everything else is left to the converter (None)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tinkex import types
from tinkex.local.codec import prompt_tokens
from tinkex.local.codec.sample_call import SampleCall, plain_sample_call, sample_call_of
from tinkex.types._converter import from_wire, to_wire

PROMPT = {"chunks": [{"tokens": [256, 72, 101], "type": "encoded_text"}]}


def _body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": PROMPT, "sampling_params": {}, **fields}
    return {name: value for name, value in body.items() if value is not None}


def _typed(call: SampleCall) -> dict[str, tuple[type, Any]]:
    """Every field but the prompt as (type, value): 1 and 1.0 must not compare equal here."""
    values = dataclasses.asdict(call)
    values.pop("prompt"), values.pop("tokens")
    return {name: (type(value), value) for name, value in values.items()}


def _sdk_body() -> dict[str, Any]:
    """What both SDKs send: SampleRequest through the converter."""
    request = types.SampleRequest(
        sampling_session_id="s:sample:0",
        seq_id=7,
        num_samples=2,
        prompt=types.ModelInput.from_ints([1, 2, 3]),
        sampling_params=types.SamplingParams(max_tokens=16, temperature=0.7, seed=3),
    )
    return dict(to_wire(request))


PLAIN = [
    _sdk_body(),
    _body(),
    _body(
        num_samples=3,
        seq_id=1_000_000_004,
        base_model="tinkex/null",
        model_path="tinker://x/sampler_weights/y",
        prompt_logprobs=True,
        topk_prompt_logprobs=2,
        topk_sample_logprobs=1,
        prompt_alt_tokens_k=4,
        prompt_logprobs_last_n=1,
        record_stability_info=False,
        type="sample",
        unknown_field=[1],
    ),
    _body(
        prompt={
            "chunks": [
                {"tokens": [1], "type": "encoded_text"},
                {"tokens": [], "type": "encoded_text"},
            ]
        }
    ),
    _body(prompt={"chunks": []}),
    _body(sampling_params={"max_tokens": 1, "temperature": 0, "top_p": 0.5, "top_k": 5}),
    _body(sampling_params={"temperature": 2, "top_p": 1, "top_k": -1, "seed": -4}),
    _body(sampling_params={"stop": "\n"}),
    _body(sampling_params={"stop": ["a", "bc"]}),
    _body(sampling_params={"stop": [0, 4294967295]}),
    _body(sampling_params={"stop": []}),
    _body(sampling_params={"stop": [""], "other": None}),
]


@pytest.mark.parametrize("body", PLAIN)
def test_a_plain_body_reads_as_the_converter_reads_it(body: dict[str, Any]) -> None:
    fast = plain_sample_call(body)
    assert fast is not None
    slow = sample_call_of(from_wire(body, types.SampleRequest))
    assert _typed(fast) == _typed(slow)
    assert slow.prompt is not None and fast.tokens == prompt_tokens(slow.prompt).tolist()


CONVERTED_OR_REFUSED = [
    _body(num_samples=0),
    _body(num_samples=2.0),
    _body(num_samples=True),
    _body(seq_id="3"),
    _body(sampling_session_id=5),
    _body(prompt_logprobs="yes"),
    _body(record_stability_info=1),
    _body(topk_prompt_logprobs=-1),
    _body(prompt_alt_tokens_k=None, topk_sample_logprobs=1.0),
    _body(prompt_logprobs_last_n=0),
    _body(type="nope"),
    _body(target_prompt_logprobs={"data": [1, 2], "dtype": "int64", "shape": [2, 1]}),
    {"sampling_params": {}},
    {"prompt": PROMPT},
    _body(prompt=[{"tokens": [1], "type": "encoded_text"}]),
    _body(prompt={"chunks": "x"}),
    _body(prompt={"chunks": [{"tokens": [1]}]}),
    _body(prompt={"chunks": [{"tokens": [-1], "type": "encoded_text"}]}),
    _body(prompt={"chunks": [{"tokens": [2**32], "type": "encoded_text"}]}),
    _body(prompt={"chunks": [{"tokens": [1.0], "type": "encoded_text"}]}),
    _body(prompt={"chunks": [{"tokens": [True], "type": "encoded_text"}]}),
    _body(prompt={"chunks": [{"data": "aGk=", "format": "png", "type": "image"}]}),
    _body(sampling_params=None),
    _body(sampling_params=[]),
    _body(sampling_params={"max_tokens": 0}),
    _body(sampling_params={"max_tokens": 2.0}),
    _body(sampling_params={"seed": True}),
    _body(sampling_params={"temperature": -0.5}),
    _body(sampling_params={"temperature": "1"}),
    _body(sampling_params={"temperature": None}),
    _body(sampling_params={"temperature": True}),
    _body(sampling_params={"top_p": 0}),
    _body(sampling_params={"top_p": 1.5}),
    _body(sampling_params={"top_k": 0}),
    _body(sampling_params={"stop": [1, "a"]}),
    _body(sampling_params={"stop": [-1]}),
    _body(sampling_params={"stop": [False]}),
    _body(sampling_params={"stop": 3}),
]


@pytest.mark.parametrize("body", CONVERTED_OR_REFUSED)
def test_other_bodies_are_left_to_the_converter(body: dict[str, Any]) -> None:
    assert plain_sample_call(body) is None
