"""Many classes in one command: one discover (+ score, render) job per class, recorded in a manifest.

Each class's job does what the single commands do, into the same run folder
<out>/<model>/<index>-<class-slug>/: discover (resumed from its checkpoint; skipped when run.json
says 'finished' at --steps or more with the same settings), score (scores.json, skipped when
present) and render of the --top K directions (a grid video and a PNG strip in RUN/videos/,
skipped when present). When discovery ran, scores and videos are redone, not kept stale.

The batch folder <out>/<model>/batch/ (or batch-<name>/) is locked while a batch runs and holds
manifest.jsonl (manifest.py), batch.json (the latest settings and counts), index.html
(gallery.py) and errors/ (tracebacks of unexpected errors, one file per class). Where the jobs
run (this process, one process per device, Ray tasks) is backends.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import backends, runs
from .classes import ImageNetClass, resolve_class
from .discover_config import RESUMABLE_CHANGES, DiscoverConfig
from .discovery import DiscoveryInterrupted
from .errors import UserError, first_line
from .fileio import check_writable_dir, finite_or_none, write_text
from .manifest import BATCH_RECORD, Manifest, new_entry, now, relative
from .render import RenderConfig
from .score import ScoreConfig
from .settings import at_least, need, one_of

ERRORS_DIR = "errors"
BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class BatchRender:
    """What `--render` writes per class into RUN/videos/ (names as `render` gives them)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)  # samples: one column each in the grid video
    video: RenderConfig = RenderConfig()        # the grid video (mp4 plays in browsers; gif is large)
    strip: bool = True                          # also a PNG strip of the same rows (first seed)


@dataclass(frozen=True)
class JobPlan:
    """Everything one class's job needs; picklable, so it travels to worker processes and Ray."""

    model: str                      # as the user gave it: recorded in the run, names its folder
    model_source: str               # what a worker loads: the name, or the model folder made absolute
    out: str                        # absolute output root
    batch_folder: str               # absolute
    discover: DiscoverConfig
    score: ScoreConfig | None = None   # None: no scoring
    render: BatchRender | None = None  # None: no rendering
    top: int = 8                    # directions rendered and listed in the manifest
    weights_dir: str | None = None  # absolute, or None for the default store
    overwrite: bool = False         # start every class again
    progress: bool = True           # progress bars (only in-process jobs show them)

    def run_folder(self, cls: ImageNetClass) -> Path:
        return runs.run_dir_for(self.out, self.model, cls.index, cls.name)

    def new_entry(self, cls: ImageNetClass, status: str) -> dict[str, Any]:
        return new_entry(cls, self.run_folder(cls), self.batch_folder, self.discover.steps, status)


def batch_dir_for(out: str | os.PathLike, model: str, name: str | None = None) -> Path:
    """<out>/<model>/batch/, or <out>/<model>/batch-<name>/ for a named batch."""
    folder = "batch" if not name else f"batch-{runs.slug(name)}"
    return Path(out) / runs.model_label(model) / folder


# ---------------------------------------------------------------------- one class
def _existing_run(folder: Path) -> runs.Run | None:
    """The run in `folder`, or None when it holds no directions (yet)."""
    return runs.open_run(folder) if (folder / runs.DIRECTIONS_FILE).is_file() else None


def _discover_complete(run: runs.Run | None, config: DiscoverConfig) -> bool:
    """run.json says finished at config.steps or more (a longer run is kept, not cut) with the
    same (non-resumable) settings."""
    record = run.record if run is not None else {}
    step = record.get("step")
    if record.get("status") != "finished" or not isinstance(step, int) or step < config.steps:
        return False
    old, new = record.get("config") or {}, config.to_json()
    return all(old.get(k) == v for k, v in new.items() if k not in RESUMABLE_CHANGES)


def _render_targets(plan: JobPlan, run: runs.Run):
    """(settings, indices, [(RenderConfig, target paths)]) of a class's render step: what
    `render RUN --top K` (or the first K directions of an unscored run) and `--strip` write."""
    from .render import render_paths
    from .scores_file import read_ranking, scores_paths

    settings = runs.resolve_run_settings(run)
    k = min(plan.top, run.directions.shape[0])
    indices = read_ranking(run, k) if scores_paths(run)[0].is_file() else list(range(k))
    video = dataclasses.replace(plan.render.video, path_size=settings.path_size, strip=False)
    configs = [video] + ([dataclasses.replace(video, strip=True)] if plan.render.strip else [])
    targets = [(c, render_paths(run.videos_dir, c, indices, plan.render.seeds)) for c in configs]
    return settings, indices, targets


