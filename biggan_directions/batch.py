"""Many classes in one command: one discover (+ score, render) job per class, a manifest, local or Ray backends.

Each class is one job that does exactly what the single commands do, into the same run folder
<out>/<model>/<index>-<class-slug>/ with the same files:

  discover  run_discover (resumed from its checkpoint when the folder holds an unfinished run;
            skipped when run.json says 'finished' at the requested --steps with the same settings)
  score     LPIPS scores -> scores.json / scores.csv (skipped when scores.json exists)
  render    the --top K directions (best first by the score ranking, else 0..K-1): one grid video
            (a row per direction, a column per seed) and one PNG strip, in RUN/videos/
            (skipped when those files exist)

When discovery ran in this job (new or resumed), the run's directions changed, so its scores and
videos are redone (replaced) rather than kept stale. --overwrite starts every class again.

The batch folder is <out>/<model>/batch/ (or batch-<name>/) and holds:

  manifest.jsonl  one JSON object per class, in the order given (then classes of earlier batches
                  into the same folder, kept as they were), rewritten atomically after each job;
                  see MANIFEST_FIELDS. The record a script reads.
  batch.json      the settings of the latest invocation and its counts.
  index.html      the gallery (gallery.write_gallery), regenerated at the end of each batch.
  errors/         full tracebacks of unexpected (non-user) errors, one file per class.

Backends: 'local' runs the jobs in this process one after another with the model loaded once, or
with several devices one worker process per device (each loads the model once); 'ray' submits one
Ray task per class (num_gpus = gpus_per_job, 0 on a cluster without GPUs) that loads the model
itself, and the driver writes the manifest as results come back.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import runs
from .classes import ImageNetClass, resolve_class
from .discover import RESUMABLE_CHANGES, DiscoverConfig, DiscoveryInterrupted, run_discover
from .errors import UserError, first_line
from .fileio import finite_or_none, read_json, write_text
from .render import RenderConfig
from .score import ScoreConfig

MANIFEST = "manifest.jsonl"
BATCH_RECORD = "batch.json"
ERRORS_DIR = "errors"
BACKENDS = ("local", "ray")
STATUSES = ("pending", "running", "finished", "failed", "interrupted")
RAY_HINT = "pip install 'biggan-directions[ray]'"
INTERRUPT_WAIT_S = 300.0      # after Ctrl-C, how long to wait for running jobs to checkpoint

# The fields of one manifest line (JSON Lines; null where not known):
MANIFEST_FIELDS = {
    "class_index": "0-999",
    "class_name": "the class's first name, e.g. 'golden retriever'",
    "wnid": "WordNet id, e.g. 'n02099601'",
    "status": "pending | running | finished | failed | interrupted",
    "run_folder": "the run folder, relative to the batch folder (e.g. '../207-golden-retriever')",
    "step": "discovery steps done (run.json)",
    "steps": "discovery steps asked for",
    "final_penalty": "mean training penalty over the last (up to) 100 steps (run.json)",
    "eval_penalty": "penalty on the fixed held-out evaluation at the last step (run.json)",
    "top_directions": "the K best direction indices from scores.json's ranking, best first "
                      "(null when the run is not scored)",
    "media": "rendered files (grid video, PNG strip), relative to the batch folder",
    "seconds": "wall-clock seconds of this class's last job",
    "skipped": "true when the class was already complete and nothing ran",
    "error": "one line saying what went wrong (failed, interrupted), else null",
    "updated": "local time of this line's last change, ISO 8601",
}


# ---------------------------------------------------------------------- class lists
_RANGE = re.compile(r"\d+\s*-\s*\d+")


def resolve_class_items(items: Sequence[tuple[str, str]]) -> list[ImageNetClass]:
    """Resolve (item, where) pairs into classes, in order, duplicates dropped.

    An item is an index ('207'), an inclusive range of indices ('0-9'), a WordNet id
    ('n02099601') or a name ('golden retriever'). `where` names the item in errors (e.g.
    "--classes item 3", "classes.txt line 7"). Raises one UserError for all bad items at once.
    """
    from .ranges import parse_int_list

    found: list[ImageNetClass] = []
    errors: list[str] = []
    for item, where in items:
        text = item.strip()
        try:
            if _RANGE.fullmatch(text):
                found += [resolve_class(i) for i in parse_int_list(text, where)]
            else:
                found.append(resolve_class(text))
        except UserError as e:
            message = str(e).rstrip(".")
            errors.append(message if message.startswith(where) else f"{where}: {message}")
    if len(errors) == 1:
        raise UserError(errors[0] + ".")
    if errors:
        shown = " | ".join(errors[:3]) + (f" | ... ({len(errors) - 3} more)" if len(errors) > 3 else "")
        raise UserError(f"{len(errors)} classes could not be resolved: {shown}.")
    if not found:
        raise UserError("no classes given; pass e.g. --classes 0-9,207,church or --classes-file FILE.")
    unique: dict[int, ImageNetClass] = {}
    for c in found:
        unique.setdefault(c.index, c)
    return list(unique.values())


def parse_class_list(text: str, what: str = "--classes") -> list[ImageNetClass]:
    """'0-9,207,church,n03028079' -> classes (see resolve_class_items)."""
    items = [(p, f"{what} item {p.strip()!r}") for p in str(text).split(",") if p.strip()]
    if not items:
        raise UserError(f"{what}: empty; give indices, ranges, WordNet ids or names, e.g. 0-9,207,church.")
    return resolve_class_items(items)


def read_class_file(path: str | os.PathLike) -> list[ImageNetClass]:
    """Classes from a text file: one item per line (index, range LO-HI, WordNet id or name);
    '#' starts a comment, blank lines are ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--classes-file {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--classes-file {path}: cannot read it ({first_line(e)}).") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.split("#", 1)[0].strip()
        if item:
            items.append((item, f"{path.name} line {number}"))
    if not items:
        raise UserError(f"--classes-file {path}: no classes in it (one per line; '#' starts a comment).")
    return resolve_class_items(items)


# ---------------------------------------------------------------------- settings
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


def batch_dir_for(out: str | os.PathLike, model: str, name: str | None = None) -> Path:
    """<out>/<model>/batch/, or <out>/<model>/batch-<name>/ for a named batch."""
    folder = "batch" if not name else f"batch-{runs.slug(name)}"
    return Path(out) / runs.model_label(model) / folder


def local_devices(spec: str = "auto") -> list[torch.device]:
    """The devices of `--backend local`: every CUDA device for 'auto' when there are several
    (one worker process each), else the one device `spec` resolves to."""
    from .device import resolve_device

    if spec.strip().lower() == "auto" and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    return [resolve_device(spec)]


def check_device_spec(spec: str) -> str:
    """Syntax check of a device spec that workers resolve on their own machine (Ray)."""
    text = spec.strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        from .device import DEVICE_HELP
        raise UserError(f"--device {spec!r} is not a device; use {DEVICE_HELP}")
    return text


# ---------------------------------------------------------------------- manifest
def read_manifest(batch_folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The manifest's lines as dicts ([] when there is none yet); UserError when damaged."""
    path = Path(batch_folder) / MANIFEST
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("class_index"), int):
                raise ValueError("not a class record")
        except ValueError as e:
            raise UserError(f"{path} line {number} is damaged ({first_line(e)}); fix or delete "
                            f"the file (it is rebuilt from the run folders).") from None
        entries.append(entry)
    return entries


class Manifest:
    """The batch's manifest.jsonl: this batch's classes in order, then classes from earlier
    batches into the same folder. Every update rewrites the whole file atomically."""

    def __init__(self, batch_folder: Path, classes: Sequence[ImageNetClass], plan: JobPlan):
        self.path = batch_folder / MANIFEST
        old = {e["class_index"]: e for e in read_manifest(batch_folder)}
        self.order = [c.index for c in classes]
        self.entries: dict[int, dict[str, Any]] = {}
        for c in classes:
            entry = old.pop(c.index, None) or new_entry(c, plan, "pending")
            if entry.get("status") == "running":      # left by a batch that was killed
                entry = {**entry, "status": "pending"}
            self.entries[c.index] = entry
        self.entries.update(old)     # earlier classes, kept as they were

    def update(self, entry: dict[str, Any]) -> None:
        self.entries[entry["class_index"]] = entry
        self.write()

    def set_status(self, index: int, status: str) -> None:
        self.entries[index] = {**self.entries[index], "status": status, "updated": _now()}
        self.write()

    def write(self) -> None:
        lines = [json.dumps(finite_or_none(e), sort_keys=False, allow_nan=False) for e in self.entries.values()]
        write_text(self.path, "\n".join(lines) + "\n")

    def batch_entries(self) -> list[dict[str, Any]]:
        """This batch's entries, in the order given."""
        return [self.entries[i] for i in self.order]


def new_entry(cls: ImageNetClass, plan: JobPlan, status: str) -> dict[str, Any]:
    """A manifest line with every field of MANIFEST_FIELDS, nothing known yet."""
    folder = runs.run_dir_for(plan.out, plan.model, cls.index, cls.name)
    return {"class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid, "status": status,
            "run_folder": _rel(folder, plan.batch_folder), "step": None,
            "steps": plan.discover.steps, "final_penalty": None, "eval_penalty": None,
            "top_directions": None, "media": [], "seconds": None, "skipped": False,
            "error": None, "updated": _now()}


# ---------------------------------------------------------------------- one class
def _discover_complete(record: dict[str, Any], config: DiscoverConfig) -> bool:
    """run.json says finished at exactly config.steps with the same (non-resumable) settings."""
    if record.get("status") != "finished" or record.get("step") != config.steps:
        return False
    old, new = record.get("config") or {}, config.to_json()
    return all(old.get(k) == v for k, v in new.items() if k not in RESUMABLE_CHANGES)


def _render_plan(plan: JobPlan, folder: Path):
    """(RenderSource, [(RenderConfig, target paths)]) of a class's render step."""
    from .render import open_render_source, render_paths
    from .runs import open_run

    n = open_run(folder).directions.shape[0]
    k = min(plan.top, n)
    if (folder / runs.SCORES_JSON).is_file():
        source = open_render_source(folder, top=k)
    else:
        source = open_render_source(folder, dirs=f"0-{k - 1}")
    video = dataclasses.replace(plan.render.video, path_size=source.path_size, strip=False)
    configs = [video] + ([dataclasses.replace(video, strip=True)] if plan.render.strip else [])
    return source, [(c, render_paths(source.out_dir, c, source.indices, plan.render.seeds, source.tag))
                    for c in configs]


def _fill_from_files(entry: dict[str, Any], plan: JobPlan, folder: Path,
                     media: Sequence[Path] | None) -> None:
    """Step and penalties from run.json, top directions from scores.json, media paths."""
    record = read_json(folder / runs.RUN_RECORD)
    entry.update(step=record.get("step"), final_penalty=record.get("final_penalty"),
                 eval_penalty=record.get("eval_penalty"))
    scores = read_json(folder / runs.SCORES_JSON)
    ranking = scores.get("ranking")
    entry["top_directions"] = list(ranking[:plan.top]) if isinstance(ranking, list) else None
    if media is not None:
        entry["media"] = [_rel(p, plan.batch_folder) for p in media if p.is_file()]


def completed_entry(plan: JobPlan, cls: ImageNetClass, prior: dict[str, Any] | None) -> dict | None:
    """A 'finished, skipped' manifest line when the class needs no work (discovery finished with
    these settings, scores and videos present as asked), else None. Touches no file."""
    if plan.overwrite:
        return None
    folder = runs.run_dir_for(plan.out, plan.model, cls.index, cls.name)
    if not _discover_complete(read_json(folder / runs.RUN_RECORD), plan.discover):
        return None
    if plan.score is not None and not (folder / runs.SCORES_JSON).is_file():
        return None
    media: list[Path] | None = None
    if plan.render is not None:
        try:
            _, targets = _render_plan(plan, folder)
        except UserError:
            return None                     # the job reports it
        media = [p for _, paths in targets for p in paths]
        if not all(p.is_file() for p in media):
            return None
    entry = new_entry(cls, plan, "finished")
    _fill_from_files(entry, plan, folder, media)
    entry.update(skipped=True, seconds=(prior or {}).get("seconds"))
    return entry


def run_class_job(plan: JobPlan, cls: ImageNetClass, load: Callable[[], tuple[Any, torch.device]],
                  metrics: dict | None = None, describe: str | None = None) -> dict[str, Any]:
    """Discover (+ score, render) one class into its run folder; return its manifest line.

    load() -> (BigGAN network, device) is called only when some step needs the model (it may
    load it, or return one already loaded). Never raises for a class's own failure: a UserError
    or unexpected error becomes status 'failed' (the traceback of an unexpected one goes to
    <batch>/errors/), Ctrl-C becomes status 'interrupted' after run_discover checkpointed.
    """
    start = time.perf_counter()
    folder = runs.run_dir_for(plan.out, plan.model, cls.index, cls.name)
    entry = new_entry(cls, plan, "running")
    media: list[Path] | None = None
    try:
        trained = _discover_step(plan, cls, folder, load, describe)
        force = plan.overwrite or trained        # the directions changed: redo what derives from them
        if plan.score is not None:
            _score_step(plan, folder, load, metrics if metrics is not None else {}, force)
        if plan.render is not None:
            media = _render_step(plan, folder, load, force)
        entry["status"] = "finished"
    except DiscoveryInterrupted as e:
        entry.update(status="interrupted", error=f"interrupted at step {e.step} (checkpoint "
                                                 f"saved); run the same command again to resume")
    except KeyboardInterrupt:
        entry.update(status="interrupted", error="interrupted; run the same command again to resume")
    except UserError as e:
        entry.update(status="failed", error=str(e))
    except Exception as e:  # noqa: BLE001 - one class's bug must not stop the others
        log = Path(plan.batch_folder) / ERRORS_DIR / f"{cls.index}-{cls.slug}.txt"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            write_text(log, traceback.format_exc())
            where = f" (traceback in {_rel(log, plan.batch_folder)})"
        except OSError:
            where = ""
        entry.update(status="failed", error=f"{type(e).__name__}: {first_line(e)}{where}")
    try:
        _fill_from_files(entry, plan, folder, media)
    except (OSError, ValueError):
        pass
    entry.update(seconds=round(time.perf_counter() - start, 3), updated=_now())
    return entry


def _discover_step(plan: JobPlan, cls: ImageNetClass, folder: Path, load, describe) -> bool:
    """Run (or resume) discovery unless finished; True when it trained."""
    from .generator import BigGANGenerator

    config = plan.discover
    if not plan.overwrite:
        if _discover_complete(read_json(folder / runs.RUN_RECORD), config):
            return False
        if (folder / runs.DIRECTIONS_FILE).exists() and not (folder / runs.CHECKPOINT).exists():
            raise UserError(f"{folder} holds directions but no {runs.CHECKPOINT} to resume from; "
                            f"move it away, or pass --overwrite to start this class again.")
    net, device = load()
    G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
    meta = {"model": plan.model, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid}
    result = run_discover(G, config, folder, meta=meta, device=device, resume=not plan.overwrite,
                          overwrite=plan.overwrite, progress=plan.progress,
                          describe=(describe or f"{cls.index} {cls.name}")[:30])
    return result.status != "already finished"


def _score_step(plan: JobPlan, folder: Path, load, metrics: dict, force: bool) -> None:
    """What `score RUN` does (score.run_score), with the already loaded model and LPIPS."""
    from .runs import open_run
    from .score import load_lpips, run_score, scores_paths

    config = plan.score
    json_path, _ = scores_paths(open_run(folder))
    if json_path.is_file() and not force:
        return
    net, device = load()
    key = (config.net, config.random_backbone, str(device))
    if key not in metrics:
        metrics[key] = load_lpips(config.net, device, random_backbone=config.random_backbone)
    run_score(folder, config, device=device, overwrite=force, progress=plan.progress, net=net,
              metric=metrics[key])


def _render_step(plan: JobPlan, folder: Path, load, force: bool) -> list[Path]:
    """What `render RUN --top K` (or --dirs 0-K-1 unscored) and `--strip` write; returns the files."""
    from .generator import BigGANGenerator
    from .render import render_directions

    source, targets = _render_plan(plan, folder)
    G = None
    for config, paths in targets:
        if all(p.is_file() for p in paths) and not force:
            continue
        if G is None:
            net, device = load()
            G = BigGANGenerator(net, source.class_index, source.truncation)
        render_directions(G, source.directions, plan.render.seeds, source.out_dir, config,
                          indices=source.indices, tag=source.tag, device=device, overwrite=force,
                          progress=plan.progress, record=source.record())
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

    def count(self, status: str) -> int:
        return sum(e["status"] == status for e in self.entries)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "failed"]

    @property
    def interrupted(self) -> bool:
        return any(e["status"] == "interrupted" for e in self.entries)


