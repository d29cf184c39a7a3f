"""A pooled run's class set on disk: its folder name, how it is written, and the resume check.

A pooled run (one matrix learned over several classes) lives in OUT/<model>/pooled-<i>-<j>-.../
named by its sorted class indices; beyond POOLED_NAMED classes the name would be unreadable, so
it is pooled-<count>-<first 8 hex digits of sha256("i,j,...")> (the sorted indices joined by
commas). run.json's meta (and the directions file's metadata) list the classes ("classes").
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

from ..foundation.errors import UserError
from . import files, layout

POOLED_NAMED = 8          # up to this many classes, the folder name lists them


def pooled_name(classes: Sequence[int]) -> str:
    """pooled-<i>-<j>-... (sorted), or pooled-<count>-<sha8> beyond POOLED_NAMED classes."""
    ordered = sorted(int(c) for c in classes)
    if len(ordered) <= POOLED_NAMED:
        return "pooled-" + "-".join(str(c) for c in ordered)
    digest = hashlib.sha256(",".join(str(c) for c in ordered).encode()).hexdigest()[:8]
    return f"pooled-{len(ordered)}-{digest}"


def pooled_dir_for(out: str | Path, model: str, classes: Sequence[int]) -> Path:
    """OUT/<model>/pooled-.../: where a pooled run over `classes` goes."""
    return Path(out) / layout.model_label(model) / pooled_name(classes)


def format_classes(classes: Sequence[int] | None, limit: int = 12) -> str:
    """'classes 1, 2, 3' (at most `limit` shown), or 'one class' for a single-class run."""
    if not classes:
        return "one class (not pooled)"
    ordered = [str(c) for c in classes]
    shown = ", ".join(ordered[:limit]) + (f", ... ({len(ordered)} in all)"
                                          if len(ordered) > limit else "")
    return f"classes {shown}"


def recorded_classes(record: dict[str, Any]) -> list[int] | None:
    """The class set a run.json records (meta.classes), or None for a single-class run."""
    found = (record.get("meta") or {}).get("classes")
    return [int(c) for c in found] if isinstance(found, list) and found else None


def check_same_classes(folder: Path, classes: Sequence[int] | None) -> None:
    """Before resuming the run in `folder`: refuse (UserError naming both sets) when it was
    started over another class set (or pooled where this run is not, or the reverse). No run
    there yet: passes."""
    record = files.read_record(folder / layout.RUN_RECORD)
    if not record:
        return
    was = recorded_classes(record)
    now = [int(c) for c in classes] if classes else None
    if was != now:
        raise UserError(f"{folder}: the run was started over {format_classes(was)}, not "
                        f"{format_classes(now)}; resume it with the classes it began with, or "
                        f"pass --overwrite to start it again.")


def pooled_set(run: layout.Run) -> tuple[int, ...] | None:
    """The class set of a pooled run (its metadata's `classes`, two or more), or None for a
    run of one class: what render, score, view (a class picker) and describe offer as the
    classes of a run; each resolves one with layout.resolve_run_settings(run, class_query=c),
    the first of the set by default (the run's class_index)."""
    found = run.meta.get("classes")
    if isinstance(found, list) and len(found) >= 2 and all(isinstance(c, int) for c in found):
        return tuple(found)
    return None