def _fill_from_run(entry: dict[str, Any], plan: JobPlan, run: runs.Run | None,
                   media: Sequence[Path] | None) -> None:
    """Step and penalties from run.json, top directions from the scores, media paths."""
    from .scores_file import read_ranking, scores_paths

    record = run.record if run is not None else {}
    entry.update(step=record.get("step"), final_penalty=record.get("final_penalty"),
                 eval_penalty=record.get("eval_penalty"), top_directions=None)
    if run is not None and scores_paths(run)[0].is_file():
        try:
            entry["top_directions"] = read_ranking(run)[:plan.top]
        except UserError:
            pass
    if media is not None:
        entry["media"] = [relative(p, plan.batch_folder) for p in media if p.is_file()]


def completed_entry(plan: JobPlan, cls: ImageNetClass, prior: dict[str, Any] | None) -> dict | None:
    """A 'finished, skipped' manifest line when the class needs no work (discovery finished with
    these settings, scores and videos present as asked), else None. Touches no file."""
    if plan.overwrite:
        return None
    try:
        run = _existing_run(plan.run_folder(cls))
        if not _discover_complete(run, plan.discover):
            return None
        from .scores_file import scores_paths
        if plan.score is not None and not scores_paths(run)[0].is_file():
            return None
        media: list[Path] | None = None
        if plan.render is not None:
            media = [p for _, paths in _render_targets(plan, run)[2] for p in paths]
            if not all(p.is_file() for p in media):
                return None
    except UserError:
        return None                     # the job reports it
    entry = plan.new_entry(cls, "finished")
    _fill_from_run(entry, plan, run, media)
    entry.update(skipped=True, seconds=(prior or {}).get("seconds"))
    return entry


def run_class_job(plan: JobPlan, cls: ImageNetClass, load: Callable[[], tuple[Any, torch.device]],
                  metrics: dict | None = None, describe: str | None = None) -> dict[str, Any]:
    """Discover (+ score, render) one class into its run folder; return its manifest line.

    load() -> (BigGAN network, device) is called only when some step needs the model (it may
    load it, or return one already loaded). The run is opened once and handed to each step.
    Never raises for a class's own failure: a UserError or unexpected error becomes status
    'failed' (the traceback of an unexpected one goes to <batch>/errors/), Ctrl-C becomes
    status 'interrupted' after run_discover checkpointed.
    """
    start = time.perf_counter()
    folder = plan.run_folder(cls)
    entry = plan.new_entry(cls, "running")
    media: list[Path] | None = None
    run: runs.Run | None = None
    try:
        run = None if plan.overwrite else _existing_run(folder)
        if plan.overwrite or not _discover_complete(run, plan.discover):
            run = None
            _discover_step(plan, cls, folder, load, describe)
            run = runs.open_run(folder)
            force = True                 # the directions changed: redo what derives from them
        else:
            force = False
        if plan.score is not None:
            _score_step(plan, run, load, metrics if metrics is not None else {}, force)
        if plan.render is not None:
            media = _render_step(plan, run, load, force)
        entry["status"] = "finished"
    except DiscoveryInterrupted as e:
        entry.update(status="interrupted", error=f"interrupted at step {e.step} (checkpoint "
                                                 f"saved); run the same command again to resume")
    except KeyboardInterrupt:
        entry.update(status="interrupted", error=backends.INTERRUPTED)
    except UserError as e:
        entry.update(status="failed", error=_per_class_remedy(str(e), folder))
    except Exception as e:  # noqa: BLE001 - one class's bug must not stop the others
        log = Path(plan.batch_folder) / ERRORS_DIR / f"{cls.index}-{cls.slug}.txt"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            write_text(log, traceback.format_exc())
            where = f" (traceback in {relative(log, plan.batch_folder)})"
        except (OSError, UserError):
            where = ""
        entry.update(status="failed", error=f"{type(e).__name__}: {first_line(e)}{where}")
    try:
        _fill_from_run(entry, plan, run if run is not None else _existing_run(folder), media)
    except (OSError, ValueError, UserError):
        pass
    entry.update(seconds=round(time.perf_counter() - start, 3), updated=now())
    return entry


def _per_class_remedy(message: str, run_folder: Path) -> str:
    """A class's error worded for a batch: there --overwrite would start EVERY class again, so
    advice to pass it becomes the per-class remedy (delete this class's run folder)."""
    if "--overwrite" not in message:
        return message
    clauses = re.split(r"(?<=[;.]) ", message.rstrip("."))
    kept = [re.sub(r",?\s*(?:or |then )?(?:use |pass )?--overwrite\b.*$", "", c).strip()
            for c in clauses]
    head = " ".join(c for c in kept if c).rstrip(";.,")
    return (f"{head}; to start this class again, delete {run_folder} and run the same command "
            f"again (--overwrite would restart every class).")


