"""``get_tokenizer``: resolve a tokenizer id to local files and load it once per id."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tinkex.tokenizer._base import Tokenizer, TokenizerNotFoundError, read_tokenizer_config
from tinkex.tokenizer.byte import TOKENIZER_ID as BYTE_TOKENIZER_ID
from tinkex.tokenizer.byte import ByteTokenizer

if TYPE_CHECKING:
    from tinkex.types import ModelInput  # type: ignore[attr-defined]

HF_TOKENIZER_FILE = "tokenizer.json"
TIKTOKEN_FILE = "tiktoken.model"
LLAMA3_TOKENIZER = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"

TokenizerSource = str | os.PathLike[str] | Tokenizer | Callable[[], Tokenizer]

_lock = threading.Lock()
# Process-wide caches (the design's tokenizer registry), guarded by _lock.
_cache: dict[str, Tokenizer] = {}
_loading: dict[str, threading.Lock] = {}
_registered: dict[str, TokenizerSource] = {}


def resolve_tokenizer_id(model_name: str) -> str:
    """The Hub repository that holds the tokenizer of ``model_name``.

    Applies the official SDK's heuristics: a ``:suffix`` is dropped, Llama 3 models use
    ``thinkingmachineslabinc/meta-llama-3-instruct-tokenizer``, and ``org/model/variant``
    becomes ``org/model``.

    >>> resolve_tokenizer_id("meta-llama/Llama-3.1-8B:peft")
    'thinkingmachineslabinc/meta-llama-3-instruct-tokenizer'
    """
    name = model_name.split(":", 1)[0]
    if name.startswith("meta-llama/Llama-3"):
        return LLAMA3_TOKENIZER
    parts = name.split("/")
    if len(parts) > 2:
        return "/".join(parts[:2])
    return name


def hf_cache_dirs() -> list[Path]:
    """Hugging Face Hub cache directories to search, in order (from ``HF_HUB_CACHE``,
    ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``, ``XDG_CACHE_HOME``, ``~/.cache``)."""
    candidates: list[Path] = []
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            candidates.append(Path(os.environ[variable]).expanduser())
    if os.environ.get("HF_HOME"):
        candidates.append(Path(os.environ["HF_HOME"]).expanduser() / "hub")
    if os.environ.get("XDG_CACHE_HOME"):
        candidates.append(Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub")
    candidates.append(Path.home() / ".cache" / "huggingface" / "hub")
    unique: list[Path] = []
    for path in candidates:
        if path not in unique:
            unique.append(path)
    return unique


def register_tokenizer(tokenizer_id: str, source: TokenizerSource) -> None:
    """Make ``tokenizer_id`` resolve to ``source``: a file or directory path, a tokenizer
    object, or a zero-argument factory (called once, on first use). Replaces a cached one."""
    with _lock:
        _registered[tokenizer_id] = source
        _cache.pop(tokenizer_id, None)


def unregister_tokenizer(tokenizer_id: str) -> bool:
    """Undo :func:`register_tokenizer`; returns whether it was registered."""
    with _lock:
        _cache.pop(tokenizer_id, None)
        return _registered.pop(tokenizer_id, None) is not None


def is_registered(tokenizer_id: str) -> bool:
    """True when :func:`register_tokenizer` was called for ``tokenizer_id``."""
    with _lock:
        return tokenizer_id in _registered


def clear_cache() -> None:
    """Forget every loaded tokenizer, those of ``tokenizer_for_model`` too (registrations
    stay)."""
    from tinkex.tokenizer._for_model import clear_model_cache

    with _lock:
        _cache.clear()
    clear_model_cache()


def get_tokenizer(tokenizer_id: str) -> Tokenizer:
    """The tokenizer for ``tokenizer_id``, loaded from local files once and cached.

    ``tokenizer_id`` may be:

    * ``"tinkex/byte-tokenizer"``: the local server's built-in byte tokenizer;
    * an id registered with :func:`register_tokenizer`;
    * a path to a ``tokenizer.json`` (Hugging Face ``tokenizers``) or a ``tiktoken.model``
      file, or to a directory holding one (plus an optional ``tokenizer_config.json`` for
      BOS/EOS/PAD and special-token names);
    * a Hub id (``"Qwen/Qwen3-8B"``, also model names handled by
      :func:`resolve_tokenizer_id`), found in the local Hugging Face cache
      (``<cache>/models--org--name/snapshots/<rev>/``). Nothing is ever downloaded.

    Thread-safe; concurrent first calls for one id load it once.

    Raises:
        TokenizerNotFoundError: no local files; the message lists where tinkex looked and how
            to make the tokenizer available offline.
        ValueError: the files exist but cannot be loaded.
    """
    with _lock:
        cached = _cache.get(tokenizer_id)
        if cached is not None:
            return cached
        loading = _loading.setdefault(tokenizer_id, threading.Lock())
    with loading:
        with _lock:
            cached = _cache.get(tokenizer_id)
            source = _registered.get(tokenizer_id)
        if cached is not None:
            return cached
        tokenizer = _load(tokenizer_id, source)
        with _lock:
            _cache[tokenizer_id] = tokenizer
        return tokenizer


def model_input_from_text(
    text: str, tokenizer: Tokenizer | str, *, add_special_tokens: bool | None = None
) -> ModelInput:
    """``ModelInput.from_ints(tokenizer.encode(text))``; ``tokenizer`` may be an id.

    ``add_special_tokens=None`` keeps the tokenizer's own default.
    """
    from tinkex.types import ModelInput  # type: ignore[attr-defined]

    resolved = get_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    if add_special_tokens is None:
        ids = resolved.encode(text)
    else:
        ids = resolved.encode(text, add_special_tokens=add_special_tokens)
    return ModelInput.from_ints(ids)


def load_tokenizer_path(path: str | os.PathLike[str], name_or_path: str | None = None) -> Tokenizer:
    """Load a ``tokenizer.json``/``tiktoken.model`` file or a directory holding one.

    Raises:
        FileNotFoundError: ``path`` does not exist or the directory has neither file.
        ValueError: the file cannot be parsed.
    """
    target = Path(path).expanduser()
    name = name_or_path or str(path)
    if target.is_dir():
        for candidate, loader in ((HF_TOKENIZER_FILE, _load_hf), (TIKTOKEN_FILE, _load_tiktoken)):
            if (target / candidate).is_file():
                return loader(target / candidate, name)
        raise FileNotFoundError(
            f"tokenizer directory {target} has neither {HF_TOKENIZER_FILE} nor {TIKTOKEN_FILE}"
        )
    if target.is_file():
        if target.name == TIKTOKEN_FILE or target.suffix in (".tiktoken", ".model"):
            return _load_tiktoken(target, name)
        return _load_hf(target, name)
    raise FileNotFoundError(f"tokenizer path {target} does not exist")


def _load_hf(path: Path, name: str) -> Tokenizer:
    from tinkex.tokenizer._hf import HFTokenizer

    return HFTokenizer.from_file(path, name)


def _load_tiktoken(path: Path, name: str) -> Tokenizer:
    from tinkex.tokenizer._tiktoken import TiktokenTokenizer

    return TiktokenTokenizer(path, name_or_path=name, config=read_tokenizer_config(path.parent))


def _load(tokenizer_id: str, source: TokenizerSource | None) -> Tokenizer:
    if source is not None:
        if isinstance(source, str | os.PathLike):
            return load_tokenizer_path(source, tokenizer_id)
        if isinstance(source, Tokenizer) and not isinstance(source, type):
            return source
        return source()  # a factory (a class counts as one)
    if tokenizer_id == BYTE_TOKENIZER_ID:
        return ByteTokenizer()
    if Path(tokenizer_id).expanduser().exists():
        return load_tokenizer_path(tokenizer_id)

    searched: list[str] = []
    repos = [tokenizer_id.split(":", 1)[0], resolve_tokenizer_id(tokenizer_id)]
    for repo in dict.fromkeys(repos):
        snapshot = cached_snapshot(repo, searched)
        if snapshot is not None:
            return load_tokenizer_path(snapshot, tokenizer_id)
    raise TokenizerNotFoundError(
        tokenizer_id, searched, _not_found_message(tokenizer_id, repos, searched)
    )


def cached_snapshot(repo: str, searched: list[str] | None = None) -> Path | None:
    """The Hugging Face cache snapshot holding tokenizer files for Hub id ``repo``, if any.

    The cache directories searched are appended to ``searched`` when given.
    """
    if repo.count("/") > 1 or not repo or repo.startswith(("/", ".")):
        return None
    for cache in hf_cache_dirs():
        repo_dir = cache / ("models--" + repo.replace("/", "--"))
        if searched is not None:
            searched.append(str(repo_dir))
        snapshot = _snapshot_with_tokenizer(repo_dir)
        if snapshot is not None:
            return snapshot
    return None


def _snapshot_with_tokenizer(repo_dir: Path) -> Path | None:
    """The snapshot of a Hub cache entry that holds tokenizer files: ``refs/main`` first,
    then the most recently modified."""
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    ordered: list[Path] = []
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        ordered.append(snapshots / ref.read_text(encoding="utf-8").strip())
    others = [p for p in snapshots.iterdir() if p.is_dir() and p not in ordered]
    ordered.extend(sorted(others, key=lambda p: p.stat().st_mtime, reverse=True))
    for snapshot in ordered:
        if (snapshot / HF_TOKENIZER_FILE).is_file() or (snapshot / TIKTOKEN_FILE).is_file():
            return snapshot
    return None


def _not_found_message(tokenizer_id: str, repos: list[str], searched: list[str]) -> str:
    repo = repos[-1]
    lines = [
        f"tokenizer {tokenizer_id!r} is not available offline (no local tokenizer files found).",
    ]
    if searched:
        lines.append(
            "Looked for a Hugging Face cache entry with tokenizer.json or tiktoken.model in:"
        )
        lines.extend(f"  {path}" for path in dict.fromkeys(searched))
    lines.append("Make it available by one of:")
    lines.append(
        f"  - on a machine with network access: huggingface-cli download {repo} "
        f"tokenizer.json tokenizer_config.json (or tiktoken.model), then copy the cache "
        f"(HF_HOME) here;"
    )
    lines.append("  - passing a path to tokenizer.json / tiktoken.model or to a directory with it;")
    lines.append(
        f"  - tinkex.tokenizer.register_tokenizer({tokenizer_id!r}, '/path/to/tokenizer.json')."
    )
    return "\n".join(lines)
