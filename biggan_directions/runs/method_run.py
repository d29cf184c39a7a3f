"""A SeFa or GANSpace run written into a discover run folder, without training.

`discover --method sefa|ganspace` writes the same folder as a Hessian Penalty run: the
directions file (with `method`, its settings, and `"orthonormal": false` for GANSpace's unit
rows) and run.json (method, settings, status finished at step 0, and the fixed-evaluation
penalty of the result with the identity and random references and `versus_random`). The fixed
evaluation is the one a Hessian Penalty run with the same settings uses (same draws), so the
methods compare on one scale.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..foundation.errors import WriteError
from ..foundation.fileio import write_json
from ..core.evaluation import trimmed_mean, trimmed_mean_se, versus_random
from ..methods.config import AUTO
from ..methods.hessian import _progress
from ..methods.sefa import sefa_available
from ..methods.interface import check_method, find_directions, method_settings
from ..methods.config import DiscoverConfig
from ..methods.fixed_eval import FixedEvaluation
from . import files, layout
from .files import RunResult, prepare_run_folder
from .record import directions_meta, run_record


def run_method(G: Callable, config: DiscoverConfig, folder: str | Path, *,
               meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
               resume: bool = False, overwrite: bool = False, progress: bool = True,
               notify: Callable[[str], None] | None = None) -> RunResult:
    """One SeFa or GANSpace run into `folder` (see the module docstring); returns a
    RunResult. Checks (settings, the generator's layer, writability, an existing
    run) come before the folder is made. A finished run with the same settings is left as it
    is on resume."""
    folder, device = Path(folder), torch.device(device)
    check_method(G, config)
    with files.locked_run_folder(folder, notify):
        prepare_run_folder(folder, resume, overwrite)
        record_path = folder / layout.RUN_RECORD
        if resume:
            files.check_same_model(folder, dict(meta or {}), notify)
        if resume and record_path.exists():
            old = files.read_record(record_path)
            if old.get("status") == "finished" and config.same_as_recorded(old.get("config")):
                return RunResult(folder, "already finished", 0, None, old.get("eval_penalty"),
                                 old.get("versus_random"))
        return _write_run(G, config, folder, dict(meta or {}), device, progress, notify)


def _write_run(G: Callable, config: DiscoverConfig, folder: Path, meta: dict[str, Any],
               device: torch.device, progress: bool,
               notify: Callable[[str], None] | None = None) -> RunResult:
    started, t0 = files.now(), time.perf_counter()
    ndirs = config.ndirs or int(G.z_dim)
    evaluator = FixedEvaluation(G, config, ndirs, device)            # as hessian's
    samples = ndirs * evaluator.per_direction
    matrices = 1 + config.eval_references + 1 + int(                  # result, random, identity,
        config.subspace is None and ndirs == int(G.z_dim)             # SeFa's line
        and sefa_available(G, ndirs, config.sefa_layers))
    say = (notify or files.to_stderr) if progress else (lambda line: None)   # not with -q
    say(f"{config.method}: "
        f"{'closed form' if config.method == 'sefa' else f'PCA of {config.samples:,} latents'}"
        f", then the fixed "
        f"evaluation: {matrices} matrices x {samples:,} samples ({evaluator.per_direction} per "
        f"direction{', auto' if config.eval_per_direction == AUTO else ''}) = "
        f"{matrices * samples * (1 + 2 * config.eval_k):,} generator images")
    with _progress(matrices * samples, 0, progress, f"{config.method}: finding", unit="sample",
                   leave=False) as bar:                                  # shown from the start
        bar.refresh()
        q, report = find_directions(G, config, device, progress)
        seconds = time.perf_counter() - t0
        bar.set_description_str(f"{config.method}: fixed evaluation", refresh=True)
        values = evaluator.evaluate(q.to(device), on_chunk=bar.update, per_sample=True)
        eval_value, eval_se = trimmed_mean(values), trimmed_mean_se(values)
        reference = evaluator.reference_values(on_chunk=bar.update)
    settings = method_settings(config)
    if "layer" in report:
        settings["layer"] = report.pop("layer")          # the layer used (default resolved)
    file_meta = directions_meta(config, meta, step=0, steps=0, settings=settings, **report,
                                orthonormal=config.method != "ganspace")
    record = {**run_record(config, meta, device, status="finished", started=started,
                           settings=settings), **report,
              "finished": files.now(), "updated": files.now(),
              "step": 0, "seconds": round(seconds, 3), "final_penalty": None,
              "eval_penalty": eval_value, "reference_eval": reference,
              "eval_per_direction": evaluator.per_direction, "eval_samples": samples,
              "eval_standard_error": eval_se,
              "eval_seconds": round(time.perf_counter() - t0 - seconds, 3),
              "versus_random": versus_random(eval_value, reference, noise=eval_se,
                                             per_direction=evaluator.per_direction)}
    try:
        files.save_run_directions(folder / layout.DIRECTIONS_FILE, q, file_meta)
        write_json(folder / layout.RUN_RECORD, record)
    except WriteError as e:            # disk full: neither file is left without the other
        for name in (layout.DIRECTIONS_FILE, layout.RUN_RECORD):
            (folder / name).unlink(missing_ok=True)
        raise WriteError(e.path, e.reason, f"no run is left in {folder}; free space or choose "
                                           f"another output folder, then run the same command "
                                           f"again.") from None
    return RunResult(folder, "finished", 0, None, eval_value, record["versus_random"],
                     run=files.written_run(folder, q, file_meta, record))
