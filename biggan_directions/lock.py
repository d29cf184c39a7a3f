"""An exclusive lock on a folder (a run folder, a batch folder): one writer at a time.

The lock is a file `.lock` in the folder, created with O_EXCL and holding the holder's pid,
host name and start time as JSON. A second process is refused with one line naming the holder.
A lock whose process is gone (same host, pid not alive) is stale: it is replaced, and the
caller is told (`FolderLock.stale`). A lock from another host is never taken over: the user
is told how to remove it when that process is known to be dead.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import UserError

LOCK_FILE = ".lock"


class FolderLock:
    """with FolderLock(folder, what="run"): ... holds the folder's lock (created if needed).

    Raises UserError when another live process holds it. Re-entrant within one process (a
    nested lock on the same folder by the same pid passes through)."""

    _held: dict[str, int] = {}      # resolved folder -> nesting depth in this process

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.what = what
        self.stale: dict | None = None      # the record of a stale lock that was replaced

    def __enter__(self) -> "FolderLock":
        key = str(self.folder.resolve())
        if self._held.get(key):
            self._held[key] += 1
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = read_lock(self.path)
                if holder is not None and holder_alive(holder):
                    raise UserError(f"{self.folder}: this {self.what} is in use by process "
                                    f"{holder.get('pid')} on {holder.get('host')} (since "
                                    f"{holder.get('started')}); wait for it to end or stop it. "
                                    f"If it is gone, delete {self.path}.") from None
                self.stale = holder or {}
                self.path.unlink(missing_ok=True)     # stale: its holder is dead
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            self._held[key] = 1
            return self
        raise UserError(f"{self.folder}: could not take the lock {self.path}; try again.")

    def __exit__(self, *exc) -> None:
        key = str(self.folder.resolve())
        self._held[key] -= 1
        if self._held[key] == 0:
            del self._held[key]
            holder = read_lock(self.path)
            if holder is not None and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)


def read_lock(path: Path) -> dict | None:
    """The lock's record, or None when missing or unreadable (a half-written lock counts as stale)."""
    try:
        data = json.loads(Path(path).read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def holder_alive(holder: dict) -> bool:
    """Is the lock's process still running? Only answerable on the same host; a lock from
    another host counts as alive."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
