"""`render`: walk videos and strips of directions."""
from __future__ import annotations

import sys

import click

from ..errors import UserError
from .options import (CONTEXT_SETTINGS, device_option, model_option, quiet_option,
                      weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", required=False, metavar="[RUN]")
@click.option("--directions", "baseline", type=click.Choice(["random", "coords"]), default=None,
              help="Render a baseline instead of learned directions: random orthonormal (seeded "
                   "by --seed) or coordinate axes. Without RUN it needs --class.")
@click.option("--dirs", default=None, metavar="LIST",
              help="Directions to render, e.g. 0-7 or 3,5,9-11  [default: 0-7, or all if fewer]")
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="K",
              help="The K best directions by the ranking `biggan-directions score RUN` wrote.")
@click.option("--seeds", default="0-5", metavar="LIST", help="Samples, one column each.")
@click.option("--seed", type=int, default=0, help="Seed of the random baseline (--directions random).")
@click.option("--class", "class_query", default=None, metavar="CLASS",
              help="ImageNet class (name, index or WordNet id)  [default: the run's]")
@click.option("--truncation", type=float, default=None,
              help="Latent truncation in (0, 1]  [default: the run's, else 1.0 as discover]")
@click.option("--path-size", type=float, default=None,
              help="Walk length P: t*P along each direction, t in [-1, 1]  "
                   "[default: the run's, else 5.0]")
@click.option("--frames", type=click.IntRange(min=1), default=90, help="Frames per video.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=30.0,
              help="Frames per second (GIF delays are rounded to 10 ms).")
@click.option("--easing", type=click.Choice(["loop", "linear"]), default="loop",
              help="loop: centre -> +1 -> centre -> -1 -> centre, seamless; linear: -1 .. +1.")
@click.option("--format", "fmt", type=click.Choice(["mp4", "gif"]), default="mp4",
              help="mp4 (H.264, needs imageio-ffmpeg) or a looping gif.")
@click.option("--layout", type=click.Choice(["grid", "per-direction"]), default="grid",
              help="grid: one video, a row per direction, a column per seed; per-direction: one "
                   "video per direction.")
@click.option("--strip", is_flag=True,
              help="Write a PNG strip instead of videos: a row per direction, --strip-steps "
                   "columns from -1 to +1, first seed only.")
@click.option("--strip-steps", type=click.IntRange(min=2), default=9, help="Columns of --strip.")
@click.option("--labels/--no-labels", default=True,
              help="Direction numbers in a column on the left (grid and strip).")
@click.option("--batch-size", type=click.IntRange(min=1), default=16,
              help="Images per generator call (lower it if the device runs out of memory).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder  [default: RUN/videos; baselines without RUN: "
                   "outputs/baselines/<model>/<class>/]")
@click.option("--overwrite", is_flag=True, help="Replace existing files of the same name.")
@model_option
@weights_dir_option
@device_option
@quiet_option
@click.pass_context
def render(ctx, run, baseline, dirs, top, seeds, seed, class_query, truncation, path_size, frames,
           fps, easing, fmt, layout, strip, strip_steps, labels, batch_size, out, overwrite, model,
           weights_dir, device, quiet):
    """Render directions as walk videos (MP4/GIF) or a PNG strip.

    RUN is a discover run folder or a directions file. Each sample z walks along each
    direction q: z minus its projection on q, plus t * path-size * q. Class, truncation, path
    size and model default to those recorded with the directions (--model overrides the
    recorded one, e.g. for a moved weights folder). Files go to RUN/videos/ and
    are named for their content (e.g. grid_dirs0-7_seeds0-5_p5.0_loop.mp4); nothing is
    overwritten without --overwrite.

    \b
    Examples:
      biggan-directions render outputs/biggan-deep-128/207-golden-retriever
      biggan-directions render RUN --top 8 --seeds 0-5
      biggan-directions render RUN --dirs 3,5 --layout per-direction --format gif
      biggan-directions render RUN --strip --strip-steps 7
      biggan-directions render RUN --directions random          # baseline, run's settings
      biggan-directions render --directions coords --class "golden retriever"
    """
    from click.core import ParameterSource

    from biggan_directions.device import resolve_device
    from biggan_directions.ranges import parse_int_list
    from biggan_directions.render import (RenderConfig, open_render_source, preflight,
                                          render_directions, render_paths)

    seed_list = parse_int_list(seeds, "--seeds")
    model_given = ctx.get_parameter_source("model") not in (ParameterSource.DEFAULT,
                                                            ParameterSource.DEFAULT_MAP)
    source = open_render_source(run, baseline=baseline, dirs=dirs, top=top, class_query=class_query,
                                truncation=truncation, path_size=path_size,
                                model=model if (model_given or run is None) else None, seed=seed)
    config = RenderConfig(path_size=source.path_size, frames=frames, fps=fps, easing=easing,
                          fmt=fmt, layout=layout, strip=strip, strip_steps=strip_steps,
                          labels=labels, batch_size=batch_size)
    out_dir = out if out is not None else source.out_dir
    # Check every target (and ffmpeg, and the folder) before the model is loaded.
    preflight(render_paths(out_dir, config, source.indices, seed_list, source.tag), config, overwrite)
    dev = resolve_device(device)
    G, directions = source.load(dev, weights_dir, progress=not quiet)
    paths = render_directions(G, directions, seed_list, out_dir, config, indices=source.indices,
                              tag=source.tag, device=dev, overwrite=overwrite, progress=not quiet,
                              record=source.record())
    for path in paths:
        click.echo(str(path))


