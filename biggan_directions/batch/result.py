"""What one class's job returns: its manifest line and its scores, carried to the manifest and the gallery."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ClassResult:
    """One class's job, carried forward: its manifest line (each method's part made from what
    that method's steps returned) and each method's scores as score wrote them (or as the run
    held them), from which the gallery card's score table is made. Picklable (no tensors), so it
    comes back from worker processes and Ray tasks."""

    entry: dict[str, Any]                                # the manifest line
    main_method: str                                     # whose run the line's top level describes
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)   # method -> scores.json content

    @property
    def class_index(self) -> int:
        return self.entry["class_index"]

    @property
    def status(self) -> str:
        return self.entry["status"]

    @property
    def card_scores(self) -> dict[str, Any] | None:
        """The scores of the run the card shows (the main method's), None when not carried."""
        return self.scores.get(self.main_method)
