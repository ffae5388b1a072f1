"""The numpy model behind tinkex's local Tinker-compatible server.

Two base models: ``tinkex/tiny`` (a real tiny decoder-only transformer over the byte tokenizer,
LoRA-trainable with manual backprop; the default for any base-model name) and ``tinkex/null``
(near-zero compute, for measuring SDK overhead). LoRA scale is ``alpha / rank`` with
``alpha = 32``. The server does all I/O; this package takes and returns numpy arrays.

>>> arch = resolve_arch("tinkex/tiny")
>>> model = create_trainable(arch, LoraSpec(rank=4))
>>> out, _ = sample(model.sampler_weights(), np.array([256, 104, 105]), 1,
...                 SampleSettings(max_tokens=3, temperature=0.0))
>>> len(out[0].tokens) <= 3
True
"""

from __future__ import annotations

import numpy as np  # noqa: F401 - used by the docstring example

from .sampling import sample
from .spec import (
    ARCHS,
    LORA_ALPHA,
    LOSS_FUNCTIONS,
    AdamSettings,
    DatumArrays,
    DatumColumns,
    ForwardBackwardResult,
    LoraSpec,
    ModelArch,
    ModelInputError,
    PromptScores,
    SampleCancelled,
    SampleOutput,
    SampleSettings,
    resolve_arch,
)
from .trainable import SamplerWeights, TrainableModel, create_trainable

__all__ = [
    "ARCHS",
    "LORA_ALPHA",
    "LOSS_FUNCTIONS",
    "AdamSettings",
    "DatumArrays",
    "DatumColumns",
    "ForwardBackwardResult",
    "LoraSpec",
    "ModelArch",
    "ModelInputError",
    "PromptScores",
    "SampleCancelled",
    "SampleOutput",
    "SampleSettings",
    "SamplerWeights",
    "TrainableModel",
    "create_trainable",
    "resolve_arch",
    "sample",
]
