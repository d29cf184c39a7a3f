"""The files of a discovery run folder as discover writes them: checkpoint.pt, log.csv, run.json, directions.

Each is written atomically through fileio (log.csv is appended row by row, and truncated to the
checkpoint's step on resume). Reading is strict where a silent fallback would lose a user's
run: an unreadable checkpoint or run.json is a one-line UserError, never replaced quietly.
"""
from __future__ import annotations

import csv
import io
import json
import platform
import re
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from safetensors import SafetensorError

from ..foundation.errors import UserError, WriteError, first_line, os_reason
from ..foundation.fileio import (atomic_path, check_writable_dir, chmod_as_new, json_text,
                                 write_json, write_text)
from ..foundation.lock import FolderLock
from ..core.directions import save_directions, stored_meta
from . import layout
from .layout import Run
from .curves import CURVE_FILE

CHECKPOINT_FORMAT = "biggan-directions-checkpoint"
LOG_HEADER = ["step", "penalty", "eval_penalty", "seconds"]
RECENT = 100                       # training penalties averaged into final_penalty


# ---------------------------------------------------------------------- checkpoint.pt
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a Discovery.state_dict() atomically (tensors and plain values only). Serialised in
    memory first: torch.save on a full disk fails with chained RuntimeErrors that do not say
    why, a plain write with the OSError. A failed write is a WriteError; the old file stays."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
    except OSError as e:
        raise WriteError(path, os_reason(e)) from None


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
    file of the run: safetensors writes its own file with 0600, which the rename would keep.
    A failed write (safetensors' own error on a full disk included) is a WriteError."""
    try:
        save_directions(path, directions, meta)
        chmod_as_new(path)
    except (OSError, SafetensorError) as e:
        raise WriteError(path, os_reason(e)) from None


# ---------------------------------------------------------------------- log.csv
def truncate_log(path: Path, step: int | None, notify: Callable[[str], None] | None = None, *,
                 last_row: list[str] | None = None) -> None:
    """Fit log.csv to the checkpoint at `step` (None: no checkpoint, so the log is emptied and
    every row is redone): keep the rows before `step`, then the row of `step` itself as the
    checkpoint kept it (`last_row`; a checkpoint written before checkpoints kept it: the log's
    own row), so a row cut or lost with the process is written again. Rows after `step` are
    redone on resume. A last row cut mid-line (the process killed or the disk full while it
    was written) and any row that is not a whole row are dropped, and `notify` (default: a line
    on stderr) is told: kept, a cut "61" of step 612 would read as step 61."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        text = f.read()
    lines = text.splitlines()
    cut = lines.pop() if lines and not text.endswith("\n") else None
    rows = list(csv.reader(lines))
    whole = [r for r in rows[1:] if _whole_row(r)]
    broken = len(rows[1:]) - len(whole) + (cut is not None)
    if step is None:
        kept: list[list[str]] = []
    elif last_row is not None:
        kept = [LOG_HEADER] + [r for r in whole if int(r[0]) < step] + [list(last_row)]
    else:
        kept = [LOG_HEADER] + [r for r in whole if int(r[0]) <= step]
    if broken and step is not None:
        what = f"the last row, cut mid-line ({cut!r})" if cut is not None else None
        others = broken - (cut is not None)
        parts = [p for p in (what, f"{others} malformed row{'s' if others != 1 else ''}"
                             if others else None) if p]
        restored = " (the checkpoint's row of that step is written back)" if last_row else ""
        (notify or to_stderr)(f"{path}: dropped {' and '.join(parts)}; its last row is now "
                              f"step {int(kept[-1][0]) if len(kept) > 1 else 0}{restored}.")
    buf = io.StringIO()
    csv.writer(buf).writerows(kept)
    write_text(path, buf.getvalue())


def _whole_row(row: list[str]) -> bool:
    """A log row as StepLog writes it: a step, numbers or blanks for the penalty and the
    evaluation, the seconds."""
    if len(row) != len(LOG_HEADER) or not row[0].isdigit():
        return False
    try:
        float(row[3]), [float(v) for v in row[1:3] if v != ""]
    except ValueError:
        return False
    return True


def recent_penalties(path: Path) -> list[float]:
    """The training penalties of the last RECENT logged steps."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["penalty"]) for r in rows if r.get("penalty")][-RECENT:]


class StepLog:
    """log.csv opened for appending: one flushed row per step, so a crash loses no logged step.
    A failed write is a one-line UserError naming the file."""

    def __init__(self, path: Path):
        self.path = path
        self.last_row: list[str] | None = None     # the last row written (kept by checkpoints)
        self._file = None
        self._writer = None

    def _open(self) -> None:
        """Opened on the first row, so a run that writes none (the disk full before it) leaves
        no empty log.csv behind; a header is written into a new or empty file."""
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        if self._file.tell() == 0:
            self._writer.writerow(LOG_HEADER)

    def append(self, step: int, penalty: float | None, eval_penalty: float | None,
               seconds: float) -> None:
        """One row; penalty None for the start's evaluation (step 0, no training step)."""
        row_eval = "" if eval_penalty is None else f"{eval_penalty:.6g}"
        row_penalty = "" if penalty is None else f"{penalty:.6g}"
        row = [str(step), row_penalty, row_eval, f"{seconds:.3f}"]
        try:
            if self._file is None:
                self._open()
            self._writer.writerow(row)
            self._file.flush()
        except OSError as e:
            self._drop_if_empty()
            raise self._error(e) from None
        self.last_row = row

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass

    def _drop_if_empty(self) -> None:
        """A write that failed into a new file (the disk full): remove the file if it holds no
        row, header included, rather than leave a 0-byte log.csv."""
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass
        self._file = None
        try:
            if self.path.exists() and self.path.stat().st_size == 0:
                self.path.unlink()
        except OSError:
            pass

    def _error(self, e: OSError) -> WriteError:
        return WriteError(self.path, os_reason(e))


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
    found = source_version(Path(__file__).resolve().parents[2] / "pyproject.toml")
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
        import tomllib              # deferred: Python 3.11+; on 3.10 the ImportError falls back
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
    return (layout.DIRECTIONS_FILE, layout.LAST_FILE, layout.BEST_FILE, layout.RUN_RECORD, layout.STEP_LOG,
            layout.CHECKPOINT,
            layout.SCORES_JSON, layout.SCORES_CSV, layout.VIDEOS_DIR, CURVE_FILE, layout.TB_DIR,
            layout.WANDB_RECORD)


@contextmanager
def locked_run_folder(folder: Path, notify: Callable[[str], None] | None = None) -> Iterator[None]:
    """Check that `folder` can be written (before anything is created), then hold its lock
    (lock.FolderLock) for the block; a stale lock that was replaced is told to `notify`
    (default: a line on stderr)."""
    check_writable_dir(folder)
    with FolderLock(folder, what="run") as lock:
        if lock.stale is not None:
            (notify or to_stderr)(lock.stale_note())
        yield


def stopped_by_write_error(folder: Path, error: WriteError, step: int) -> WriteError:
    """What a run says when it could not write its files (disk full): which file and why, the
    last good checkpoint it keeps, and run.json marked 'failed' (with the error) when it can
    still be written, or that it could not be. The folder is then ready for --resume."""
    ckpt, record_path = folder / layout.CHECKPOINT, folder / layout.RUN_RECORD
    try:
        kept = (f"the last good checkpoint (step {checkpoint_step(ckpt)}) is kept"
                if ckpt.exists() else "no checkpoint was written yet")
    except UserError:
        kept = f"{ckpt} is unreadable"
    try:
        record = read_record(record_path)
    except UserError:
        record = None
    if not record:
        said = "no run.json was written" if record is not None else f"{record_path} is unreadable"
    else:
        previous = record.get("status")
        record.update(status="failed", error=f"could not write {error.path} ({error.reason})",
                      updated=now())
        try:
            write_json(record_path, record)
            said = "run.json says 'failed'"
        except WriteError as e:
            said = f"run.json could not be updated ({e.reason}) and still says {previous!r}"
    return WriteError(error.path, error.reason,
                      f"the run stopped at step {step}: {kept} in {folder}, {said}. Free space, "
                      f"then run the same command with --resume.")


def to_stderr(message: str) -> None:
    """A warning line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)


def check_same_model(folder: Path, meta: dict[str, Any],
                     notify: Callable[[str], None] | None = None) -> None:
    """Before resuming the run in `folder`: refuse (UserError) when the model's weights now
    (meta["model_weights"], weights.load.weights_identity) are not those its run.json recorded
    at the start, e.g. another model stored under the same name. A run recorded before runs
    recorded their weights resumes, and `notify` (default: stderr) is told it was not checked.
    Nothing to compare (no run yet, or a generator without recorded weights): passes."""
    now = meta.get("model_weights")
    record = read_record(folder / layout.RUN_RECORD)
    if not now or not record:
        return
    was = (record.get("meta") or {}).get("model_weights")
    model = meta.get("model") or "the model"
    if not isinstance(was, dict) or not was.get("sha256"):
        (notify or to_stderr)(f"{folder}: run.json does not record which weights the run began "
                              f"with (an older run); resuming on {_weights(model, now)} "
                              f"unchecked, and recording them from now on.")
        return
    shared = set((now.get("files") or {}).values()) & set((was.get("files") or {}).values())
    if now["sha256"] == was["sha256"] or shared:     # e.g. the .bin its .safetensors came from
        return
    started = (record.get("meta") or {}).get("model") or model
    raise UserError(f"{folder}: the run was started with {_weights(started, was)}, but {model} is "
                    f"now {_weights(None, now)}; resume with the weights it began with, or pass "
                    f"--overwrite to start it again on these.")


def _weights(model: str | None, identity: dict[str, Any]) -> str:
    sha = str(identity.get("sha256", "?"))[:12]
    return f"{model + ' ' if model else ''}weights {identity.get('file', '?')} sha256 {sha}..."


@dataclass
class RunResult:
    folder: Path
    status: str                  # 'finished' or 'already finished'
    step: int
    final_penalty: float | None  # mean training penalty over the last (up to) 100 steps
    eval_penalty: float | None
    versus_random: str | None = None   # fixed evaluation vs the random matrices' spread
    throughput: dict[str, Any] | None = None   # steps/s, images/s, TFLOP/s of the steps run
    # the run just written, as open_run would read it back (None for 'already finished')
    run: Run | None = field(default=None, repr=False, compare=False)


def written_run(folder: Path, directions: torch.Tensor, meta: dict[str, Any],
                record: dict[str, Any]) -> Run:
    """The Run that open_run(folder) (and its .record) would read back right after
    save_run_directions(folder / DIRECTIONS_FILE, directions, meta) and write_json of
    `record` to run.json: the matrix as float32 on the CPU, meta and record through JSON."""
    q = directions.detach().to("cpu", torch.float32).contiguous().clone()
    run = Run(folder, folder / layout.DIRECTIONS_FILE, q,
              json.loads(json.dumps(stored_meta(q, meta), sort_keys=True)))
    run.__dict__["record"] = json.loads(json_text(record))   # Run.record is a cached_property
    return run


def prepare_run_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an existing run unless resume or overwrite; with overwrite remove only the
    files this tool writes there."""
    existing = [n for n in owned_files() if (folder / n).exists()]
    if not existing or resume:
        return
    if not overwrite:
        raise UserError(f"{folder}: a run already exists here; pass --resume to continue it or "
                        f"--overwrite to start it again.")
    for name in existing:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def has_run(folder: Path) -> bool:
    """Does `folder` hold a run to resume (a checkpoint or a run record)?"""
    return (folder / layout.CHECKPOINT).exists() or (folder / layout.RUN_RECORD).exists()
