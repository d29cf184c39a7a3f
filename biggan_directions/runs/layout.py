"""A run folder: its layout, opening it (directions, metadata, records), and resolving its settings.

The data path: class -> run folder -> directions -> scores -> videos -> gallery. `open_run` gives
a `Run` object that later stages take instead of a path; `resolve_run_settings` is the one place
that decides the class, truncation, path size and model a stage uses (what the caller gave, else
what the run recorded, else discover's default), and remembers where each value came from so an
error can say so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ..foundation.errors import SettingError, UserError
from ..foundation.fileio import read_json
from ..foundation.settings import positive
from ..core.directions import load_directions
from ..methods.config import DiscoverConfig
from ..models.classes import resolve_class, slug
from ..models.generator import check_truncation
from ..models.weights.store import DEFAULT_MODEL

DEFAULT_OUT = "outputs"            # the output root: run folders go to <out>/<model>/...
DIRECTIONS_FILE = "directions.safetensors"
LAST_FILE = "last.safetensors"     # the last matrix, when the run hands back the best one
BEST_FILE = "best.safetensors"     # the best matrix, when the run hands back the last one
RUN_RECORD = "run.json"
STEP_LOG = "log.csv"
CHECKPOINT = "checkpoint.pt"
SCORES_JSON = "scores.json"
SCORES_CSV = "scores.csv"
VIDEOS_DIR = "videos"
TB_DIR = "tb"                      # TensorBoard event files (tracking/ writes them)
WANDB_RECORD = "wandb.json"        # the W&B run a run logs to (tracking/wandb_record.py)


def model_label(model: str) -> str:
    """Folder name for a model: the name itself, or the folder name of a model path."""
    return slug(Path(model).name) if ("/" in model or Path(model).is_dir()) else model


def run_dir_for(out: str | Path, model: str, class_index: int, class_name: str,
                method: str = "hessian") -> Path:
    """outputs/<model>/<index>-<class-slug>/ for hessian, outputs/<model>/<method>/<index>-<class-slug>/
    for the other methods (a model folder contributes its folder name)."""
    base = Path(out) / model_label(model)
    return (base if method == "hessian" else base / method) / f"{class_index}-{slug(class_name)}"


@dataclass
class Run:
    """An opened run: its folder (None for a bare directions file), matrix and metadata."""

    folder: Path | None
    directions_path: Path
    directions: torch.Tensor      # (ndirs, z_dim), unit rows
    meta: dict[str, Any]
    # scores.json's content once read or written (runs.scores_file fills it: the one reader)
    scores: dict[str, Any] | None = field(default=None, repr=False, compare=False)

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

    @cached_property
    def record(self) -> dict[str, Any]:
        """run.json as a dict ({} when absent or unreadable)."""
        return read_json(self.folder / RUN_RECORD) if self.folder is not None else {}

    @property
    def out_folder(self) -> Path:
        """Where this run's own outputs go: the run folder, or a bare file's folder."""
        return self.folder if self.folder is not None else self.directions_path.parent

    @property
    def videos_dir(self) -> Path:
        return self.out_folder / VIDEOS_DIR

    @property
    def scores_paths(self) -> tuple[Path, Path]:
        """(scores.json, scores.csv) in the run folder, or <stem>.scores.json/.csv beside a bare
        directions file."""
        if self.folder is not None:
            return self.folder / SCORES_JSON, self.folder / SCORES_CSV
        stem = self.directions_path.with_suffix("")
        return (stem.parent / f"{stem.name}.scores.json", stem.parent / f"{stem.name}.scores.csv")

    @property
    def scored(self) -> bool:
        """Does the run have scores: held (read or written once) or a scores.json beside it."""
        return self.scores is not None or self.scores_paths[0].is_file()

    @property
    def name(self) -> str:
        """How errors name this run: its folder, or its directions file."""
        return str(self.folder if self.folder is not None else self.directions_path)


def open_run(path: str | Path) -> Run:
    """Open a discover run folder or a directions file; UserError when it is neither."""
    path = Path(path)
    if path.is_dir():
        file = path / DIRECTIONS_FILE
        if not file.is_file():
            raise UserError(f"{path}: no {DIRECTIONS_FILE} in this folder; is it a discover run? "
                            f"(an interrupted one is continued by discover's resume)")
        q, meta = load_directions(file)
        return Run(path, file, q, meta)
    if path.is_file():
        q, meta = load_directions(path)
        folder = path.parent if path.name == DIRECTIONS_FILE else None
        return Run(folder, path, q, meta)
    raise UserError(f"{path}: no such run folder or directions file.")


# ---------------------------------------------------------------------- settings of a run
@dataclass(frozen=True)
class RunSettings:
    """What render, score, batch (and view) generate with for a run or a baseline.

    sources maps each setting to 'given' (the caller's value), 'recorded in <file>' (the run's
    metadata) or 'default' (discover's default, for files that record nothing)."""

    model: str
    class_index: int
    class_name: str
    wnid: str
    truncation: float
    path_size: float
    subspace: tuple[int, int] | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def overridden(self, name: str) -> bool:
        """Was `name` given and different from what the run recorded? (names the output file)"""
        return self.sources.get(name) == "given*"

    def record(self) -> dict[str, Any]:
        return {"model": self.model, "class_index": self.class_index,
                "class_name": self.class_name, "wnid": self.wnid,
                "truncation": self.truncation, "path_size": self.path_size}


def resolve_run_settings(run: Run | None, *, model: str | None = None,
                         class_query: str | int | None = None, truncation: float | None = None,
                         path_size: float | None = None) -> RunSettings:
    """The settings to generate with: each given value, else the run's recorded one, else
    discover's default (truncation, path size, model). The class has no default: without a
    run that records one, it must be given. Values are checked; a bad recorded value is a
    SettingError whose source names the file. A given value that differs from the recorded one
    is marked 'given*' in sources (RunSettings.overridden)."""
    meta = run.meta if run is not None else {}
    where = f"recorded in {run.directions_path}" if run is not None else "default"
    sources: dict[str, str] = {}

    def pick(name: str, given: Any, default: Any) -> Any:
        recorded = meta.get(name)
        if given is not None:
            sources[name] = "given*" if recorded is not None and given != recorded else "given"
            return given
        if recorded is not None:
            sources[name] = where
            return recorded
        sources[name] = "default"
        return default

    def source_of(name: str) -> str | None:
        s = sources[name]
        return s[len("recorded in "):] if s.startswith("recorded in ") else None

    if class_query is not None:
        cls = resolve_class(class_query)
        recorded = meta.get("class_index")
        sources["class_index"] = "given*" if recorded is not None and recorded != cls.index else "given"
    elif meta.get("class_index") is not None:
        try:
            cls = resolve_class(int(meta["class_index"]))
        except (TypeError, ValueError, UserError):
            raise UserError(f"{run.directions_path}: its recorded class_index "
                            f"{meta['class_index']!r} is not an ImageNet class; give the class.") from None
        sources["class_index"] = where
    elif run is None:
        raise UserError("a baseline without a run needs a class (an index, WordNet id or name).")
    else:
        raise UserError(f"{run.directions_path} records no class; give the class to use "
                        f"(an index, WordNet id or name).")

    trunc = pick("truncation", truncation, DiscoverConfig.truncation)
    try:
        trunc = check_truncation(float(trunc))
    except (UserError, TypeError, ValueError):
        raise SettingError("truncation", trunc, "must be in (0, 1], e.g. 1.0 or 0.5.",
                           source_of("truncation")) from None
    p = pick("path_size", path_size, DiscoverConfig.path_size)
    try:
        p = float(p)
    except (TypeError, ValueError):
        pass
    positive("path_size", p, source_of("path_size"))
    chosen_model = str(pick("model", model, DEFAULT_MODEL))
    return RunSettings(model=chosen_model, class_index=cls.index, class_name=cls.name,
                       wnid=cls.wnid, truncation=trunc, path_size=p,
                       subspace=run.subspace if run is not None else None, sources=sources)
