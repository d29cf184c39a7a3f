"""`compare`: runs of any methods for one class on one scale."""
from __future__ import annotations

import click

from ..runtime.device import resolve_device, set_threads
from ..runtime.signals import sigterm_as_interrupt
from ..foundation.errors import UserError
from ..models.classlists import parse_class_list
from ..scoring.compare import compare_runs, format_report
from ..scoring.transfer import compare_transfer, format_transfer
from .options import (CONTEXT_SETTINGS, model_option, no_wandb_option, param_default,
                      runtime_options, weights_dir_option)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              show_default="the first run's parent folder/compare-<index>-<class>",
              help="Folder for compare.json, compare.png and compare_curves.png.")
@click.option("--top", type=click.IntRange(min=1), default=param_default(compare_runs, "top"),
              help="Directions per run in the strip sheet (best by LPIPS effect when scored).")
@click.option("--overwrite", is_flag=True, help="Replace an existing comparison.")
@click.option("--transfer", is_flag=True,
              help="The transfer table instead: every run's matrix (per-class, pooled, SeFa, "
                   "GANSpace) on every class, each against that class's random band; writes "
                   "transfer.json, transfer.csv and transfer.png.")
@click.option("--classes", "transfer_classes", default=None, metavar="LIST",
              help="With --transfer: the classes of the table (0-9,207,church)  "
                   "[default: every class the runs were learned on]")
@no_wandb_option
@model_option(from_run=True)
@weights_dir_option
@runtime_options
def compare(runs, out, top, overwrite, transfer, transfer_classes, no_wandb, model, weights_dir,
            device, threads, quiet):
    """Compare runs of any methods (hessian, sefa, ganspace) for one class and model.

    Every run's fixed-evaluation penalty is computed on identical draws (built from the first
    run's settings; K = the smallest number of directions, each run's first K rows), beside
    the identity and the mean +- std of random orthonormal matrices on the same draws, and
    whether each run lies outside 2 std of random. LPIPS score distributions come from each
    run's scores.json when it has one. Writes compare.json, compare.png (each run's top
    directions as walk strips) and compare_curves.png. Each run's penalty on the shared draws
    and its distance to the random mean are added to its TensorBoard events (RUN/tb/) and to
    the W&B run it was trained into with --wandb (RUN/wandb.json; --no-wandb leaves it alone).

    \b
    Examples:
      biggan-directions compare runs/hessian/m/207-golden-retriever runs/sefa/m/207-golden-retriever
      biggan-directions compare RUN_A RUN_B RUN_C --top 8 --out comparisons/207
      biggan-directions compare --transfer OUT/m/207-golden-retriever OUT/m/208-labrador-retriever \
          OUT/m/pooled-207-208
    """
    if transfer_classes is not None and not transfer:
        raise UserError("--classes chooses the classes of a transfer table; add --transfer.")
    if no_wandb and transfer:
        raise UserError("--no-wandb: a transfer table adds nothing to the runs' events or W&B "
                        "runs; drop it.")
    dev = resolve_device(device)
    set_threads(threads)
    if transfer:
        classes = ([c.index for c in parse_class_list(transfer_classes)]
                   if transfer_classes is not None else None)
        with sigterm_as_interrupt():
            table = compare_transfer(list(runs), classes=classes, out=out, model=model,
                                     device=dev, weights_dir=weights_dir, progress=not quiet,
                                     overwrite=overwrite)
        click.echo(format_transfer(table))
        click.echo(f"wrote {', '.join(str(p) for p in table.files.values())}")
        return
    with sigterm_as_interrupt():
        report = compare_runs(list(runs), out=out, model=model, device=dev,
                              weights_dir=weights_dir, progress=not quiet, top=top,
                              overwrite=overwrite, log_wandb=not no_wandb)
    click.echo(format_report(report))
    click.echo(f"wrote {', '.join(str(p) for p in report.files.values())}")
