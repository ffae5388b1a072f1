"""The base-model names the local server accepts, and the error for any other name.

The hosted Tinker service rejects names it does not serve, so the local server does too
(``tinkex serve --any-model`` / ``LocalServer(any_model=True)`` accepts any name): a typo such as
``Qwen/Qwen3-8b`` fails at once instead of training a run nobody can use on the real service.
Every accepted name is served by the same tiny model (``tinkex/null``: the near-zero-compute
one), so scripts that ask for real hosted models run unchanged.

:data:`HOSTED_MODELS` is every name the hosted service publishes: its model lineup, as listed
in tinker-cookbook 0.6.1's ``model_info`` (base, instruct, hybrid, reasoning and vision
variants), plus the names the official SDK 0.38 knows tokenizers for.
"""

from __future__ import annotations

import difflib

__all__ = [
    "HOSTED_MODELS",
    "SUPPORTED_MODELS",
    "TINKEX_MODELS",
    "is_supported",
    "unsupported_detail",
]

#: The local server's own models.
TINKEX_MODELS: tuple[str, ...] = ("tinkex/tiny", "tinkex/null")

#: Names the hosted Tinker service publishes (see the module docstring).
HOSTED_MODELS: tuple[str, ...] = (
    "Qwen/Qwen3-8B",
    "Qwen/Qwen3-8B-Base",
    "Qwen/Qwen3-32B",
    "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-30B-A3B-Base",
    "Qwen/Qwen3-4B-Instruct-2507",
    "Qwen/Qwen3-30B-A3B-Instruct-2507",
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
    "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "Qwen/Qwen3-VL-235B-A22B-Instruct",
    "Qwen/Qwen3.5-4B",
    "Qwen/Qwen3.5-9B",
    "Qwen/Qwen3.5-9B-Base",
    "Qwen/Qwen3.5-27B",
    "Qwen/Qwen3.5-35B-A3B",
    "Qwen/Qwen3.5-35B-A3B-Base",
    "Qwen/Qwen3.5-397B-A17B",
    "Qwen/Qwen3.6-27B",
    "Qwen/Qwen3.6-35B-A3B",
    "Qwen/Qwen3.8-27B",
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B",
    "meta-llama/Llama-3.3-70B-Instruct",
    "deepseek-ai/DeepSeek-V3.1",
    "deepseek-ai/DeepSeek-V3.1-Base",
    "deepseek-ai/DeepSeek-V4.1-Flash",
    "deepseek-ai/DeepSeek-V4.1-Flash-1017",
    "openai/gpt-oss-20b",
    "openai/gpt-oss-120b",
    "moonshotai/Kimi-K2-Thinking",
    "moonshotai/Kimi-K2.5",
    "moonshotai/Kimi-K2.5-Text-Only",
    "moonshotai/Kimi-K2.6",
    "moonshotai/Kimi-K3",
    "moonshotai/Kimi-K3.1-Pro",
    "zai-org/GLM-5.3",
    "zai-org/GLM-5.3-Flash",
    "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16",
    "nvidia/NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16",
    "nvidia/NVIDIA-Nemotron-3.5-Lightning-30B-A3B-BF16",
    "nvidia/NVIDIA-Nemotron-3.5-Super-VL-120B-A12B-BF16",
    "thinkingmachines/Inkling",
    "thinkingmachines/Inkling-Small",
    "thinkingmachines/Inkling-2-Small",
)

#: Every name the server accepts by default (listed by ``get_server_capabilities``).
SUPPORTED_MODELS: tuple[str, ...] = TINKEX_MODELS + HOSTED_MODELS

_SUPPORTED = frozenset(SUPPORTED_MODELS)
_BY_LOWER = {name.lower(): name for name in SUPPORTED_MODELS}


def is_supported(name: str) -> bool:
    """True when ``name`` is one of :data:`SUPPORTED_MODELS` (exactly, case included)."""
    return name in _SUPPORTED


def unsupported_detail(name: str, field: str = "base_model") -> str:
    """The 400 message for an unsupported base-model name: a "did you mean", the list, the
    way out."""
    guesses = _guesses(name)
    hint = f"did you mean {' or '.join(repr(g) for g in guesses)}? " if guesses else ""
    return (
        f"{field} {name!r} is not a model the Tinker service serves; {hint}"
        f"supported: {', '.join(SUPPORTED_MODELS)}. Every one of them is served by the local "
        "tiny model; start the server with --any-model (LocalServer(any_model=True)) to accept "
        "any name"
    )


def _guesses(name: str) -> list[str]:
    exact = _BY_LOWER.get(name.lower())
    if exact is not None:
        return [exact]
    close = difflib.get_close_matches(name.lower(), list(_BY_LOWER), n=3, cutoff=0.75)
    return [_BY_LOWER[c] for c in close]