def run_batch(model: str, classes: Sequence[ImageNetClass | str | int], config: DiscoverConfig,
              out: str | os.PathLike = "outputs", *, score: ScoreConfig | None = None,
              render: BatchRender | None = None, top: int = 8, backend: str = "local",
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
    Finished classes are skipped, unfinished ones resumed from their checkpoints. Returns the
    BatchResult (check .failed); raises BatchInterrupted on Ctrl-C after everything is written.
    """
    config.validate()
    classes = [c if isinstance(c, ImageNetClass) else resolve_class(c) for c in classes]
    if not classes:
        raise UserError("no classes given; pass e.g. --classes 0-9,207,church.")
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: use local or ray.")
    if top < 1:
        raise UserError(f"--top {top}: must be at least 1.")
    if not gpus_per_job >= 0:
        raise UserError(f"--gpus-per-job {gpus_per_job}: must be >= 0.")
    if render is not None:
        render.video.check()
        if not render.seeds:
            raise UserError("--render-seeds: empty selection; give seeds like 0-5.")
    if score is not None:
        from .score import walk_pairs
        walk_pairs(score.steps)
    if backend == "ray":
        check_device_spec(device)
        ray = import_ray()
    else:
        devs = [torch.device(d) for d in devices] if devices else local_devices(device)
        _preflight_local(score, render)
    folder = batch_dir_for(out, model, batch_name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    model_path = Path(model)
    plan = JobPlan(model=model, model_source=str(model_path.resolve()) if model_path.is_dir() else model,
                   out=str(Path(out).resolve()), batch_folder=str(folder), discover=config,
                   score=score, render=render, top=top,
                   weights_dir=str(Path(weights_dir).resolve()) if weights_dir is not None else None,
                   overwrite=overwrite, progress=progress)
    manifest = Manifest(folder, classes, plan)
    started = _now()
    _write_record(folder, plan, classes, backend, started, None, manifest)
    manifest.write()

    done = 0
    total = len(classes)

    def finish(entry: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        manifest.update(entry)
        if on_entry is not None:
            on_entry(entry, done, total)

    todo = []
    for c in classes:
        entry = completed_entry(plan, c, manifest.entries.get(c.index))
        if entry is None:
            todo.append(c)
        else:
            finish(entry)

    interrupted = False
    if todo:
        if backend == "ray":
            interrupted = _run_ray(ray, plan, todo, device, ray_address, ray_cpus, gpus_per_job,
                                   manifest, finish)
        else:
            if len(devs) == 1:
                interrupted = _run_sequential(plan, todo, devs[0], manifest, finish)
            else:
                interrupted = _run_pool(plan, todo, devs, manifest, finish)

    from .gallery import write_gallery

    gallery = write_gallery(folder, list(manifest.entries.values()))
    result = BatchResult(folder, manifest.path, gallery, manifest.batch_entries())
    _write_record(folder, plan, classes, backend, started, _now(), manifest)
    if interrupted:
        raise BatchInterrupted(result)
    return result


def _preflight_local(score: ScoreConfig | None, render: BatchRender | None) -> None:
    """What would make every class fail after its discovery, checked before the first one:
    the LPIPS backbone file (--score) and ffmpeg (MP4 videos). Ray workers check their own."""
    if render is not None and render.video.fmt == "mp4":
        from .render import ffmpeg_exe
        ffmpeg_exe()
    if score is not None and not score.random_backbone:
        from .score import ensure_backbone
        ensure_backbone(score.net)           # downloads it once, or says which file to put where


def _run_sequential(plan: JobPlan, todo: Sequence[ImageNetClass], device: torch.device,
                    manifest: Manifest, finish) -> bool:
    """Jobs one after another in this process, the model loaded once up front: a model that
    fails to load stops the batch (UserError), since every class would fail the same way."""
    from .weights import load_biggan

    net = load_biggan(plan.model_source, device=device, weights_dir=plan.weights_dir,
                      progress=plan.progress)

    def load():
        return net, device

    metrics: dict = {}
    for i, cls in enumerate(todo, start=1):
        manifest.set_status(cls.index, "running")
        try:
            entry = run_class_job(plan, cls, load, metrics, describe=f"{i}/{len(todo)} {cls.name}")
        except KeyboardInterrupt:  # e.g. between two classes' steps
            entry = {**manifest.entries[cls.index], "status": "interrupted", "updated": _now(),
                     "error": "interrupted; run the same command again to resume"}
        finish(entry)
        if entry["status"] == "interrupted":
            return True
    return False


# ---------------------------------------------------------------------- several devices, one process each
def _pool_worker(plan: JobPlan, worker: int, device: str, cpu_threads: int, tasks, results) -> None:
    """One worker process per device: take classes from `tasks` until None, post results.
    It leaves the terminal's process group so a Ctrl-C reaches it once, forwarded by the driver."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()
    _interrupt_when_parent_dies()
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    torch.set_num_threads(cpu_threads)
    loaded: list[Any] = []

    def load():
        if not loaded:
            from .weights import load_biggan
            loaded.append(load_biggan(plan.model_source, device=dev, weights_dir=plan.weights_dir,
                                      progress=False))
        return loaded[0], dev

    metrics: dict = {}
    try:
        while True:
            index = tasks.get()
            if index is None:
                break
            cls = resolve_class(index)
            results.put(("start", index))
            entry = run_class_job(plan, cls, load, metrics)
            results.put(("done", entry))
            if entry["status"] == "interrupted":
                break
    except KeyboardInterrupt:
        pass
    finally:
        results.put(("exit", worker))


def _interrupt_when_parent_dies() -> None:
    """Linux: a worker gets SIGINT (so it checkpoints and stops) if the driver dies without
    forwarding a Ctrl-C (killed, crashed). Elsewhere a no-op."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGINT))          # PR_SET_PDEATHSIG
    except (OSError, AttributeError, TypeError):
        pass


def _run_pool(plan: JobPlan, todo: Sequence[ImageNetClass], devices: Sequence[torch.device],
              manifest: Manifest, finish) -> bool:
    """One spawned worker process per device, fed from a queue; the manifest is written here."""
    import multiprocessing as mp
    import queue as queue_mod

    worker_plan = dataclasses.replace(plan, progress=False)
    ctx = mp.get_context("spawn")
    tasks, results = ctx.Queue(), ctx.Queue()
    tasks.cancel_join_thread()        # leftover tasks after Ctrl-C must not block our exit
    for cls in todo:
        tasks.put(cls.index)
    for _ in devices:
        tasks.put(None)
    threads = max(1, (os.cpu_count() or 1) // len(devices))     # the workers share the CPU
    procs = [ctx.Process(target=_pool_worker, args=(worker_plan, i, str(d), threads, tasks, results),
                         name=f"batch-worker-{i}-{d}") for i, d in enumerate(devices)]
    for p in procs:
        p.start()
    exited: set[int] = set()          # workers (by index) that are done
    interrupted = False
    remaining = {c.index for c in todo}

    def handle(kind, payload):
        nonlocal interrupted
        if kind == "start":
            manifest.set_status(payload, "running")
        elif kind == "done":
            remaining.discard(payload["class_index"])
            interrupted |= payload["status"] == "interrupted"
            finish(payload)
        elif kind == "exit":
            exited.add(payload)

    def drain(deadline: float | None) -> None:
        while len(exited) < len(procs):
            try:
                handle(*results.get(timeout=0.5))
                continue
            except queue_mod.Empty:
                pass
            dead = [i for i, p in enumerate(procs) if i not in exited and p.exitcode is not None]
            for i in dead:              # died without saying goodbye (crash, killed)
                exited.add(i)
            if deadline is not None and time.monotonic() > deadline:
                return

    try:
        drain(None)
    except KeyboardInterrupt:
        interrupted = True
        for p in procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        drain(time.monotonic() + INTERRUPT_WAIT_S)
    finally:
        for p in procs:
            p.join(timeout=5)
    for index in sorted(remaining):
        entry = manifest.entries[index]
        if entry["status"] == "running" or not interrupted:
            reason = ("interrupted; run the same command again to resume" if interrupted else
                      "its worker process died; see the output above, then run the same command again")
            finish({**entry, "status": "interrupted" if interrupted else "failed",
                    "error": reason, "updated": _now()})
    return interrupted


# ---------------------------------------------------------------------- Ray
def import_ray():
    """The ray module, or UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed; {RAY_HINT}") from None
    return ray


_WORKER_MODEL: dict[tuple, Any] = {}   # per Ray worker process: (model, weights, device) -> (net, device)
_WORKER_METRICS: dict[tuple, Any] = {}  # per Ray worker process: LPIPS networks


def ray_job(plan: JobPlan, index: int, device_spec: str) -> dict[str, Any]:
    """The Ray task: resolve the device here (Ray sets the visible GPUs), load the model from
    plan.model_source (cached in the worker process), run the class's job, return its line."""
    from .device import resolve_device

    cls = resolve_class(index)

    def load():
        key = (plan.model_source, plan.weights_dir, device_spec)
        if key not in _WORKER_MODEL:
            from .weights import load_biggan
            dev = resolve_device(device_spec)
            _WORKER_MODEL.clear()             # one model per worker process at a time
            _WORKER_MODEL[key] = (load_biggan(plan.model_source, device=dev,
                                              weights_dir=plan.weights_dir, progress=False), dev)
        return _WORKER_MODEL[key]

    return run_class_job(plan, cls, load, _WORKER_METRICS)


def _run_ray(ray, plan: JobPlan, todo: Sequence[ImageNetClass], device: str, address: str | None,
             cpus: int | None, gpus_per_job: float, manifest: Manifest, finish) -> bool:
    """One Ray task per class; results are written to the manifest as they come (ray.wait)."""
    own = not ray.is_initialized()
    if own:
        try:
            if address:
                ray.init(address=address, log_to_driver=plan.progress,
                         logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=plan.progress,
                         logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            raise UserError(f"cannot start or reach {where} ({first_line(e)}); check "
                            f"--ray-address (or `ray status`).") from None
    try:
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(ray_job).options(num_cpus=1, num_gpus=gpus_per_job if has_gpus else 0,
                                           max_retries=0)
        worker_plan = dataclasses.replace(plan, progress=False)
        pending = {task.remote(worker_plan, c.index, device): c for c in todo}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    finish(_ray_result(ray, ref, pending.pop(ref), plan)[0])
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)       # raises KeyboardInterrupt in a running task: it checkpoints
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=INTERRUPT_WAIT_S)
            for ref in ready:
                cls = pending.pop(ref)
                entry, cancelled = _ray_result(ray, ref, cls, plan)
                entry = _interrupted_from_files(plan, cls, manifest) if cancelled else entry
                if entry is not None:
                    finish(entry)
            for cls in pending.values():            # still running after the wait: say so
                entry = _interrupted_from_files(plan, cls, manifest, started=True)
                finish(entry)
            return True
        return False
    finally:
        if own:
            ray.shutdown()


