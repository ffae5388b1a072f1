"""The stored-credentials file ``tinkex auth login``/``logout`` write (``tinker``'s format).

``~/.tinker/credentials.json`` (``tinkex._config.default_credentials_path``), which both SDKs
read when neither ``TINKER_API_KEY`` nor ``TINKER_CREDENTIAL_CMD`` is set::

    {"version": 1, "default": "<key id>",
     "keys": {"<key id>": {"type": "manual", "key": "tml-...", "name": "...", ...}}}

The directory is created owner-only (0700) and the file is written owner-only (0600) through
a temporary file and a rename, so it is never seen half-written or readable by others.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tinkex.cli._context import CommandError


def load(path: Path) -> dict[str, Any]:
    """The file's content (an empty store when it does not exist)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"version": 1, "default": None, "keys": {}}
    except (OSError, ValueError) as exc:
        raise CommandError(
            f"cannot read stored credentials {path}: {exc}; fix or delete the file"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("keys", {}), dict):
        raise CommandError(f"stored credentials {path} are malformed; fix or delete the file")
    data.setdefault("version", 1)
    data.setdefault("keys", {})
    data.setdefault("default", None)
    return data


def default_record(path: Path) -> tuple[str, dict[str, Any]] | None:
    """``(key id, record)`` of the default credential, or None."""
    data = load(path)
    key_id = data.get("default")
    record = data["keys"].get(key_id) if key_id is not None else None
    return (str(key_id), record) if isinstance(record, dict) else None


def add_default(path: Path, key_id: str, record: dict[str, Any]) -> None:
    """Store ``record`` under ``key_id`` and make it the default."""
    data = load(path)
    data["keys"][key_id] = record
    data["default"] = key_id
    save(path, data)


def remove(path: Path, key_id: str) -> None:
    """Remove a stored key (and the default, when it pointed at it)."""
    data = load(path)
    data["keys"].pop(key_id, None)
    if data.get("default") == key_id:
        data["default"] = None
    save(path, data)


def save(path: Path, data: dict[str, Any]) -> None:
    """Write the file owner-only, atomically."""
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in data.items() if v is not None}, handle, indent=2)
            handle.write("\n")
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
