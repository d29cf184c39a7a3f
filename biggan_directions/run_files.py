"""The files of a discovery run folder as discover writes them: checkpoint.pt, log.csv, run.json, directions.

Each is written atomically through fileio (log.csv is appended row by row, and truncated to the
checkpoint's step on resume). Reading is strict where a silent fallback would lose a user's
run: an unreadable checkpoint or run.json is a one-line UserError, never replaced quietly.
"""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import stat
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

from . import runs
from .directions import save_directions
from .errors import UserError, first_line
from .fileio import atomic_path, check_writable_dir, temp_beside, write_text
from .lock import FolderLock

CHECKPOINT_FORMAT = "biggan-directions-checkpoint"
LOG_HEADER = ["step", "penalty", "eval_penalty", "seconds"]
RECENT = 100                       # training penalties averaged into final_penalty


# ---------------------------------------------------------------------- checkpoint.pt
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a Discovery.state_dict() atomically (tensors and plain values only)."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except OSError as e:
        raise UserError(f"could not write {path} ({first_line(e)}); free space or choose "
                        f"another output folder.") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by save_checkpoint; never unpickles code (weights_only=True)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(f"{path}: unreadable checkpoint ({first_line(e)}); "
                        f"use --overwrite to start again.") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a biggan-directions checkpoint; use --overwrite to start again.")
    return state


def checkpoint_step(path: Path) -> int:
    return int(load_checkpoint(path)["step"])


# ---------------------------------------------------------------------- directions.safetensors
def save_run_directions(path: Path, directions: torch.Tensor, meta: dict[str, Any]) -> None:
    """save_directions, then the umask's permissions (0644 under umask 022) like every other
    file of the run: safetensors writes its own file with 0600, which the rename would keep."""
    save_directions(path, directions, meta)
    probe = temp_beside(path)              # a file created as every other one (umask applied);
    try:                                   # reading the umask itself would briefly change it
        os.chmod(path, stat.S_IMODE(probe.stat().st_mode))
    finally:
        probe.unlink(missing_ok=True)


# ---------------------------------------------------------------------- log.csv
def truncate_log(path: Path, step: int) -> None:
    """Keep log rows up to `step` (rows written after the checkpoint are redone on resume);
    step 0 empties the log."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [] if step == 0 else [r for i, r in enumerate(rows)
                                 if i == 0 or (r and r[0].isdigit() and int(r[0]) <= step)]
    buf = io.StringIO()
    csv.writer(buf).writerows(kept)
    write_text(path, buf.getvalue())


def recent_penalties(path: Path) -> list[float]:
    """The training penalties of the last RECENT logged steps."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["penalty"]) for r in rows[-RECENT:]]


class StepLog:
    """log.csv opened for appending: one flushed row per step, so a crash loses no logged step.
    A failed write is a one-line UserError naming the file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = open(path, "a", newline="")
            self._writer = csv.writer(self._file)
            if self._file.tell() == 0:
                self._writer.writerow(LOG_HEADER)
        except OSError as e:
            raise self._error(e) from None

    def append(self, step: int, penalty: float, eval_penalty: float | None, seconds: float) -> None:
        row_eval = "" if eval_penalty is None else f"{eval_penalty:.6g}"
        try:
            self._writer.writerow([step, f"{penalty:.6g}", row_eval, f"{seconds:.3f}"])
            self._file.flush()
        except OSError as e:
            raise self._error(e) from None

    def close(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass

    def _error(self, e: OSError) -> UserError:
        return UserError(f"could not write {self.path} ({first_line(e)}); free space or choose "
                         f"another output folder.")


# ---------------------------------------------------------------------- run.json
def read_record(path: Path) -> dict[str, Any]:
    """run.json as a dict; {} when there is none. An unreadable or corrupt one is a UserError
    (resuming over it would silently replace the run's record)."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable run record ({first_line(e)}); repair or remove it, "
                        f"or pass --overwrite to start the run again.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a run record (not a JSON object); repair or remove it, "
                        f"or pass --overwrite to start the run again.")
    return data


def environment() -> dict[str, Any]:
    """What run.json records about the software: tool, version, versions of its dependencies."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "torch": torch.__version__,
                "biggan-directions": package_version()}
    try:
        versions["pytorch-pretrained-biggan"] = version("pytorch-pretrained-biggan")
    except PackageNotFoundError:
        versions["pytorch-pretrained-biggan"] = "unknown"
    return {"tool": "biggan-directions", "version": package_version(), "versions": versions}


def package_version() -> str:
    """This package's version: from the checkout's pyproject.toml when running from source
    (an editable install's metadata can be older), else the installed distribution's metadata."""
    from importlib.metadata import PackageNotFoundError, version

    found = source_version(Path(__file__).resolve().parents[1] / "pyproject.toml")
    if found:
        return found
    try:
        return version("biggan-directions")
    except PackageNotFoundError:
        raise UserError("biggan-directions is neither installed nor run from its checkout; "
                        "install it (pip install .).") from None


def source_version(pyproject: Path) -> str | None:
    """The [project] version of a biggan-directions pyproject.toml, or None when the file is
    missing or belongs to another project."""
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        import tomllib
        project = tomllib.loads(text).get("project", {})
        name, found = project.get("name"), project.get("version")
    except ImportError:                                   # Python 3.10: the two lines we need
        section = text.split("[project]", 1)[-1].split("\n[", 1)[0]
        name = _toml_string(section, "name")
        found = _toml_string(section, "version")
    except ValueError:
        return None
    return str(found) if name == "biggan-directions" and found else None


def _toml_string(section: str, key: str) -> str | None:
    m = re.search(rf'^{key}\s*=\s*"([^"]*)"', section, re.M)
    return m.group(1) if m else None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def owned_files() -> tuple[str, ...]:
    """The names this tool writes in a run folder (what --overwrite may remove)."""
    from .curves import CURVE_FILE

    return (runs.DIRECTIONS_FILE, runs.RUN_RECORD, runs.STEP_LOG, runs.CHECKPOINT,
            runs.SCORES_JSON, runs.SCORES_CSV, runs.VIDEOS_DIR, CURVE_FILE)


@contextmanager
def locked_run_folder(folder: Path, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Check that `folder` can be written (before anything is created), then hold its lock
    (lock.FolderLock) for the block; a stale lock that was replaced is told to `notify`
    (default: a line on stderr)."""
    check_writable_dir(folder)
    with FolderLock(folder, what="run") as lock:
        if lock.stale is not None:
            (notify or to_stderr)(f"{folder}: replaced a stale lock of process "
                                  f"{lock.stale.get('pid')} on {lock.stale.get('host')} (it is "
                                  f"no longer running).")
        yield


def to_stderr(message: str) -> None:
    """A warning line on stderr, flushed."""
    import sys

    print(message, file=sys.stderr, flush=True)
