"""`view`: explore a run's directions live in the browser, with sliders."""
from __future__ import annotations

from pathlib import Path

import click

from ..foundation.errors import UserError
from ..foundation.fileio import check_writable_dir
from ..models.classes import resolve_class
from ..runtime.device import resolve_device, set_threads
from ..view.view import Viewer
from ..view.view_app import import_web, serve
from .options import (CONTEXT_SETTINGS, DIRS_LIST, model_option, param_default, runtime_options,
                      weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", metavar="RUN", type=click.Path(exists=True, path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=None, metavar="K",
              help="Sliders for the K best directions by the run's scores  "
                   "[default: 16 of a scored run; every direction of an unscored one]")
@click.option("--dirs", type=DIRS_LIST, default=None,
              help="Sliders for these directions, e.g. 0-7,12.")
@click.option("--port", type=click.IntRange(0, 65535), default=param_default(serve, "port"),
              help="Port (0: a free one).")
@click.option("--host", default=param_default(serve, "host"),
              help="Address to listen on; 0.0.0.0 makes the page reachable by others (a warning "
                   "is printed).")
@click.option("--class", "class_query", default=None, metavar="CLASS",
              help="The class of a batch folder or a pooled run to show first (index, WordNet id or "
                   "name)  "
                   "[default: its first]")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0,
              help="The sample to show first.")
@click.option("--truncation", type=float, default=None,
              help="Latent truncation in (0, 1]  [default: the run's]")
@click.option("--amounts", default="", metavar="DIR:AMOUNT,...",
              help="Directions moved in the first view, e.g. 12:2.5,3:-1 (amounts in [-P, P], "
                   "P the run's path size).")
@click.option("--save", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write this view as a PNG (settings embedded) and exit, instead of serving.")
@model_option(from_run=True)
@weights_dir_option
@runtime_options
def view(run, top, dirs, port, host, class_query, seed, truncation, amounts, save, model,
         weights_dir, device, threads, quiet):
    """Explore directions live in the browser: a large image, a slider per direction.

    RUN is a discover run folder, a directions file, or a batch folder (OUT/<model>/batch/, with
    a class picker over its classes). Starts a local web app (Starlette, one page, nothing
    fetched from the network) and prints its URL. Sliders combine: the image is G(z minus its
    projections on the moved directions, plus each amount times its direction), as `render`
    walks one. "Walk" downloads a short GIF/MP4 of one direction around the current view;
    "Save" downloads the PNG with its settings embedded and shows the command that writes it
    (this command with --save). The page's address holds the view, so a link reproduces it.
    Needs the optional extra: pip install 'biggan-directions[view]'.

    \b
    Examples:
      biggan-directions view outputs/biggan-deep-128/207-golden-retriever
      biggan-directions view RUN --top 8 --port 0
      biggan-directions view outputs/biggan-deep-128/batch --class church
      biggan-directions view RUN --seed 3 --amounts 12:2.5,3:-1 --save view.png
    """
    if save is None:
        import_web()
    if top is not None and dirs is not None:
        raise UserError("--top and --dirs both given; pass one.")
    if save is not None:
        check_writable_dir(save.parent)
    dev = resolve_device(device)
    set_threads(threads)
    viewer = Viewer(run, top=top, dirs=dirs, model=model, weights_dir=weights_dir, device=dev,
                    progress=not quiet)
    query = {"seed": str(seed), "a": amounts}
    if truncation is not None:
        query["trunc"] = repr(float(truncation))
    if class_query is not None:
        query["cls"] = str(resolve_class(class_query).index)
    state = viewer.parse_state(query)
    if save is not None:
        click.echo(str(viewer.save(state, save)))
        return
    serve(viewer, host, port, query=state.query(), echo=click.echo)
