"""Discovery runs on disk: run folder, run.json, log.csv, checkpoints, resume; one run per BigGAN class."""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .directions import save_directions
from .discovery import (RESUMABLE_CHANGES, DiscoverConfig, Discovery, DiscoveryDiverged,
                        DiscoveryInterrupted, _progress, discover_directions)
from .errors import UserError, first_line
from .fileio import atomic_path, read_json, write_json as _write_json, write_text
from . import runs

__all__ = ["DiscoverConfig", "Discovery", "DiscoveryDiverged", "DiscoveryInterrupted",
           "RESUMABLE_CHANGES", "discover_directions", "run_discover", "discover_classes",
           "RunResult", "prepare_run_folder"]


# ---------------------------------------------------------------------- runs on disk
@dataclass
class RunResult:
    folder: Path
    status: str                  # 'finished' or 'already finished'
    step: int
    final_penalty: float | None  # mean training penalty over the last (up to) 100 steps
    eval_penalty: float | None


def prepare_run_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an existing run unless --resume or --overwrite; with --overwrite remove only the
    files this tool writes there."""
    existing = [n for n in _owned_files() if (folder / n).exists()]
    if not existing or resume:
        return
    if not overwrite:
        raise UserError(f"{folder}: a run already exists here; pass --resume to continue it or "
                        f"--overwrite to start it again.")
    for name in existing:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def _owned_files() -> tuple[str, ...]:
    return (runs.DIRECTIONS_FILE, runs.RUN_RECORD, runs.STEP_LOG, runs.CHECKPOINT,
            runs.SCORES_JSON, runs.SCORES_CSV, runs.VIDEOS_DIR)


def run_discover(G: Callable, config: DiscoverConfig, folder: str | os.PathLike, *,
                 meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                 resume: bool = False, overwrite: bool = False, progress: bool = True,
                 describe: str = "discover") -> RunResult:
    """Discovery with files: run.json, log.csv, checkpoints every N steps and on Ctrl-C, the
    directions file (also refreshed at each checkpoint), resume from the last checkpoint.

    meta: what the directions file and run.json record about the generator (model, class_index,
    class_name, wnid, ...). Raises DiscoveryInterrupted after saving on Ctrl-C, and
    DiscoveryDiverged (a UserError) on a NaN penalty, keeping the last good checkpoint.
    """
    folder = Path(folder)
    config.validate()
    prepare_run_folder(folder, resume, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    run = Discovery(G, config, device)
    ckpt_path = folder / runs.CHECKPOINT
    record = read_json(folder / runs.RUN_RECORD) if resume else {}
    if resume and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path)
        _check_resumable(ckpt_path, state, config)
        run.load_state_dict(state)
        if record.get("status") == "finished" and run.step >= config.steps:
            return RunResult(folder, "already finished", run.step, record.get("final_penalty"),
                             record.get("eval_penalty"))
    _truncate_log(folder / runs.STEP_LOG, run.step)

    record.update({
        "tool": "biggan-directions", "version": _version(), "status": "running",
        "config": config.to_json(), "meta": meta, "device": str(run.device),
        "device_name": _device_name(run.device), "versions": _versions(),
        "started": record.get("started") or _now(), "resumed_at_steps": record.get("resumed_at_steps", []),
    })
    if run.step > 0:
        record["resumed_at_steps"].append(run.step)
    if "reference_eval" not in record:
        record["reference_eval"] = run.reference_values()
    _write_json(folder / runs.RUN_RECORD, record)

    recent: list[float] = _recent_penalties(folder / runs.STEP_LOG)
    eval_value = record.get("eval_penalty")
    log = open(folder / runs.STEP_LOG, "a", newline="")
    writer = csv.writer(log)
    if log.tell() == 0:
        writer.writerow(["step", "penalty", "eval_penalty", "seconds"])

    def checkpoint(status: str) -> None:
        log.flush()
        _atomic_torch_save(run.state_dict(), ckpt_path)
        save_directions(folder / runs.DIRECTIONS_FILE, run.directions(),
                        {**meta, **_settings_meta(config, run)})
        record.update(status=status, step=run.step, seconds=round(run.elapsed, 3),
                      final_penalty=_mean(recent), eval_penalty=eval_value,
                      steps_per_second=round(run.step / run.elapsed, 4) if run.elapsed else None,
                      updated=_now())
        _write_json(folder / runs.RUN_RECORD, record)

    try:
        with _sigint_as_flag() as stop, _progress(config.steps, run.step, progress, describe) as bar:
            while run.step < config.steps:
                t0 = time.perf_counter()
                try:
                    value = run.train_step()
                except DiscoveryDiverged as e:
                    record.update(status="failed", error=str(e), updated=_now())
                    _write_json(folder / runs.RUN_RECORD, record)
                    kept = f"the last good checkpoint (step {_checkpoint_step(ckpt_path)}) is kept" \
                        if ckpt_path.exists() else "no checkpoint was written yet"
                    raise DiscoveryDiverged(f"{e}; {kept} in {folder}. Lower --lr or raise "
                                            f"--epsilon, then --overwrite (or --resume).") from None
                run.elapsed += time.perf_counter() - t0
                recent = (recent + [value])[-100:]
                row_eval = ""
                if run.step % config.eval_every == 0 or run.step == config.steps:
                    eval_value = run.evaluate()
                    row_eval = f"{eval_value:.6g}"
                writer.writerow([run.step, f"{value:.6g}", row_eval, f"{run.elapsed:.3f}"])
                log.flush()                               # a crash loses no logged step
                bar.update(1)
                bar.set_postfix(penalty=f"{_mean(recent):.4g}", refresh=False)
                if run.step % config.checkpoint_every == 0 and run.step < config.steps:
                    checkpoint("running")
                if stop.is_set() and run.step < config.steps:
                    checkpoint("interrupted")
                    raise DiscoveryInterrupted(run.step)
        record["finished"] = _now()
        checkpoint("finished")
    finally:
        log.close()
    return RunResult(folder, "finished", run.step, _mean(recent), eval_value)


def _settings_meta(config: DiscoverConfig, run: Discovery) -> dict[str, Any]:
    return {"truncation": config.truncation, "path_size": config.path_size,
            "subspace": list(config.subspace) if config.subspace else None, "seed": config.seed,
            "step": run.step, "steps": config.steps, "settings": config.to_json()}


def _check_resumable(path: Path, state: dict[str, Any], config: DiscoverConfig) -> None:
    try:
        old = DiscoverConfig.from_json(json.loads(state["config"])).to_json()
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a checkpoint of this tool ({e}); use --overwrite to start again.") from None
    new = config.to_json()
    changed = [f"{k}={old[k]!r} (now {new[k]!r})" for k in new
               if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        raise UserError(f"{path}: the run was started with " + ", ".join(changed)
                        + "; resume with the same settings or pass --overwrite.")
    if int(state["step"]) > config.steps:
        raise UserError(f"{path}: the run is already at step {state['step']}, past --steps "
                        f"{config.steps}; raise --steps to continue it.")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(f"{path}: unreadable checkpoint ({first_line(e)}); "
                        f"use --overwrite to start again.") from None
    if not isinstance(state, dict) or state.get("format") != "biggan-directions-checkpoint":
        raise UserError(f"{path}: not a biggan-directions checkpoint; use --overwrite to start again.")
    return state


def _checkpoint_step(path: Path) -> int:
    return int(_load_checkpoint(path)["step"])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)




def _truncate_log(path: Path, step: int) -> None:
    """Keep log rows up to `step` (rows written after the checkpoint are redone on resume)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [r for i, r in enumerate(rows) if i == 0 or (r and r[0].isdigit() and int(r[0]) <= step)]
    if step == 0:
        kept = []
    buf = io.StringIO()
    csv.writer(buf).writerows(kept)
    write_text(path, buf.getvalue())


