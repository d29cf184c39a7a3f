"""The batch folder's manifest.jsonl: one JSON line per class, read back and rewritten atomically.

The manifest is the record a script reads: this batch's classes in the order given, then
classes of earlier batches into the same folder, kept as they were. Each line has every field
of MANIFEST_FIELDS (null where not known). With several methods (`batch --methods`), the
top-level run fields describe the hessian run (or the first method when hessian is not asked),
so readers of one-method manifests keep working, and `methods` holds every method's run.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

from ..foundation.errors import UserError, first_line
from ..foundation.fileio import finite_or_none, write_text
from ..models.classes import ImageNetClass

MANIFEST = "manifest.jsonl"
BATCH_RECORD = "batch.json"        # the settings of the latest batch into the folder (batch.py)
STATUSES = ("pending", "running", "finished", "failed", "interrupted")

# The fields of one manifest line (JSON Lines; null where not known):
MANIFEST_FIELDS = {
    "class_index": "0-999",
    "class_name": "the class's first name, e.g. 'golden retriever'",
    "wnid": "WordNet id, e.g. 'n02099601'",
    "status": "pending | running | finished | failed | interrupted (the class as a whole: "
              "finished when every method's run finished)",
    "run_folder": "the (main method's) run folder, relative to the batch folder "
                  "(e.g. '../207-golden-retriever')",
    "step": "discovery steps done (run.json)",
    "steps": "discovery steps asked for",
    "final_penalty": "mean training penalty over the last (up to) 100 steps (run.json)",
    "eval_penalty": "the kept matrix's penalty on the run's own fixed evaluation (run.json; "
                    "the best evaluation's with --keep best)",
    "top_directions": "the K best direction indices from scores.json's ranking, best first "
                      "(null when the run is not scored)",
    "media": "rendered files (grid video, PNG strip), relative to the batch folder",
    "labels": "what the directions do, label -> direction indices (e.g. {\"zoom\": [6]}), from "
              "the scores (null when the run is not scored or was scored without labels)",
    "seconds": "wall-clock seconds of this class's last job",
    "skipped": "true when the class was already complete and nothing ran",
    "error": "one line saying what went wrong (failed, interrupted), else null; with several "
             "methods, prefixed by the method ('sefa: ...')",
    "methods": "every method's run, by method name: {method: {status, run_folder, eval_penalty, "
               "random_spreads, versus_random, top_directions, media, error}} (METHOD_FIELDS)",
    "updated": "local time of this line's last change, ISO 8601",
}

# The fields of one method's run in a line's `methods` (null where not known):
METHOD_FIELDS = {
    "status": "pending | running | finished | failed | interrupted",
    "run_folder": "the run folder, relative to the batch folder (hessian: '../<index>-<class>', "
                  "other methods: '../<method>/<index>-<class>')",
    "eval_penalty": "the kept matrix's penalty on this run's own fixed evaluation draws "
                    "(run.json); methods' runs are evaluated on different draws, so compare "
                    "them by random_spreads (or with `compare`), not by this value",
    "random_spreads": "(eval_penalty - the random matrices' mean) / their standard deviation, "
                      "both on this run's own draws: below 0 is better than random; the one "
                      "figure of a run that compares across methods",
    "versus_random": "the fixed evaluation against the random matrices' spread (run.json)",
    "top_directions": "the K best direction indices by scores.json's ranking (null: not scored)",
    "media": "rendered files (grid video, PNG strip), relative to the batch folder",
    "labels": "label -> direction indices (null: no labels)",
    "error": "one line saying what went wrong, else null",
}


def new_method_entry(run_folder: str | os.PathLike, batch_folder: str | os.PathLike,
                     status: str = "pending") -> dict[str, Any]:
    """One method's part of a line (METHOD_FIELDS), nothing known yet."""
    return {"status": status, "run_folder": relative(run_folder, batch_folder),
            "eval_penalty": None, "random_spreads": None, "versus_random": None,
            "top_directions": None, "media": [], "labels": None, "error": None}


def new_entry(cls: ImageNetClass, run_folder: str | os.PathLike, batch_folder: str | os.PathLike,
              steps: int, status: str = "pending",
              method_folders: dict[str, str | os.PathLike] | None = None) -> dict[str, Any]:
    """A manifest line with every field of MANIFEST_FIELDS, nothing known yet; `method_folders`
    ({method: run folder}) fills `methods`."""
    methods = {m: new_method_entry(f, batch_folder, status)
               for m, f in (method_folders or {}).items()}
    return {"class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid, "status": status,
            "run_folder": relative(run_folder, batch_folder), "step": None, "steps": steps,
            "final_penalty": None, "eval_penalty": None, "top_directions": None, "media": [],
            "labels": None, "seconds": None, "skipped": False, "error": None, "updated": now(),
            "methods": methods}


def read_manifest(batch_folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The manifest's lines as dicts ([] when there is none yet); UserError when damaged."""
    path = Path(batch_folder) / MANIFEST
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("class_index"), int):
                raise ValueError("not a class record")
        except ValueError as e:
            raise UserError(f"{path} line {number} is damaged ({first_line(e)}); fix or delete "
                            f"the file (it is rebuilt from the run folders).") from None
        entries.append(entry)
    return entries


class Manifest:
    """The manifest of a batch folder: this batch's lines (`fresh`, one per class in order; an
    earlier line of the same class replaces its fresh one) then earlier classes. Every change
    rewrites the whole file atomically."""

    def __init__(self, batch_folder: str | os.PathLike, fresh: Sequence[dict[str, Any]]):
        self.path = Path(batch_folder) / MANIFEST
        old = {e["class_index"]: e for e in read_manifest(batch_folder)}
        self.order = [e["class_index"] for e in fresh]
        self.entries: dict[int, dict[str, Any]] = {}
        for e in fresh:
            entry = old.pop(e["class_index"], None) or e
            if entry.get("status") == "running":      # left by a batch that was killed
                entry = {**entry, "status": "pending"}
            self.entries[e["class_index"]] = entry
        self.entries.update(old)     # earlier classes, kept as they were

    def update(self, entry: dict[str, Any]) -> None:
        self.entries[entry["class_index"]] = entry
        self.write()

    def set_status(self, index: int, status: str) -> None:
        self.entries[index] = {**self.entries[index], "status": status, "updated": now()}
        self.write()

    def write(self) -> None:
        lines = [json.dumps(finite_or_none(e), allow_nan=False) for e in self.entries.values()]
        write_text(self.path, "\n".join(lines) + "\n")

    def batch_entries(self) -> list[dict[str, Any]]:
        """This batch's entries, in the order given."""
        return [self.entries[i] for i in self.order]

    def counts(self) -> dict[str, int]:
        """This batch's classes per status."""
        entries = self.batch_entries()
        return {s: sum(e["status"] == s for e in entries) for s in STATUSES}


def relative(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """`path` relative to `base` (both resolved), with forward slashes."""
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def now() -> str:
    """Local time, ISO 8601 with the UTC offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