def _discover_step(plan: JobPlan, cls: ImageNetClass, folder: Path, load, describe) -> None:
    """Run (or resume) discovery of an unfinished class."""
    from .discover import run_discover
    from .generator import BigGANGenerator

    config = plan.discover
    if (not plan.overwrite and (folder / runs.DIRECTIONS_FILE).exists()
            and not (folder / runs.CHECKPOINT).exists()):
        raise UserError(f"{folder} holds directions but no {runs.CHECKPOINT} to resume from; "
                        f"move it away, or pass --overwrite to start again.")
    net, device = load()
    G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
    meta = {"model": plan.model, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid}
    run_discover(G, config, folder, meta=meta, device=device, resume=not plan.overwrite,
                 overwrite=plan.overwrite, progress=plan.progress,
                 describe=(describe or f"{cls.index} {cls.name}")[:30])


def _score_step(plan: JobPlan, run: runs.Run, load, metrics: dict, force: bool) -> None:
    """What `score RUN` does (score_run.run_score), with the already loaded model and LPIPS."""
    from .lpips_metric import load_lpips
    from .score_run import run_score
    from .scores_file import scores_paths

    config = plan.score
    if scores_paths(run)[0].is_file() and not force:
        return
    net, device = load()
    key = (config.net, str(device))
    if key not in metrics:
        metrics[key] = load_lpips(config.net, device)
    run_score(run, config, device=device, overwrite=True, progress=plan.progress, net=net,
              metric=metrics[key])


def _render_step(plan: JobPlan, run: runs.Run, load, force: bool) -> list[Path]:
    """What `render RUN --top K` (or the first K of an unscored run) and `--strip` write;
    returns the files."""
    from .generator import BigGANGenerator
    from .render import render_directions

    settings, indices, targets = _render_targets(plan, run)
    record = dict(model=settings.model, class_index=settings.class_index, baseline=None,   # as render
                  class_name=settings.class_name, directions_file=str(run.directions_path))
    G = device = None
    for config, paths in targets:
        if all(p.is_file() for p in paths) and not force:
            continue
        if G is None:
            net, device = load()
            G = BigGANGenerator(net, settings.class_index, settings.truncation)
        render_directions(G, run.directions[indices], plan.render.seeds, run.videos_dir, config,
                          indices=indices, device=device, overwrite=True, progress=plan.progress,
                          record=record)
    return [p for _, paths in targets for p in paths]


# ---------------------------------------------------------------------- the batch
class BatchInterrupted(Exception):
    """Ctrl-C during a batch: the running jobs checkpointed, the manifest and gallery are written.
    `result` is the BatchResult so far."""

    def __init__(self, result: "BatchResult"):
        super().__init__("batch interrupted")
        self.result = result


@dataclass
class BatchResult:
    folder: Path                       # the batch folder
    manifest: Path
    gallery: Path | None
    entries: list[dict[str, Any]] = field(default_factory=list)   # this batch's, in order

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "failed"]


