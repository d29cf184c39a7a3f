"""The atlas of a batch: every class's directions with their labels (atlas.csv), `find LABEL`, and its grid.

atlas.csv (in the batch folder, rewritten atomically at the end of each batch and by `find`)
holds one row per class and direction of the batch's scored or described runs: class_index,
class_name, direction, label, label_confidence, second_label, effect (score's LPIPS, empty for a
run only described), rank, and describe's measures (scores_file.MEASURE_COLUMNS).
`find LABEL` picks, for each class, its strongest direction with that label (largest effect,
else largest confidence); `find_grid` renders those as one PNG, a row per class walking from
-P to +P, so the same factor can be compared across classes.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..describe.files import run_descriptions
from ..describe.select import known_label
from ..foundation.errors import UserError
from ..foundation.fileio import write_text
from ..media.frames import Canvas, generate, tile
from ..media.video import save_png
from ..media.walks import walk_latents
from ..models.generator import BigGANGenerator, latents_for_seeds
from ..models.weights import load_biggan
from ..runs import layout
from ..runs.scores_file import LABEL_COLUMNS, MEASURE_COLUMNS, read_scores
from .manifest import MANIFEST, read_manifest

ATLAS = "atlas.csv"
COLUMNS = ("class_index", "class_name", "direction", *LABEL_COLUMNS, "effect", "rank",
           *MEASURE_COLUMNS)


@dataclass(frozen=True)
class Found:
    """One class's strongest direction with a label (a row of `find`)."""

    class_index: int
    class_name: str
    run_folder: Path
    direction: int
    label_confidence: float
    effect: float | None


def class_rows(entry: dict[str, Any], batch_folder: Path,
               scores: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The atlas rows of one manifest line's run ([] when it has no directions or no labels):
    from `scores` (the scores.json content its job carried) when they hold labels, else from
    the run's files (a class skipped or resumed, or `find` reading a finished batch)."""
    rel = entry.get("run_folder")
    carried = scores.get("directions") if isinstance(scores, dict) else None
    if isinstance(carried, list) and carried and all(
            isinstance(d, dict) and isinstance(d.get("label"), str) for d in carried):
        records = sorted(carried, key=lambda d: d["direction"])
        effects = {d["direction"]: d for d in records}
    else:
        if not rel or not (batch_folder / rel / layout.DIRECTIONS_FILE).is_file():
            return []
        run = layout.open_run(batch_folder / rel)
        try:
            records = run_descriptions(run)
        except UserError:
            return []
        effects: dict[int, dict[str, Any]] = {}
        if run.scored:
            try:
                effects = {d["direction"]: d for d in read_scores(run.scores_paths[0])["directions"]
                           if isinstance(d, dict)}
            except (UserError, KeyError, TypeError):
                effects = {}
    rows = []
    for d in records:
        scored = effects.get(d["direction"], {})
        rows.append({"class_index": entry["class_index"], "class_name": entry.get("class_name"),
                     "run_folder": str(batch_folder / rel), "direction": d["direction"],
                     "label": d["label"], "label_confidence": d.get("label_confidence"),
                     "second_label": d.get("second_label"), "effect": scored.get("effect"),
                     "rank": scored.get("rank"), **(d.get("measures") or {})})
    return rows


def atlas_rows(batch_folder: str | os.PathLike,
               entries: Sequence[dict[str, Any]] | None = None,
               scores: dict[int, dict[str, Any] | None] | None = None) -> list[dict[str, Any]]:
    """Every labelled direction of the batch's classes (manifest order); scores: {class index:
    the scores its job carried} (class_rows). UserError when the folder is not a batch folder,
    or when no class has labels yet."""
    folder = Path(batch_folder)
    if entries is None:
        if not (folder / MANIFEST).is_file():
            raise UserError(f"{folder}: not a batch folder (no {MANIFEST}); give the folder "
                            f"`biggan-directions batch` wrote, e.g. outputs/biggan-deep-128/batch.")
        entries = read_manifest(folder)
    scores = scores or {}
    rows = [row for e in entries
            for row in class_rows(e, folder, scores.get(e.get("class_index")))]
    if not rows:
        raise UserError(f"{folder}: no class of this batch has labels yet; run the batch with "
                        f"--score (or `biggan-directions describe` on its run folders).")
    return rows


def write_atlas(batch_folder: str | os.PathLike, rows: Sequence[dict[str, Any]]) -> Path:
    """Write <batch>/atlas.csv atomically from atlas rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in COLUMNS])
    return write_text(Path(batch_folder) / ATLAS, buf.getvalue())


def find_label(rows: Sequence[dict[str, Any]], label: str) -> list[Found]:
    """For each class (in the rows' order), its strongest direction labelled `label`: the
    largest effect, else the largest confidence. Classes without one are left out."""
    known_label(label)
    best: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row["label"] != label:
            continue
        key = (row.get("effect") or 0.0, row.get("label_confidence") or 0.0)
        held = best.get(row["class_index"])
        if held is None or key > (held.get("effect") or 0.0, held.get("label_confidence") or 0.0):
            best[row["class_index"]] = row
    return [Found(r["class_index"], r["class_name"], Path(r["run_folder"]), r["direction"],
                  float(r.get("label_confidence") or 0.0), r.get("effect"))
            for r in best.values()]


def grid_path(batch_folder: str | os.PathLike, label: str, seed: int, steps: int) -> Path:
    """<batch>/find_<label>_seed<seed>_<steps>steps.png (':' of color:<hue> as '-')."""
    return Path(batch_folder) / f"find_{label.replace(':', '-')}_seed{seed}_{steps}steps.png"


@torch.inference_mode()
def find_grid(found: Sequence[Found], label: str, path: str | os.PathLike, *, seed: int = 0,
              steps: int = 7, device: torch.device | str = "cpu",
              weights_dir: str | os.PathLike | None = None, model: str | None = None,
              progress: bool = True, batch_size: int = 16) -> Path:
    """One PNG: a row per found class, its direction walked from -P to +P in `steps` columns
    (seed `seed`, each run's own class, truncation and path size), captioned with the class and
    direction. The model (the runs' recorded one unless `model`) is loaded once."""
    if not found:
        raise UserError(f"no class has a direction labelled '{label}'; nothing to render.")
    runs = [layout.open_run(f.run_folder) for f in found]
    settings = [layout.resolve_run_settings(r, model=model) for r in runs]
    net = load_biggan(settings[0].model, device, weights_dir, progress)
    t = torch.linspace(-1.0, 1.0, steps)
    cells = []
    for f, run, s in zip(found, runs, settings):
        G = BigGANGenerator(net, s.class_index, s.truncation).to(device)
        z = latents_for_seeds([seed], run.directions.shape[1], s.truncation).to(device)
        q = run.directions[f.direction:f.direction + 1].float().to(device)
        lat = walk_latents(z, q, t.to(device), s.path_size).reshape(-1, z.shape[1])   # (steps, D)
        cells.append(generate(G, lat, batch_size))                    # (steps, 3, R, R) uint8
    grid = tile(torch.stack(cells)).cpu().numpy()                      # (rows*R, steps*R, 3)
    captions = [f"{f.class_index} {f.class_name[:18]}: {f.direction}" for f in found]
    image = Canvas(len(found), steps, int(cells[0].shape[-1]), captions).frame(grid)
    record = {"tool": "biggan-directions find", "label": label, "seed": seed, "steps": steps,
              "rows": [{"class_index": f.class_index, "direction": f.direction,
                        "run": str(f.run_folder)} for f in found]}
    return save_png(Path(path), image, json.dumps(record, sort_keys=True))
