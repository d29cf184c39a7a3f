"""Directions chosen by label, and row captions, for render and view (a run's labels from files.py)."""
from __future__ import annotations

from typing import Sequence

from ..foundation.errors import UserError
from ..runs.layout import Run
from .files import caption, run_descriptions, try_run_labels
from .labels import LABELS, check_label


def known_label(text: str) -> str:
    """`text` if it is in the vocabulary, else a UserError listing the vocabulary."""
    try:
        return check_label(text)
    except ValueError:
        raise UserError(f"unknown label '{text}'; use one of {', '.join(LABELS)}.") from None


def directions_labelled(run: Run, label: str) -> list[int]:
    """The run's directions labelled `label`, strongest first (by score's effect when the
    records carry it, else by label confidence). UserError for an unknown label, a run without
    labels (files.run_descriptions says what to run), or a label no direction has."""
    known_label(label)
    records = run_descriptions(run)
    found = [d for d in records if d["label"] == label]
    if not found:
        have = sorted({d["label"] for d in records}, key=LABELS.index)
        raise UserError(f"no direction of {run.name} is labelled '{label}'; its labels are "
                        f"{', '.join(have)}.")
    found.sort(key=lambda d: (-(d.get("effect") or 0.0), -d["label_confidence"], d["direction"]))
    return [d["direction"] for d in found]


def captions_for(run: Run, indices: Sequence[int]) -> tuple[str, ...] | None:
    """Row captions '5 zoom' for the run's directions `indices`; None when it has no labels."""
    labels = try_run_labels(run)
    return tuple(caption(i, labels.get(i)) for i in indices) if labels else None
