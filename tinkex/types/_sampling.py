"""Sampling types: parameters, requests and responses."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import attrs

from tinkex.types._model import Model, StrictModel
from tinkex.types._model_input import ModelInput, check_token_tensor, token_ids
from tinkex.types._tensor import TensorData

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "SamplingParams",
    "StopReason",
    "SampleRequest",
    "SampleResponse",
    "SampledSequence",
    "TopkLogprobs",
    "PromptAltTokens",
    "CreateSamplingSessionRequest",
    "CreateSamplingSessionResponse",
    "GetSamplerResponse",
    "JoinSamplingSessionRequest",
    "JoinSamplingSessionResponse",
]

StopReason = Literal["length", "stop"]
TOPK_EMPTY_LOGPROB = -99999.0


def _opt_int(lo: int) -> Any:
    def check(inst: object, attr: Any, value: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise ValueError(
                f"{type(inst).__name__}.{attr.name} must be an int >= {lo}, got {value!r}"
            )

    return check


def _stop_ids(inst: object, attr: Any, value: Any) -> None:
    if value is not None and not isinstance(value, str) and value and not isinstance(value[0], str):
        token_ids("SamplingParams.stop", value)


def _max_tokens(inst: object, attr: Any, value: int | None) -> None:
    # tinker accepts 0 and the server then returns an empty sequence, silently; say so here.
    if value is not None and value < 1:
        raise ValueError(
            f"SamplingParams.max_tokens must be >= 1 (or None for the server's limit), got "
            f"{value!r}; to score a prompt without sampling, use max_tokens=1 with "
            "prompt_logprobs (SamplingClient.compute_logprobs)"
        )


def _temperature(inst: object, attr: Any, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"SamplingParams.temperature must be a finite number >= 0, got {value!r}")


def _top_k(inst: object, attr: Any, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and value != -1):
        raise ValueError(f"SamplingParams.top_k must be -1 (no limit) or >= 1, got {value!r}")


def _top_p(inst: object, attr: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {value!r}")


@attrs.frozen(kw_only=True, slots=False)
class SamplingParams(Model):
    """How to sample: ``max_tokens``, ``seed``, ``stop``, ``temperature``, ``top_k``, ``top_p``.

    ``stop=None`` stops at the end-of-sequence token; ``stop=[]`` never stops early.

    Example:
        >>> SamplingParams(max_tokens=32, temperature=0.7, stop=["\\n"])  # doctest: +ELLIPSIS
        SamplingParams(...)
    """

    max_tokens: int | None = attrs.field(default=None, validator=_max_tokens)
    seed: int | None = None
    stop: str | Sequence[str] | Sequence[int] | None = attrs.field(
        default=None, validator=_stop_ids
    )
    # ints, as tinker's defaults (they dump as 1, not 1.0); given values become floats
    temperature: float = attrs.field(default=1, validator=_temperature)
    top_k: int = attrs.field(default=-1, validator=_top_k)
    top_p: float = attrs.field(default=1, validator=_top_p)


def _target_ids(inst: object, attr: Any, value: TensorData | None) -> None:
    # -1 marks a cell that asks for nothing
    if value is not None:
        check_token_tensor("SampleRequest.target_prompt_logprobs", value, lowest=-1)


@attrs.frozen(kw_only=True, slots=False)
class SampleRequest(StrictModel):
    """Body of ``POST /api/v1/asample``."""

    num_samples: int = attrs.field(default=1, validator=_opt_int(1))
    prompt: ModelInput
    sampling_params: SamplingParams
    base_model: str | None = None
    model_path: str | None = None
    sampling_session_id: str | None = None
    seq_id: int | None = None
    prompt_logprobs: bool | None = None
    topk_prompt_logprobs: int = attrs.field(default=0, validator=_opt_int(0))
    topk_sample_logprobs: int = attrs.field(default=0, validator=_opt_int(0))
    target_prompt_logprobs: TensorData | None = attrs.field(default=None, validator=_target_ids)
    prompt_alt_tokens_k: int = attrs.field(default=0, validator=_opt_int(0))
    prompt_logprobs_last_n: int | None = attrs.field(default=None, validator=_opt_int(1))
    record_stability_info: bool | None = None
    type: Literal["sample"] = "sample"


@dataclasses.dataclass(frozen=True, slots=True)
class TopkLogprobs:
    """Top-k (token id, logprob) per position: ``token_ids``/``logprobs`` of shape (length, k).

    Unused slots hold the sentinel ``(0, TOPK_EMPTY_LOGPROB)``.
    """

    token_ids: Any  # np.ndarray int32 (length, k)
    logprobs: Any  # np.ndarray float32 (length, k)

    def to_lists(self) -> list[list[tuple[int, float]] | None]:
        """Per position the (token id, logprob) pairs, trailing sentinels dropped; a position
        with nothing reported is None."""
        return topk_to_lists(self)


def topk_to_lists(topk: TopkLogprobs) -> list[list[tuple[int, float]] | None]:
    """``topk`` as per-position lists of (token id, logprob) pairs (see ``TopkLogprobs``)."""
    ids = topk.token_ids.tolist()
    lps = topk.logprobs.tolist()
    out: list[list[tuple[int, float]] | None] = []
    for row_ids, row_lps in zip(ids, lps, strict=True):
        end = len(row_ids)
        while end and row_ids[end - 1] == 0 and row_lps[end - 1] == TOPK_EMPTY_LOGPROB:
            end -= 1
        out.append(list(zip(row_ids[:end], row_lps[:end], strict=True)) if end else None)
    if out and not len(ids[0]):  # k == 0: nothing was asked at any position
        return []
    return out


@dataclasses.dataclass(frozen=True)
class PromptAltTokens:
    """Alternative top-k tokens at each prompt position (int64 ids, float32 logprobs)."""

    tokens: TensorData
    logprobs: TensorData


@dataclasses.dataclass(frozen=True)
class SampledSequence:
    """One generated sequence: tokens, their logprobs and why sampling stopped.

    ``sequence_id`` is the server's id of this sequence (used in provenance spans); it is
    filled in by the sampling client from the ``asample`` answer. The numpy fields hold the
    data; ``tokens``/``logprobs``/``topk_logprobs`` are lists made from them on first access
    (or the private ``_*_list`` fields, when a sequence is built from lists).
    """

    stop_reason: StopReason
    sequence_id: str = ""
    tokens_np: Any = dataclasses.field(default=None, repr=False)  # np.ndarray int32
    logprobs_np: Any = dataclasses.field(default=None, repr=False)  # np.ndarray float32 | None
    topk_logprobs_np: TopkLogprobs | None = dataclasses.field(default=None, repr=False)
    _tokens_list: list[int] | None = dataclasses.field(default=None, repr=False)
    _logprobs_list: list[float] | None = dataclasses.field(default=None, repr=False)
    _topk_logprobs_list: list[list[tuple[int, float]] | None] | None = dataclasses.field(
        default=None, repr=False
    )

    @functools.cached_property
    def tokens(self) -> list[int]:
        """Sampled token ids."""
        if self._tokens_list is not None:
            return self._tokens_list
        if self.tokens_np is None:
            return []
        values: list[int] = self.tokens_np.tolist()
        return values

    @functools.cached_property
    def logprobs(self) -> list[float] | None:
        """Logprob of each sampled token, when requested/available."""
        if self._logprobs_list is not None:
            return self._logprobs_list
        return None if self.logprobs_np is None else list(self.logprobs_np.tolist())

    @functools.cached_property
    def topk_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k alternatives at each sampled position, when requested."""
        if self._topk_logprobs_list is not None:
            return self._topk_logprobs_list
        return None if self.topk_logprobs_np is None else self.topk_logprobs_np.to_lists()


