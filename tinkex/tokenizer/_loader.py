"""``get_tokenizer``: resolve a tokenizer id to local files and load it once per id."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from tinkex.tokenizer._base import Tokenizer, TokenizerNotFoundError
from tinkex.tokenizer.byte import TOKENIZER_ID as BYTE_TOKENIZER_ID
from tinkex.tokenizer.byte import ByteTokenizer

if TYPE_CHECKING:
    from tinkex.types import ModelInput  # type: ignore[attr-defined]

HF_TOKENIZER_FILE = "tokenizer.json"
TIKTOKEN_FILE = "tiktoken.model"
#: Where Llama 3 models read their tokenizer (an ungated copy of Meta's gated repositories).
LLAMA3_TOKENIZER = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"

#: Tokenizers read at a pinned Hub revision (the official SDK's pins: their custom code is
#: trusted at that commit only): tokenizer id -> (Hub repository, revision).
PINNED_TOKENIZERS: dict[str, tuple[str, str]] = {
    "moonshotai/Kimi-K2-Thinking": (
        "moonshotai/Kimi-K2-Thinking",
        "612681931a8c906ddb349f8ad0f582cb552189cd",
    ),
    "moonshotai/Kimi-K2.5": ("moonshotai/Kimi-K2.5", "4d01dfe0332d63057c186e0b262165819efb6611"),
    "moonshotai/Kimi-K2.5-Text-Only": (
        "moonshotai/Kimi-K2.5",
        "4d01dfe0332d63057c186e0b262165819efb6611",
    ),
    "moonshotai/Kimi-K2.6": ("moonshotai/Kimi-K2.6", "b5aabbfb20227ed42becbf5541dbffd213942c58"),
    "moonshotai/Kimi-K3": ("moonshotai/Kimi-K3", "f831ab66814297da540d832a5235f8e904f29d06"),
}

TokenizerSource = str | os.PathLike[str] | Tokenizer | Callable[[], Tokenizer]

#: What one loaded tokenizer is cached under: (tokenizer id, revision, pre-tokenisation pattern).
_CacheKey = tuple[str, str | None, str | None]

_lock = threading.Lock()
# Process-wide caches (the design's tokenizer registry), guarded by _lock.
_cache: dict[_CacheKey, Tokenizer] = {}
_loading: dict[_CacheKey, threading.Lock] = {}
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


def pinned_revision(tokenizer_id: str) -> tuple[str, str | None]:
    """The Hub repository of ``tokenizer_id`` and the revision the official SDK pins it to
    (``None`` when it pins none).

    >>> pinned_revision("moonshotai/Kimi-K2.5-Text-Only")
    ('moonshotai/Kimi-K2.5', '4d01dfe0332d63057c186e0b262165819efb6611')
    >>> pinned_revision("Qwen/Qwen3-8B")
    ('Qwen/Qwen3-8B', None)
    """
    pinned = PINNED_TOKENIZERS.get(tokenizer_id)
    return pinned if pinned is not None else (tokenizer_id, None)


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
        _forget(tokenizer_id)


def unregister_tokenizer(tokenizer_id: str) -> bool:
    """Undo :func:`register_tokenizer`; returns whether it was registered."""
    with _lock:
        _forget(tokenizer_id)
        return _registered.pop(tokenizer_id, None) is not None


def _forget(tokenizer_id: str) -> None:
    """Drop every cached load that ``tokenizer_id`` answers for (call with ``_lock`` held)."""
    for key in [key for key in _cache if tokenizer_id in _names(key[0])]:
        del _cache[key]


def _names(tokenizer_id: str) -> list[str]:
    """The ids ``tokenizer_id`` is looked up as: itself, without ``:suffix``, after
    :func:`resolve_tokenizer_id`."""
    return list(
        dict.fromkeys(
            [tokenizer_id, tokenizer_id.split(":", 1)[0], resolve_tokenizer_id(tokenizer_id)]
        )
    )


def _registration(tokenizer_id: str) -> TokenizerSource | None:
    """What was registered for ``tokenizer_id`` or a name it resolves to (call with
    ``_lock`` held)."""
    for name in _names(tokenizer_id):
        if name in _registered:
            return _registered[name]
    return None


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


def get_tokenizer(
    tokenizer_id: str, *, revision: str | None = None, pat_str: str | None = None
) -> Tokenizer:
    """The tokenizer for ``tokenizer_id``, loaded from local files once and cached.

    ``tokenizer_id`` may be:

    * ``"tinkex/byte-tokenizer"``: the local server's built-in byte tokenizer;
    * an id registered with :func:`register_tokenizer` (also reached by model names that
      resolve to it, such as ``"org/model:peft"``);
    * a path to a ``tokenizer.json`` (Hugging Face ``tokenizers``) or a ``tiktoken.model``
      file, or to a directory holding one (plus an optional ``tokenizer_config.json`` for
      BOS/EOS/PAD and special-token names);
    * a Hub id (``"Qwen/Qwen3-8B"``, also model names handled by
      :func:`resolve_tokenizer_id`), found in the local Hugging Face cache
      (``<cache>/models--org--name/snapshots/<rev>/``). Nothing is ever downloaded.

    Args:
        revision: for Hub ids, the cached snapshot to read: a commit or a ref name such as
            ``"main"``. By default the revision the official SDK pins (Kimi K2:
            :data:`PINNED_TOKENIZERS`), otherwise ``refs/main``, then the newest snapshot.
        pat_str: the pre-tokenisation regex of a ``tiktoken.model`` tokenizer (default: Kimi
            K2's :data:`~tinkex.tokenizer.KIMI_PATTERN`).

    Thread-safe; concurrent first calls for one id load it once. Each (id, revision,
    pattern) is loaded once.

    Raises:
        TokenizerNotFoundError: no local files (at that revision); the message lists where
            tinkex looked and how to make the tokenizer available offline.
        ValueError: the files exist but cannot be loaded, or ``pat_str`` was given for a
            tokenizer that is not a ``tiktoken.model`` one.
    """
    key: _CacheKey = (tokenizer_id, revision, pat_str)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            return cached
        loading = _loading.setdefault(key, threading.Lock())
    with loading:
        with _lock:
            cached = _cache.get(key)
            source = _registration(tokenizer_id)
        if cached is not None:
            return cached
        tokenizer = _load(tokenizer_id, source, revision, pat_str)
        with _lock:
            _cache[key] = tokenizer
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


def load_tokenizer_path(
    path: str | os.PathLike[str], name_or_path: str | None = None, *, pat_str: str | None = None
) -> Tokenizer:
    """Load a ``tokenizer.json``/``tiktoken.model`` file or a directory holding one.

    ``pat_str`` overrides the pre-tokenisation regex of a ``tiktoken.model`` tokenizer.

    Raises:
        FileNotFoundError: ``path`` does not exist or the directory has neither file.
        ValueError: the file cannot be parsed, or ``pat_str`` was given for a
            ``tokenizer.json``.
    """
    target = Path(path).expanduser()
    name = name_or_path or str(path)
    if target.is_dir():
        if (target / HF_TOKENIZER_FILE).is_file():
            return _load_hf(target / HF_TOKENIZER_FILE, name, pat_str)
        if (target / TIKTOKEN_FILE).is_file():
            return _load_tiktoken(target / TIKTOKEN_FILE, name, pat_str)
        raise FileNotFoundError(
            f"tokenizer directory {target} has neither {HF_TOKENIZER_FILE} nor {TIKTOKEN_FILE}"
        )
    if target.is_file():
        if target.name == TIKTOKEN_FILE or target.suffix in (".tiktoken", ".model"):
            return _load_tiktoken(target, name, pat_str)
        return _load_hf(target, name, pat_str)
    raise FileNotFoundError(f"tokenizer path {target} does not exist")


def _load_hf(path: Path, name: str, pat_str: str | None) -> Tokenizer:
    if pat_str is not None:
        raise ValueError(
            f"pat_str applies to tiktoken.model tokenizers; {name!r} is the Hugging Face "
            f"tokenizer.json {path} (its pre-tokeniser is part of that file)"
        )
    from tinkex.tokenizer._hf import HFTokenizer

    return HFTokenizer.from_file(path, name)


def _load_tiktoken(path: Path, name: str, pat_str: str | None) -> Tokenizer:
    from tinkex.tokenizer._tiktoken import TiktokenTokenizer

    if pat_str is None:
        return TiktokenTokenizer.from_file(path, name)
    return TiktokenTokenizer.from_file(path, name, pat_str=pat_str)


def _load(
    tokenizer_id: str, source: TokenizerSource | None, revision: str | None, pat_str: str | None
) -> Tokenizer:
    if source is not None:
        if isinstance(source, str | os.PathLike):
            return load_tokenizer_path(source, tokenizer_id, pat_str=pat_str)
        _no_pattern(pat_str, f"the registered tokenizer {tokenizer_id!r}")
        if isinstance(source, Tokenizer) and not isinstance(source, type):
            return source
        return source()  # a factory (a class counts as one)
    if tokenizer_id == BYTE_TOKENIZER_ID:
        _no_pattern(pat_str, repr(BYTE_TOKENIZER_ID))
        return ByteTokenizer()
    if Path(tokenizer_id).expanduser().exists():
        return load_tokenizer_path(tokenizer_id, pat_str=pat_str)

    searched: list[str] = []
    wanted: list[tuple[str, str | None]] = []
    hub_names = [tokenizer_id.split(":", 1)[0], resolve_tokenizer_id(tokenizer_id)]
    for name in dict.fromkeys(hub_names):
        repo, pinned = pinned_revision(name)
        wanted.append((repo, revision or pinned))
    for repo, wanted_revision in dict.fromkeys(wanted):
        snapshot = cached_snapshot(repo, searched, revision=wanted_revision)
        if snapshot is not None:
            return load_tokenizer_path(snapshot, tokenizer_id, pat_str=pat_str)
    repo, wanted_revision = wanted[-1]
    raise TokenizerNotFoundError(
        tokenizer_id, searched, _not_found_message(tokenizer_id, repo, wanted_revision, searched)
    )


def _no_pattern(pat_str: str | None, what: str) -> None:
    if pat_str is not None:
        raise ValueError(f"pat_str applies to tiktoken.model tokenizers, not to {what}")


def cached_snapshot(
    repo: str, searched: list[str] | None = None, *, revision: str | None = None
) -> Path | None:
    """The Hugging Face cache snapshot holding tokenizer files for Hub id ``repo``, if any.

    With ``revision`` (a commit, or a ref name such as ``"main"``) only that snapshot counts;
    without, ``refs/main`` first, then the most recently modified. The cache directories
    searched are appended to ``searched`` when given.
    """
    if repo.count("/") > 1 or not repo or repo.startswith(("/", ".")):
        return None
    for cache in hf_cache_dirs():
        repo_dir = cache / ("models--" + repo.replace("/", "--"))
        if searched is not None:
            searched.append(str(repo_dir))
        snapshot = _snapshot_with_tokenizer(repo_dir, revision)
        if snapshot is not None:
            return snapshot
    return None


def _snapshot_with_tokenizer(repo_dir: Path, revision: str | None) -> Path | None:
    """The snapshot of a Hub cache entry that holds tokenizer files: the one ``revision``
    names, or (without) ``refs/main`` first, then the most recently modified."""
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    if revision is not None:
        ordered = [snapshots / _commit(repo_dir, revision)]
    else:
        ordered = [snapshots / _commit(repo_dir, "main")] if _ref(repo_dir, "main") else []
        others = [p for p in snapshots.iterdir() if p.is_dir() and p not in ordered]
        ordered.extend(sorted(others, key=lambda p: p.stat().st_mtime, reverse=True))
    for snapshot in ordered:
        if (snapshot / HF_TOKENIZER_FILE).is_file() or (snapshot / TIKTOKEN_FILE).is_file():
            return snapshot
    return None


def _ref(repo_dir: Path, name: str) -> Path | None:
    ref = repo_dir / "refs" / name
    return ref if "/" not in name and ref.is_file() else None


def _commit(repo_dir: Path, revision: str) -> str:
    """The commit a revision names: a ref's content, else the revision itself."""
    ref = _ref(repo_dir, revision)
    return ref.read_text(encoding="utf-8").strip() if ref is not None else revision


def _cached_revisions(repo: str) -> list[str]:
    """The snapshots of ``repo`` in the cache that hold tokenizer files."""
    found: list[str] = []
    for cache in hf_cache_dirs():
        snapshots = cache / ("models--" + repo.replace("/", "--")) / "snapshots"
        if snapshots.is_dir():
            found.extend(
                p.name
                for p in sorted(snapshots.iterdir())
                if (p / HF_TOKENIZER_FILE).is_file() or (p / TIKTOKEN_FILE).is_file()
            )
    return list(dict.fromkeys(found))


def _hf_download_command() -> str:
    """The download command the installed ``huggingface_hub`` ships: ``hf`` since 0.34,
    ``huggingface-cli`` before (and when it is not installed, the current name)."""
    from importlib.metadata import entry_points

    scripts = {entry.name for entry in entry_points(group="console_scripts")}
    if "hf" not in scripts and "huggingface-cli" in scripts:
        return "huggingface-cli download"
    return "hf download"


def _not_found_message(
    tokenizer_id: str, repo: str, revision: str | None, searched: list[str]
) -> str:
    at = f" at revision {revision}" if revision else ""
    lines = [
        f"tokenizer {tokenizer_id!r} is not available offline{at} (no local tokenizer files "
        "found).",
    ]
    if searched:
        lines.append(
            f"Looked for a Hugging Face cache entry{at} with tokenizer.json or tiktoken.model in:"
        )
        lines.extend(f"  {path}" for path in dict.fromkeys(searched))
    others = _cached_revisions(repo) if revision else []
    if others:
        lines.append(
            f"(the cache holds {repo!r} at {', '.join(others)} only; pass "
            f"revision={others[0]!r} to use that one)"
        )
    revision_flag = f" --revision {revision}" if revision else ""
    lines.append("Make it available by one of:")
    lines.append(
        f"  - on a machine with network access: {_hf_download_command()} {repo} "
        f"tokenizer.json tokenizer_config.json (or tiktoken.model){revision_flag}, then copy "
        f"the cache (HF_HOME) here;"
    )
    lines.append("  - passing a path to tokenizer.json / tiktoken.model or to a directory with it;")
    lines.append(
        f"  - tinkex.tokenizer.register_tokenizer({tokenizer_id!r}, '/path/to/tokenizer.json')."
    )
    return "\n".join(lines)
