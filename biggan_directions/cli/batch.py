"""`batch`: many classes, a manifest and a gallery."""
from __future__ import annotations

import sys
from typing import Any, Sequence

import click

from ..batch.backends import BACKENDS, DEFAULT_BACKEND, GPUS_PER_JOB
from ..batch.batch import BatchInterrupted, run_batch
from ..batch.class_job import BatchRender, JobPlan
from ..batch.manifest import STATUSES
from ..foundation.errors import UserError
from ..foundation.ranges import format_int_list
from ..foundation.settings import default_of
from ..methods.hessian import DiscoveryInterrupted
from ..media.render import FORMATS, MAX_SEEDS as RENDER_MAX_SEEDS, RenderConfig
from ..methods.config import METHODS, DiscoverConfig
from ..models.classes import count_classes
from ..models.classlists import parse_class_list, read_class_file
from ..runs.layout import DEFAULT_OUT
from ..runtime.device import set_threads
from ..runtime.signals import sigterm_as_interrupt
from ..scoring.lpips_metric import NETS
from ..scoring.score import MAX_SEEDS as SCORE_MAX_SEEDS, ScoreConfig
from ..tracking.config import TrackingConfig
from ..tracking.sinks import check_wandb
from .discover import discover_options, refuse_options_not_read, tracking_options
from .options import (CONTEXT_SETTINGS, IntList, config_from, given, model_option,
                      runtime_options, weights_dir_option)

SCORE_SEEDS = len(default_of(ScoreConfig, "seeds"))     # --score-seeds N: seeds 0..N-1 (as `score`)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--classes", "class_list", default=None, metavar="LIST",
              help="Comma-separated classes: indices, ranges LO-HI, WordNet ids or names, "
                   "e.g. 0-9,207,church.")
@click.option("--classes-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="A text file with one class (index, range, WordNet id or name) per line; "
                   "'#' starts a comment.")
@model_option
@click.option("--methods", "method_list", default=None, metavar="LIST",
              help="Comma-separated methods to run per class, each into its own run folder and "
                   "shown side by side in the gallery, e.g. hessian,sefa,ganspace  "
                   "[default: --method]")
@discover_options
@tracking_options
@click.option("--score", "do_score", is_flag=True,
              help="Score each class's directions with LPIPS (scores.json/.csv, as `score RUN`).")
@click.option("--score-seeds", type=click.IntRange(1, SCORE_MAX_SEEDS), default=SCORE_SEEDS,
              help="With --score: score on seeds 0..N-1.")
@click.option("--net", type=click.Choice(list(NETS)), default=default_of(ScoreConfig, "net"),
              help="With --score: LPIPS backbone (its ImageNet weights are downloaded once to "
                   "$TORCH_HOME/hub/checkpoints).")
@click.option("--render", "do_render", is_flag=True,
              help="Render each class's --top directions into RUN/videos/: a grid video (a row "
                   "per direction, a column per seed) and a PNG strip.")
@click.option("--top", type=click.IntRange(min=1), default=JobPlan.top,
              help="Directions per class to render and list in the manifest: the best by the "
                   "score ranking when scored, else 0..K-1.")
@click.option("--render-seeds", type=IntList(RENDER_MAX_SEEDS, "one frame column each"),
              default=format_int_list(BatchRender.seeds), metavar="LIST",
              help="With --render: samples, one column each.")
@click.option("--render-frames", type=click.IntRange(min=1),
              default=default_of(RenderConfig, "frames"),
              help="With --render: frames per video.")
@click.option("--render-format", type=click.Choice(list(FORMATS)),
              default=default_of(RenderConfig, "fmt"),
              help="With --render: video format (mp4: H.264, small, plays in browsers; gif: large).")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default=DEFAULT_BACKEND,
              help="local: jobs in this process, the model loaded once (one worker process per "
                   "GPU when --device auto sees several); ray: one Ray task per class.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --backend ray: the cluster to join (e.g. auto, or ray://head:10001)  "
                   "[default: start a local Ray]")