def _recent_penalties(path: Path) -> list[float]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["penalty"]) for r in rows[-100:]]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@contextmanager
def _sigint_as_flag():
    """The first Ctrl-C sets a flag the loop checks after each step (so the checkpoint holds a
    whole step); a second one interrupts at once. Only in the main thread."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("biggan-directions")
    except PackageNotFoundError:
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("pytorch-pretrained-biggan", "biggan-directions"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------- BigGAN classes
def discover_classes(model: str, classes: list[str], config: DiscoverConfig, out: str | os.PathLike, *,
                     device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
                     resume: bool = False, overwrite: bool = False, progress: bool = True,
                     on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """What `discover` does: load the BigGAN once, then one run per class into
    <out>/<model>/<index>-<class-slug>/. Classes are resolved (and run folders checked) before
    anything is loaded, so a typo in the last class fails at once."""
    from .classes import resolve_class
    from .generator import BigGANGenerator
    from .weights import load_biggan

    config.validate()
    resolved = [resolve_class(c) for c in classes]
    folders = [runs.run_dir_for(out, model, c.index, c.name) for c in resolved]
    if not resume and not overwrite:
        for folder in folders:
            prepare_run_folder(folder, resume=False, overwrite=False)
    net = load_biggan(model, device=device, weights_dir=weights_dir, progress=progress)
    results = []
    for cls, folder in zip(resolved, folders):
        G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
        meta = {"model": model, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid}
        result = run_discover(G, config, folder, meta=meta, device=device, resume=resume,
                              overwrite=overwrite, progress=progress,
                              describe=f"{cls.index} {cls.name}"[:30])
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
