"""Discovery runs on disk: one locked run folder per run, checkpointed and resumable."""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..foundation.errors import UserError, WriteError
from ..foundation.fileio import write_json
from ..core.evaluation import (STATISTIC as EVAL_STATISTIC, TRAIN_IMAGE_COST, trimmed_mean,
                               trimmed_mean_se, versus_random)
from ..methods.fixed_eval import eval_size
from ..methods.config import RESUMABLE_CHANGES, DiscoverConfig
from ..methods.hessian import (Discovery, DiscoveryDiverged, DiscoveryInterrupted, _progress,
                               patience_spread)
from ..runtime.flops import throughput
from ..runtime.signals import stop_flag
from . import files, layout
from .files import RunResult, prepare_run_folder
from .method_run import run_method
from .class_sets import check_same_classes as pooled_check_same_classes
from .record import directions_meta, run_record
from .curves import CURVE_FILE, write_curve
from .plan import ESTIMATE_AFTER_SECONDS, ESTIMATE_AFTER_STEPS, estimate_line

# What a resumed run reads back from its run.json rather than recomputing: its start, the
# references and costs measured once, the start's evaluation and its spread, the evaluation
# seconds so far, the size the evaluation began with. The rest of run.json is written anew.
CARRIED = ("started", "resumed_at_steps", "init", "reference_eval", "reference_test",
           "flops_per_step", "eval_standard_error", "eval_rounding_floor", "eval_seconds",
           "eval_penalty", "last_eval_penalty", "eval_per_direction")
REFERENCES_DIR = ".references"     # beside the run folders: references shared by runs
# The settings that decide a draw set's references (with the model, class, size and statistic).
REFERENCE_FIELDS = ("truncation", "path_size", "epsilon", "reduction", "subspace", "layers",
                    "eval_k", "eval_references", "seed", "sefa_layers")


def run_discover(G: Callable, config: DiscoverConfig, folder: str | os.PathLike, *,
                 meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                 resume: bool = False, overwrite: bool = False, progress: bool = True,
                 describe: str = "discover",
                 notify: Callable[[str], None] | None = None,
                 on_event: OnEvent | None = None, classes: Any = None) -> RunResult:
    """Discovery with files: run.json, log.csv, checkpoints every N steps and on Ctrl-C or
    SIGTERM, the directions file (also refreshed at each checkpoint), resume from the last
    checkpoint (resume=True with no run there starts one).

    meta: what the directions file and run.json record about the generator (model, class_index,
    class_name, wnid, ...). The folder is locked while the run works in it (a second process
    gets a UserError naming the holder; a stale lock is replaced and `notify` is told, default:
    a line on stderr). Settings, the folder's writability and its records are checked before
    anything is created. Raises DiscoveryInterrupted after saving on Ctrl-C or SIGTERM, and
    DiscoveryDiverged (a UserError) on a NaN penalty, keeping the last good checkpoint.
    on_event(kind, **fields): told what the run does (start, each log row, checkpoints, the end,
    close; a SeFa or GANSpace run: method), e.g. tracking.TrainingTracker, which logs it.

    A pooled run (one matrix over a set of classes: G conditional, a list of single-class
    generators, or a BigGANGenerator of several classes; `classes` picks the set, see
    methods.hessian.Discovery) records its set in meta["classes"]; resuming it over another
    set is refused, naming both, before anything is touched.
    """
    folder = Path(folder)
    if config.method != "hessian":                         # SeFa, GANSpace: no training
        if classes is not None or isinstance(G, (list, tuple)):
            raise UserError(f"a pooled run learns with the Hessian Penalty; --method "
                            f"{config.method} finds directions per class (drop the pooling).")
        result = run_method(G, config, folder, meta=meta, device=device, resume=resume,
                            overwrite=overwrite, progress=progress, notify=notify)
        if on_event is not None and result.run is not None:
            on_event("method", folder=folder, config=config, meta=dict(meta or {}),
                     record=result.run.record)
        return result
    run = Discovery(G, config, device, classes)          # checks config against G.z_dim
    if run.classes is not None:
        meta = {**(meta or {}), "classes": list(run.classes)}
    if resume:
        pooled_check_same_classes(folder, run.classes)
    with files.locked_run_folder(folder, notify):
        prepare_run_folder(folder, resume, overwrite)
        if resume:
            files.check_same_model(folder, dict(meta or {}), notify)
        try:
            return _train(run, config, folder, dict(meta or {}), resume, progress, describe,
                          notify or files.to_stderr, on_event)
        except WriteError as e:                         # disk full: say what is kept, mark it
            raise files.stopped_by_write_error(folder, e, run.step) from None