def _ray_result(ray, ref, cls: ImageNetClass, plan: JobPlan) -> tuple[dict[str, Any], bool]:
    """(manifest line, cancelled): the task's own line, or a 'failed' one when it crashed."""
    try:
        return ray.get(ref), False
    except Exception as e:  # noqa: BLE001 - the worker died, was cancelled, or could not unpickle
        entry = {**new_entry(cls, plan, "failed"),
                 "error": f"Ray task failed: {type(e).__name__}: {first_line(e)}"}
        return entry, isinstance(e, ray.exceptions.TaskCancelledError)


def _interrupted_from_files(plan: JobPlan, cls: ImageNetClass, manifest: Manifest,
                            started: bool = False) -> dict[str, Any] | None:
    """The line of a class whose task was cancelled: 'interrupted' (with run.json's step) when
    it had started, None (the line stays as it was, e.g. pending) when it never ran."""
    folder = runs.run_dir_for(plan.out, plan.model, cls.index, cls.name)
    record = read_json(folder / runs.RUN_RECORD)
    if not started and record.get("status") not in ("running", "interrupted"):
        return None
    entry = {**manifest.entries[cls.index], "status": "interrupted", "updated": _now(),
             "error": "interrupted; run the same command again to resume"}
    _fill_from_files(entry, plan, folder, None)
    return entry