@dataclasses.dataclass(frozen=True)
class SampleResponse:
    """Result of a sample: the sequences and optional prompt scores."""

    sequences: Sequence[SampledSequence]
    prompt_logprobs_np: Any = dataclasses.field(default=None, repr=False)  # float32, NaN = none
    topk_prompt_logprobs_np: TopkLogprobs | None = dataclasses.field(default=None, repr=False)
    target_prompt_logprobs: TensorData | None = None
    prompt_cache_hit_tokens: int = 0
    prompt_alt_tokens: PromptAltTokens | None = None
    _prompt_logprobs_list: list[float | None] | None = dataclasses.field(default=None, repr=False)
    _topk_prompt_logprobs_list: list[list[tuple[int, float]] | None] | None = dataclasses.field(
        default=None, repr=False
    )

    def __post_init__(self) -> None:
        # A copy (a tuple stays a tuple): the caller's list may change later.
        if not isinstance(self.sequences, tuple):
            object.__setattr__(self, "sequences", list(self.sequences))

    @functools.cached_property
    def prompt_logprobs(self) -> list[float | None] | None:
        """Logprob of each prompt token (None where not computed, e.g. the first)."""
        if self._prompt_logprobs_list is not None:
            return self._prompt_logprobs_list
        if self.prompt_logprobs_np is None:
            return None
        return [None if math.isnan(v) else v for v in self.prompt_logprobs_np.tolist()]

    @functools.cached_property
    def topk_prompt_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k alternatives at each prompt position, when requested."""
        if self._topk_prompt_logprobs_list is not None:
            return self._topk_prompt_logprobs_list
        if self.topk_prompt_logprobs_np is None:
            return None
        return self.topk_prompt_logprobs_np.to_lists()


_DC = TypeVar("_DC")


def decoded(cls: type[_DC], **values: Any) -> _DC:
    """An instance of the frozen dataclass ``cls`` from values a decoder made and checked
    (fresh containers): the defaults, then ``values``, without ``__init__``/``__post_init__``
    (a decoder builds thousands; this is several times faster)."""
    obj = object.__new__(cls)
    obj.__dict__.update(_defaults(cast(Hashable, cls)), **values)
    return obj


@functools.cache
def _defaults(cls: Hashable) -> dict[str, Any]:
    return {
        f.name: f.default
        for f in dataclasses.fields(cast(Any, cls))
        if f.default is not dataclasses.MISSING
    }


def float_array(values: Sequence[float | None] | None) -> np.ndarray[Any, Any] | None:
    """float32 array with None -> NaN (JSON prompt logprobs)."""
    if values is None:
        return None
    import numpy as np

    return np.array([math.nan if v is None else v for v in values], dtype=np.float32)


@attrs.frozen(kw_only=True, slots=False)
class CreateSamplingSessionRequest(StrictModel):
    """Body of ``POST /api/v1/create_sampling_session``."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None
    type: Literal["create_sampling_session"] = "create_sampling_session"


@attrs.frozen(kw_only=True, slots=False)
class CreateSamplingSessionResponse(Model):
    """The id of the new sampling session (sampler)."""

    type: Literal["create_sampling_session"] = "create_sampling_session"
    sampling_session_id: str


@attrs.frozen(kw_only=True, slots=False)
class GetSamplerResponse(Model):
    """What the server knows about a sampler."""

    sampler_id: str
    base_model: str
    model_path: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class JoinSamplingSessionRequest(StrictModel):
    """Body of ``POST /api/v1/join_sampling_session``."""

    sampling_session_id: str
    type: Literal["join_sampling_session"] = "join_sampling_session"


@attrs.frozen(kw_only=True, slots=False)
class JoinSamplingSessionResponse(Model):
    """The clone counter allocated to a joining sampler."""

    type: Literal["join_sampling_session"] = "join_sampling_session"
    client_counter: int
