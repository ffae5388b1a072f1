"""``asample`` bodies -> :class:`SampleCall`, what the sample handler reads.

Every sample request of both SDKs has one shape: plain ``encoded_text`` token lists, native
JSON types, no target tensor. :func:`plain_sample_call` reads that shape straight from the
JSON object (a few type checks, no model objects); anything else, or any value the SDK
converter would convert or reject, makes it answer None, and the caller structures the body
through the converter (:func:`sample_call_of`), whose errors name the field and the value.
So the fast path changes no answer: it only takes bodies the converter would accept, and gives
the values the converter would give (``tests/local/test_sample_call.py`` checks both).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from tinkex.types import ModelInput, SampleRequest, TensorData

__all__ = ["SampleCall", "plain_sample_call", "sample_call_of"]

#: the largest token id the SDK types accept (unsigned 32-bit)
_MAX_TOKEN_ID = 2**32 - 1

_OPTIONAL_STR = ("base_model", "model_path", "sampling_session_id")
#: the int fields that default to 0 and must be >= 0
_COUNTS = ("topk_prompt_logprobs", "topk_sample_logprobs", "prompt_alt_tokens_k")
_INT = {int}
_STR_OR_NONE = {str, type(None)}
_BOOL_OR_NONE = {bool, type(None)}


@dataclass(slots=True)
class SampleCall:
    """The fields of a sample request that the handler uses (``SampleRequest`` and its
    ``SamplingParams`` flattened); ``tokens`` (plain token ids) or ``prompt`` is set.

    A value, read only (not frozen: a frozen dataclass's ``__init__`` costs 3-4x more, on the
    path of every sample)."""

    num_samples: int
    tokens: list[int] | None
    prompt: ModelInput | None
    base_model: str | None
    model_path: str | None
    sampling_session_id: str | None
    seq_id: int | None
    prompt_logprobs: bool
    topk_prompt_logprobs: int
    topk_sample_logprobs: int
    target_prompt_logprobs: TensorData | None
    prompt_alt_tokens_k: int
    prompt_logprobs_last_n: int | None
    record_stability_info: bool
    max_tokens: int | None
    seed: int | None
    stop: str | list[str] | list[int] | None
    temperature: float
    top_k: int
    top_p: float


def sample_call_of(req: SampleRequest) -> SampleCall:
    """The call of a request structured by the SDK converter."""
    params = req.sampling_params
    stop = params.stop
    return SampleCall(
        num_samples=req.num_samples,
        tokens=None,
        prompt=req.prompt,
        base_model=req.base_model,
        model_path=req.model_path,
        sampling_session_id=req.sampling_session_id,
        seq_id=req.seq_id,
        prompt_logprobs=bool(req.prompt_logprobs),
        topk_prompt_logprobs=req.topk_prompt_logprobs,
        topk_sample_logprobs=req.topk_sample_logprobs,
        target_prompt_logprobs=req.target_prompt_logprobs,
        prompt_alt_tokens_k=req.prompt_alt_tokens_k,
        prompt_logprobs_last_n=req.prompt_logprobs_last_n,
        record_stability_info=bool(req.record_stability_info),
        max_tokens=params.max_tokens,
        seed=params.seed,
        stop=stop if stop is None or isinstance(stop, str) else cast("list[int]", list(stop)),
        temperature=params.temperature,
        top_k=params.top_k,
        top_p=params.top_p,
    )


def plain_sample_call(body: Mapping[str, Any]) -> SampleCall | None:
    """The call of a body of the plain shape (module docstring), else None."""
    tokens = _plain_tokens(body.get("prompt"))
    params = body.get("sampling_params")
    if tokens is None or type(params) is not dict or body.get("type", "sample") != "sample":
        return None
    if body.get("target_prompt_logprobs") is not None:
        return None
    num_samples = body.get("num_samples", 1)
    seq_id = body.get("seq_id")
    last_n = body.get("prompt_logprobs_last_n")
    if not (_is_int(num_samples) and num_samples >= 1 and (seq_id is None or _is_int(seq_id))):
        return None
    if not (last_n is None or (_is_int(last_n) and last_n >= 1)):
        return None
    names = [body.get(name) for name in _OPTIONAL_STR]
    counts = [body.get(name, 0) for name in _COUNTS]
    flags = [body.get("prompt_logprobs"), body.get("record_stability_info")]
    if not (
        set(map(type, names)) <= _STR_OR_NONE
        and set(map(type, counts)) == _INT
        and min(counts) >= 0
        and set(map(type, flags)) <= _BOOL_OR_NONE
    ):
        return None
    settings = _plain_params(params)
    if settings is None:
        return None
    max_tokens, seed, stop, temperature, top_k, top_p = settings
    return SampleCall(
        num_samples=num_samples,
        tokens=tokens,
        prompt=None,
        base_model=names[0],
        model_path=names[1],
        sampling_session_id=names[2],
        seq_id=seq_id,
        prompt_logprobs=bool(flags[0]),
        topk_prompt_logprobs=counts[0],
        topk_sample_logprobs=counts[1],
        target_prompt_logprobs=None,
        prompt_alt_tokens_k=counts[2],
        prompt_logprobs_last_n=last_n,
        record_stability_info=bool(flags[1]),
        max_tokens=max_tokens,
        seed=seed,
        stop=stop,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
    )


def _is_int(value: Any) -> bool:
    return type(value) is int


def _plain_tokens(prompt: Any) -> list[int] | None:
    """The token ids of a prompt of ``encoded_text`` chunks of valid ids, else None."""
    if type(prompt) is not dict:
        return None
    chunks = prompt.get("chunks")
    if type(chunks) is not list:
        return None
    tokens: list[int] = []
    for chunk in chunks:
        if type(chunk) is not dict or chunk.get("type") != "encoded_text":
            return None
        ids = chunk.get("tokens")
        if type(ids) is not list or not _valid_ids(ids):
            return None
        tokens += ids
    return tokens


def _valid_ids(ids: list[Any]) -> bool:
    """True if every element is an int token id in the SDK types' range."""
    if not ids:
        return True
    return set(map(type, ids)) == _INT and min(ids) >= 0 and max(ids) <= _MAX_TOKEN_ID


_Params = tuple[int | None, int | None, "str | list[str] | list[int] | None", float, int, float]


def _plain_params(params: dict[str, Any]) -> _Params | None:
    """``SamplingParams`` fields of a JSON object the converter would take as they are."""
    max_tokens = params.get("max_tokens")
    seed = params.get("seed")
    if not (max_tokens is None or (_is_int(max_tokens) and max_tokens >= 1)):
        return None
    if not (seed is None or _is_int(seed)):
        return None
    top_k = params.get("top_k", -1)
    if not (_is_int(top_k) and (top_k >= 1 or top_k == -1)):
        return None
    # absent: tinker's int defaults (1), as the converter keeps them; given: floats
    temperature = _number(params, "temperature")
    top_p = _number(params, "top_p")
    if temperature is None or top_p is None or temperature < 0 or not 0 < top_p <= 1:
        return None
    stop = params.get("stop")
    if not (stop is None or type(stop) is str):
        if type(stop) is not list:
            return None
        if not all(type(s) is str for s in stop) and not _valid_ids(stop):
            return None
        stop = list(stop)
    return max_tokens, seed, stop, temperature, top_k, top_p


def _number(params: dict[str, Any], name: str) -> float | None:
    """A finite number field (default int 1), as the converter gives it; None otherwise."""
    if name not in params:
        return 1
    value = params[name]
    if type(value) is not float and type(value) is not int:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