def _train(run: Discovery, config: DiscoverConfig, folder: Path, meta: dict[str, Any],
           resume: bool, progress: bool, describe: str,
           notify: Callable[[str], None] = files.to_stderr,
           emit: OnEvent | None = None) -> RunResult:
    """The loop of run_discover, in a locked, checked folder: set-up, references, the start's
    evaluation, the steps (evaluating, keeping the best, checkpointing), the test-set report."""
    emit = emit or _no_events
    ckpt_path, record_path, log_path = (folder / layout.CHECKPOINT, folder / layout.RUN_RECORD,
                                        folder / layout.STEP_LOG)
    old = files.read_record(record_path) if resume else {}
    state = None
    if resume and ckpt_path.exists():
        state = files.load_checkpoint(ckpt_path)
        _check_resumable(ckpt_path, state, config)
        run.load_state_dict(state)
        stopped = old.get("stop_reason") == "patience" and config.patience is not None
        if old.get("status") == "finished" and (run.step >= config.steps or stopped):
            return RunResult(folder, "already finished", run.step, old.get("final_penalty"),
                             old.get("eval_penalty"), old.get("versus_random"))
    # A resumed run starts its record from what it reads back (never a key someone else put in
    # run.json); everything else it writes anew. Without a checkpoint, nothing is carried.
    record = {k: old[k] for k in CARRIED if k in old} if state is not None else {}
    log_state = json.loads(state["log"]) if state is not None and "log" in state else None
    files.truncate_log(log_path, run.step if state is not None else None,
                       last_row=log_state["row"] if log_state else None)
    if resume and record.get("eval_per_direction") not in (None, run.eval_per_direction):
        run.eval_per_direction = int(record["eval_per_direction"])  # the size the run began with
    planned = (old.get("config") or {}).get("steps")          # the plan the run had
    if resume and isinstance(planned, int) and planned != config.steps:
        notify(f"{folder}: {kept_eval_note(run, config, planned)}")

    record.update({
        **run_record(config, meta, run.device, status="running",
                     started=record.get("started") or files.now()),
        "resumed_at_steps": record.get("resumed_at_steps", []),
    })
    if run.step > 0:
        record["resumed_at_steps"].append(run.step)
    recent = log_state["recent"] if log_state else files.recent_penalties(log_path)
    log = files.StepLog(log_path)
    emit("start", folder=folder, step=run.step, config=config, meta=meta, G=run.G,
         device=run.device)
    start = run.directions()                               # the start, or the resumed matrix

    def checkpoint(status: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """Write the checkpoint, directions and run.json; returns the kept matrix and the
        metadata written with it."""
        state = run.state_dict()        # with what the log's last row and run.json need
        state["log"] = json.dumps({"row": log.last_row, "recent": recent})
        files.save_checkpoint(ckpt_path, state)
        emit("checkpoint", step=run.step)
        kept, other, other_name = _kept(run, config)
        settings = directions_meta(config, meta, step=run.step, steps=config.steps, init=run.init)
        files.save_run_directions(folder / layout.DIRECTIONS_FILE, kept, settings)
        if other is not None:
            files.save_run_directions(folder / other_name, other, settings)
        record.update(status=status, step=run.step, seconds=round(run.elapsed, 3),
                      final_penalty=_mean(recent), eval_penalty=run.best["value"]
                      if config.keep == "best" and run.best["step"] is not None else eval_value,
                      best_step=run.best["step"], best_eval_penalty=_finite(run.best["value"]),
                      last_eval_penalty=eval_value,
                      **throughput(run.step, run.elapsed, run.images_per_step,
                                   record.get("flops_per_step")),
                      **run.compile_report, updated=files.now())
        spent = record.get("eval_seconds") or 0.0       # references + evaluations
        record.update(eval_seconds=round(spent, 3),
                      eval_share=round(spent / (spent + run.elapsed), 4) if spent else None)
        if record.get("eval_penalty") is not None:
            record["versus_random"] = versus_random(
                record["eval_penalty"], record["reference_eval"],
                noise=record.get("eval_standard_error"), per_direction=run.eval_per_direction)
        write_json(record_path, record)
        return kept, settings

    eval_value = record.get("last_eval_penalty", record.get("eval_penalty"))
    timing: dict[str, float] = {}                         # seconds of this process's evaluations
    first = {"step": run.step, "elapsed": run.elapsed, "told": False}   # for the estimate
    try:
        with stop_flag() as stop, _progress(config.steps, run.step, progress, describe) as bar:
            def timed_eval(what: str, compute: Callable[[Callable[[int], None]], Any],
                           samples: int, interruptible: bool = True) -> Any:
                """One evaluation (or set of them), with a bar over its samples from its first
                chunk, its seconds added to eval_seconds. Ctrl-C/SIGTERM stop an interruptible
                one at a chunk (set-up: nothing is lost); a step's evaluation is part of the
                step in flight, which is finished so that resume continues exactly."""
                t0 = time.perf_counter()
                with _progress(samples, 0, progress, f"eval: {what}", unit="sample",
                               leave=False) as ebar:
                    def on_chunk(n: int) -> None:
                        ebar.update(n)
                        if interruptible and stop.is_set():
                            raise _Stopped
                    value = compute(on_chunk)
                timing[what] = time.perf_counter() - t0
                record["eval_seconds"] = (record.get("eval_seconds") or 0.0) + timing[what]
                return value

            bar.set_postfix_str("set-up", refresh=True)
            record.update(run.setup())                  # precision (auto: checked), compile
            record["init"] = record.get("init") or run.init   # the start step 0 took
            record.update(lr=run.lr, parametrization=run.parametrization,  # given, or the
                          schedule=run.schedule, k=run.k)             # start's defaults
            samples = run.draws.samples
            record.update(eval_per_direction=run.eval_per_direction, eval_samples=samples,
                          eval_size_asked=config.eval_per_direction)
            for key, draws, full in (("reference_eval", run.draws, True),
                                     ("reference_test", run.test_draws, False)):
                name = "validation" if full else "test"
                n_refs = (config.eval_references + 1 + full) * samples   # random, SeFa, identity
                ref = record.get(key) or {}
                if ref.get("statistic") != EVAL_STATISTIC or ref.get("samples") != samples:
                    record[key] = cached_references(
                        folder, meta, config, run, name,
                        lambda: timed_eval(f"{name} references", lambda cb, d=draws, f=full:
                                           run.reference_values(d, cb, f), n_refs))
            if "flops_per_step" not in record:
                record["flops_per_step"] = run.step_flops()
            if run.best["step"] is None:                # the start is a candidate too (step 0)
                values = timed_eval("start", lambda cb: run.evaluate(draws=run.draws, on_chunk=cb,
                                                                     per_sample=True), samples)
                eval_value = trimmed_mean(values)
                record["eval_standard_error"] = trimmed_mean_se(values)
                record["eval_rounding_floor"] = run.evaluation.rounding_floor(eval_value)
                run.observe(eval_value, 0.0)
                log.append(0, None, eval_value, 0.0)
                emit("row", **_row(run, record, None, eval_value))
            if "eval_rounding_floor" not in record:     # a run recorded before the floor
                record["eval_rounding_floor"] = run.evaluation.rounding_floor(run.best["value"])
            spread = patience_spread(record.get("eval_standard_error"),
                                     record["eval_rounding_floor"])
            checkpoint("running")
            _draw_curve(folder, record, run.best)
            bar.set_postfix_str("", refresh=False)
            while run.step < config.steps:
                t0 = time.perf_counter()
                try:
                    value = run.train_step()
                except DiscoveryDiverged as e:
                    record.update(status="failed", error=str(e), updated=files.now())
                    write_json(record_path, record)
                    kept = (f"the last good checkpoint (step {files.checkpoint_step(ckpt_path)})"
                            f" is kept" if ckpt_path.exists() else "no checkpoint was written yet")
                    raise DiscoveryDiverged(f"{e}; {kept} in {folder}. Lower --lr or raise "
                                            f"--epsilon, then --overwrite (or --resume).") from None
                run.elapsed += time.perf_counter() - t0
                recent = (recent + [value])[-files.RECENT:]
                row_eval = None
                if run.step % config.eval_every == 0 or run.step == config.steps:
                    eval_value = row_eval = timed_eval(
                        f"step {run.step}", lambda cb: run.evaluate(on_chunk=cb), samples,
                        interruptible=False)
                    run.observe(eval_value, spread)
                log.append(run.step, value, row_eval, run.elapsed)
                emit("row", **_row(run, record, value, row_eval))
                if row_eval is not None:                    # at each evaluation and the end
                    _draw_curve(folder, record, run.best)      # the best as of this evaluation
                bar.update(1)
                bar.set_postfix(penalty=f"{_mean(recent):.4g}", refresh=False)
                if not first["told"] and progress:         # not with -q
                    first["told"] = _tell_estimate(run, config, first, timing, notify)
                if config.patience is not None and run.stale >= config.patience:
                    record["stop_reason"] = "patience"
                    break
                if run.step % config.checkpoint_every == 0 and run.step < config.steps:
                    checkpoint("running")
                if stop.is_set() and run.step < config.steps:
                    checkpoint("interrupted")
                    raise DiscoveryInterrupted(run.step)
            record.setdefault("stop_reason", "steps")
            kept, _, _ = _kept(run, config)
            values = timed_eval("test", lambda cb: run.evaluate(kept, run.test_draws, cb,
                                                                per_sample=True), samples)
            test, test_se = trimmed_mean(values), trimmed_mean_se(values)
            record["test_eval"] = {"matrix": config.keep, "step": run.best["step"]
                                   if config.keep == "best" else run.step, "value": test,
                                   "standard_error": test_se,
                                   "versus_random": versus_random(
                                       test, record["reference_test"], noise=test_se,
                                       per_direction=run.eval_per_direction),
                                   "sefa": record["reference_test"].get("sefa")}
            record["finished"] = files.now()
            kept, settings = checkpoint("finished")
            emit("end", record=record)
    except _Stopped:
        checkpoint("interrupted")
        raise DiscoveryInterrupted(run.step) from None
    finally:
        log.close()
        emit("close")
    return RunResult(folder, "finished", run.step, _mean(recent), record.get("eval_penalty"),
                     record.get("versus_random"),
                     {k: record.get(k) for k in ("steps_per_second", "images_per_second", "tflops")},
                     run=files.written_run(folder, kept, settings, record))


def _tell_estimate(run: Discovery, config: DiscoverConfig, first: dict[str, Any],
                   timing: dict[str, float], notify: Callable[[str], None]) -> bool:
    """After the first measured steps of this process (plan.ESTIMATE_AFTER_*), one line with
    the time the rest of the run takes (plan.estimate_line); returns whether it was said (or
    nothing is left to say it of)."""
    done, seconds = run.step - first["step"], run.elapsed - first["elapsed"]
    if run.step >= config.steps:
        return True
    if done < ESTIMATE_AFTER_STEPS and seconds < ESTIMATE_AFTER_SECONDS:
        return False
    evaluations = 1 + sum(1 for s in range(run.step + 1, config.steps + 1)   # + the test set
                          if s % config.eval_every == 0 or s == config.steps)
    measured = timing.get("start", next(iter(timing.values()), None))
    notify(estimate_line(done, seconds, config.steps - run.step, evaluations, measured,
                         run.device, config))
    return True


def kept_eval_note(run: Discovery, config: DiscoverConfig, planned: int) -> str:
    """One line on a resume that changes the plan (`planned` steps -> config.steps): the fixed
    evaluation keeps the size the run began with (so its curve stays comparable), and what its
    remaining evaluations will cost against the remaining training, in generator images (a
    training image counted as TRAIN_IMAGE_COST forward ones, as the auto size counts them)."""
    left = max(0, config.steps - run.step)
    evaluations = 1 + sum(1 for s in range(run.step + 1, config.steps + 1)   # + the test set
                          if s % config.eval_every == 0 or s == config.steps)
    samples = run.ndirs * run.eval_per_direction
    eval_images = evaluations * samples * (1 + 2 * config.eval_k)
    train_images = left * run.images_per_step * TRAIN_IMAGE_COST
    share = eval_images / (eval_images + train_images) if eval_images + train_images else 0.0
    auto = eval_size(config, run.ndirs)
    sized = ("" if config.eval_per_direction != "auto" or auto == run.eval_per_direction else
             f"; a new run of {config.steps:,} steps would get {auto} per direction")
    return (f"the plan changes from {planned:,} to {config.steps:,} steps; the fixed evaluation "
            f"keeps the size the run began with ({run.eval_per_direction} latents per direction, "
            f"{samples:,} samples) so its curve stays comparable, and its {evaluations} remaining "
            f"evaluations will be about {share:.0%} of the remaining work{sized}.")


OnEvent = Callable[..., None]      # on_event(kind, **fields): see run_discover


def _no_events(kind: str, **fields: Any) -> None:
    """The on_event of a run that nobody watches."""


def _row(run: Discovery, record: dict[str, Any], penalty: float | None,
         eval_penalty: float | None) -> dict[str, Any]:
    """A log.csv row as on_event's `row` fields: the row's numbers, the best evaluation so far,
    the step's learning rate, images/s of the steps so far, the evaluations' share of the time,
    and the current matrix (a callable: only an evaluation's picture needs it)."""
    spent = record.get("eval_seconds") or 0.0
    return {"step": run.step, "penalty": penalty, "eval_penalty": eval_penalty,
            "best": _finite(run.best["value"]),
            "lr": run.learning_rate(run.step - 1) if run.step > 0 else None,
            "images_per_second": run.images_per_step * run.step / run.elapsed
            if run.elapsed > 0 else None,
            "eval_share": spent / (spent + run.elapsed) if spent + run.elapsed > 0 else None,
            "directions": run.directions}


class _Stopped(Exception):
    """Ctrl-C or SIGTERM during an evaluation: stop there, keep what the run has."""


def _kept(run: Discovery, config: DiscoverConfig) -> tuple[torch.Tensor, torch.Tensor | None, str]:
    """(the matrix the run hands back, the other one or None, the other one's file name)."""
    last, best = run.directions(), run.best["q"]
    if best is None:
        return last, None, layout.LAST_FILE
    if config.keep == "best":
        return best, last, layout.LAST_FILE
    return last, best, layout.BEST_FILE


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def cached_references(folder: Path, meta: dict[str, Any], config: DiscoverConfig, run: Discovery,
                      name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The references of a draw set (`name`: validation or test), computed once per model,
    class and evaluation settings: read from <folder's parent>/.references/<key>.json when a
    run with the same ones computed them, else computed and stored there (a cache that cannot
    be written costs nothing). Runs without a model in `meta` (any generator) are not cached."""
    key = None
    if meta.get("model") is not None:
        fields = {"meta": meta, "set": name, "statistic": EVAL_STATISTIC,
                  "eval_per_direction": run.eval_per_direction, "ndirs": run.ndirs,
                  "z_dim": run.z_dim, **{k: config.to_json()[k] for k in REFERENCE_FIELDS}}
        key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]
        path = folder.parent / REFERENCES_DIR / f"{key}.json"
        try:
            cached = json.loads(path.read_text())
            if cached.get("statistic") == EVAL_STATISTIC:
                return {**cached, "cached": str(path)}
        except (OSError, ValueError, AttributeError):
            pass
    ref = {**compute(), "samples": run.draws.samples}
    if key is not None:
        try:
            write_json(path, ref)
        except (OSError, UserError):
            pass
    return ref


def _draw_curve(folder: Path, record: dict[str, Any], best: dict[str, Any]) -> None:
    """Refresh curve.png from log.csv, marking `best` (the run's best so far, Discovery.best:
    not run.json's, which the next checkpoint updates); a picture that cannot be written costs
    a warning on stderr, never the run."""
    try:
        write_curve(folder / CURVE_FILE, folder / layout.STEP_LOG, record.get("reference_eval"),
                    best=(best["step"], _finite(best["value"])))
    except (OSError, ValueError, RuntimeError) as e:
        files.to_stderr(f"{folder / CURVE_FILE}: not refreshed ({e}).")


def _check_resumable(path: Path, state: dict[str, Any], config: DiscoverConfig) -> None:
    try:
        old = DiscoverConfig.from_json(json.loads(state["config"])).to_json()
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a checkpoint of this tool ({e}); use --overwrite to start again.") from None
    new = config.to_json()
    def shown(value: Any) -> str:                       # None: the setting's default
        return "default" if value is None else repr(value)
    changed = [f"{k}={shown(old.get(k))} (now {shown(new[k])})" for k in new    # a setting the
               if k not in RESUMABLE_CHANGES and config.reads(k)          # method does not read
               and old.get(k) != new[k]]                                  # changes nothing
    if changed:
        raise UserError(f"{path}: the run was started with " + ", ".join(changed)
                        + "; resume with the same settings or pass --overwrite.")
    if int(state["step"]) > config.steps:
        raise UserError(f"{path}: the run is already at step {state['step']}, past --steps "
                        f"{config.steps}; raise --steps to continue it.")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
