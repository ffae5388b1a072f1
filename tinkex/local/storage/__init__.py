"""What the local server keeps on disk: the SQLite index and the checkpoint files.

* :mod:`.paths`: tinker checkpoint paths, kinds, timestamps.
* :mod:`.index`: :class:`Store`, the SQLite index of sessions, runs, samplers, checkpoints and
  future records (state only).
* :mod:`.checkpoints`: checkpoint file formats (safetensors, PEFT adapter config, tar archives).
* :mod:`.lock`: one server per data directory.
"""

from __future__ import annotations

from tinkex.local.storage.index import CheckpointRow, FutureRow, Store
from tinkex.local.storage.lock import DataDirInUseError
from tinkex.local.storage.paths import (
    KINDS,
    OWNER,
    CheckpointError,
    CheckpointPathError,
    iso,
    parse_tinker_path,
    tinker_path,
)

__all__ = [
    "KINDS",
    "OWNER",
    "CheckpointError",
    "CheckpointPathError",
    "CheckpointRow",
    "DataDirInUseError",
    "FutureRow",
    "Store",
    "iso",
    "parse_tinker_path",
    "tinker_path",
]
