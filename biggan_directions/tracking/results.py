"""score and compare results added to a run's TensorBoard events, at the run's last step.

A run folder keeps events when it has RUN/tb/ (discover writes it unless --no-tensorboard,
`directions import` makes it): score adds the LPIPS effect (mean and median over directions)
and the inactive count as scalars, and the directions' effects as a histogram (the LPIPS
distribution); compare adds each run's fixed-evaluation penalty on the comparison's shared
draws and its distance to the random mean. A bare directions file has no events; an event
write that fails is one line, and the scores files are written all the same.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..runs.layout import TB_DIR, Run
from .sinks import TensorBoardSink
from .training import to_stderr

SCORE_SCALARS = ("score/effect_mean", "score/effect_median", "score/inactive", "score/active")
SCORE_HISTOGRAM = "score/effect"
COMPARE_SCALARS = ("compare/eval_penalty", "compare/vs_random_mean")
GOES_ON = "the scores files are written all the same."


def run_step(run: Run) -> int:
    """The step the run's events end at (run.json's step; 0 for runs without training)."""
    step = run.record.get("step") if run.folder is not None else None
    return int(step) if isinstance(step, int) and step >= 0 else 0


def _sink(run: Run, notify: Callable[[str], None], suffix: str) -> TensorBoardSink | None:
    if run.folder is None or not (run.folder / TB_DIR).is_dir():
        return None
    sink = TensorBoardSink(run.folder / TB_DIR, notify, GOES_ON, suffix=suffix)
    return sink if sink.alive else None


def add_score_events(run: Run, effect: Sequence[float], inactive: int,
                     notify: Callable[[str], None] | None = None) -> bool:
    """Score results into RUN/tb/: effect (K,) LPIPS per direction, `inactive` of them below
    the threshold. Returns whether events were written."""
    sink = _sink(run, notify or to_stderr, ".score")
    if sink is None:
        return False
    values = np.asarray(effect, dtype=np.float64)
    finite = values[np.isfinite(values)]
    step = run_step(run)
    sink.scalars({"score/effect_mean": float(finite.mean()) if finite.size else None,
                  "score/effect_median": float(np.median(finite)) if finite.size else None,
                  "score/inactive": float(inactive),
                  "score/active": float(values.size - inactive)}, step)
    sink.histogram(SCORE_HISTOGRAM, values, step)
    sink.close()
    return True


def add_compare_events(runs: Sequence[Run], rows: Sequence[Mapping[str, Any]],
                       notify: Callable[[str], None] | None = None) -> int:
    """compare's row of each run (compare.compare_runs) into its RUN/tb/; returns how many
    runs got events."""
    written = 0
    for run, row in zip(runs, rows):
        sink = _sink(run, notify or to_stderr, ".compare")
        if sink is None:
            continue
        sink.scalars({"compare/eval_penalty": row.get("eval_penalty"),
                      "compare/vs_random_mean": row.get("vs_random_mean")}, run_step(run))
        sink.close()
        written += 1
    return written
