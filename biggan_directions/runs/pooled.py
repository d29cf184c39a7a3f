"""A pooled discovery run on disk: ONE matrix learned over a set of BigGAN classes (what `discover --pooled` runs).

Each training sample draws its class uniformly from the set (from the run's seed), so the
penalty is the average over the classes; the fixed evaluation, its identity, random and SeFa
references and the test draws measure every class on the same draws (methods.hessian.Discovery,
core.evaluation). The run folder is OUT/<model>/pooled-<i>-<j>-.../ (runs.class_sets); resume,
keep-best, the test set, patience, the lock and signals are run_discover's, as for one class.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..foundation.errors import UserError
from ..foundation.fileio import check_writable_dir
from ..foundation.lock import check_unlocked
from ..methods.config import DiscoverConfig
from ..models.classes import class_meta
from ..models.classlists import expand_class_queries
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..models.weights.load import weights_identity
from . import files, layout
from .class_sets import (check_same_classes, format_classes, pooled_dir_for, recorded_classes)
from .discover import run_discover
from .files import RunResult, has_run, prepare_run_folder


def pooled_classes(queries: Sequence[str | int]) -> list:
    """The classes of a pooled run from what the user typed (indices, ranges, WordNet ids,
    names), sorted by index; a set of fewer than two classes, or a class given twice (also
    through a range), is a UserError saying what to do."""
    found = expand_class_queries(queries)
    seen: dict[int, str] = {}
    for cls, query in found:
        if cls.index in seen:
            where = (f"as {seen[cls.index]!r} and {query!r}" if seen[cls.index] != query
                     else f"twice in {query!r}")
            raise UserError(f"class {cls.index} ({cls.name}) is given twice ({where}); give "
                            f"each class of a pooled run once.")
        seen[cls.index] = query
    if len(found) < 2:
        raise UserError("--pooled learns one matrix over several classes, and got one class; "
                        "give two or more (e.g. --class 207 --class 208, or --class 200-209), "
                        "or drop --pooled for a run of one class.")
    return sorted((cls for cls, _ in found), key=lambda c: c.index)


def discover_pooled(model: str, classes: Sequence[str | int], config: DiscoverConfig,
                    out: str | os.PathLike, *, device: torch.device | str = "cpu",
                    weights_dir: str | os.PathLike | None = None, resume: bool = False,
                    overwrite: bool = False, progress: bool = True,
                    notify: Callable[[str], None] | None = None,
                    keep_steps: bool = False, on_event=None) -> RunResult:
    """What `discover --pooled` does: one run over `classes` into OUT/<model>/pooled-.../.
    Everything that can be checked without the model (the classes, each once and at least
    two; the method; an existing run; what resume would continue, its class set; writability)
    is checked before it is loaded, and nothing is created for a refused command. With
    keep_steps (the user gave no step count) a resumed run keeps the steps it was planned with,
    as class_runs.discover_classes does. on_event: run_discover's (tracking)."""
    config.validate()
    if config.method != "hessian":
        raise UserError(f"--pooled learns one matrix with the Hessian Penalty; --method "
                        f"{config.method} finds directions per class (drop --pooled).")
    chosen = pooled_classes(classes)
    indices = [c.index for c in chosen]
    folder = pooled_dir_for(out, model, indices)
    check_unlocked(folder, what="run")
    if resume and not has_run(folder):
        others = _other_pooled_runs(folder)
        raise UserError(f"{folder}: no pooled run over {format_classes(indices)} to resume"
                        + (f" (this folder holds runs over {'; '.join(others)})" if others else "")
                        + "; resume with the classes a run began with, or run without --resume "
                        "to start this one.")
    if resume:
        check_same_classes(folder, indices)
        planned = (files.read_record(folder / layout.RUN_RECORD).get("config") or {}).get("steps")
        if keep_steps and isinstance(planned, int) and planned >= 1:
            config = dataclasses.replace(config, steps=planned)
    elif not overwrite:
        prepare_run_folder(folder, resume=False, overwrite=False)
    check_writable_dir(folder)
    net = load_biggan(model, device=device, weights_dir=weights_dir, progress=progress)
    weights = weights_identity(model, weights_dir)
    if resume:
        files.check_same_model(folder, {"model": model, "model_weights": weights},
                               notify=lambda line: None)
    G = BigGANGenerator(net, indices, config.truncation, config.layers)
    meta = {**class_meta(model, chosen[0]), "classes": indices,
            "class_names": [c.name for c in chosen], "model_weights": weights}
    return run_discover(G, config, folder, meta=meta, device=device, resume=resume,
                        overwrite=overwrite, progress=progress,
                        describe=f"pooled {len(indices)} classes", notify=notify,
                        on_event=on_event)


def _other_pooled_runs(folder: Path, limit: int = 3) -> list[str]:
    """'classes ... (pooled-...)' for the pooled runs beside `folder` (at most `limit`)."""
    found = []
    for other in sorted(folder.parent.glob("pooled-*")) if folder.parent.is_dir() else []:
        try:
            was = recorded_classes(files.read_record(other / layout.RUN_RECORD))
        except UserError:
            continue
        if was:
            found.append(f"{format_classes(was)} ({other.name})")
    return found[:limit]
