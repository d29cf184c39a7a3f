"""`render`: walk videos and strips of directions."""
from __future__ import annotations

import dataclasses

import click

from ..describe.labels import LABELS
from ..describe.select import captions_for, directions_labelled
from ..foundation.errors import UserError
from ..media.render import BASELINES, MAX_SEEDS, RenderConfig, plan_render, render_plan
from ..runs.layout import open_run, resolve_run_settings
from ..runtime.device import resolve_device, set_threads
from ..runtime.signals import sigterm_as_interrupt
from .options import (CONTEXT_SETTINGS, DIRS_LIST, IntList, config_from, model_option, options_from,
                      param_default, runtime_options, weights_dir_option)


def _setting_names(**names: str):
    """Record which option gives which setting, so errors about them name the option."""
    def decorate(f):
        f.__setting_options__ = {**getattr(f, "__setting_options__", {}), **names}
        return f
    return decorate


@click.command(context_settings=CONTEXT_SETTINGS)
@_setting_names(dirs="--dirs", seeds="--seeds", top="--top", truncation="--truncation",
                baseline="--directions")
@click.argument("run", required=False, metavar="[RUN]")
@click.option("--directions", "baseline", type=click.Choice(BASELINES), default=None,
              help="Render a baseline instead of learned directions: random orthonormal (seeded "
                   "by --seed) or coordinate axes. Without RUN it needs --class.")
@click.option("--dirs", type=DIRS_LIST, default=None,
              help="Directions to render, e.g. 0-7 or 3,5,9-11  [default: 0-7, or all if fewer]")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="K",
              help="The K best directions by the ranking `biggan-directions score RUN` wrote.")
@click.option("--label", default=None, metavar="LABEL",
              help="The directions with this label (from `score` or `describe`), strongest "
                   f"first: {', '.join(LABELS)}.")
@click.option("--seeds", type=IntList(MAX_SEEDS, "one frame column each"), default="0-5",
              help=f"Samples, one column each (at most {MAX_SEEDS}).")
@click.option("--seed", type=int, default=param_default(plan_render, "seed"),
              help="Seed of the random baseline (--directions random).")
@click.option("--class", "class_query", default=None, metavar="CLASS",
              help="ImageNet class (name, index or WordNet id); any class, e.g. one of a pooled "
                   "run's set  [default: the run's; a pooled run's first]")
@click.option("--truncation", type=float, default=None,
              help="Latent truncation in (0, 1]  [default: the run's, else discover's]")
@options_from(RenderConfig)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder  [default: RUN/videos; baselines without RUN: "
                   "outputs/baselines/<model>/<class>/]")
@click.option("--overwrite", is_flag=True, help="Replace existing files of the same name.")
@model_option(from_run=True)
@weights_dir_option
@runtime_options
def render(run, baseline, dirs, top, label, seeds, seed, class_query, truncation, out, overwrite, model,
           weights_dir, device, threads, quiet, **options):
    """Render directions as walk videos (MP4/GIF) or a PNG strip.

    RUN is a discover run folder or a directions file. Each sample z walks along each
    direction q: z minus its projection on q, plus t * path-size * q. Class, truncation, path
    size and model default to those recorded with the directions (--model overrides the
    recorded one, e.g. for a moved weights folder). Files go to RUN/videos/ and
    are named for their content (e.g. grid_dirs0-7_seeds0-5_p5.0_loop.mp4); nothing is
    overwritten without --overwrite. Ctrl-C or SIGTERM leaves no partial file. When the run
    has labels (`score` or `describe`), the grid's and strip's rows are captioned with them
    (e.g. "5 zoom").

    \b
    Examples:
      biggan-directions render outputs/biggan-deep-128/207-golden-retriever
      biggan-directions render RUN --top 8 --seeds 0-5
      biggan-directions render RUN --label zoom --strip     # every zoom direction
      biggan-directions render RUN --dirs 3,5 --layout per-direction --format gif
      biggan-directions render RUN --strip --strip-steps 7
      biggan-directions render RUN --directions random          # baseline, run's settings
      biggan-directions render --directions coords --class "golden retriever"
    """
    if run is None and baseline is None:
        raise UserError("give a RUN (run folder or directions file), or --directions random|coords "
                        "with --class.")
    if run is None and class_query is None:
        raise UserError(f"--directions {baseline} needs --class (e.g. --class 'golden retriever').")
    if dirs is not None and top is not None:
        raise UserError("--dirs and --top exclude each other; use one.")
    if top is not None and baseline is not None:
        raise UserError("--top ranks a scored run's own directions; select baseline directions "
                        "with --dirs.")
    if label is not None and (baseline is not None or run is None or dirs is not None
                              or top is not None):
        raise UserError("--label selects a run's own directions; give a RUN, without --dirs, "
                        "--top or --directions.")
    config = config_from(RenderConfig, options).validate()
    with sigterm_as_interrupt():
        r = open_run(run) if run is not None else None
        if label is not None:
            dirs = directions_labelled(r, label)
        settings = resolve_run_settings(r, model=model, class_query=class_query,
                                        truncation=truncation, path_size=config.path_size)
        plan = plan_render(r, settings, top=top, dirs=dirs, baseline=baseline, seed=seed)
        if r is not None and baseline is None:
            plan = dataclasses.replace(plan, captions=captions_for(r, plan.indices))
        set_threads(threads)
        paths = render_plan(plan, config, seeds, out_dir=out, device=resolve_device(device),
                            weights_dir=weights_dir, overwrite=overwrite, progress=not quiet)
    for path in paths:
        click.echo(str(path))
