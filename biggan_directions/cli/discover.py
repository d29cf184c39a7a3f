"""`discover`: learn directions for one or more classes."""
from __future__ import annotations

import sys

import click

from ..errors import UserError
from .options import (CONTEXT_SETTINGS, device_option, model_option, quiet_option,
                      weights_dir_option)


def discover_options(f):
    """The settings of one discovery run (DiscoverConfig); shared by `discover` and `batch`."""
    options = [
        click.option("--ndirs", type=click.IntRange(min=1), default=None,
                     help="Directions to learn  [default: one per latent coordinate, as published]"),
        click.option("--steps", type=click.IntRange(min=1), default=50_000,
                     help="Optimiser steps (published: 50 epochs x 1,000)."),
        click.option("--batch-size", type=click.IntRange(min=1), default=32,
                     help="Samples per step (published: 96 over 4 GPUs)."),
        click.option("--lr", type=float, default=0.01, help="Adam learning rate on the matrix."),
        click.option("--k", "k", type=click.IntRange(min=2), default=2,
                     help="Rademacher draws per sample per step."),
        click.option("--epsilon", type=float, default=0.1,
                     help="Finite-difference step; the penalty scales like 1/epsilon^4."),
        click.option("--reduction", type=click.Choice(["mean", "max"]), default="mean",
                     help="How the penalty reduces over pixels (published BigGAN run: mean)."),
        click.option("--path-size", type=float, default=5.0,
                     help="Each sample moves d ~ U[-P, P] along one direction."),
        click.option("--truncation", type=float, default=1.0,
                     help="Latents are truncnorm(-2, 2) x truncation, in (0, 1]."),
        click.option("--init", type=click.Choice(["random", "coords"]), default="random",
                     help="Start from a random orthonormal matrix or the coordinate axes."),
        click.option("--subspace", default=None, metavar="LO-HI",
                     help="Learn inside latent coordinates LO..HI only, e.g. 0-39 (coarse)."),
        click.option("--layers", default="image", metavar="NAMES",
                     help="Comma-separated outputs to penalise: image, blockN (BigGAN block N)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, help="Seeds every random draw."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000,
                     help="Steps between checkpoints (one is also taken on Ctrl-C)."),
        click.option("--eval-every", type=click.IntRange(min=1), default=1000,
                     help="Steps between fixed held-out evaluations."),
        click.option("--chunk-size", type=click.IntRange(min=1), default=None,
                     help="At most this many images per generator call (bounds memory)  [default: all "
                          "1+2k perturbations of the batch in one call]"),
        click.option("--penalty-mode", type=click.Choice(["batched", "sequential"]),
                     default="batched",
                     help="batched: all 1+2k generator passes in one forward (fastest on a GPU); "
                          "sequential: the paper's loop (can be faster on a CPU at large batch)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def discover_config(**o):
    """DiscoverConfig from the options of `discover_options` (validated)."""
    from biggan_directions.discover import DiscoverConfig
    from biggan_directions.ranges import parse_int_list

    subspace = None
    if o["subspace"]:
        text = o["subspace"].strip()
        if "-" not in text:
            raise UserError(f"--subspace {text!r}: give a range LO-HI of latent coordinates, e.g. 0-39.")
        lo, hi = parse_int_list(text, "--subspace")[0], parse_int_list(text, "--subspace")[-1]
        subspace = (lo, hi + 1)
    layers = tuple(s.strip() for s in o["layers"].split(",") if s.strip())
    return DiscoverConfig(
        ndirs=o["ndirs"], steps=o["steps"], batch_size=o["batch_size"], lr=o["lr"], k=o["k"],
        epsilon=o["epsilon"], reduction=o["reduction"], path_size=o["path_size"],
        truncation=o["truncation"], init=o["init"], subspace=subspace, layers=layers,
        seed=o["seed"], checkpoint_every=o["checkpoint_every"], eval_every=o["eval_every"],
        chunk_size=o["chunk_size"], penalty_mode=o["penalty_mode"]).validate()


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--class", "-c", "classes", multiple=True, required=True, metavar="CLASS",
              help="ImageNet class: index (207), WordNet id (n02099601) or name; repeat for more.")
@model_option
@discover_options
@click.option("--out", type=click.Path(file_okay=False), default="outputs",
              help="Runs go to OUT/<model>/<index>-<class>/.")
@click.option("--resume", is_flag=True, help="Continue an existing run from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Start an existing run again (its files are replaced).")
@weights_dir_option
@device_option
@quiet_option
def discover(classes, model, out, resume, overwrite, weights_dir, device, quiet, **options):
    """Learn directions for one or more classes with the Hessian Penalty.

    Each step draws latents z, one direction j and a distance d ~ U[-P, P] per sample, and
    minimises the Hessian Penalty of G(z + w Q) with respect to w = d e_j, where Q is an
    orthonormal matrix of directions (the generator stays frozen). Writes, per class:
    directions.safetensors, run.json, log.csv and checkpoint.pt. Ctrl-C saves a checkpoint
    (exit 130); --resume continues exactly where it stopped.

    \b
    Examples:
      biggan-directions discover --class "golden retriever"
      biggan-directions discover -c 207 -c church --steps 20000 --batch-size 16
      biggan-directions discover -c 207 --subspace 0-39 --ndirs 40 --out runs/
      biggan-directions discover -c 207 --resume
    """
    from biggan_directions.device import resolve_device
    from biggan_directions.discover import DiscoveryInterrupted, discover_classes

    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one.")
    config = discover_config(**options)
    dev = resolve_device(device)

    def report(result):
        penalty = "n/a" if result.final_penalty is None else f"{result.final_penalty:.4g}"
        click.echo(f"{result.folder}: {result.status} at step {result.step}, penalty {penalty}")

    try:
        discover_classes(model, list(classes), config, out, device=dev, weights_dir=weights_dir,
                         resume=resume, overwrite=overwrite, progress=not quiet, on_result=report)
    except DiscoveryInterrupted as e:
        click.echo(f"Interrupted at step {e.step}; checkpoint saved. Continue with the same "
                   f"command plus --resume.", err=True)
        sys.exit(130)

