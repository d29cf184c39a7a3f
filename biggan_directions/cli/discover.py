"""`discover`: learn directions for one or more classes."""
from __future__ import annotations

import sys
from typing import Sequence

import click

from ..foundation.errors import UserError
from ..foundation.settings import cli_fields, methods_of, option_name
from ..methods.config import AUTO, AUTO_EVAL_SIZE, METHODS, DiscoverConfig
from ..methods.hessian import DiscoveryInterrupted
from ..models.classlists import expand_ranges, read_class_lines
from ..runs.class_runs import discover_classes
from ..runs.pooled import discover_pooled
from ..runs.layout import DEFAULT_OUT
from ..runtime.device import resolve_device, set_threads
from ..tracking.config import TrackingConfig
from .options import (CONTEXT_SETTINGS, OptionNotRead, config_from, given, model_option,
                      options_from, runtime_options, weights_dir_option)

discover_options = options_from(DiscoverConfig)
"""The options of one discovery run (one per DiscoverConfig field); shared by `discover` and `batch`."""
tracking_options = options_from(TrackingConfig)
"""What a Hessian Penalty run logs (TensorBoard, W&B); shared by `discover` and `batch`."""


def tracker_for(options: dict, notify):
    """The on_event sink of the runs (tracking.TrainingTracker), None when nothing is logged.
    A W&B project without the wandb package is refused here, before anything loads."""
    from ..tracking.training import TrainingTracker   # deferred: numpy, PIL, torch

    tracking = config_from(TrackingConfig, options).validate()
    return TrainingTracker(tracking, notify) if tracking.enabled else None


def discover_config(**params) -> DiscoverConfig:
    """DiscoverConfig from the parameters of `discover_options` (validated; unknown keys ignored)."""
    return config_from(DiscoverConfig, params).validate()


def refuse_options_not_read(ctx: click.Context, methods: Sequence[str]) -> None:
    """A usage error (one line, exit 2) for the first discovery option the user typed (command line or
    environment) that none of `methods` reads, before anything loads or a folder is made;
    options left at their defaults are fine. A hessian option that only sizes an 'auto' fixed
    evaluation of a sefa or ganspace run (AUTO_EVAL_SIZE) is refused too, pointing at
    --eval-per-direction, which sets that size itself."""
    methods = [m for m in methods if m in METHODS]       # an unknown one: validate says so
    if not methods:
        return
    one = len(methods) == 1
    chosen = f"--method {methods[0]}" if one else f"--methods {','.join(methods)}"
    auto_eval = (not given(ctx, "eval_per_direction")
                 or str(ctx.params.get("eval_per_direction")).strip().lower() == AUTO)
    for f in cli_fields(DiscoverConfig):
        owners = methods_of(f)
        if owners is None or any(m in owners for m in methods) or not given(ctx, f.name):
            continue
        head = f"{option_name(f)} is a setting of --method {' or '.join(owners)}; "
        if f.name in AUTO_EVAL_SIZE and auto_eval:
            raise OptionNotRead(head + f"{chosen} {'reads' if one else 'read'} it only to size "
                                          f"an auto fixed evaluation (drop it, or give that size "
                                          f"with --eval-per-direction N).")
        raise OptionNotRead(head + (f"{chosen} does not read it" if one else
                                       f"none of {chosen} reads it") + " (drop it).")


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--class", "-c", "classes", multiple=True, metavar="CLASS",
              help="ImageNet class: index (207), range of indices (200-209), WordNet id "
                   "(n02099601) or name; repeat for more.")
@click.option("--classes-file", type=click.Path(dir_okay=False), default=None,
              help="More classes, one per line (index, range, WordNet id or name; '#' comments).")
@click.option("--pooled", is_flag=True,
              help="Learn ONE matrix over all the classes given (each sample draws its class) "
                   "into OUT/<model>/pooled-<i>-<j>-.../, instead of one run per class.")
@model_option
@discover_options
@tracking_options
@click.option("--out", type=click.Path(file_okay=False), default=DEFAULT_OUT,
              help="Runs go to OUT/<model>/<index>-<class>/ (hessian) or "
                   "OUT/<model>/<method>/<index>-<class>/ (sefa, ganspace).")
@click.option("--resume", is_flag=True,
              help="Continue an existing run from its last checkpoint (refused when there is "
                   "none), to the steps it was planned with unless --steps is given (a finished "
                   "run is extended only by --steps N).")
