"""Many classes in one command: checks, the locked batch folder, the manifest, a backend, the gallery.

The batch folder <out>/<model>/batch/ (or batch-<name>/) is locked while a batch runs and holds
manifest.jsonl (manifest.py), batch.json (the latest settings and counts), index.html
(gallery.py) and errors/ (tracebacks of unexpected errors, one file per class). One class's job
is class_job.py; where the jobs run (this process, one process per device, Ray tasks) is
backends.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..foundation.errors import SettingError, UserError
from ..foundation.fileio import check_writable_dir, finite_or_none, write_text
from ..foundation.lock import FolderLock, check_unlocked
from ..foundation.settings import at_least, default_of, need, one_of
from ..media.video import ffmpeg_exe
from ..methods.config import METHODS, DiscoverConfig, not_read_reason
from ..models.classes import ImageNetClass, resolve_class
from ..models.weights.load import ensure_available
from ..runs import layout
from ..runtime.settings import Runtime
from ..scoring.lpips_metric import ensure_backbone
from ..scoring.score import ScoreConfig
from ..tracking.config import TrackingConfig
from . import backends
from .atlas import atlas_rows, write_atlas
from .class_job import BatchRender, JobPlan, completed_entry, lost_entry, run_class_job
from .gallery import write_gallery
from .manifest import BATCH_RECORD, Manifest, now
from .pooled import check_pooled_batch, pooled_folder_for, pooled_stage, transfer_section
from .result import ClassResult


def batch_dir_for(out: str | os.PathLike, model: str, name: str | None = None) -> Path:
    """<out>/<model>/batch/, or <out>/<model>/batch-<name>/ for a named batch."""
    folder = "batch" if not name else f"batch-{layout.slug(name)}"
    return Path(out) / layout.model_label(model) / folder


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
              out: str | os.PathLike = layout.DEFAULT_OUT, *, score: ScoreConfig | None = None,
              render: BatchRender | None = None, top: int = JobPlan.top,
              backend: str = backends.DEFAULT_BACKEND, device: str = default_of(Runtime, "device"),
              devices: Sequence[str | torch.device] | None = None,
              ray_address: str | None = None, ray_cpus: int | None = None,
              gpus_per_job: float = backends.GPUS_PER_JOB, batch_name: str | None = None,
              weights_dir: str | os.PathLike | None = None, overwrite: bool = False,
              progress: bool = True, methods: Sequence[str] | None = None,
              on_entry: Callable[[dict[str, Any], int, int], None] | None = None,
              tracking: TrackingConfig | None = None,
              pooled: bool = False) -> BatchResult:
    """Discover (and score / render) every class into its run folder; keep the manifest and gallery.

    classes:   ImageNetClass objects, or anything resolve_class takes (resolved first).
    backend:   'local': jobs in this process, the model loaded once; with several `devices`
               (default: local_devices(device), i.e. every GPU for 'auto') one worker process
               per device. 'ray': one Ray task per class with gpus_per_job GPUs (0 when the
               cluster has none), on the cluster at ray_address or a local one with ray_cpus CPUs;
               `device` is resolved inside each task.
    methods:   the methods run per class, in order (hessian, sefa, ganspace; duplicates
               dropped); None or empty: config.method only. Each method's run has its own folder
               (class_job.JobPlan.run_folder) and its part of the manifest line (`methods`).
    on_entry:  called as on_entry(entry, done, total) as each class's job ends.
    tracking:  what each run logs (TensorBoard events in its folder, W&B); default
               TrackingConfig() (TensorBoard on).
    pooled:    one pooled matrix over the classes (batch.pooled), then each class scored and
               rendered with it, and the transfer table in the gallery.
    Finished classes are skipped, unfinished ones resumed from their checkpoints. Everything is
    checked before the batch folder is created (another batch holding it first; the model's
    weights, fetched now when the store lacks them); the folder is locked while the batch runs.
    Returns the BatchResult (check .failed); raises BatchInterrupted on Ctrl-C after everything
    is written.
    """
    methods = tuple(dict.fromkeys(methods or (config.method,)))
    for method in methods:
        one_of("methods", method, METHODS)
    unread = [dataclasses.replace(config, method=m).unread() for m in methods]
    for name in unread[0]:                           # a setting none of the methods reads
        if all(name in u for u in unread):
            raise SettingError(name, getattr(config, name),
                               not_read_reason(name, methods[0]) if len(methods) == 1 else
                               f"no method of this batch ({', '.join(methods)}) reads it; leave "
                               f"it at its default ({default_of(DiscoverConfig, name)!r}).")
    for method in methods:
        config.for_method(method).validate()         # as JobPlan.config_for hands it on
    classes = [c if isinstance(c, ImageNetClass) else resolve_class(c) for c in classes]
    if not classes:
        raise UserError("no classes given; give at least one class.")
    one_of("backend", backend, backends.BACKENDS)
    if pooled:
        check_pooled_batch(classes, methods, backend)
    at_least("top", top, 1)
    need(gpus_per_job >= 0, "gpus_per_job", gpus_per_job, "must be >= 0.")
    if render is not None:
        render.video.validate()
        if not render.seeds:
            raise UserError("render seeds: empty selection; give seeds like 0-5.")
    if backend == "ray":
        backends.check_device_spec(device)
        backends.import_ray()
    else:
        devs = [torch.device(d) for d in devices] if devices else backends.local_devices(device)
        _preflight_local(score, render)
    folder = batch_dir_for(out, model, batch_name).resolve()
    check_unlocked(folder, what="batch folder")
    check_writable_dir(folder)
    if backend != "ray":                    # Ray workers check the weights on their own nodes

        ensure_available(model, weights_dir, progress=progress)
    model_path = Path(model)
    plan = JobPlan(model=model, model_source=str(model_path.resolve()) if model_path.is_dir() else model,
                   out=str(Path(out).resolve()), batch_folder=str(folder), discover=config,
                   score=score, render=render, top=top,
                   weights_dir=str(Path(weights_dir).resolve()) if weights_dir is not None else None,
                   overwrite=overwrite, progress=progress, methods=methods,
                   tracking=tracking if tracking is not None else TrackingConfig(),
                   pooled_folder=str(pooled_folder_for(Path(out).resolve(), model, classes))
                   if pooled else None)

    with FolderLock(folder, what="batch folder"):
        manifest = Manifest(folder, [plan.new_entry(c, "pending") for c in classes])
        started = now()
        _write_record(folder, plan, classes, backend, started, None, manifest)
        manifest.write()
        carried: dict[int, ClassResult] = {}     # what each class's job returned, by class index
        net = pooled_stage(plan, classes, devs[0]) if pooled else None   # before the classes
        done = 0

        def finish(result: ClassResult) -> None:
            nonlocal done
            done += 1
            carried[result.class_index] = result
            manifest.update(result.entry)
            if on_entry is not None:
                on_entry(result.entry, done, len(classes))

        todo = []
        for c in classes:
            result = completed_entry(plan, c, manifest.entries.get(c.index))
            if result is None:
                todo.append(c)
            else:
                finish(result)
        events = backends.Events(started=lambda index: manifest.set_status(index, "running"),
                                 finished=finish, lost=lambda *a: lost_entry(plan, manifest, *a))
        interrupted = False
        if todo and backend == "ray":
            interrupted = backends.run_ray(run_class_job, plan, todo, events, device=device,
                                           address=ray_address, cpus=ray_cpus,
                                           gpus_per_job=gpus_per_job)
        elif todo and len(devs) == 1:
            interrupted = backends.run_sequential(run_class_job, plan, todo, devs[0], events)
        elif todo:
            interrupted = backends.run_pool(run_class_job, plan, todo, devs, events)

        extra = (transfer_section(plan, classes, folder, net, devs[0])
                 if pooled and not interrupted else "")
        gallery = write_gallery(folder, list(manifest.entries.values()), model=plan.model,
                                scores={i: r.card_scores for i, r in carried.items()},
                                extra_html=extra)
        try:                                     # every class's labels (describe's), if any
            write_atlas(folder, atlas_rows(folder, list(manifest.entries.values()),
                                           {i: r.card_scores for i, r in carried.items()}))
        except UserError:
            pass                                 # no class is labelled: no atlas
        result = BatchResult(folder, manifest.path, gallery, manifest.batch_entries())
        _write_record(folder, plan, classes, backend, started, now(), manifest)
    if interrupted:
        raise BatchInterrupted(result)
    return result


def _preflight_local(score: ScoreConfig | None, render: BatchRender | None) -> None:
    """What would make every class fail after its discovery, checked before the first one:
    the LPIPS backbone file (score) and ffmpeg (MP4 videos). Ray workers check their own."""
    if render is not None and render.video.fmt == "mp4":
        ffmpeg_exe()
    if score is not None:
        ensure_backbone(score.net)           # downloads it once, or says which file to put where


# ---------------------------------------------------------------------- the batch record
def _write_record(folder: Path, plan: JobPlan, classes, backend: str, started: str,
                  finished: str | None, manifest: Manifest) -> None:
    record = {"tool": "biggan-directions", "model": plan.model, "out": plan.out,
              "classes": [c.index for c in classes], "backend": backend,
              "methods": list(plan.method_list),
              "discover": plan.discover.to_json(),
              "score": dataclasses.asdict(plan.score) if plan.score else None,
              "render": dataclasses.asdict(plan.render) if plan.render else None,
              "top": plan.top, "overwrite": plan.overwrite, "pooled_run": plan.pooled_folder,
              "started": started,
              "finished": finished, "counts": manifest.counts()}
    write_text(folder / BATCH_RECORD, json.dumps(finite_or_none(record), indent=2) + "\n")
