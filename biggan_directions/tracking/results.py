"""score and compare results added to a run's TensorBoard events and to the W&B run it recorded.

A run folder keeps events when it has RUN/tb/ (discover writes it unless --no-tensorboard,
`directions import` makes it): score adds the LPIPS effect (mean and median over directions)
and the inactive count as scalars, and the directions' effects as a histogram (the LPIPS
distribution); compare adds each run's fixed-evaluation penalty on the comparison's shared
draws and its distance to the random mean. TensorBoard gets them at the run's last step.

A run trained with --wandb names its W&B run in RUN/wandb.json; score and compare add the
same values to that W&B run (unless log_wandb=False, the commands' --no-wandb), opened before
the work starts (`recorded_wandb`) so that a missing wandb package or a failed login is one
line up front. W&B keeps a run's steps increasing, so they go in at the first step past every
step it holds (the training's last step + 1, then + 2 for a second score, ...), and W&B's run
summary shows the latest values. Nothing is opened for a run without a record, and a bare
directions file has neither. A write that fails is one line, and the results files are written
all the same.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..runs.layout import TB_DIR, Run
from .sinks import WANDB_INSTALL, TensorBoardSink, WandbSink
from .training import to_stderr
from .wandb_record import WandbRecord

SCORE_SCALARS = ("score/effect_mean", "score/effect_median", "score/inactive", "score/active")
SCORE_HISTOGRAM = "score/effect"
COMPARE_SCALARS = ("compare/eval_penalty", "compare/vs_random_mean")
GOES_ON = "the scores files are written all the same."
GOES_ON_COMPARE = "the comparison files are written all the same."


def run_step(run: Run) -> int:
    """The step the run's events end at (run.json's step; 0 for runs without training)."""
    step = run.record.get("step") if run.folder is not None else None
    return int(step) if isinstance(step, int) and step >= 0 else 0


def _sink(run: Run, notify: Callable[[str], None], suffix: str,
          goes_on: str) -> TensorBoardSink | None:
    if run.folder is None or not (run.folder / TB_DIR).is_dir():
        return None
    sink = TensorBoardSink(run.folder / TB_DIR, notify, goes_on, suffix=suffix)
    return sink if sink.alive else None


@contextmanager
def recorded_wandb(runs: Sequence[Run], what: str, log_wandb: bool = True,
                   notify: Callable[[str], None] | None = None
                   ) -> Iterator[list[WandbSink | None]]:
    """The W&B run each run folder recorded (RUN/wandb.json), continued now, before the work of
    `what` ('score' or 'compare'): one WandbSink per run, None for a run without a record (or
    one whose W&B run could not start: one line each). Without the wandb package, one line for
    them all and no sinks. Closed (finished) when the block ends, however it ends."""
    notify = notify or to_stderr
    goes_on = GOES_ON if what == "score" else GOES_ON_COMPARE
    records = [WandbRecord.read(r.folder) if log_wandb and r.folder is not None else None
               for r in runs]
    sinks: list[WandbSink | None] = [None] * len(runs)
    named = [(r, rec) for r, rec in zip(runs, records) if rec is not None]
    if named:
        try:
            import wandb  # noqa: F401 - deferred, optional: only checked to be importable
        except ImportError:
            where = ", ".join(f"{r.folder} ({rec.name})" for r, rec in named)
            notify(f"{where}: the {what} is not added to the W&B run{'s' if len(named) > 1 else ''}"
                   f" recorded there: the wandb package is not installed ({WANDB_INSTALL}; "
                   f"--no-wandb skips this); {goes_on}")
            named = []
    try:
        opened = set()                       # a run given twice gets its W&B run once
        for i, (run, rec) in enumerate(zip(runs, records)):
            if rec is not None and named and run.folder.resolve() not in opened:
                opened.add(run.folder.resolve())
                sink = WandbSink(run.folder, rec.project, rec.entity, run.folder.name, None,
                                 notify, goes_on, continued=rec)
                sinks[i] = sink if sink.alive else None
        yield sinks
    finally:
        for sink in sinks:
            if sink is not None:
                sink.close()


def _score_values(effect: Sequence[float], inactive: int) -> tuple[dict[str, float | None],
                                                                   np.ndarray]:
    values = np.asarray(effect, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return ({"score/effect_mean": float(finite.mean()) if finite.size else None,
             "score/effect_median": float(np.median(finite)) if finite.size else None,
             "score/inactive": float(inactive),
             "score/active": float(values.size - inactive)}, values)


def add_score_events(run: Run, effect: Sequence[float], inactive: int,
                     notify: Callable[[str], None] | None = None,
                     wandb: WandbSink | None = None) -> bool:
    """Score results into RUN/tb/ (at the run's last step) and into `wandb` (recorded_wandb's
    sink of the run, at its first free step): effect (K,) LPIPS per direction, `inactive` of
    them below the threshold. Returns whether any events were written."""
    scalars, values = _score_values(effect, inactive)
    sinks: list[Any] = []
    tb = _sink(run, notify or to_stderr, ".score", GOES_ON)
    if tb is not None:
        sinks.append((tb, run_step(run)))
    if wandb is not None and wandb.alive:
        sinks.append((wandb, wandb.first_step))
    for sink, step in sinks:
        sink.scalars(scalars, step)
        sink.histogram(SCORE_HISTOGRAM, values, step)
        if sink is tb:
            sink.close()                      # a W&B sink is closed by recorded_wandb
    return bool(sinks)


def add_compare_events(runs: Sequence[Run], rows: Sequence[Mapping[str, Any]],
                       notify: Callable[[str], None] | None = None,
                       wandb: Sequence[WandbSink | None] | None = None) -> int:
    """compare's row of each run (compare.compare_runs) into its RUN/tb/ and into its sink of
    `wandb` (recorded_wandb's, in the order of `runs`); returns how many runs got events."""
    written = 0
    for i, (run, row) in enumerate(zip(runs, rows)):
        values = {"compare/eval_penalty": row.get("eval_penalty"),
                  "compare/vs_random_mean": row.get("vs_random_mean")}
        tb = _sink(run, notify or to_stderr, ".compare", GOES_ON_COMPARE)
        if tb is not None:
            tb.scalars(values, run_step(run))
            tb.close()
        sink = wandb[i] if wandb is not None and i < len(wandb) else None
        if sink is not None and sink.alive:
            sink.scalars(values, sink.first_step)
        written += tb is not None or (sink is not None and sink.alive)
    return written
