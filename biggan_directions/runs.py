"""The layout of a run folder, and opening one from a folder or a directions file."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .directions import load_directions
from .errors import UserError

DIRECTIONS_FILE = "directions.safetensors"
RUN_RECORD = "run.json"
STEP_LOG = "log.csv"
CHECKPOINT = "checkpoint.pt"
SCORES_JSON = "scores.json"
SCORES_CSV = "scores.csv"
VIDEOS_DIR = "videos"


def slug(text: str) -> str:
    """'Golden Retriever' -> 'golden-retriever' (file-name safe)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def model_label(model: str) -> str:
    """Folder name for a model: the name itself, or the folder name of a model path."""
    return slug(Path(model).name) if ("/" in model or Path(model).is_dir()) else model


def run_dir_for(out: str | Path, model: str, class_index: int, class_name: str) -> Path:
    """outputs/<model>/<index>-<class-slug>/"""
    return Path(out) / model_label(model) / f"{class_index}-{slug(class_name)}"


@dataclass
class Run:
    """An opened run: its folder (None for a bare directions file), matrix and metadata."""

    folder: Path | None
    directions_path: Path
    directions: torch.Tensor      # (ndirs, z_dim), orthonormal rows
    meta: dict[str, Any]

    @property
    def subspace(self) -> tuple[int, int] | None:
        """The [lo, hi) latent range the directions were learned in (metadata 'subspace'), or
        None when absent or not a valid range for this matrix."""
        sub = self.meta.get("subspace")
        k, d = self.directions.shape
        if (isinstance(sub, (list, tuple)) and len(sub) == 2 and all(isinstance(v, int) for v in sub)
                and 0 <= sub[0] < sub[1] <= d and k <= sub[1] - sub[0]):
            return (sub[0], sub[1])
        return None

    @property
    def record(self) -> dict[str, Any]:
        """run.json as a dict ({} when absent)."""
        if self.folder is None or not (self.folder / RUN_RECORD).is_file():
            return {}
        return json.loads((self.folder / RUN_RECORD).read_text())


def open_run(path: str | Path) -> Run:
    """Open a discover run folder or a directions file; UserError when it is neither."""
    path = Path(path)
    if path.is_dir():
        file = path / DIRECTIONS_FILE
        if not file.is_file():
            raise UserError(f"{path}: no {DIRECTIONS_FILE} in this folder; is it a finished "
                            f"discover run? (resume it with discover --resume)")
        q, meta = load_directions(file)
        return Run(path, file, q, meta)
    if path.is_file():
        q, meta = load_directions(path)
        folder = path.parent if path.name == DIRECTIONS_FILE else None
        return Run(folder, path, q, meta)
    raise UserError(f"{path}: no such run folder or directions file.")
