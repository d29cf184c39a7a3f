"""`directions`: direction matrices from other tools (GANSpace, GANLatentDiscovery, NumPy, PyTorch) made into runs."""
from __future__ import annotations

import click

from .options import CONTEXT_SETTINGS, weights_dir_option


@click.group(context_settings=CONTEXT_SETTINGS)
def directions():
    """Direction matrices from other tools, as run folders that render, score, view and
    compare take like any other.

    \b
    Examples:
      biggan-directions directions import lat_comp.npz --model biggan-deep-128 --class 207
      biggan-directions directions import deformator_200000.pt --model biggan-deep-128 -c church
      biggan-directions directions import dirs.npy --model biggan-deep-128 -c 207 --name mine
    """


@directions.command("import")
@click.argument("path", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--model", required=True, metavar="NAME|DIR",
              help="The model the directions were found in: biggan-deep-128, -256, -512, or a "
                   "folder holding config.json + pytorch_model.bin.")
@click.option("--class", "-c", "class_query", required=True, metavar="CLASS",
              help="ImageNet class the run is for: index (207), WordNet id or name.")
@click.option("--key", default=None, metavar="NAME",
              help="The array (.npz) or tensor (.pt; a dotted path into nested dicts) holding "
                   "the matrix  [default: found from the file's layout]")
@click.option("--name", default=None,
              help="Names the run folder OUT/<model>/imported/NAME/<index>-<class>/  "
                   "[default: the file's stem]")
@click.option("--truncation", type=float, default=None,
              help="Truncation recorded for render and score  [default: discover's]")
@click.option("--path-size", type=float, default=None,
              help="Walk length P recorded for render and score  [default: discover's]")
@click.option("--out", type=click.Path(file_okay=False), default="outputs", show_default=True,
              help="The output root.")
@click.option("--overwrite", is_flag=True, help="Replace an existing imported run of that name.")
@weights_dir_option
def import_(path, model, class_query, key, name, truncation, path_size, out, overwrite,
            weights_dir):
    """Make a run folder of the direction matrix in FILE (.npy, .npz, .pt or .pth).

    FILE holds an (ndirs, z_dim) matrix, one direction a row, or a named array (--key), or one
    of these layouts: GANSpace's saved components (.npz with lat_comp), GANLatentDiscovery's
    deformator (.pt: log_mat_half of its ortho deformator, or linear.weight of linear and proj,
    alone or under "deformator" in its checkpoint). Files are read without pickle (NumPy:
    allow_pickle=False; PyTorch: weights_only=True), so nothing in them runs. A width other
    than the model's z_dim is refused; rows that are not unit length are normalised. run.json
    and the directions file record the source (path, sha256, layout) and whether the rows are
    orthonormal.
    """
    from ..runs.imported import import_directions   # deferred: torch (fast --help)

    run = import_directions(path, model, class_query, out=out, name=name, key=key,
                            truncation=truncation, path_size=path_size, weights_dir=weights_dir,
                            overwrite=overwrite)
    info = run.meta["imported"]
    notes = [f"{info['rows']} directions ({info['layout']}"
             + (f", {info['key']}" if info.get("key") else "") + ")",
             "orthonormal" if info["orthonormal"] else
             f"not orthonormal (max |QQ^T - I| {info['max_gram_error']:.2g}; unit rows)"]
    if info["normalised"]:
        lo, hi = info["norm_range"]
        notes.append(f"rows normalised (norms were {lo:.4g} to {hi:.4g})")
    click.echo(f"{run.folder}: imported {path}: {', '.join(notes)}")
