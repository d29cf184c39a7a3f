"""The scores files of a run: scores.json (the one reader and writer) and scores.csv.

A Run holds its scores once read or written (`Run.scores`, filled here): `run_scores(run)` and
`read_ranking(run)` read the file at most once per opened run, and `write_run_scores` hands the
record it wrote to the run, so a stage after scoring never reads the file back."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from ..foundation.errors import UserError, first_line
from ..foundation.fileio import atomic_path, check_writable_dir, finite_or_none
from .layout import SCORES_JSON, Run

SCORES_FORMAT = "biggan-directions-scores"
SCORES_VERSION = 1
# describe's columns of scores.csv (scores.json holds them per direction, `measures` nested)
LABEL_COLUMNS = ("label", "label_confidence", "second_label")
MEASURE_COLUMNS = ("shift_x_fraction", "shift_y_fraction", "scale_ratio", "rotation_degrees",
                   "motion_explained", "brightness_delta", "contrast_ratio", "saturation_ratio",
                   "color_shift", "color_shift_a", "color_shift_b", "color_hue",
                   "background_share", "delta_e")
LABEL_DEFINITION = ("what the direction does, from the walk frames scored (README, 'What a "
                    "direction does'): the vocabulary's candidate that explains the largest share "
                    "of the change; label_confidence = that share / the sum of all shares x the "
                    "share of seeds agreeing in sign")
EFFECT_DEFINITION = ("effect = mean over seeds of LPIPS between the walk's ends (t=-1 and t=+1, "
                     "i.e. -P and +P); effect_centre = mean LPIPS between the centre (t=0) and each end")


def write_scores(json_path: str | os.PathLike, csv_path: str | os.PathLike, result: Any,
                 settings: dict[str, Any], *, compare: dict[str, Any] | None = None,
                 directions_file: str | None = None, overwrite: bool = False) -> tuple[Path, Path]:
    """Write scores.json and scores.csv of `result`, both or neither (two temporary files,
    renamed into place once both are complete; a failed write is a one-line UserError, old
    files untouched). `result` is a scoring.score.ScoreResult, taken by its attributes: this
    module sits below scoring, beside the run folder whose file it reads and writes.

    scores.json: format, version, directions_file, settings, definitions, counts, "ranking" (all
    direction indices, best first), "directions" (one record per direction, in direction
    order), "summary" (result.summary()) and optionally "compare". NaN becomes null.
    scores.csv: one row per direction in rank order. Refuses to replace existing files unless
    overwrite.
    """
    json_path, csv_path = Path(json_path), Path(csv_path)
    _write(json_path, csv_path, result, settings, compare, directions_file, overwrite)
    return json_path, csv_path


def write_run_scores(run: Run, result: Any, settings: dict[str, Any], *,
                     compare: dict[str, Any] | None = None,
                     overwrite: bool = False) -> tuple[Path, Path]:
    """write_scores into the run's scores files (Run.scores_paths), then hand the record written
    to the run (run.scores), as read_scores would read it back."""
    json_path, csv_path = run.scores_paths
    run.scores = _write(json_path, csv_path, result, settings, compare, str(run.directions_path),
                        overwrite)
    return json_path, csv_path


def _write(json_path: Path, csv_path: Path, result: Any, settings: dict[str, Any],
           compare: dict[str, Any] | None, directions_file: str | None,
           overwrite: bool) -> dict[str, Any]:
    """write_scores' work; returns the record as written (JSON types, NaN as None)."""
    check_scores_writable(json_path, csv_path, overwrite)
    record = {"format": SCORES_FORMAT, "version": SCORES_VERSION,
              "directions_file": directions_file, "settings": settings,
              "definitions": {"effect": EFFECT_DEFINITION,
                              "smoothness": "(steps-1) * sum of consecutive-frame LPIPS / endpoint "
                                            "LPIPS (summed over seeds); >= 1, 1 = evenly paced, "
                                            "steps-1 = one jump",
                              "consistency": "std / mean of the per-seed endpoint LPIPS",
                              "inactive": f"effect < {result.threshold:g} LPIPS",
                              "ranking": "active directions by decreasing effect, then inactive ones"},
              "threshold": result.threshold, "n_directions": result.n_directions,
              "n_active": result.n_active, "n_inactive": result.n_inactive,
              "ranking": list(result.ranking), "directions": result.rows(),
              "summary": result.summary(), "frames": result.frames, "pairs": result.pairs,
              "seconds": round(result.seconds, 3)}
    described = getattr(result, "descriptions", None) is not None
    if described:
        record["definitions"]["label"] = LABEL_DEFINITION
        record["describe_seconds"] = round(result.describe_seconds, 3)
    if compare is not None:
        record["compare"] = compare
    text = json.dumps(finite_or_none(record), indent=1, allow_nan=False) + "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = ["rank", "direction", "effect", "effect_centre", "smoothness", "consistency", "inactive"]
    writer.writerow(columns + (list(LABEL_COLUMNS + MEASURE_COLUMNS) if described else []))
    rows = {row["direction"]: row for row in result.rows()}
    for k in result.ranking:
        row = rows[k]
        cells = ["" if row[c] is None else (int(row[c]) if c == "inactive" else row[c])
                 for c in columns]
        if described:
            measures = row.get("measures") or {}
            cells += ["" if row.get(c) is None else row[c] for c in LABEL_COLUMNS]
            cells += ["" if measures.get(c) is None else measures[c] for c in MEASURE_COLUMNS]
        writer.writerow(cells)
    try:
        with atomic_path(json_path) as json_tmp, atomic_path(csv_path) as csv_tmp:
            for tmp, content in ((json_tmp, text), (csv_tmp, buf.getvalue())):
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(content)
    except OSError as e:
        raise UserError(f"could not write the scores files {json_path} and {csv_path.name} "
                        f"({first_line(e)}); free space or check the folder's permissions.") from None
    return json.loads(text)


