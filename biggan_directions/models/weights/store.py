"""The weight store on disk: one folder per model, with checksums.json vouching for its files.

    <weights_dir>/<name>/config.json         the package's BigGANConfig as JSON
    <weights_dir>/<name>/pytorch_model.bin   the package's published weights (torch format)
    <weights_dir>/<name>/model.safetensors   the same tensors, written after the first clean load
    <weights_dir>/<name>/checksums.json      {"model": name, "files": {file: {size, sha256, ...}}}
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ...foundation.errors import UserError, first_line
from ...foundation.fileio import atomic_path

KNOWN_MODELS = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")
DEFAULT_MODEL = "biggan-deep-128"   # the one owner of the default model (CLI, library, records)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"
SAFETENSORS_NAME = "model.safetensors"
CHECKSUMS_NAME = "checksums.json"
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME)  # what the sources publish; config first: small, fails fast
WEIGHT_FILES = (SAFETENSORS_NAME, WEIGHTS_NAME)  # a folder's weights, in order of preference
STORE_FILES = (CONFIG_NAME, WEIGHTS_NAME, SAFETENSORS_NAME)
WEIGHTS_DIR_ENV = "BIGGAN_DIRECTIONS_WEIGHTS"
CHUNK_BYTES = 1 << 20


def default_weights_dir() -> Path:
    """$BIGGAN_DIRECTIONS_WEIGHTS, else ./weights."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or "weights")


def store_folder(name: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """`<weights_dir>/<name>` (weights_dir None: default_weights_dir())."""
    return (Path(weights_dir) if weights_dir is not None else default_weights_dir()) / name


def weights_file(folder: Path) -> Path | None:
    """The folder's weights to load: model.safetensors when present, else pytorch_model.bin."""
    for fname in WEIGHT_FILES:
        if (folder / fname).is_file():
            return folder / fname
    return None


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path, **extra) -> dict:
    """{size, sha256, **extra} of one file, as checksums.json records it."""
    return {"size": path.stat().st_size, "sha256": sha256(path), **extra}


# ---------------------------------------------------------------- checksums.json
def read_checksums(folder: str | os.PathLike) -> dict[str, dict] | None:
    """{file name: entry} recorded in `folder`/checksums.json; None when there is none."""
    path = Path(folder) / CHECKSUMS_NAME
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        for entry in files.values():
            int(entry["size"]), str(entry["sha256"])
        return {str(f): dict(e) for f, e in files.items()}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"{path} is not a valid checksum record ({type(e).__name__}: "
                        f"{first_line(e)}); delete it to record the files afresh.") from None


def write_checksums(folder: str | os.PathLike, model: str,
                    known: dict[str, dict] | None = None) -> Path:
    """Record size and sha256 of the store files present in `folder` in its checksums.json.

    `known` maps a file name to an entry already computed (with its source, e.g. a URL); an
    entry already recorded for an unchanged-size file is kept (no re-hash); others are hashed.
    """
    folder = Path(folder)
    old = (read_checksums(folder) if (folder / CHECKSUMS_NAME).is_file() else None) or {}
    files = {}
    for fname in STORE_FILES:
        path = folder / fname
        if not path.is_file():
            continue
        entry = dict((known or {}).get(fname) or {})
        if "sha256" not in entry:
            kept = old.get(fname)
            entry = kept if kept and int(kept["size"]) == path.stat().st_size else file_entry(path)
        files[fname] = entry
    text = json.dumps({"model": model, "files": files}, indent=2, sort_keys=True) + "\n"
    with atomic_path(folder / CHECKSUMS_NAME) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return folder / CHECKSUMS_NAME


def verify_checksums(folder: str | os.PathLike, fix: str = "replace it",
                     only: Iterable[str] | None = None) -> bool:
    """Check size (cheap) then sha256 (~0.15 s per 200 MiB) of each file that `folder`'s
    checksums.json lists (or of those in `only` that it lists). False when there is no
    checksums.json; UserError naming the file on any difference."""
    folder = Path(folder)
    record = read_checksums(folder)
    if record is None:
        return False
    record_path = folder / CHECKSUMS_NAME
    for fname, entry in record.items():
        if only is not None and fname not in only:
            continue
        path, size, sha = folder / fname, int(entry["size"]), str(entry["sha256"])
        if not path.is_file():
            raise UserError(f"{path} is listed in {record_path} but missing; {fix}.")
        actual_size = path.stat().st_size
        if actual_size != size:
            raise UserError(f"{path} has {actual_size} bytes but {record_path} records {size} "
                            f"(truncated or changed); {fix}.")
        actual_sha = sha256(path)
        if actual_sha != sha:
            raise UserError(f"{path} has sha256 {actual_sha[:16]}... but {record_path} records "
                            f"{sha[:16]}... (corrupt or changed); {fix}.")
    return True


# ---------------------------------------------------------------- placing files
def staging_dir(folder: Path) -> Path:
    """A fresh hidden folder beside `folder` (same file system, so renames are atomic)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging."))


def place(staged: dict[str, Path], folder: Path, remove: Iterable[str] = ()) -> None:
    """Rename each staged file to `folder`/<name> (one atomic rename each), after deleting the
    files named in `remove` (e.g. the other weight format, which would otherwise be loaded)."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname in remove:
        if fname not in staged:
            (folder / fname).unlink(missing_ok=True)
    for fname, path in staged.items():
        os.replace(path, folder / fname)


FICLONE = 0x40049409      # Linux ioctl: make a file a copy-on-write clone of another


def copy_file(source: Path, target: Path) -> None:
    """Copy `source` to a new file `target` of its own: a reflink (copy-on-write clone: instant,
    no space until one of them changes) where the file system has them, else a plain copy.
    Never a hard link: a change to the store's copy must never change the user's file."""
    try:
        import fcntl                # deferred: POSIX only; elsewhere the copy falls back

        with open(source, "rb") as src, open(target, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return
    except (ImportError, OSError):
        pass                     # no reflinks here (or another file system): copy the bytes
    shutil.copyfile(source, target)


# ---------------------------------------------------------------- listing
UNRECORDED = "unrecorded: no checksums.json yet (loading the model once records one)"


@dataclass
class StoreEntry:
    """One model folder of the store: its files with sizes, and whether they match the record."""
    name: str
    folder: Path
    sizes: dict[str, int]
    status: str   # "verified" | UNRECORDED | "damaged: <why>"

    @property
    def ok(self) -> bool:
        return self.status == "verified"


def list_store(weights_dir: str | os.PathLike | None = None,
               names: Iterable[str] | None = None, check: bool = True) -> list[StoreEntry]:
    """The model folders of the store (all of them, or `names`), each checked against its
    checksums.json when `check` (sha256 of every file: ~1 s per GB)."""
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if names is None:
        names = sorted(p.name for p in root.iterdir() if p.is_dir()
                       and not p.name.startswith(".")) if root.is_dir() else []
    entries = []
    for name in names:
        folder = root / name
        sizes = {f: (folder / f).stat().st_size for f in (*STORE_FILES, CHECKSUMS_NAME)
                 if (folder / f).is_file()}
        if not sizes:
            status = f"damaged: {folder} holds no model files"
        elif CONFIG_NAME not in sizes or weights_file(folder) is None:
            status = f"damaged: {folder} lacks {CONFIG_NAME} or a weights file"
        elif not check:
            status = "verified" if CHECKSUMS_NAME in sizes else UNRECORDED
        else:
            try:
                status = "verified" if verify_checksums(folder) else UNRECORDED
            except UserError as e:
                status = f"damaged: {e}"
        entries.append(StoreEntry(name, folder, sizes, status))
    return entries
