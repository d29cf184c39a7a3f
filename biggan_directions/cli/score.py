"""`score`: rank directions by LPIPS."""
from __future__ import annotations

import sys

import click

from ..errors import UserError
from .options import (CONTEXT_SETTINGS, device_option, model_option, quiet_option,
                      weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@click.option("--num-seeds", type=click.IntRange(min=1), default=16,
              help="Score on seeds 0..N-1 (one sample each).")
@click.option("--seeds", default=None, metavar="LIST",
              help="Seeds to score on instead, e.g. 0-31 or 3,5,9-11.")
@click.option("--steps", type=click.IntRange(min=3), default=9,
              help="Frames per linear walk from -P to +P; odd, so the centre t=0 is a frame.")
@click.option("--path-size", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Walk length P  [default: the run's]")
@click.option("--class", "class_query", default=None, metavar="CLASS",
              help="ImageNet class (name, index or WordNet id)  [default: the run's]")
@click.option("--truncation", type=float, default=None,
              help="Latent truncation in (0, 1]  [default: the run's]")
@click.option("--net", type=click.Choice(["alex", "vgg", "squeeze"]), default="alex",
              help="LPIPS backbone; its ImageNet weights are downloaded once to "
                   "$TORCH_HOME/hub/checkpoints (or put there by hand when offline).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32,
              help="Frames per generator / LPIPS batch (lower it if the device runs out of memory).")
@click.option("--inactive-threshold", type=click.FloatRange(min=0), default=0.01,
              help="A direction whose effect (endpoint LPIPS) is below this is inactive.")
@click.option("--compare", type=click.Choice(["random"]), default=None,
              help="Also score as many random orthonormal directions (seeded by --seed) and "
                   "print both distributions side by side.")
@click.option("--seed", type=click.IntRange(min=0), default=0,
              help="Seed of the random directions of --compare random.")
@click.option("--show", type=click.IntRange(min=0), default=20,
              help="Rows of the printed table (0: all).")
@click.option("--overwrite", is_flag=True, help="Replace existing scores files.")
@click.option("--random-backbone", is_flag=True, hidden=True,
              help="Tests/timing only: a seeded random LPIPS backbone (scores NOT meaningful).")
@click.option("--model", default=None, metavar="NAME|DIR",
              help="biggan-deep-128/256/512 or a folder with config.json + pytorch_model.bin  "
                   "[default: the run's]")
@weights_dir_option
@device_option
@quiet_option
@click.pass_context
def score(ctx, run, num_seeds, seeds, steps, path_size, class_query, truncation, net, batch_size,
          inactive_threshold, compare, seed, show, overwrite, random_backbone, model, weights_dir,
          device, quiet):
    """Rank directions by LPIPS: effect, smoothness, consistency, inactive count.

    RUN is a discover run folder or a directions file. Each direction walks each seed's sample
    linearly from -P to +P in --steps frames (each frame generated once). effect = mean LPIPS
    between the two ends (the ranking figure; the centre-to-end LPIPS is reported beside it);
    smoothness = (steps-1) x consecutive-frame LPIPS sum / endpoint LPIPS (1 = evenly paced,
    larger = jumps); consistency = std/mean of the effect over seeds; inactive = effect below
    --inactive-threshold. Class, truncation, path size and model default to the run's. Writes
    RUN/scores.json and scores.csv (beside a bare directions file: <stem>.scores.json/.csv);
    nothing is overwritten without --overwrite. The LPIPS backbone is downloaded once into
    torchvision's cache ($TORCH_HOME/hub/checkpoints; alex: alexnet-owt-7be5be79.pth); offline,
    put that file there by hand.

    \b
    Examples:
      biggan-directions score outputs/biggan-deep-128/207-golden-retriever
      biggan-directions score RUN --num-seeds 32 --steps 11 --net vgg
      biggan-directions score RUN --compare random --seed 1 --overwrite
      biggan-directions score my_dirs.safetensors --path-size 4 --seeds 0-7
    """
    from click.core import ParameterSource

    from biggan_directions.device import resolve_device
    from biggan_directions.ranges import parse_int_list
    from biggan_directions.score import ScoreConfig, format_compare, format_table, run_score

    def given(name):
        return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT,
                                                      ParameterSource.DEFAULT_MAP)

    if seeds is not None and given("num_seeds"):
        raise UserError("--seeds and --num-seeds both given; pass one.")
    seed_list = parse_int_list(seeds, "--seeds") if seeds is not None else list(range(num_seeds))
    class_index = None
    if class_query is not None:
        from biggan_directions.classes import resolve_class
        class_index = resolve_class(class_query).index
    config = ScoreConfig(seeds=tuple(seed_list), steps=steps, path_size=path_size,
                         class_index=class_index, truncation=truncation, model=model,
                         net=net, batch_size=batch_size,
                         threshold=inactive_threshold, compare=compare, seed=seed,
                         random_backbone=random_backbone)
    report = run_score(run, config, device=resolve_device(device), weights_dir=weights_dir,
                       overwrite=overwrite, progress=not quiet)
    click.echo(format_table(report.result, limit=show or None, meaningful=report.meaningful,
                            net=net))
    if report.compare is not None:
        from biggan_directions.score import summarize
        click.echo(f"\nlearned vs random orthonormal directions (seed {seed}):")
        click.echo(format_compare(summarize(report.result), summarize(report.compare)))
    click.echo(f"wrote {report.json_path} and {report.csv_path}")


