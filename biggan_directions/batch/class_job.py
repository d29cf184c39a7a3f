"""One class's job in a batch: its plan (JobPlan) and discover -> score -> render on one Run, as one manifest line.

The job does what the single commands do, for each method asked (`batch --methods`, in that
order), into that method's run folder: <out>/<model>/<index>-<class-slug>/ for hessian (as
before methods existed, so earlier batches stay valid), <out>/<model>/<method>/<index>-<class-slug>/
for sefa and ganspace. Per method: discover (resumed from its checkpoint; skipped when run.json
says 'finished' with the same settings, for hessian at --steps or more), score (scores.json, skipped when
present) and render of the --top K directions (a grid video and a PNG strip in RUN/videos/,
skipped when present). When discovery ran, scores and videos are redone, not kept stale.

What each step returns is carried forward, not read back from its files: discovery returns the
Run it wrote (RunResult.run), which holds the scores that score wrote (Run.scores), render
returns its files, and the job's ClassResult
(the manifest line and each method's scores) is what the manifest and the gallery card are made
from. Only a class resumed or skipped because finished reads what an earlier job left.
"""
from __future__ import annotations

import dataclasses
import re
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..core.evaluation import random_spreads
from ..describe.files import labels_index, try_run_labels
from ..describe.select import captions_for
from ..foundation.errors import UserError, first_line
from ..foundation.fileio import write_text
from ..media.render import RenderConfig, render_directions, render_paths
from ..methods.config import RESUMABLE_CHANGES, DiscoverConfig
from ..methods.hessian import DiscoveryInterrupted
from ..models.classes import ImageNetClass, class_meta
from ..models.generator import BigGANGenerator
from ..models.weights.load import weights_identity
from ..runs import layout
from ..runs.discover import run_discover
from ..runs.files import RunResult
from ..runs.scores_file import read_ranking, scores_net
from ..scoring.lpips_metric import load_lpips
from ..scoring.score import ScoreConfig
from ..scoring.score_run import run_score
from ..tracking.config import TrackingConfig
from ..tracking.training import TrainingTracker
from . import backends
from .pooled import view_folder
from .manifest import METHOD_FIELDS, Manifest, new_entry, now, relative
from .result import ClassResult
ERRORS_DIR = "errors"


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
    methods: tuple[str, ...] = ()   # the methods run per class, in order; (): discover.method
    tracking: TrackingConfig = TrackingConfig()   # TensorBoard events (and W&B) of each run
    pooled_folder: str | None = None   # batch --pooled: the pooled run; classes use its views

    @property
    def method_list(self) -> tuple[str, ...]:
        return self.methods or (self.discover.method,)

    @property
    def main_method(self) -> str:
        """The method a manifest line's top-level fields describe: hessian when asked, else the first."""
        return "hessian" if "hessian" in self.method_list else self.method_list[0]

    def config_for(self, method: str) -> DiscoverConfig:
        """The batch's settings for a run of `method`: the ones it does not read at their
        defaults (a sefa run of `--methods hessian,sefa --lr 0.01` records no lr)."""
        return self.discover.for_method(method)

    def run_folder(self, cls: ImageNetClass, method: str | None = None) -> Path:
        """hessian: <out>/<model>/<index>-<slug>/; others: <out>/<model>/<method>/<index>-<slug>/;
        a pooled batch: the class's view of the pooled run (batch.pooled)."""
        if self.pooled_folder is not None:
            return view_folder(self.pooled_folder, cls)
        return layout.run_dir_for(self.out, self.model, cls.index, cls.name, method or self.main_method)

    def new_entry(self, cls: ImageNetClass, status: str) -> dict[str, Any]:
        return new_entry(cls, self.run_folder(cls), self.batch_folder, self.discover.steps, status,
                         {m: self.run_folder(cls, m) for m in self.method_list})