@click.option("--ray-cpus", type=click.IntRange(min=1), default=None,
              help="With --backend ray and no --ray-address: CPUs of the local Ray  "
                   "[default: all]")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=GPUS_PER_JOB,
              help="With --backend ray: GPUs each class's task asks for (0 is asked on a "
                   "cluster without GPUs).")
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_OUT,
              help="Runs go to OUT/<model>/<index>-<class>/, the batch record to "
                   "OUT/<model>/batch/.")
@click.option("--pooled", is_flag=True,
              help="Learn ONE matrix over all the classes (as discover --pooled), then score and "
                   "render each class with it, and add the transfer table to the gallery.")
@click.option("--batch-name", default=None, metavar="NAME",
              help="Keep this batch's manifest and gallery in OUT/<model>/batch-NAME/  "
                   "[default: OUT/<model>/batch/]")
@click.option("--overwrite", is_flag=True,
              help="Start every class again (its run files, scores and videos are replaced).")
@weights_dir_option
@runtime_options
@click.pass_context
def batch(ctx, class_list, classes_file, model, method_list, do_score, score_seeds, net, do_render, top,
          render_seeds, render_frames, render_format, backend, ray_address, ray_cpus, gpus_per_job,
          out, pooled, batch_name, overwrite, weights_dir, device, threads, quiet, **options):
    """Discover (and score, render) directions for many classes, with a manifest and a gallery.

    Each class is one job doing what `discover`, `score` and `render --top K` do, for each
    of --methods, into the same run folders: OUT/<model>/<index>-<class>/ for hessian,
    OUT/<model>/<method>/<index>-<class>/ for sefa and ganspace. OUT/<model>/batch/ holds
    manifest.jsonl (one JSON object per class: class_index, class_name, wnid, status,
    run_folder, step, steps, final_penalty, eval_penalty, top_directions, media, seconds,
    skipped, error, updated, describing the hessian run (else the first method's), and
    methods: {method: {status, run_folder, eval_penalty, random_spreads, versus_random,
    top_directions, media, error}}; rewritten atomically as each class ends), batch.json (the settings) and
    index.html (a gallery that opens from disk). Every run folder keeps TensorBoard events
    in its tb/ (--no-tensorboard: none), so `tensorboard --logdir OUT/<model>` shows the whole
    batch, each class and method a run; --wandb PROJECT logs them to W&B too. Running the
    same command again skips
    finished classes (also those with more steps than --steps) and resumes unfinished ones
    from their checkpoints. A failing class does not stop the others; the exit status is 1
    when any failed. Ctrl-C or SIGTERM checkpoints the running classes (exit 130). With
    --backend ray each task loads the model itself, so the model (or --weights-dir) and OUT
    must be at the same paths on every node. A discovery option is refused when none of the
    methods reads it; each method's run gets the options it reads (its run.json records them). --precision and --compile apply to the generator
    in every step (and to LPIPS in scoring); 'auto' decides per step as discover, score and
    render do.

    \b
    Examples:
      biggan-directions batch --classes 0-9,207,church --steps 20000
      biggan-directions batch --classes-file classes.txt --score --render --top 8
      biggan-directions batch --classes 200-299 --backend ray --ray-address auto
      biggan-directions batch --classes 207,497 --steps 2000 --batch-name quick --render
      biggan-directions batch --classes 207 --methods hessian,sefa,ganspace --score --render
      biggan-directions batch --classes 207,208,3 --pooled --score --render

    \b
    A --classes-file (one class per line):
      207            # golden retriever
      church
      n03028079
      0-9
    """
    if (class_list is None) == (classes_file is None):
        raise UserError("give the classes with --classes LIST or --classes-file FILE (one of them).")
    if backend == "local":
        ray_only = [o for o in ("ray_address", "ray_cpus", "gpus_per_job") if given(ctx, o)]
        if ray_only:
            raise UserError(f"--{ray_only[0].replace('_', '-')} needs --backend ray.")
    for flag, on, names in (("--score", do_score, ("score_seeds", "net")),
                            ("--render", do_render, ("render_seeds", "render_frames", "render_format"))):
        unused = [n for n in names if given(ctx, n)]
        if unused and not on:
            raise UserError(f"--{unused[0].replace('_', '-')} has no effect without {flag}; add {flag}.")
    methods = parse_methods(method_list) if method_list is not None else None
    if methods is not None and given(ctx, "method"):
        raise UserError("give --method or --methods, not both (--methods hessian,sefa runs both).")
    refuse_options_not_read(ctx, methods or (options.get("method") or DiscoverConfig.method,))
    classes = (parse_class_list(class_list) if class_list is not None
               else read_class_file(classes_file))
    config = config_from(DiscoverConfig, options)
    tracking = config_from(TrackingConfig, options).validate()
    check_wandb(tracking.wandb)                  # before anything loads
    for method in methods or (config.method,):   # each method's run gets the fields it reads
        config.for_method(method).validate()
    fast = dict(precision=config.precision, compile=config.compile)   # for every step
    score_config = render_config = None
    if do_score:
        score_config = ScoreConfig(seeds=tuple(range(score_seeds)), net=net, **fast)
    if do_render:
        if not render_seeds:
            raise UserError("--render-seeds: empty selection; give seeds like 0-5.")
        render_config = BatchRender(seeds=tuple(render_seeds),
                                    video=RenderConfig(frames=render_frames, fmt=render_format,
                                                       **fast))
    set_threads(threads)

    def report(entry, done, total):
        penalty = "" if entry.get("final_penalty") is None else f", penalty {entry['final_penalty']:.4g}"
        seconds = "" if entry.get("seconds") is None else f", {entry['seconds']:.1f} s"
        status = "already complete" if entry.get("skipped") else entry["status"]
        error = f": {entry['error']}" if entry.get("error") else ""
        parts = entry.get("methods") or {}
        if len(parts) > 1:       # each run's own draws: only its distance to its own random band
            penalty += (", vs random in random-spreads (each on its own draws; below 0 is "
                        "better): " + ", ".join(f"{m} {_spreads(p.get('random_spreads'))}"
                                                 for m, p in parts.items()))
        click.echo(f"[{done}/{total}] {entry['class_index']} {entry['class_name']}: "
                   f"{status}{penalty}{seconds}{error}")

    try:
        with sigterm_as_interrupt():
            result = run_batch(model, classes, config, out, score=score_config,
                               render=render_config, top=top, backend=backend, device=device,
                               ray_address=ray_address, ray_cpus=ray_cpus,
                               gpus_per_job=gpus_per_job, batch_name=batch_name,
                               weights_dir=weights_dir, overwrite=overwrite, progress=not quiet,
                               methods=methods, on_entry=report, tracking=tracking,
                               pooled=pooled)
    except DiscoveryInterrupted as e:            # the pooled discovery, before any class
        click.echo(f"Interrupted at step {e.step} of the pooled run; checkpoint saved. Run the "
                   f"same command again to resume.", err=True)
        sys.exit(130)
    except BatchInterrupted as e:
        click.echo(format_summary(e.result.entries))
        click.echo(f"Interrupted; checkpoints saved, manifest {e.result.manifest}. Run the same "
                   f"command again to resume.", err=True)
        sys.exit(130)
    click.echo(format_summary(result.entries))
    click.echo(f"manifest: {result.manifest}\ngallery:  {result.gallery}")
    if result.failed:
        raise UserError(f"{len(result.failed)} of {count_classes(len(result.entries))} failed "
                        f"(see {result.manifest}); fix the cause and run the same command again "
                        f"(finished classes are skipped). To start one class anew, delete its "
                        f"run folder; --overwrite restarts every class.")


def _spreads(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def parse_methods(text: str) -> tuple[str, ...]:
    """'hessian, sefa' -> ('hessian', 'sefa') (duplicates dropped); UserError naming a bad one."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"--methods: empty list; give methods like hessian,sefa "
                        f"(from {', '.join(METHODS)}).")
    for name in names:
        if name not in METHODS:
            raise UserError(f"--methods: unknown method '{name}'; choose from {', '.join(METHODS)}.")
    return tuple(dict.fromkeys(names))


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
    lines.append(f"{count_classes(len(entries))}: {text}"
                 + (f" ({skipped} already complete, marked *)" if skipped else ""))
    return "\n".join(lines)
