"""`score`: rank directions by LPIPS."""
from __future__ import annotations

import click

from ..foundation.settings import default_of
from ..runtime.device import resolve_device, set_threads
from ..runtime.signals import sigterm_as_interrupt
from ..scoring.score import MAX_SEEDS, ScoreConfig
from ..scoring.score_run import run_score
from ..scoring.score_tables import format_compare, format_table
from .options import (CONTEXT_SETTINGS, IntList, config_from, echo_defaulted, model_option,
                      no_wandb_option, options_from, runtime_options, walk_seeds,
                      weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@click.option("--num-seeds", type=click.IntRange(1, MAX_SEEDS), default=None,
              show_default=str(len(default_of(ScoreConfig, "seeds"))),
              help="Score on seeds 0..N-1 (one sample each).")
@click.option("--seeds", type=IntList(MAX_SEEDS, "seeds per score"), default=None, metavar="LIST",
              help="Seeds to score on instead, e.g. 0-31 or 3,5,9-11.")
@options_from(ScoreConfig)
@click.option("--show", type=click.IntRange(min=0), default=20,
              help="Rows of the printed table (0: all).")
@click.option("--overwrite", is_flag=True, help="Replace existing scores files.")
@no_wandb_option
@model_option(from_run=True)
@weights_dir_option
@runtime_options
@click.pass_context
def score(ctx, run, num_seeds, seeds, show, overwrite, no_wandb, model, weights_dir, device,
          threads, quiet, **options):
    """Rank directions by LPIPS: effect, smoothness, consistency, inactive count.

    RUN is a discover run folder or a directions file. Each direction walks each seed's sample
    linearly from -P to +P in --steps frames (each frame generated once). effect = mean LPIPS
    between the two ends (the ranking figure; the centre-to-end LPIPS is reported beside it);
    smoothness = (steps-1) x consecutive-frame LPIPS sum / endpoint LPIPS (1 = evenly paced,
    larger = jumps); consistency = std/mean of the effect over seeds; inactive = effect below
    --inactive-threshold. Class, truncation, path size and model default to the run's (for a
    file that records no truncation, path size or model: discover's default, with a note).
    Writes RUN/scores.json and scores.csv (beside a bare directions file:
    <stem>.scores.json/.csv); nothing is overwritten without --overwrite. The effect (mean,
    median), the inactive count and the effects' histogram are added to the run's TensorBoard
    events (RUN/tb/, at the run's last step) and to the W&B run it was trained into with
    --wandb (RUN/wandb.json: continued before any work, at the step after its last; --no-wandb
    leaves it alone). The LPIPS backbone is
    downloaded once into torchvision's cache ($TORCH_HOME/hub/checkpoints; alex:
    alexnet-owt-7be5be79.pth); offline, put that file there by hand.

    \b
    Examples:
      biggan-directions score outputs/biggan-deep-128/207-golden-retriever
      biggan-directions score RUN --num-seeds 32 --steps 11 --net vgg
      biggan-directions score RUN --compare random --seed 1 --overwrite
      biggan-directions score RUN --compare random,coords,sefa,ganspace --overwrite
      biggan-directions score my_dirs.safetensors --path-size 4 --seeds 0-7
    """
    config = config_from(ScoreConfig, options, **walk_seeds(ctx, seeds, num_seeds, model))
    set_threads(threads)
    with sigterm_as_interrupt():
        report = run_score(run, config, device=resolve_device(device), weights_dir=weights_dir,
                           overwrite=overwrite, progress=not quiet, log_wandb=not no_wandb)
    echo_defaulted(report.run_settings)
    click.echo(format_table(report.result, limit=show or None, net=config.net))
    if report.compare:
        if list(report.compare) == ["random"]:
            click.echo(f"\nlearned vs random orthonormal directions (seed {config.seed}):")
        else:
            click.echo(f"\nlearned vs {', '.join(report.compare)} directions (random seed "
                       f"{config.seed}):")
        click.echo(format_compare(report.result.summary(), baselines={
            kind: scores.summary() for kind, scores in report.compare.items()}, net=config.net))
    click.echo(f"wrote {report.json_path} and {report.csv_path}")