# ---------------------------------------------------------------------- one class
def _existing_run(folder: Path) -> layout.Run | None:
    """The run in `folder`, or None when it holds no directions (yet)."""
    return layout.open_run(folder) if (folder / layout.DIRECTIONS_FILE).is_file() else None


def _discover_complete(run: layout.Run | None, config: DiscoverConfig) -> bool:
    """run.json says finished with the same (non-resumable) settings that config.method reads
    (a setting it lacks counts as its default); for hessian, at config.steps or more, finished
    or stopped there (interrupted, or a process that died after a checkpoint): a run with more
    steps than asked is kept, not cut, as `batch --help` says."""
    record = run.record if run is not None else {}
    step, status = record.get("step"), record.get("status")
    if config.method == "hessian":
        if not isinstance(step, int) or step < config.steps:
            return False
        if status != "finished" and (status not in ("interrupted", "running")
                                     or step == config.steps):
            return False
    elif status != "finished":
        return False
    return config.same_as_recorded(record.get("config") or {}, ignore=RESUMABLE_CHANGES)


def _render_targets(plan: JobPlan, run: layout.Run):
    """(settings, indices, [(RenderConfig, target paths)]) of a class's render step: what
    `render RUN --top K` (or the first K directions of an unscored run) and `--strip` write."""
    settings = layout.resolve_run_settings(run)
    k = min(plan.top, run.directions.shape[0])
    indices = read_ranking(run, k) if run.scored else list(range(k))
    video = dataclasses.replace(plan.render.video, path_size=settings.path_size, strip=False)
    configs = [video] + ([dataclasses.replace(video, strip=True)] if plan.render.strip else [])
    targets = [(c, render_paths(run.videos_dir, c, indices, plan.render.seeds)) for c in configs]
    return settings, indices, targets


def _fill_from_run(part: dict[str, Any], plan: JobPlan, run: layout.Run | None,
                   media: Sequence[Path] | None) -> None:
    """A method's part of a line (plus step, final_penalty): penalties from run.json, top
    directions from the scores (those the run holds, else its file), media paths."""
    record = run.record if run is not None else {}
    part.update(step=record.get("step"), final_penalty=record.get("final_penalty"),
                eval_penalty=record.get("eval_penalty"), versus_random=record.get("versus_random"),
                random_spreads=random_spreads(record.get("eval_penalty"),
                                              record.get("reference_eval")),
                top_directions=None)
    if run is not None and run.scored:
        try:
            part["top_directions"] = read_ranking(run)[:plan.top]
        except UserError:
            pass
        part["labels"] = labels_index(try_run_labels(run)) or None
    if media is not None:
        part["media"] = [relative(p, plan.batch_folder) for p in media if p.is_file()]


MAIN_FIELDS = ("run_folder", "step", "final_penalty", "eval_penalty", "top_directions", "media",
               "labels")
STATUS_ORDER = ("interrupted", "failed", "running", "pending")   # the first a method has wins


def _summarise(plan: JobPlan, entry: dict[str, Any], parts: dict[str, dict[str, Any]],
               status: bool = True) -> None:
    """Set the line's `methods` from each method's part, its top-level run fields from the main
    method's, and (with `status`) its status and error from all of them."""
    main = parts[plan.main_method]
    entry.update({k: main[k] for k in MAIN_FIELDS if k in main})
    entry["methods"] = {m: {k: p.get(k) for k in METHOD_FIELDS} for m, p in parts.items()}
    if status:
        states = [p["status"] for p in parts.values()]
        entry["status"] = next((s for s in STATUS_ORDER if s in states), "finished")
        errors = [(m, p["error"]) for m, p in parts.items() if p.get("error")]
        entry["error"] = (None if not errors else errors[0][1] if len(parts) == 1
                          else "; ".join(f"{m}: {e}" for m, e in errors))


