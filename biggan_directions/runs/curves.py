"""Penalty curves as PNG: a run's training and fixed-evaluation penalty against steps, and several runs overlaid.

curve.png (in every Hessian Penalty run folder, refreshed at each evaluation): the training
penalty smoothed by a running mean over SMOOTH steps, the fixed-evaluation penalty, and the
identity and random references as horizontal lines (random with a shaded +-2 std band).
matplotlib (Agg, no display) is imported only when a picture is drawn; files are written
atomically.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from ..foundation.fileio import atomic_path

CURVE_FILE = "curve.png"
CURVE_KEY = "biggan-directions"   # PNG text chunk of curve.png: the best step and value it marks
SMOOTH = 50            # steps in the running mean of the training penalty
BAND = 2.0             # the random reference's band: mean +- BAND standard deviations


def read_log(path: str | Path) -> tuple[list[int], list[float], list[tuple[int, float]]]:
    """(steps, training penalties, [(step, fixed-evaluation penalty)]) from a log.csv
    (missing file: all empty; rows that do not parse are skipped)."""
    steps, values, evals = [], [], []
    path = Path(path)
    if not path.is_file():
        return steps, values, evals
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(row["step"])
                value = None if row.get("penalty") in (None, "") else float(row["penalty"])
            except (KeyError, TypeError, ValueError):
                continue
            if value is not None:                    # step 0: the start's evaluation only
                steps.append(step)
                values.append(value)
            if row.get("eval_penalty") not in (None, ""):
                try:
                    evals.append((step, float(row["eval_penalty"])))
                except ValueError:
                    pass
    return steps, values, evals


def running_mean(values: Sequence[float], window: int = SMOOTH) -> list[float]:
    """Mean of the last `window` values (fewer at the start) at each position."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def write_curve(path: str | Path, log_path: str | Path, reference: dict[str, Any] | None = None,
                title: str = "", best: tuple[int | None, float | None] = (None, None)) -> Path:
    """Draw curve.png at `path` from a run's log.csv and its reference_eval (run.json), with
    the SeFa basis's value as a line when the references hold it, and the best step marked."""
    steps, values, evals = read_log(log_path)
    fig, ax = _figure()
    if steps:
        ax.plot(steps, running_mean(values), color="tab:blue", lw=1,
                label=f"training penalty (mean of {SMOOTH} steps)")
    if evals:
        ax.plot(*zip(*evals), color="tab:red", marker="o", ms=3, lw=1.5,
                label="fixed-evaluation penalty")
    if best[0] is not None and best[1] is not None:
        ax.plot([best[0]], [best[1]], marker="*", ms=14, color="gold", mec="k", ls="none",
                label=f"best (step {best[0]}): the matrix handed back")
    if reference and reference.get("sefa") is not None:
        ax.axhline(reference["sefa"], color="tab:green", ls="-.", lw=1.2, label="SeFa basis")
    _references(ax, reference)
    marked = {"best_step": best[0], "best_eval_penalty": best[1]}   # what the star shows
    return _save(fig, ax, path, title or Path(path).parent.name,
                 {CURVE_KEY: json.dumps(marked if None not in marked.values() else {})})


def write_compare_curves(path: str | Path, curves: Sequence[dict[str, Any]],
                         reference: dict[str, Any] | None = None, title: str = "") -> Path:
    """Overlay of several runs' fixed-evaluation penalties. Each curve: {"label", "points":
    [(step, value)]}; a run without a curve (SeFa, GANSpace) gives one point, drawn as a
    dashed horizontal line at its value."""
    fig, ax = _figure()
    colours = ["tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink",
               "tab:olive", "tab:cyan"]
    for i, curve in enumerate(curves):
        colour = colours[i % len(colours)]
        points = curve["points"]
        if len(points) > 1:
            ax.plot(*zip(*points), color=colour, marker="o", ms=3, lw=1.5, label=curve["label"])
        elif points:
            ax.axhline(points[0][1], color=colour, ls="--", lw=1.5, label=curve["label"])
    _references(ax, reference)
    return _save(fig, ax, path, title)


def _figure():
    # deferred: matplotlib is slow to import and only a curve needs it; no pyplot: no global
    # backend state, headless (Agg)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _references(ax, reference: dict[str, Any] | None) -> None:
    if not reference:
        return
    if reference.get("identity") is not None:
        ax.axhline(reference["identity"], color="gray", ls=":", lw=1.2, label="identity (coordinate axes)")
    mean = reference.get("random")
    if mean is not None:
        std = reference.get("random_std") or 0.0
        ax.axhline(mean, color="black", ls="--", lw=1.2, label=f"random orthonormal (+-{BAND:g} std)")
        if std > 0:
            ax.axhspan(mean - BAND * std, mean + BAND * std, color="black", alpha=0.12, lw=0)


def _save(fig, ax, path: str | Path, title: str, text: dict[str, str] | None = None) -> Path:
    """Save the figure as a PNG atomically, with `text` as PNG text chunks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg   # deferred: matplotlib is slow

    ax.set_xlabel("step")
    ax.set_ylabel("Hessian penalty")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    FigureCanvasAgg(fig)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=text)
    return path
