"""One server per data directory: an exclusive lock on ``<data_dir>/.lock``.

Two servers writing one SQLite index and one checkpoint tree would corrupt each other's view,
and with a persistent default data directory (``tinkex serve``) a second server on another port
would otherwise share it silently. The lock is an advisory ``flock`` held while the server
runs; the file holds the owner's pid for the error message. The operating system releases it
when the process dies, so a crashed server never leaves a stale lock. Where ``fcntl`` is missing
(Windows) there is no lock.
"""

from __future__ import annotations

import os
from typing import IO

__all__ = ["DataDirInUseError", "DataDirLock"]

LOCK_FILE = ".lock"


class DataDirInUseError(OSError):
    """Another running server holds the data directory."""


class DataDirLock:
    """The exclusive lock of one data directory; :meth:`release` (idempotent) gives it up.

    Raises:
        DataDirInUseError: another process holds it (the message names its pid).
    """

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, LOCK_FILE)
        self._file: IO[str] | None = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX
            return
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUseError(
                f"data directory {data_dir} is in use by another tinkex local server (pid "
                f"{owner}); give this one its own (--data-dir DIR, or --ephemeral for a "
                "temporary one)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        """Give the lock up (the file stays; it is reused)."""
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()  # closing the descriptor releases the flock