def completed_entry(plan: JobPlan, cls: ImageNetClass,
                    prior: dict[str, Any] | None) -> ClassResult | None:
    """A 'finished, skipped' line when the class needs no work (discovery finished with these
    settings, scores and videos present as asked), else None. Writes no file (it reads the
    finished runs: that is resuming)."""
    if plan.overwrite:
        return None
    entry = plan.new_entry(cls, "finished")
    parts = entry["methods"]
    for method in plan.method_list:
        try:
            run = _existing_run(plan.run_folder(cls, method))
            if not _discover_complete(run, plan.config_for(method)):
                return None
            if plan.score is not None and scores_net(run) != plan.score.net:
                return None                 # not scored, or with another LPIPS net: rescore
            media: list[Path] | None = None
            if plan.render is not None:
                media = [p for _, paths in _render_targets(plan, run)[2] for p in paths]
                if not all(p.is_file() for p in media):
                    return None
        except UserError:
            return None                     # the job reports it
        _fill_from_run(parts[method], plan, run, media)
    _summarise(plan, entry, parts)
    entry.update(skipped=True, seconds=(prior or {}).get("seconds"))
    return ClassResult(entry, plan.main_method)


def run_class_job(plan: JobPlan, cls: ImageNetClass, load: Callable[[], tuple[Any, torch.device]],
                  metrics: dict | None = None, describe: str | None = None) -> ClassResult:
    """Discover (+ score, render) one class with each method into its run folder; return what
    the steps returned (ClassResult: its manifest line, its scores).

    load() -> (BigGAN network, device) is called only when some step needs the model (it may
    load it, or return one already loaded). Each run is opened once and handed to each step,
    which leaves its result on it (the scores) or returns it (the media).
    Never raises for a class's own failure: a UserError or unexpected error becomes that
    method's status 'failed' (the traceback of an unexpected one goes to <batch>/errors/) and
    the next method runs; Ctrl-C becomes status 'interrupted' after run_discover checkpointed,
    and the methods not started stay 'pending'.
    """
    start = time.perf_counter()
    entry = plan.new_entry(cls, "running")
    parts = entry["methods"]
    metrics = metrics if metrics is not None else {}
    several = len(plan.method_list) > 1
    result = ClassResult(entry, plan.main_method)
    for i, method in enumerate(plan.method_list):
        label = describe or f"{cls.index} {cls.name}"
        run = _method_job(plan, cls, method, parts[method], load, metrics,
                          f"{method} {label}" if several else label)
        if run is not None and run.scores is not None:
            result.scores[method] = run.scores
        if parts[method]["status"] == "interrupted":
            for rest in plan.method_list[i + 1:]:
                parts[rest]["status"] = "pending"
            break
    _summarise(plan, entry, parts)
    entry.update(seconds=round(time.perf_counter() - start, 3), updated=now())
    return result


def _method_job(plan: JobPlan, cls: ImageNetClass, method: str, part: dict[str, Any], load,
                metrics: dict, describe: str) -> layout.Run | None:
    """One method's discover (+ score, render) into its run folder; fills `part` and returns
    the run (holding its scores when scored), None when there is none."""
    folder = plan.run_folder(cls, method)
    config = plan.config_for(method)
    media: list[Path] | None = None
    run: layout.Run | None = None
    try:
        run = None if plan.overwrite else _existing_run(folder)
        if plan.overwrite or not _discover_complete(run, config):
            run = None
            result = _discover_step(plan, cls, config, folder, load, describe)
            run = result.run if result.run is not None else layout.open_run(folder)
            force = True                 # the directions changed: redo what derives from them
        else:
            force = False
        if plan.score is not None:
            _score_step(plan, run, load, metrics, force)
        if plan.render is not None:
            media = _render_step(plan, run, load, force)
        part["status"] = "finished"
    except DiscoveryInterrupted as e:
        part.update(status="interrupted", error=f"interrupted at step {e.step} (checkpoint "
                                                 f"saved); run the same command again to resume")
    except KeyboardInterrupt:
        part.update(status="interrupted", error=backends.INTERRUPTED)
    except UserError as e:
        part.update(status="failed", error=_per_class_remedy(str(e), folder))
    except Exception as e:  # noqa: BLE001 - one class's bug must not stop the others
        suffix = "" if method == "hessian" else f"-{method}"
        log = Path(plan.batch_folder) / ERRORS_DIR / f"{cls.index}-{cls.slug}{suffix}.txt"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            write_text(log, traceback.format_exc())
            where = f" (traceback in {relative(log, plan.batch_folder)})"
        except (OSError, UserError):
            where = ""
        part.update(status="failed", error=f"{type(e).__name__}: {first_line(e)}{where}")
    try:
        run = run if run is not None else _existing_run(folder)
        _fill_from_run(part, plan, run, media)
    except (OSError, ValueError, UserError):
        pass
    return run


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