def run_batch(model: str, classes: Sequence[ImageNetClass | str | int], config: DiscoverConfig,
              out: str | os.PathLike = "outputs", *, score: ScoreConfig | None = None,
              render: BatchRender | None = None, top: int = JobPlan.top, backend: str = "local",
              device: str = "auto", devices: Sequence[str | torch.device] | None = None,
              ray_address: str | None = None, ray_cpus: int | None = None,
              gpus_per_job: float = 1.0, batch_name: str | None = None,
              weights_dir: str | os.PathLike | None = None, overwrite: bool = False,
              progress: bool = True,
              on_entry: Callable[[dict[str, Any], int, int], None] | None = None) -> BatchResult:
    """Discover (and score / render) every class into its run folder; keep the manifest and gallery.

    classes:   ImageNetClass objects, or anything resolve_class takes (resolved first).
    backend:   'local': jobs in this process, the model loaded once; with several `devices`
               (default: local_devices(device), i.e. every GPU for 'auto') one worker process
               per device. 'ray': one Ray task per class with gpus_per_job GPUs (0 when the
               cluster has none), on the cluster at ray_address or a local one with ray_cpus CPUs;
               `device` is resolved inside each task.
    on_entry:  called as on_entry(entry, done, total) as each class's job ends.
    Finished classes are skipped, unfinished ones resumed from their checkpoints. Everything is
    checked before the batch folder is created; the folder is locked while the batch runs.
    Returns the BatchResult (check .failed); raises BatchInterrupted on Ctrl-C after everything
    is written.
    """
    config.validate()
    classes = [c if isinstance(c, ImageNetClass) else resolve_class(c) for c in classes]
    if not classes:
        raise UserError("no classes given; give at least one class.")
    one_of("backend", backend, BACKENDS)
    at_least("top", top, 1)
    need(gpus_per_job >= 0, "gpus_per_job", gpus_per_job, "must be >= 0.")
    if render is not None:
        render.video.check()
        if not render.seeds:
            raise UserError("render seeds: empty selection; give seeds like 0-5.")
    if backend == "ray":
        backends.check_device_spec(device)
        backends.import_ray()
    else:
        devs = [torch.device(d) for d in devices] if devices else backends.local_devices(device)
        _preflight_local(score, render)
    folder = batch_dir_for(out, model, batch_name).resolve()
    check_writable_dir(folder)
    model_path = Path(model)
    plan = JobPlan(model=model, model_source=str(model_path.resolve()) if model_path.is_dir() else model,
                   out=str(Path(out).resolve()), batch_folder=str(folder), discover=config,
                   score=score, render=render, top=top,
                   weights_dir=str(Path(weights_dir).resolve()) if weights_dir is not None else None,
                   overwrite=overwrite, progress=progress)
    from .lock import FolderLock

    with FolderLock(folder, what="batch folder"):
        manifest = Manifest(folder, [plan.new_entry(c, "pending") for c in classes])
        started = now()
        _write_record(folder, plan, classes, backend, started, None, manifest)
        manifest.write()
        done = 0

        def finish(entry: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            manifest.update(entry)
            if on_entry is not None:
                on_entry(entry, done, len(classes))

        todo = []
        for c in classes:
            entry = completed_entry(plan, c, manifest.entries.get(c.index))
            if entry is None:
                todo.append(c)
            else:
                finish(entry)
        events = backends.Events(started=lambda index: manifest.set_status(index, "running"),
                                 finished=finish, lost=lambda *a: _lost_entry(plan, manifest, *a))
        interrupted = False
        if todo and backend == "ray":
            interrupted = backends.run_ray(run_class_job, plan, todo, events, device=device,
                                           address=ray_address, cpus=ray_cpus,
                                           gpus_per_job=gpus_per_job)
        elif todo and len(devs) == 1:
            interrupted = backends.run_sequential(run_class_job, plan, todo, devs[0], events)
        elif todo:
            interrupted = backends.run_pool(run_class_job, plan, todo, devs, events)

        from .gallery import write_gallery

        gallery = write_gallery(folder, list(manifest.entries.values()))
        result = BatchResult(folder, manifest.path, gallery, manifest.batch_entries())
        _write_record(folder, plan, classes, backend, started, now(), manifest)
    if interrupted:
        raise BatchInterrupted(result)
    return result


def _preflight_local(score: ScoreConfig | None, render: BatchRender | None) -> None:
    """What would make every class fail after its discovery, checked before the first one:
    the LPIPS backbone file (score) and ffmpeg (MP4 videos). Ray workers check their own."""
    if render is not None and render.video.fmt == "mp4":
        from .video import ffmpeg_exe
        ffmpeg_exe()
    if score is not None:
        from .lpips_metric import ensure_backbone
        ensure_backbone(score.net)           # downloads it once, or says which file to put where


def _lost_entry(plan: JobPlan, manifest: Manifest, cls: ImageNetClass, status: str, error: str,
                started: bool) -> dict[str, Any] | None:
    """The line of a class whose job ended without one (see backends.Events), from its files.
    None when it may never have started (`started` False) and its run.json says so."""
    try:
        run = _existing_run(plan.run_folder(cls))
    except UserError:
        run = None
    if not started and (run is None or run.record.get("status") not in ("running", "interrupted")):
        return None
    entry = {**manifest.entries[cls.index], "status": status, "error": error, "updated": now()}
    _fill_from_run(entry, plan, run, None)
    return entry


# ---------------------------------------------------------------------- the batch record
def _write_record(folder: Path, plan: JobPlan, classes, backend: str, started: str,
                  finished: str | None, manifest: Manifest) -> None:
    record = {"tool": "biggan-directions", "model": plan.model, "out": plan.out,
              "classes": [c.index for c in classes], "backend": backend,
              "discover": plan.discover.to_json(),
              "score": dataclasses.asdict(plan.score) if plan.score else None,
              "render": dataclasses.asdict(plan.render) if plan.render else None,
              "top": plan.top, "overwrite": plan.overwrite, "started": started,
              "finished": finished, "counts": manifest.counts()}
    write_text(folder / BATCH_RECORD, json.dumps(finite_or_none(record), indent=2) + "\n")
