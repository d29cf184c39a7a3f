"""An exclusive lock on a folder (a run folder, a batch folder): one writer at a time.

The lock is a file `.lock` in the folder, created with O_EXCL and holding the holder's pid,
host name and start time as JSON. A second process is refused with one line naming the holder.
A lock whose process is gone (same host, pid not alive) is stale: it is replaced, and the
caller is told (`FolderLock.stale`, `stale_note`). A lock file that cannot be read as a lock
(garbage, or cut short) is stale too, once a second read a moment later still fails (a lock
is written right after it is created). A lock from another host is never taken over: the user
is told how to remove it when that process is known to be dead. `check_unlocked` tells a
command before its slow set-up (loading a model) that the folder is busy.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import UserError, WriteError, os_reason

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
        self._created = [d for d in (self.folder, *self.folder.parents) if not d.exists()]
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_settled(self.path)
                if holder is not None and holder_alive(holder):
                    raise in_use(self.folder, self.what, holder) from None
                self.stale = holder or {}
                self.path.unlink(missing_ok=True)     # stale: its holder is dead
                continue
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(record, f)
            except OSError as e:                      # disk full: no empty lock left behind
                self.path.unlink(missing_ok=True)
                self._remove_created()
                raise WriteError(self.path, os_reason(e)) from None
            self._held[key] = 1
            return self
        raise UserError(f"{self.folder}: could not take the lock {self.path}; try again.")

    def stale_note(self) -> str | None:
        """The line telling the user which stale lock was replaced (None when none was)."""
        if self.stale is None:
            return None
        if not self.stale:
            return (f"{self.folder}: replaced an unreadable lock file {self.path} (not a lock "
                    f"this tool wrote, or cut short); treated as stale.")
        return (f"{self.folder}: replaced a stale lock of process {self.stale.get('pid')} on "
                f"{self.stale.get('host')} (it is no longer running).")

    def __exit__(self, exc_type, *exc) -> None:
        key = str(self.folder.resolve())
        self._held[key] -= 1
        if self._held[key] == 0:
            del self._held[key]
            holder = read_lock(self.path)
            if holder is not None and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            if exc_type is not None:
                self._remove_created()

    def _remove_created(self) -> None:
        """After a failure: the folders this lock created, deepest first, while still empty
        (a command that fails leaves no folder behind)."""
        for d in self._created:
            try:
                d.rmdir()
            except OSError:
                break


def check_unlocked(folder: str | os.PathLike, what: str = "folder") -> None:
    """Refuse at once, naming the holder, when a live process (not this one) holds `folder`'s
    lock: for commands to call before slow set-up and before checks that would otherwise
    advise what the lock then refuses. Takes nothing; a stale lock is left to FolderLock."""
    folder = Path(folder)
    path = folder / LOCK_FILE
    if not path.exists():
        return
    holder = _read_settled(path)
    if holder is not None and holder_alive(holder) and holder.get("pid") != os.getpid():
        raise in_use(folder, what, holder)


def in_use(folder: Path, what: str, holder: dict) -> UserError:
    """The one line for a folder another process holds."""
    started = holder.get("started")
    since = f"since {started}" if isinstance(started, str) and started else "start time unknown"
    return UserError(f"{folder}: this {what} is in use by process {holder.get('pid')} on "
                     f"{holder.get('host')} ({since}); wait for it to end "
                     f"or stop it. If it is gone, delete {folder / LOCK_FILE}.")


def _read_settled(path: Path, wait: float = 0.2) -> dict | None:
    """read_lock, read again after `wait` seconds when it fails (a lock being written)."""
    holder = read_lock(path)
    if holder is None and path.exists():
        time.sleep(wait)
        holder = read_lock(path)
    return holder


def read_lock(path: Path) -> dict | None:
    """The lock's record, or None when missing or unreadable: not JSON, or not an object with
    the pid (a positive integer) and host (text) that FolderLock writes."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(data, dict) or not isinstance(data.get("host"), str)
            or type(data.get("pid")) is not int or data["pid"] <= 0):
        return None
    return data


def holder_alive(holder: dict) -> bool:
    """Is the lock's process still running? Only answerable on the same host; a lock from
    another host counts as alive."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Is process `pid` on this host running (or not ours to signal, so maybe)?"""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True