def check_scores_writable(json_path: Path, csv_path: Path, overwrite: bool) -> None:
    """Before any work: UserError when the scores files cannot be created in their folder
    (fileio.check_writable_dir), when a target is not a regular file, or when scores exist
    and overwrite is off."""
    check_writable_dir(json_path.parent)
    for path in (json_path, csv_path):
        if path.exists() and not path.is_file():
            raise UserError(f"{path} is not a file; move it away to write the scores there.")
    existing = [p for p in (json_path, csv_path) if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]}: scores exist already; pass --overwrite to replace them.")


def read_scores(path: str | os.PathLike) -> dict[str, Any]:
    """Load scores.json (a file, or a run folder holding one) as a dict; UserError when it is
    missing or not a scores file. rec["ranking"] lists direction indices, best first."""
    path = Path(path)
    if path.is_dir():
        path = path / SCORES_JSON
    if not path.is_file():
        raise UserError(f"{path}: no scores file; run `biggan-directions score` on the run first.")
    try:
        rec = json.loads(path.read_text())
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: unreadable scores file ({first_line(e)}).") from None
    if not isinstance(rec, dict) or rec.get("format") != SCORES_FORMAT:
        raise UserError(f"{path}: not a biggan-directions scores file.")
    ranking = rec.get("ranking")
    if not isinstance(ranking, list) or not all(isinstance(k, int) for k in ranking):
        raise UserError(f"{path}: its 'ranking' is not a list of direction indices.")
    return rec


def run_scores(run: Run) -> dict[str, Any]:
    """The run's scores.json as a dict: the one the run holds, else read once and held
    (run.scores). UserError when the run is not scored (see read_scores)."""
    if run.scores is None:
        run.scores = read_scores(run.scores_paths[0])
    return run.scores


def scores_net(run: Run) -> str | None:
    """The LPIPS net the run's scores were made with (scores.json settings), None when the run
    is not scored or its scores do not say (LPIPS values of different nets do not compare)."""
    try:
        net = (run_scores(run).get("settings") or {}).get("net")
    except UserError:
        return None
    return net if isinstance(net, str) else None


def read_ranking(run: Run, top: int | None = None) -> list[int]:
    """The run's direction indices, best first, from its scores (run_scores: read at most once),
    the first `top` of them. UserError when the run is not scored or its ranking does not fit
    its matrix."""
    json_path = run.scores_paths[0]
    rec = run_scores(run)
    n = run.directions.shape[0]
    ranking = rec["ranking"]
    if not (all(0 <= i < n for i in ranking) and len(set(ranking)) == len(ranking)):
        raise UserError(f"{json_path}: its ranking does not match the {n} directions of "
                        f"{run.directions_path}; score the run again.")
    if top is not None:
        if top < 1:
            raise UserError(f"top {top}: must be at least 1.")
        if top > len(ranking):
            raise UserError(f"{json_path} ranks only {len(ranking)} directions; ask for "
                            f"{len(ranking)} or fewer.")
        ranking = ranking[:top]
    return list(ranking)