# ---------------------------------------------------------------------- printing and records
def format_summary(entries: Sequence[dict[str, Any]]) -> str:
    """A table of the batch: one row per class, then the counts per status."""
    lines = [f"{'index':>5}  {'class':<24} {'status':<11} {'step':>7} {'penalty':>10} "
             f"{'seconds':>8}  top directions / error"]
    for e in entries:
        penalty = "-" if e.get("final_penalty") is None else f"{e['final_penalty']:.4g}"
        seconds = "-" if e.get("seconds") is None else f"{e['seconds']:.1f}"
        step = "-" if e.get("step") is None else str(e["step"])
        status = e["status"] + ("*" if e.get("skipped") else "")
        tail = e.get("error") or (",".join(map(str, e["top_directions"]))
                                  if e.get("top_directions") else "")
        lines.append(f"{e['class_index']:>5}  {e['class_name'][:24]:<24} {status:<11} {step:>7} "
                     f"{penalty:>10} {seconds:>8}  {tail}")
    counts = {s: sum(e["status"] == s for e in entries) for s in STATUSES}
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    skipped = sum(bool(e.get("skipped")) for e in entries)
    lines.append(f"{len(entries)} classes: {text}" + (f" ({skipped} already complete, marked *)"
                                                     if skipped else ""))
    return "\n".join(lines)


def _write_record(folder: Path, plan: JobPlan, classes, backend: str, started: str,
                  finished: str | None, manifest: Manifest) -> None:
    entries = manifest.batch_entries()
    record = {"tool": "biggan-directions", "model": plan.model, "out": plan.out,
              "classes": [c.index for c in classes], "backend": backend,
              "discover": plan.discover.to_json(),
              "score": dataclasses.asdict(plan.score) if plan.score else None,
              "render": dataclasses.asdict(plan.render) if plan.render else None,
              "top": plan.top, "overwrite": plan.overwrite, "started": started,
              "finished": finished,
              "counts": {s: sum(e["status"] == s for e in entries) for s in STATUSES}}
    write_text(folder / BATCH_RECORD, json.dumps(finite_or_none(record), indent=2) + "\n")


# ---------------------------------------------------------------------- small helpers
def _rel(path: str | os.PathLike, base: str | os.PathLike) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(base).resolve())).as_posix()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