@click.option("--overwrite", is_flag=True, help="Start an existing run again (its files are replaced).")
@weights_dir_option
@runtime_options
def discover(classes, classes_file, pooled, model, out, resume, overwrite, weights_dir, device,
             threads, quiet, **options):
    """Learn directions for one or more classes with the Hessian Penalty (or SeFa, GANSpace).

    Each step draws latents z, one direction j and a distance d ~ U[-P, P] per sample, and
    minimises the Hessian Penalty of G(z + w Q) with respect to w = d e_j, where Q is an
    orthonormal matrix of directions (the generator stays frozen). Writes, per class:
    directions.safetensors, run.json, log.csv and checkpoint.pt. Ctrl-C, SIGTERM or SIGHUP
    (the terminal closing; not under nohup) saves a checkpoint (exit 130); --resume continues
    exactly where it stopped, on the weights the run began with. A run folder is used by one
    process at a time. curve.png shows the penalty against steps; RUN/tb/ holds TensorBoard
    events (the same curves, a strip of the directions at each evaluation, hparams at the end;
    `tensorboard --logdir OUT/<model>` shows every run), and --wandb PROJECT logs them to
    Weights & Biases too (--resume continues the same W&B run, each step once).

    --method sefa or ganspace finds directions without training (SeFa: closed form; GANSpace:
    PCA of --layer over --samples latents) and writes the same folder, with the fixed
    evaluation of the result against the identity and random references.

    An option marked [hessian] (or [ganspace]) is read by that method only; typing it with
    another --method is refused (exit 2), and unmarked options are read by every method.

    \b
    Examples:
      biggan-directions discover --class "golden retriever"
      biggan-directions discover -c 207 -c church --steps 20000 --batch-size 16
      biggan-directions discover -c 207 --subspace 0-39 --ndirs 40 --out runs/
      biggan-directions discover -c 207 --resume
      biggan-directions discover -c 207 --method sefa
      biggan-directions discover -c 207 --method ganspace --layer block1 --samples 5000
      biggan-directions discover -c 207 --log-directions 16 --wandb my-project
      biggan-directions discover -c 207 --no-tensorboard
      biggan-directions discover -c 207 -c 208 -c 209 --pooled      # one matrix for three classes
      biggan-directions discover -c 200-299 --pooled --steps 20000
    """
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one.")
    if pooled and (options.get("method") or "hessian") != "hessian":
        raise UserError(f"--pooled learns one matrix with the Hessian Penalty; --method "
                        f"{options['method']} finds directions per class (drop --pooled).")
    queries = list(classes) + (read_class_lines(classes_file) if classes_file else [])
    if not queries:
        raise UserError("give the classes: --class CLASS (repeat it, or a range 200-209) or "
                        "--classes-file FILE.")
    refuse_options_not_read(click.get_current_context(),
                            (options.get("method") or DiscoverConfig.method,))
    config = discover_config(**options)
    tracker = tracker_for(options, notify=lambda message: click.echo(message, err=True))
    dev = resolve_device(device)
    set_threads(threads)

    keep_steps = resume and not given(click.get_current_context(), "steps")

    def report(result):
        if result.status == "already finished" and keep_steps and config.method == "hessian":
            click.echo(f"{result.folder}: already finished at step {result.step}; nothing to "
                       f"resume. To extend it, resume with more steps: --resume --steps N (N "
                       f"above {result.step}, e.g. --steps {2 * result.step}).")
            return
        if result.final_penalty is None and result.eval_penalty is not None:   # sefa, ganspace
            verdict = f" ({result.versus_random})" if result.versus_random else ""
            click.echo(f"{result.folder}: {config.method} {result.status}, fixed-evaluation "
                       f"penalty {result.eval_penalty:.4g}{verdict}")
            return
        penalty = "n/a" if result.final_penalty is None else f"{result.final_penalty:.4g}"
        evaluation = ("" if result.eval_penalty is None else
                      f", fixed evaluation {result.eval_penalty:.4g} ({result.versus_random})")
        speed = result.throughput or {}
        rates = "".join(f"{', ' if i else '; '}{speed[key]:.4g} {unit}" for i, (key, unit) in
                        enumerate((("steps_per_second", "steps/s"), ("images_per_second", "images/s"),
                                   ("tflops", "TFLOP/s"))) if speed.get(key) is not None)
        click.echo(f"{result.folder}: {result.status} at step {result.step}, penalty "
                   f"{penalty}{evaluation}{rates}")

    try:
        if pooled:
            report(discover_pooled(model, queries, config, out, device=dev,
                                   weights_dir=weights_dir, resume=resume, overwrite=overwrite,
                                   progress=not quiet,
                                   notify=lambda message: click.echo(message, err=True),
                                   keep_steps=keep_steps, on_event=tracker))
            return
        discover_classes(model, expand_ranges(queries), config, out, device=dev,
                         weights_dir=weights_dir, resume=resume, overwrite=overwrite,
                         progress=not quiet, on_result=report,
                         notify=lambda message: click.echo(message, err=True),
                         keep_steps=keep_steps, on_event=tracker)
    except DiscoveryInterrupted as e:
        click.echo(f"Interrupted at step {e.step}; checkpoint saved. Continue with the same "
                   f"command plus --resume.", err=True)
        sys.exit(130)

