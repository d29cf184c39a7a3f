"""A run's labels: descriptions.json (the one reader and writer), and the labels of a run from it or from its scores.

Labels come from two files of a run: scores.json (written by `score`, which describes by default)
and descriptions.json (written by `describe`). `run_labels` reads the newer of the two that
holds labels; a run scored before labels existed, and never described, gets a UserError that
says to rescore it or describe it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..foundation.errors import UserError, first_line
from ..foundation.fileio import check_writable_dir, write_json
from ..runs.layout import Run
from ..runs.scores_file import read_scores
from .labels import LABELS

DESCRIPTIONS_JSON = "descriptions.json"
DESCRIPTIONS_FORMAT = "biggan-directions-descriptions"
DESCRIPTIONS_VERSION = 1


def descriptions_path(run: Run) -> Path:
    """RUN/descriptions.json, or <stem>.descriptions.json beside a bare directions file."""
    if run.folder is not None:
        return run.folder / DESCRIPTIONS_JSON
    return run.directions_path.with_name(f"{run.directions_path.stem}.{DESCRIPTIONS_JSON}")


def check_descriptions_writable(path: Path, overwrite: bool) -> None:
    """Before any work: UserError when the file cannot be written, or exists without overwrite."""
    check_writable_dir(path.parent)
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a file; move it away to write the descriptions there.")
    if path.exists() and not overwrite:
        raise UserError(f"{path}: descriptions exist already; pass --overwrite to replace them.")


def write_descriptions(path: Path, descriptions: list[dict[str, Any]],
                       settings: dict[str, Any]) -> Path:
    """Write descriptions.json atomically: format, version, settings, the vocabulary, and one
    record per direction (direction order)."""
    return write_json(path, {"format": DESCRIPTIONS_FORMAT, "version": DESCRIPTIONS_VERSION,
                             "settings": settings, "vocabulary": list(LABELS),
                             "directions": descriptions})


def read_descriptions(path: str | os.PathLike) -> dict[str, Any]:
    """descriptions.json as a dict; UserError (saying how to rewrite it) when it is damaged."""
    path = Path(path)
    redo = "run `biggan-directions describe RUN --overwrite` to write it again"
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable descriptions file ({first_line(e)}); {redo}.") from None
    if not isinstance(rec, dict) or rec.get("format") != DESCRIPTIONS_FORMAT \
            or not _labelled(rec.get("directions")):
        raise UserError(f"{path}: not a biggan-directions descriptions file; {redo}.")
    return rec


def _labelled(directions: Any) -> bool:
    return isinstance(directions, list) and bool(directions) and all(
        isinstance(d, dict) and isinstance(d.get("direction"), int)
        and isinstance(d.get("label"), str) for d in directions)


def run_descriptions(run: Run) -> list[dict[str, Any]]:
    """The run's per-direction records that carry labels (label, label_confidence, measures;
    from scores also effect and rank), in direction order: from descriptions.json or scores.json,
    whichever is newer among those holding labels. UserError when neither holds any."""
    candidates = []
    desc = descriptions_path(run)
    if desc.is_file():
        candidates.append((desc.stat().st_mtime, "describe", desc))
    scores_json = run.scores_paths[0]
    if run.scores is not None or scores_json.is_file():
        mtime = scores_json.stat().st_mtime if scores_json.is_file() else float("inf")
        candidates.append((mtime, "score", scores_json))
    unlabelled_scores = False
    for _, kind, path in sorted(candidates, key=lambda c: c[0], reverse=True):
        if kind == "describe":
            directions = read_descriptions(path)["directions"]
        else:
            rec = run.scores if run.scores is not None else read_scores(path)
            directions = rec.get("directions")
            if not _labelled(directions):
                unlabelled_scores = True
                continue
        n = run.directions.shape[0]
        if sorted(d["direction"] for d in directions) != list(range(n)):
            raise UserError(f"{path}: its labels do not match the {n} directions of "
                            f"{run.directions_path}; run `biggan-directions describe "
                            f"{run.name} --overwrite`.")
        return sorted(directions, key=lambda d: d["direction"])
    if unlabelled_scores:
        raise UserError(f"{run.name}: scored before labels existed; rescore it with "
                        f"`biggan-directions score {run.name} --overwrite`, or run "
                        f"`biggan-directions describe {run.name}`.")
    raise UserError(f"{run.name}: no labels yet; run `biggan-directions score {run.name}` or "
                    f"`biggan-directions describe {run.name}`.")


def run_labels(run: Run) -> dict[int, str]:
    """{direction: label} of the run (run_descriptions)."""
    return {d["direction"]: d["label"] for d in run_descriptions(run)}


def try_run_labels(run: Run) -> dict[int, str]:
    """run_labels, or {} when the run has none (for captions that are shown only when known)."""
    try:
        return run_labels(run)
    except UserError:
        return {}


def labels_index(labels: dict[int, str]) -> dict[str, list[int]]:
    """{label: [direction, ...]} in vocabulary order (the manifest's `labels`)."""
    out: dict[str, list[int]] = {}
    for label in LABELS:
        found = sorted(k for k, v in labels.items() if v == label)
        if found:
            out[label] = found
    return out


def caption(direction: int, label: str | None) -> str:
    """A strip row's caption: '5 zoom', or '5' without a label."""
    return f"{direction} {label}" if label else str(direction)