def _discover_step(plan: JobPlan, cls: ImageNetClass, config: DiscoverConfig, folder: Path, load,
                   describe: str) -> RunResult:
    """Run (or resume) discovery of an unfinished class with config.method; the result carries
    the Run it wrote (None when the run was already finished: then it is read from files)."""
    if (config.method == "hessian" and not plan.overwrite
            and (folder / layout.DIRECTIONS_FILE).exists()
            and not (folder / layout.CHECKPOINT).exists()):
        raise UserError(f"{folder} holds directions but no {layout.CHECKPOINT} to resume from; "
                        f"move it away, or pass --overwrite to start again.")
    net, device = load()
    G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
    meta = {**class_meta(plan.model, cls),
            "model_weights": weights_identity(plan.model_source, plan.weights_dir)}
    tracker = TrainingTracker(plan.tracking) if plan.tracking.enabled else None
    return run_discover(G, config, folder, meta=meta, device=device, resume=not plan.overwrite,
                        overwrite=plan.overwrite, progress=plan.progress,
                        describe=describe[:30], on_event=tracker)


def _score_step(plan: JobPlan, run: layout.Run, load, metrics: dict, force: bool) -> None:
    """What `score RUN` does (score_run.run_score), with the already loaded model and LPIPS;
    the run then holds the scores written (run.scores). Scores made with another LPIPS net
    (an earlier `score --net squeeze`) are redone with the batch's, so the gallery's tables
    compare."""
    config = plan.score
    if not force and scores_net(run) == config.net:  # scores of another net are redone: one
        return                                      # batch never mixes LPIPS nets
    net, device = load()
    key = (config.net, str(device))
    if key not in metrics:
        metrics[key] = load_lpips(config.net, device)
    run_score(run, config, device=device, overwrite=True, progress=plan.progress, net=net,
              metric=metrics[key])


def _render_step(plan: JobPlan, run: layout.Run, load, force: bool) -> list[Path]:
    """What `render RUN --top K` (or the first K of an unscored run) and `--strip` write;
    returns the files."""
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
                          record=record, captions=captions_for(run, indices))
    return [p for _, paths in targets for p in paths]


def lost_entry(plan: JobPlan, manifest: Manifest, cls: ImageNetClass, status: str, error: str,
               started: bool) -> ClassResult | None:
    """The line of a class whose job ended without one (see backends.Events), from its files
    (what the lost job returned is gone). None when it may never have started (`started`
    False) and its run.json says so."""
    fresh, prior = plan.new_entry(cls, "pending"), manifest.entries[cls.index]
    parts, touched = {}, False
    for method in plan.method_list:
        part = {**fresh["methods"][method], **((prior.get("methods") or {}).get(method) or {})}
        try:
            run = _existing_run(plan.run_folder(cls, method))
        except UserError:
            run = None
        if run is not None and run.record.get("status") in ("running", "interrupted"):
            touched = True
            part.update(status=status, error=error)
        _fill_from_run(part, plan, run, None)
        parts[method] = part
    if not started and not touched:
        return None
    entry = {**fresh, **prior, "status": status, "error": error, "updated": now()}
    _summarise(plan, entry, parts, status=False)
    return ClassResult(entry, plan.main_method)
