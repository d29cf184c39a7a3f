"""Atomic file writes: a temporary file beside the target, renamed into place when complete."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import secrets
import socket
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import UserError, WriteError, first_line, os_reason
from .lock import pid_alive


# Temporary files are named .<stem>.<host>-<pid>-<random>.tmp<suffix>: the writer's host (a
# short hash of its name) and process id let a later writer on the same host tell a temporary
# file whose writer was killed (SIGKILL leaves it) from one still being written.
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(r"^\..*\.(?P<host>[0-9a-f]{6})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp(\.[^.]*)?$")


def temp_beside(path: str | os.PathLike) -> Path:
    """A new, empty, hidden file in `path`'s folder with the same suffix (encoders pick the
    format by it), created with the umask's permissions (mkstemp's 0600 would survive the
    rename and hide the user's own outputs from their group). Stale temporary files of this
    naming in the folder, left by a writer that is gone, are removed first."""
    path = Path(path)
    remove_stale_temps(path.parent)
    while True:
        tmp = path.with_name(f".{path.stem}.{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
                             f".tmp{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of temp_beside's naming in `folder` whose writer, a process
    on this host, is no longer running (killed mid-write); returns them. Files of other hosts
    and of live processes are left alone; a folder that cannot be read is left as it is."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP_NAME.match(name)
        if m is None or m["host"] != _HOST or pid_alive(int(m["pid"])):
            continue
        try:
            os.unlink(Path(folder) / name)
            removed.append(Path(folder) / name)
        except OSError:
            pass
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename, on any
    error (Ctrl-C included) it is removed and `path` is untouched. Creates missing folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """atomic_path for files that belong together: yield one temporary path per target; when
    the block succeeds all are renamed into place, on any error none is and all temporary
    files go, so the targets are all new or all as they were."""
    temps: list[Path] = []
    try:
        for path in paths:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            temps.append(temp_beside(path))
        yield list(temps)
        for tmp, path in zip(temps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextmanager
def output_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Create `folder` (and missing parents) for a command's files. When the block fails (an
    error, Ctrl-C), the folders created here are removed again while they are empty: a failed
    command leaves no folder behind."""
    folder = Path(folder)
    top, probe = None, folder                  # top: the outermost folder created here
    while not probe.exists() and probe.parent != probe:
        top, probe = probe, probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        for f in [folder, *folder.parents] if top is not None else []:
            try:
                f.rmdir()
            except OSError:
                break
            if f == top:
                break
        raise


def json_text(data: Any) -> str:
    """`data` as indented, key-sorted, strict JSON text (NaN and infinities as null)."""
    return json.dumps(finite_or_none(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8, newlines as given) to `path` atomically. A failed write (disk full,
    read-only folder) is a WriteError naming the file; the old file stays as it was."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    except OSError as e:
        raise WriteError(path, os_reason(e)) from None
    return Path(path)


def chmod_as_new(path: str | os.PathLike) -> None:
    """Give `path` the permissions every new file gets here (the umask's: 0644 under umask
    022), for files a library creates 0600 (safetensors), which a rename would keep. A probe
    file is created to learn them: reading the umask itself would briefly change it."""
    probe = temp_beside(path)
    try:
        os.chmod(path, stat.S_IMODE(probe.stat().st_mode))
    finally:
        probe.unlink(missing_ok=True)


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Check, before any work, that files can be created in `folder` (which may not exist yet:
    its nearest existing parent is probed). Creates nothing that stays. UserError otherwise."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"cannot write to {folder}: {probe} is a file, not a folder; choose "
                        f"another output folder.")
    try:
        fd, name = tempfile.mkstemp(dir=probe, prefix=".write-test.")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise UserError(f"cannot write to {folder} ({first_line(e)}); choose another output "
                        f"folder.") from None
    return folder


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented, key-sorted, strict JSON to `path` atomically; NaN and
    infinities become null, so any JSON reader can read the file."""
    return write_text(path, json_text(data))


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object from `path`, or {} when the file is missing, unreadable or not an object
    (for records the tool wrote itself and can do without)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def finite_or_none(data: Any) -> Any:
    """`data` made strict-JSON-ready: every NaN or infinite float (in nested dicts, lists,
    tuples) becomes None; tuples, tensors and arrays become lists."""
    if hasattr(data, "tolist") and not isinstance(data, (str, bytes)):   # tensor, ndarray, np scalar
        data = data.tolist()
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v) for v in data]
    return data
