"""`describe`: say what each direction of a run does (no LPIPS)."""
from __future__ import annotations

import click

from ..describe.config import MAX_SEEDS, DescribeConfig
from ..describe.run import run_describe
from ..describe.tables import format_descriptions
from ..foundation.settings import default_of
from ..runtime.device import resolve_device, set_threads
from ..runtime.signals import sigterm_as_interrupt
from .options import (CONTEXT_SETTINGS, IntList, config_from, echo_defaulted, model_option,
                      options_from, runtime_options, walk_seeds, weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN")
@click.option("--num-seeds", type=click.IntRange(1, MAX_SEEDS), default=None,
              show_default=str(len(default_of(DescribeConfig, "seeds"))),
              help="Describe on seeds 0..N-1 (one sample each).")
@click.option("--seeds", type=IntList(MAX_SEEDS, "seeds per description"), default=None,
              metavar="LIST", help="Seeds to describe on instead, e.g. 0-31 or 3,5,9-11.")
@options_from(DescribeConfig)
@click.option("--show", type=click.IntRange(min=0), default=20,
              help="Rows of the printed table (0: all).")
@click.option("--overwrite", is_flag=True, help="Replace an existing descriptions.json.")
@model_option(from_run=True)
@weights_dir_option
@runtime_options
@click.pass_context
def describe(ctx, run, num_seeds, seeds, show, overwrite, model, weights_dir, device, threads,
             quiet, **options):
    """Say what each direction does: shift-x, shift-y, zoom, rotation, brightness, contrast,
    saturation, color:<hue>, background, shape or inactive, with a confidence and the measures.

    RUN is a discover run folder or a directions file. Each direction walks each seed's sample
    linearly from -P to +P in --steps frames, as `score` does (which describes by default from
    its own frames; this command needs no LPIPS backbone). Geometry comes from optical flow
    fitted to a similarity, photometry from CIELAB, and the object region from where the seeds
    differ; the README's "What a direction does" gives the rule. A scored run's inactive
    directions are score's; an unscored run's are those below --inactive-delta-e. Writes
    RUN/descriptions.json (beside a bare directions file: <stem>.descriptions.json); nothing is
    overwritten without --overwrite.

    \b
    Examples:
      biggan-directions describe outputs/biggan-deep-128/207-golden-retriever
      biggan-directions describe RUN --num-seeds 32 --overwrite
      biggan-directions describe my_dirs.safetensors --path-size 4 --seeds 0-7
    """
    config = config_from(DescribeConfig, options, **walk_seeds(ctx, seeds, num_seeds, model))
    set_threads(threads)
    with sigterm_as_interrupt():
        report = run_describe(run, config, device=resolve_device(device), weights_dir=weights_dir,
                              overwrite=overwrite, progress=not quiet)
    echo_defaulted(report.run_settings)
    click.echo(format_descriptions(report.descriptions, limit=show or None))
    if report.inactive_from == "delta_e":
        click.echo(f"inactive: mean Delta E*ab < {config.inactive_delta_e:g} (the run is not "
                   f"scored; score it for the LPIPS rule)")
    click.echo(f"wrote {report.path}")
