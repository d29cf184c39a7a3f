"""`find`: a factor across the classes of a batch (its strongest direction with a label, per class)."""
from __future__ import annotations

from pathlib import Path

import click

from ..batch.atlas import ATLAS, atlas_rows, find_grid, find_label, grid_path
from ..describe.labels import LABELS
from ..describe.select import known_label
from ..foundation.errors import UserError
from ..foundation.fileio import check_writable_dir
from ..runtime.device import resolve_device, set_threads
from ..runtime.signals import sigterm_as_interrupt
from .options import CONTEXT_SETTINGS, model_option, runtime_options, weights_dir_option


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("label", metavar="LABEL")
@click.argument("batch_folder", metavar="BATCH_FOLDER", type=click.Path(path_type=Path))
@click.option("--render", "do_render", is_flag=True,
              help="Also render them as one PNG grid in BATCH_FOLDER: a row per class walking "
                   "its direction from -P to +P.")
@click.option("--seed", type=click.IntRange(min=0), default=0, help="With --render: the sample.")
@click.option("--steps", type=click.IntRange(min=2), default=7,
              help="With --render: columns from -P to +P.")
@click.option("--overwrite", is_flag=True, help="With --render: replace an existing grid.")
@model_option(from_run=True)
@weights_dir_option
@runtime_options
def find(label, batch_folder, do_render, seed, steps, overwrite, model, weights_dir, device,
         threads, quiet):
    """For each class of a batch, its strongest direction with LABEL.

    LABEL is one of the vocabulary of `score` and `describe`: shift-x, shift-y, zoom,
    rotation, brightness, contrast, saturation, color:<hue> (red, yellow, green, cyan, blue,
    magenta), background, shape, inactive. BATCH_FOLDER is the folder `batch` wrote
    (OUT/<model>/batch/), whose classes were scored (`batch --score`) or described. Strongest:
    the largest effect (LPIPS), else the largest label confidence. The batch's labels, every
    class and direction, are in BATCH_FOLDER/atlas.csv.

    \b
    Examples:
      biggan-directions find zoom outputs/biggan-deep-128/batch
      biggan-directions find color:red outputs/biggan-deep-128/batch --render --steps 9
    """
    known_label(label)
    rows = atlas_rows(batch_folder)
    found = find_label(rows, label)
    if not found:
        have = sorted({r["label"] for r in rows}, key=LABELS.index)
        raise UserError(f"no class of {batch_folder} has a direction labelled '{label}'; its "
                        f"labels are {', '.join(have)} (see {batch_folder / ATLAS}).")
    click.echo(f"{'class':>5}  {'name':<24} {'dir':>4} {'conf':>5} {'effect':>8}")
    for f in found:
        effect = "-" if f.effect is None else f"{f.effect:.4f}"
        click.echo(f"{f.class_index:>5}  {f.class_name[:24]:<24} {f.direction:>4} "
                   f"{f.label_confidence:>5.2f} {effect:>8}")
    click.echo(f"{len(found)} of {len({r['class_index'] for r in rows})} classes have a "
               f"direction labelled {label}")
    if do_render:
        path = grid_path(batch_folder, label, seed, steps)
        check_writable_dir(path.parent)
        if path.exists() and not overwrite:
            raise UserError(f"{path} exists; pass --overwrite to replace it.")
        set_threads(threads)
        with sigterm_as_interrupt():
            out = find_grid(found, label, path, seed=seed, steps=steps,
                            device=resolve_device(device), weights_dir=weights_dir, model=model,
                            progress=not quiet)
        click.echo(f"wrote {out}")
