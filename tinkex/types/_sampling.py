"""Sampling types: parameters, requests and responses."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinkex.types._model_input import ModelInput
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


def _stop(value: Any) -> str | list[str] | list[int] | None:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, Sequence):
        raise TypeError(
            f"SamplingParams.stop must be a str, a list of str or of ints, got {value!r}"
        )
    items = list(value)
    if all(isinstance(v, str) for v in items):
        return items
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return items
    raise TypeError(f"SamplingParams.stop must not mix strings and token ids, got {items!r}")


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


@attrs.frozen(kw_only=True)
class SamplingParams:
    """How to sample: ``max_tokens``, ``seed``, ``stop``, ``temperature``, ``top_k``, ``top_p``.

    ``stop=None`` stops at the end-of-sequence token; ``stop=[]`` never stops early.

    Example:
        >>> SamplingParams(max_tokens=32, temperature=0.7, stop=["\\n"])  # doctest: +ELLIPSIS
        SamplingParams(...)
    """

    max_tokens: int | None = attrs.field(default=None, validator=_opt_int(0))
    seed: int | None = attrs.field(default=None, validator=_opt_int(-(2**63)))
    stop: str | list[str] | list[int] | None = attrs.field(default=None, converter=_stop)
    temperature: float = attrs.field(default=1.0, validator=_temperature)
    top_k: int = attrs.field(default=-1, validator=_top_k)
    top_p: float = attrs.field(default=1.0, validator=_top_p)


@attrs.frozen(kw_only=True)
class SampleRequest:
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
    target_prompt_logprobs: TensorData | None = None
    prompt_alt_tokens_k: int = attrs.field(default=0, validator=_opt_int(0))
    prompt_logprobs_last_n: int | None = attrs.field(default=None, validator=_opt_int(1))
    record_stability_info: bool | None = None
    type: Literal["sample"] = "sample"


@attrs.frozen
class TopkLogprobs:
    """Top-k (token id, logprob) per position: ``token_ids``/``logprobs`` of shape (length, k)."""

    token_ids: Any  # np.ndarray int32 (length, k)
    logprobs: Any  # np.ndarray float32 (length, k)

    def to_lists(self) -> list[list[tuple[int, float]] | None]:
        """Per position the list of (token id, logprob); empty rows become None."""
        out: list[list[tuple[int, float]] | None] = []
        for ids, lps in zip(self.token_ids.tolist(), self.logprobs.tolist(), strict=True):
            row = [(i, lp) for i, lp in zip(ids, lps, strict=True) if lp != TOPK_EMPTY_LOGPROB]
            out.append(row or None)
        return out


@attrs.frozen
class PromptAltTokens:
    """Alternative top-k tokens at each prompt position (int64 ids, float32 logprobs)."""

    tokens: TensorData
    logprobs: TensorData


@attrs.frozen
class SampledSequence:
    """One generated sequence: tokens, their logprobs and why sampling stopped.

    ``sequence_id`` is the server's id of this sequence (used in provenance spans); it is
    filled in by the sampling client from the ``asample`` answer.
    """

    stop_reason: StopReason
    sequence_id: str = ""
    tokens_np: Any = None  # np.ndarray int32
    logprobs_np: Any = None  # np.ndarray float32 | None
    topk_logprobs_np: TopkLogprobs | None = None

    @functools.cached_property
    def tokens(self) -> list[int]:
        """Sampled token ids."""
        values: list[int] = self.tokens_np.tolist()
        return values

    @functools.cached_property
    def logprobs(self) -> list[float] | None:
        """Logprob of each sampled token, when requested/available."""
        return None if self.logprobs_np is None else list(self.logprobs_np.tolist())

    @functools.cached_property
    def topk_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k alternatives at each sampled position, when requested."""
        return None if self.topk_logprobs_np is None else self.topk_logprobs_np.to_lists()


@attrs.frozen
class SampleResponse:
    """Result of a sample: the sequences and optional prompt scores."""

    sequences: list[SampledSequence]
    prompt_logprobs_np: Any = None  # np.ndarray float32 | None, NaN where not computed
    topk_prompt_logprobs_np: TopkLogprobs | None = None
    target_prompt_logprobs: TensorData | None = None
    prompt_cache_hit_tokens: int = 0
    prompt_alt_tokens: PromptAltTokens | None = None

    @functools.cached_property
    def prompt_logprobs(self) -> list[float | None] | None:
        """Logprob of each prompt token (None where not computed, e.g. the first)."""
        if self.prompt_logprobs_np is None:
            return None
        return [None if math.isnan(v) else v for v in self.prompt_logprobs_np.tolist()]

    @functools.cached_property
    def topk_prompt_logprobs(self) -> list[list[tuple[int, float]] | None] | None:
        """Top-k alternatives at each prompt position, when requested."""
        if self.topk_prompt_logprobs_np is None:
            return None
        return self.topk_prompt_logprobs_np.to_lists()


def float_array(values: Sequence[float | None] | None) -> np.ndarray[Any, Any] | None:
    """float32 array with None -> NaN (JSON prompt logprobs)."""
    if values is None:
        return None
    import numpy as np

    return np.array([math.nan if v is None else v for v in values], dtype=np.float32)


@attrs.frozen(kw_only=True)
class CreateSamplingSessionRequest:
    """Body of ``POST /api/v1/create_sampling_session``."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None
    type: Literal["create_sampling_session"] = "create_sampling_session"


@attrs.frozen(kw_only=True)
class CreateSamplingSessionResponse:
    """The id of the new sampling session (sampler)."""

    sampling_session_id: str
    type: str | None = "create_sampling_session"


@attrs.frozen(kw_only=True)
class GetSamplerResponse:
    """What the server knows about a sampler."""

    sampler_id: str
    base_model: str
    model_path: str | None = None


@attrs.frozen(kw_only=True)
class JoinSamplingSessionRequest:
    """Body of ``POST /api/v1/join_sampling_session``."""

    sampling_session_id: str
    type: Literal["join_sampling_session"] = "join_sampling_session"


@attrs.frozen(kw_only=True)
class JoinSamplingSessionResponse:
    """The clone counter allocated to a joining sampler."""

    client_counter: int
    type: str | None = "join_sampling_session"
