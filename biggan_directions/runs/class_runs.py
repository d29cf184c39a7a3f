"""What `discover` runs: the BigGAN loaded once, then one discovery run per class."""
from __future__ import annotations

import dataclasses
import os
from typing import Callable

import torch

from ..foundation.errors import UserError
from ..foundation.fileio import check_writable_dir
from ..foundation.lock import check_unlocked
from ..methods.config import DiscoverConfig
from ..models.classes import class_meta, resolve_class
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..models.weights.load import weights_identity
from . import files, layout
from .discover import OnEvent, run_discover
from .files import RunResult, has_run, prepare_run_folder
from .plan import plan_line


def discover_classes(model: str, classes: list[str], config: DiscoverConfig, out: str | os.PathLike, *,
                     device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
                     resume: bool = False, overwrite: bool = False, progress: bool = True,
                     on_result: Callable[[RunResult], None] | None = None,
                     notify: Callable[[str], None] | None = None,
                     keep_steps: bool = False,
                     on_event: OnEvent | None = None) -> list[RunResult]:
    """What `discover` does: load the BigGAN once, then one run per class into
    <out>/<model>/<index>-<class-slug>/. Everything that can be checked without the model
    (classes, duplicates, existing runs, what resume would continue, writability) is checked
    before it is loaded; run_discover checks the settings against its latent before creating
    a folder. With resume, every class must have a run to continue; with keep_steps (the user
    gave no step count) each resumed run keeps the steps it was planned with, so a resume
    continues a run rather than extending it to config.steps."""
    config.validate()
    resolved = [resolve_class(c) for c in classes]
    seen: dict[int, str] = {}
    for query, cls in zip(classes, resolved):
        if cls.index in seen:
            raise UserError(f"class {cls.index} ({cls.name}) is given twice (as {seen[cls.index]!r} "
                            f"and {query!r}); give each class once.")
        seen[cls.index] = str(query)
    folders = [layout.run_dir_for(out, model, c.index, c.name, config.method) for c in resolved]
    configs = [config] * len(folders)
    for i, folder in enumerate(folders):
        check_unlocked(folder, what="run")            # before advice the lock would refuse
        if resume and not has_run(folder):
            raise UserError(f"{folder}: no run to resume here; run the same command without "
                            f"--resume to start it.")
        if resume:
            planned = (files.read_record(folder / layout.RUN_RECORD).get("config") or {}).get("steps")
            if keep_steps and config.method == "hessian" and isinstance(planned, int) and planned >= 1:
                configs[i] = dataclasses.replace(config, steps=planned)
        elif not overwrite:
            prepare_run_folder(folder, resume=False, overwrite=False)
        check_writable_dir(folder)
    if progress:                                       # the plan, before set-up (not with -q)
        (notify or files.to_stderr)(plan_line(configs, len(resolved), device, resume))
    net = load_biggan(model, device=device, weights_dir=weights_dir, progress=progress)
    weights = weights_identity(model, weights_dir)     # recorded; checked on resume
    if resume:                                          # every class before the first one runs
        for folder in folders:
            files.check_same_model(folder, {"model": model, "model_weights": weights},
                                       notify=lambda line: None)
    results = []
    for cls, folder, cfg in zip(resolved, folders, configs):
        G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
        meta = {**class_meta(model, cls), "model_weights": weights}
        result = run_discover(G, cfg, folder, meta=meta, device=device, resume=resume,
                              overwrite=overwrite, progress=progress,
                              describe=f"{cls.index} {cls.name}"[:30], notify=notify,
                              on_event=on_event)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
