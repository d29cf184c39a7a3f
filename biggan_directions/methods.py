"""The closed-form and sampling methods (SeFa, GANSpace) run into a discover run folder, without training.

`discover --method sefa|ganspace` writes the same folder as a Hessian Penalty run: the
directions file (with `method`, its settings, and `"orthonormal": false` for GANSpace's unit
rows) and run.json (method, settings, status finished at step 0, and the fixed-evaluation
penalty of the result with the identity and random references and `versus_random`). The fixed
evaluation is the one a Hessian Penalty run with the same settings uses (same draws), so the
methods compare on one scale.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from . import run_files, runs
from .discover_config import DiscoverConfig
from .discovery import Discovery
from .errors import SettingError, WriteError
from .evaluation import versus_random
from .fileio import write_json

CLOSED_FORM = ("sefa", "ganspace")


def method_settings(config: DiscoverConfig) -> dict[str, Any]:
    """The settings that define a method's result (recorded in the file and run.json)."""
    if config.method == "sefa":
        return {"sefa_layers": config.sefa_layers}
    if config.method == "ganspace":
        return {"layer": config.ganspace_layer, "samples": config.samples, "seed": config.seed,
                "truncation": config.truncation}
    return {"steps": config.steps, "lr": config.lr, "batch_size": config.batch_size,
            "init": config.init, "seed": config.seed}


def check_method(G: Callable, config: DiscoverConfig) -> None:
    """Everything that can fail before a folder is made: the settings against G's latent, and
    that G has what the method reads (a linear first layer for SeFa, the named layer for
    GANSpace). SettingError / UserError in one line."""
    config.validate(int(G.z_dim))
    ndirs = config.ndirs or int(G.z_dim)
    if config.method == "sefa":
        from .sefa import first_linear_weight

        weight = first_linear_weight(G, config.sefa_layers)
        rank = min(weight.shape)
        if ndirs > rank:
            raise SettingError("ndirs", ndirs, f"SeFa gives at most {rank} directions for this "
                                               f"generator's first layer.")
    elif config.method == "ganspace":
        from .ganspace import default_layer, find_module

        try:
            find_module(G, config.ganspace_layer or default_layer(G))
        except SettingError as e:
            raise SettingError("ganspace_layer", e.value, e.reason) from None
        if config.samples < ndirs + 1:
            raise SettingError("samples", config.samples,
                               f"must be at least ndirs + 1 = {ndirs + 1} for {ndirs} directions.")


def method_directions(G: Callable, config: DiscoverConfig, device: torch.device,
                      progress: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """(Q (ndirs, z_dim), what the method reports: singular values or explained variance)."""
    ndirs = config.ndirs or int(G.z_dim)
    if config.method == "sefa":
        from .sefa import sefa_directions

        q, s = sefa_directions(G, ndirs, config.sefa_layers)
        return q, {"singular_values": [round(float(v), 6) for v in s]}
    from .ganspace import default_layer, ganspace_directions

    layer = config.ganspace_layer or default_layer(G)
    q, ratio = ganspace_directions(G, layer, samples=config.samples, ndirs=ndirs,
                                   seed=config.seed, truncation=config.truncation,
                                   device=device, progress=progress)
    return q, {"layer": layer, "explained_variance": [round(float(v), 6) for v in ratio]}


def run_method(G: Callable, config: DiscoverConfig, folder: str | Path, *,
               meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
               resume: bool = False, overwrite: bool = False, progress: bool = True,
               notify: Callable[[str], None] | None = None):
    """One SeFa or GANSpace run into `folder` (see the module docstring); returns a
    discover.RunResult. Checks (settings, the generator's layer, writability, an existing
    run) come before the folder is made. A finished run with the same settings is left as it
    is on resume."""
    from .discover import RunResult, prepare_run_folder

    folder, device = Path(folder), torch.device(device)
    check_method(G, config)
    with run_files.locked_run_folder(folder, notify):
        prepare_run_folder(folder, resume, overwrite)
        record_path = folder / runs.RUN_RECORD
        if resume:
            run_files.check_same_model(folder, dict(meta or {}), notify)
        if resume and record_path.exists():
            old = run_files.read_record(record_path)
            if old.get("status") == "finished" and old.get("config") == config.to_json():
                return RunResult(folder, "already finished", 0, None, old.get("eval_penalty"))
        return _write_run(G, config, folder, dict(meta or {}), device, progress, RunResult)


def _write_run(G: Callable, config: DiscoverConfig, folder: Path, meta: dict[str, Any],
               device: torch.device, progress: bool, result_type):
    started, t0 = run_files.now(), time.perf_counter()
    q, report = method_directions(G, config, device, progress)
    seconds = time.perf_counter() - t0
    evaluator = Discovery(G, replace(config, init="random"), device)   # the run's fixed draws
    eval_value = evaluator.evaluate(q.to(device))
    reference = evaluator.reference_values()
    settings = method_settings(config)
    if "layer" in report:
        settings["layer"] = report.pop("layer")          # the layer used (default resolved)
    orthonormal = config.method != "ganspace"
    file_meta = {**meta, "method": config.method, "method_settings": settings, **report,
                 "truncation": config.truncation, "path_size": config.path_size,
                 "subspace": None, "seed": config.seed, "step": 0, "steps": 0,
                 "settings": config.to_json(), "orthonormal": orthonormal}
    record = {**run_files.environment(), "status": "finished", "method": config.method,
              "method_settings": settings, **report, "config": config.to_json(), "meta": meta,
              "device": str(device), "device_name": run_files.device_name(device),
              "started": started, "finished": run_files.now(), "updated": run_files.now(),
              "step": 0, "seconds": round(seconds, 3), "final_penalty": None,
              "eval_penalty": eval_value, "reference_eval": reference,
              "versus_random": versus_random(eval_value, reference)}
    try:
        run_files.save_run_directions(folder / runs.DIRECTIONS_FILE, q, file_meta)
        write_json(folder / runs.RUN_RECORD, record)
    except WriteError as e:            # disk full: neither file is left without the other
        for name in (runs.DIRECTIONS_FILE, runs.RUN_RECORD):
            (folder / name).unlink(missing_ok=True)
        raise WriteError(e.path, e.reason, f"no run is left in {folder}; free space or choose "
                                           f"another output folder, then run the same command "
                                           f"again.") from None
    return result_type(folder, "finished", 0, None, eval_value)
