"""``tokenizer_for_model``: what ``TrainingClient/SamplingClient.get_tokenizer()`` return.

It follows the official SDK. The Hub repository is the server's ``tokenizer_id`` when it sends
one, otherwise the model name after :func:`~tinkex.tokenizer.resolve_tokenizer_id`'s
heuristics (``:suffix`` dropped, Llama 3 -> ``thinkingmachineslabinc/meta-llama-3-instruct-
tokenizer``, ``org/model/variant`` -> ``org/model``); the Kimi tokenizers load their custom code
at the revision tinker pins. Then:

- with ``transformers`` installed: ``AutoTokenizer.from_pretrained(repo)``, the object the
  official SDK returns. It reads the Hugging Face cache, downloads from the Hub when online and
  honours ``HF_HUB_OFFLINE``/``HF_HOME`` as ``transformers`` does;
- without it: tinkex's own wrapper (:func:`~tinkex.tokenizer.get_tokenizer`: the cache, local
  paths, tiktoken files), the tokenizer files fetched with ``huggingface_hub`` first when the
  cache lacks them, the machine is online and ``huggingface_hub`` is installed.

Ids registered with :func:`~tinkex.tokenizer.register_tokenizer` give what was registered. Ids
under ``tinkex/`` (the built-in ``tinkex/byte-tokenizer``) never go to the Hub: a cache entry
laid out for them is used when there is one, tinkex's own tokenizer otherwise. The local server
answers ``tokenizer_id`` with the path of its tokenizer folder, which loads like any folder. An
id that neither ``transformers`` nor tinkex can load raises
:class:`~tinkex.tokenizer.TokenizerNotFoundError`.
"""

from __future__ import annotations

import functools
import os
from typing import Any, cast

from tinkex.tokenizer._base import Tokenizer, TokenizerNotFoundError
from tinkex.tokenizer._loader import (
    cached_snapshot,
    get_tokenizer,
    is_registered,
    load_tokenizer_path,
    pinned_revision,
    resolve_tokenizer_id,
)

__all__ = ["hub_arguments", "tokenizer_for_model"]

#: Tokenizers of Thinking Machines' own models come from the ``tml-tokenizers`` package.
TML_PREFIXES = ("TML/", "thinkingmachines/")

#: Namespace of tinkex's own tokenizer ids (never looked up on the Hub).
TINKEX_PREFIX = "tinkex/"

#: Files fetched from the Hub when ``transformers`` is missing.
DOWNLOAD_PATTERNS = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tiktoken.model",
    "*.tiktoken",
)

_TRUTHY = frozenset({"1", "true", "yes", "on"})


def hub_arguments(model_name: str, tokenizer_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """The repository and ``from_pretrained`` keyword arguments for a model's tokenizer.

    >>> hub_arguments("Qwen/Qwen3-8B/fp8:peft")
    ('Qwen/Qwen3-8B', {})
    >>> hub_arguments("x", "moonshotai/Kimi-K2.5-Text-Only")[0]
    'moonshotai/Kimi-K2.5'
    """
    repo, revision = pinned_revision(tokenizer_id or resolve_tokenizer_id(model_name))
    if revision is None:
        return repo, {}
    return repo, {"trust_remote_code": True, "revision": revision}


def tokenizer_for_model(model_name: str, tokenizer_id: str | None = None) -> Tokenizer:
    """The tokenizer of ``model_name`` (or of the server's ``tokenizer_id``), as the official
    SDK's ``get_tokenizer()`` gives it; see the module docstring. Loaded once per id.

    Raises:
        TokenizerNotFoundError: neither ``transformers`` nor tinkex can load it; the message
            says where tinkex looked and how to make it available.
        RuntimeError: a Thinking Machines model and ``tml-tokenizers`` is not installed.
    """
    repo, kwargs = hub_arguments(model_name, tokenizer_id)
    if is_registered(repo):
        return get_tokenizer(repo)
    try:
        return _load(repo, kwargs.get("revision"))
    except TokenizerNotFoundError as missing:
        raise TokenizerNotFoundError(
            repo,
            missing.searched,
            f"cannot load the tokenizer of model {model_name!r} (Hub id {repo!r}).\n"
            f"{missing.message}",
        ) from missing


@functools.lru_cache(maxsize=32)
def _load(repo: str, revision: str | None) -> Tokenizer:
    """One tokenizer per repository and revision (model names sharing one share it)."""
    if repo.startswith(TML_PREFIXES):
        tml = _tml_tokenizer(repo)
        if tml is not None:
            return tml
    own = repo.startswith(TINKEX_PREFIX)
    if own and cached_snapshot(repo) is None:
        return get_tokenizer(repo)  # nothing laid out for transformers: skip importing it
    try:
        from transformers import AutoTokenizer
    except ImportError:
        return _tinkex_tokenizer(repo, revision, may_download=not own)
    remote_code = {"trust_remote_code": True, "revision": revision} if revision else {}
    try:
        loaded = AutoTokenizer.from_pretrained(repo, local_files_only=own, **remote_code)
    except OSError as error:  # not in the cache (offline) or not on the Hub
        return _fallback(repo, revision, error)
    return cast(Tokenizer, loaded)


def clear_model_cache() -> None:
    """Forget the tokenizers :func:`tokenizer_for_model` loaded."""
    _load.cache_clear()


def _fallback(repo: str, revision: str | None, error: OSError) -> Tokenizer:
    """tinkex's own offline resolution when ``transformers`` cannot load ``repo`` (at
    ``revision``)."""
    try:
        return get_tokenizer(repo, revision=revision)
    except TokenizerNotFoundError as missing:
        raise TokenizerNotFoundError(
            repo, missing.searched, f"transformers: {error}\n{missing.message}"
        ) from error


def _tinkex_tokenizer(repo: str, revision: str | None, *, may_download: bool) -> Tokenizer:
    try:
        return get_tokenizer(repo, revision=revision)
    except TokenizerNotFoundError as missing:
        if not may_download or _hub_offline():
            raise
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise TokenizerNotFoundError(
                repo,
                missing.searched,
                f"{missing.message}\n(install transformers, or huggingface_hub to let tinkex "
                "download the tokenizer files)",
            ) from None
        try:
            directory = snapshot_download(
                repo, revision=revision, allow_patterns=list(DOWNLOAD_PATTERNS)
            )
        except Exception as error:  # huggingface_hub raises many kinds (HTTP, repo, offline)
            raise TokenizerNotFoundError(
                repo,
                missing.searched,
                f"{missing.message}\ndownloading {repo!r} from the Hub failed: {error}",
            ) from error
        return load_tokenizer_path(directory, repo)


def _hub_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in _TRUTHY
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _tml_tokenizer(repo: str) -> Tokenizer | None:
    try:
        from tml_tokenizers.tinker_tokenizers import (  # type: ignore[import-not-found]
            get_tinker_tokenizer,
        )
    except ImportError as error:
        raise RuntimeError(
            f"the tokenizer {repo!r} of a Thinking Machines model needs the tml-tokenizers "
            "package (not installed); build a renderer with tml-renderers instead "
            "(https://pypi.org/project/tml-renderers/)"
        ) from error
    return cast("Tokenizer | None", get_tinker_tokenizer(repo))
