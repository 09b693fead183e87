"""One bot process per SQLite file, enforced by an OS lock the kernel releases on death.

SQLite has no row locks, leases or a way to tell two bots apart, so a second bot on the
same file would send every briefing twice. The running bot holds an exclusive
``flock`` on ``<database>.lock`` for its whole life; the kernel drops it the moment the
process dies, even by SIGKILL, so a restart one second after a crash is not refused —
and the new process then knows every earlier worker is dead and settles their rows at
once. The read-only operator commands (``stats``, ``health``, exports) do not take it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.errors import StorageError

__all__ = ["DatabaseOwnerLock", "sqlite_file"]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return Path(database)


class DatabaseOwnerLock:
    """Held while the bot runs on a SQLite file; :meth:`release` (or death) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: Path) -> DatabaseOwnerLock:
        path = database.with_name(database.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StorageError(
                f"another bot (pid {holder}) is already running on the database {database}; "
                "stop it first (several delivery workers need PostgreSQL)") from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
