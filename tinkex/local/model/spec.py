"""Value types shared by the local model: architectures, settings, inputs, outputs, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from tinkex.tokenizer.byte import EOS_ID, VOCAB_SIZE
from tinkex.types._training import LossFnType

__all__ = [
    "ARCHS",
    "LOSS_FUNCTIONS",
    "LORA_ALPHA",
    "AdamSettings",
    "DatumArrays",
    "DatumColumns",
    "ForwardBackwardResult",
    "LoraSpec",
    "ModelArch",
    "ModelInputError",
    "SampleCancelled",
    "PromptScores",
    "SampleOutput",
    "SampleSettings",
    "column_rows",
    "resolve_arch",
]

#: LoRA scale is ``LORA_ALPHA / rank`` (so the default rank 32 has scale 1).
LORA_ALPHA = 32.0

#: The API's loss functions the local model computes: every ``LossFnType`` but ``custom``
#: (a custom loss runs on the client, as ``forward`` + ``cross_entropy``).
LOSS_FUNCTIONS: tuple[str, ...] = tuple(name for name in get_args(LossFnType) if name != "custom")


class ModelInputError(ValueError):
    """A request the model cannot run because of the caller's input (a "user" failure)."""


class SampleCancelled(Exception):
    """Sampling stopped early because the request was cancelled."""


@dataclass(frozen=True)
class ModelArch:
    """Shape of a local base model, as reported by ``get_info``/``get_server_capabilities``."""

    name: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_seq_len: int
    arch: str


ARCHS: dict[str, ModelArch] = {
    "tinkex/tiny": ModelArch(
        name="tinkex/tiny",
        vocab_size=VOCAB_SIZE,
        d_model=64,
        n_layers=2,
        n_heads=4,
        d_ff=256,
        max_seq_len=512,
        arch="tinkex-tiny-transformer",
    ),
    "tinkex/null": ModelArch(
        name="tinkex/null",
        vocab_size=VOCAB_SIZE,
        d_model=0,
        n_layers=0,
        n_heads=0,
        d_ff=0,
        max_seq_len=65536,
        arch="tinkex-null",
    ),
}


def resolve_arch(base_model: str) -> ModelArch:
    """The architecture serving ``base_model``: ``tinkex/null`` is the null model, anything
    else (including real model names such as ``Qwen/Qwen3-8B``) is the tiny transformer."""
    if base_model == "tinkex/null":
        return ARCHS["tinkex/null"]
    return ARCHS["tinkex/tiny"]


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapter configuration (mirrors ``tinker.types.LoraConfig``)."""

    rank: int
    seed: int | None = None
    train_mlp: bool = True
    train_attn: bool = True
    train_unembed: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ModelInputError(f"LoraSpec.rank must be a positive int, got {self.rank!r}")
        if not (self.train_mlp or self.train_attn or self.train_unembed):
            raise ModelInputError(
                "LoraSpec needs at least one of train_mlp, train_attn, train_unembed to be True"
            )


@dataclass(frozen=True)
class AdamSettings:
    """AdamW hyper-parameters for one ``optim_step`` (decoupled weight decay)."""

    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0


@dataclass
class DatumArrays:
    """One training example: model input tokens and its loss inputs, all of length N."""

    tokens: npt.NDArray[Any]
    loss_inputs: dict[str, npt.NDArray[Any]]


@dataclass
class DatumColumns:
    """A batch of datums as columns: datum ``i`` has ``lengths[i]`` tokens, and ``tokens`` and
    each of ``loss_inputs`` hold every datum's values back to back (one value per token).

    How a request of plain datums is read (one array per field, none per datum); the model
    uses it to skip per-datum work where it can.
    """

    lengths: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.int64]
    loss_inputs: dict[str, npt.NDArray[Any]]

    def datums(self) -> list[DatumArrays]:
        """The datums, as views of the columns."""
        rows = column_rows(self.loss_inputs, self.lengths)
        return [
            DatumArrays(self.tokens[a:b], row)
            for (a, b), row in zip(_row_bounds(self.lengths), rows, strict=True)
        ]


def _row_bounds(lengths: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    ends = np.cumsum(lengths).tolist()
    return list(zip([0, *ends[:-1]], ends, strict=True))


def column_rows(
    columns: dict[str, npt.NDArray[Any]], lengths: npt.NDArray[np.int64]
) -> list[dict[str, npt.NDArray[Any]]]:
    """Per row ``i``, ``{name: its lengths[i] values of columns[name]}`` (views)."""
    names = list(columns)
    values = list(columns.values())
    return [
        dict(zip(names, [v[a:b] for v in values], strict=True)) for a, b in _row_bounds(lengths)
    ]


@dataclass
class ForwardBackwardResult:
    """Per-datum outputs (``logprobs``, ``elementwise_loss``) and ``name:reduction`` metrics.

    ``columns`` holds the same outputs back to back per field (``lengths[i]`` values of datum
    ``i``; ``outputs`` are views of them) when the model computed them so.
    """

    outputs: list[dict[str, npt.NDArray[np.float32]]]
    metrics: dict[str, float]
    columns: dict[str, npt.NDArray[np.float32]] | None = None
    lengths: npt.NDArray[np.int64] | None = None


@dataclass(frozen=True)
class SampleSettings:
    """Decoding settings. ``temperature=0`` is greedy; ``top_k <= 0`` and ``top_p >= 1`` are off.

    ``stop_token_ids=()`` with no ``stop_sequences`` never stops early.
    """

    max_tokens: int = 16
    temperature: float = 1.0
    top_k: int = -1
    top_p: float = 1.0
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = (EOS_ID,)
    stop_sequences: tuple[tuple[int, ...], ...] = field(default=())


@dataclass
class SampleOutput:
    """One sampled continuation. ``tokens`` include the stop token/sequence when stopped;
    ``logprobs`` are each sampled token's log-softmax at the sampling temperature (plain
    log-softmax when greedy)."""

    tokens: npt.NDArray[np.int32]
    logprobs: npt.NDArray[np.float32]
    stop_reason: Literal["stop", "length"]
    #: (len(tokens), k) best-first ids/logprobs of the distribution each token was drawn from
    #: (same temperature as ``logprobs``), when top-k sample logprobs were asked for
    topk_ids: npt.NDArray[np.int32] | None = None
    topk_logprobs: npt.NDArray[np.float32] | None = None


@dataclass
class PromptScores:
    """Prompt scoring. ``logprobs[i] = log p(prompt[i] | prompt[:i])``, ``logprobs[0]`` is NaN.

    ``topk_ids``/``topk_logprobs`` have shape (P, k) (best first); row 0 is a placeholder
    (ids -1, logprobs NaN) because nothing predicts the first token. The per-position extras
    (``target_logprobs``, ``alt_*``) have P-1 rows: row i is about prompt token i+1.
    """

    logprobs: npt.NDArray[np.float32]
    topk_ids: npt.NDArray[np.int32] | None = None
    topk_logprobs: npt.NDArray[np.float32] | None = None
    #: (P-1, K): ``log p(target[i, j] | prompt[:i+1])``, 0.0 where the target id is -1
    target_logprobs: npt.NDArray[np.float32] | None = None
    #: (P-1, k): independent draws at the sampling temperature from the distribution over
    #: prompt token i+1, and their (untempered) logprobs
    alt_tokens: npt.NDArray[np.int64] | None = None
    alt_logprobs: npt.NDArray[np.float32] | None = None
