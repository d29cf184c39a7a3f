"""One class's job in a batch: its plan (JobPlan) and discover -> score -> render on one Run, as one manifest line.

The job does what the single commands do, into the class's run folder
<out>/<model>/<index>-<class-slug>/: discover (resumed from its checkpoint; skipped when run.json
says 'finished' at --steps or more with the same settings), score (scores.json, skipped when
present) and render of the --top K directions (a grid video and a PNG strip in RUN/videos/,
skipped when present). When discovery ran, scores and videos are redone, not kept stale.
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

from . import backends, runs
from .classes import ImageNetClass
from .discover_config import RESUMABLE_CHANGES, DiscoverConfig
from .discovery import DiscoveryInterrupted
from .errors import UserError, first_line
from .fileio import write_text
from .manifest import Manifest, new_entry, now, relative
from .render import RenderConfig
from .score import ScoreConfig
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


def lost_entry(plan: JobPlan, manifest: Manifest, cls: ImageNetClass, status: str, error: str,
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
