"""biggan-directions: find, render and rank interpretable directions in BigGAN (click entry point).

Each command parses and validates its options, then calls one library function that a script
can call too. Mistakes a user can fix raise UserError and print as one line, exit status 1.
"""
from __future__ import annotations

import sys

import click

from biggan_directions.errors import UserError

CONTEXT_SETTINGS = dict(help_option_names=["-h", "--help"], max_content_width=100,
                        show_default=True)


class Group(click.Group):
    """A click group that turns UserError into one 'Error: ...' line and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            raise click.ClickException(str(e)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="biggan-directions")
def cli():
    """Find interpretable directions in a pretrained BigGAN with the Hessian Penalty,
    render them as videos and rank them with LPIPS.

    \b
    Typical session:
      biggan-directions classes retriever
      biggan-directions discover --class "golden retriever"
      biggan-directions score outputs/biggan-deep-128/207-golden-retriever
      biggan-directions render outputs/biggan-deep-128/207-golden-retriever --top 8
    """


# ---------------------------------------------------------------- shared options
def device_option(f):
    return click.option("--device", default="auto", metavar="DEV",
                        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps.")(f)


def quiet_option(f):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bars.")(f)


def weights_dir_option(f):
    return click.option("--weights-dir", type=click.Path(file_okay=False), default=None,
                        envvar="BIGGAN_DIRECTIONS_WEIGHTS", show_envvar=True,
                        help="Folder of the weight store  [default: weights/]")(f)


def model_option(f):
    return click.option("--model", default="biggan-deep-128", metavar="NAME|DIR",
                        help="biggan-deep-128, biggan-deep-256, biggan-deep-512, or a folder "
                             "holding config.json + pytorch_model.bin.")(f)


# ---------------------------------------------------------------- classes
@cli.command(context_settings=CONTEXT_SETTINGS)
@click.argument("query", nargs=-1)
def classes(query):
    """List the 1000 ImageNet classes, or those matching QUERY.

    QUERY is an index (207), a WordNet id or its prefix (n02099601) or part of a name, in any
    case (retriever). Words may be given unquoted. Prints index, WordNet id and names; exits 1
    when nothing matches. Any index, WordNet id or full name shown works as --class elsewhere.

    \b
    Examples:
      biggan-directions classes                   # all 1000
      biggan-directions classes retriever         # 205-209
      biggan-directions classes golden retriever
      biggan-directions classes 497
      biggan-directions classes n03028079
    """
    from biggan_directions.classes import search_classes, suggest

    text = " ".join(query).strip() or None
    found = search_classes(text)
    if not found:
        near = suggest(text)
        hint = (f"did you mean: {', '.join(f'{n} ({c.index})' for n, c in near)}?" if near else
                "run `biggan-directions classes` to list all 1000")
        raise UserError(f"no class matches {text!r}; {hint}")
    click.echo(f"{'index':>5}  {'wnid':<9}  names")
    for c in found:
        click.echo(f"{c.index:>5}  {c.wnid:<9}  {', '.join(c.names)}")


# ---------------------------------------------------------------- discover
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


@cli.command(context_settings=CONTEXT_SETTINGS)
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

# ---------------------------------------------------------------- render
@cli.command(context_settings=CONTEXT_SETTINGS)
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


# ---------------------------------------------------------------- score
@cli.command(context_settings=CONTEXT_SETTINGS)
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


# ---------------------------------------------------------------- batch
@cli.command(context_settings=CONTEXT_SETTINGS)
@click.option("--classes", "class_list", default=None, metavar="LIST",
              help="Comma-separated classes: indices, ranges LO-HI, WordNet ids or names, "
                   "e.g. 0-9,207,church.")
@click.option("--classes-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="A text file with one class (index, range, WordNet id or name) per line; "
                   "'#' starts a comment.")
@model_option
@discover_options
@click.option("--score", "do_score", is_flag=True,
              help="Score each class's directions with LPIPS (scores.json/.csv, as `score RUN`).")
@click.option("--score-seeds", type=click.IntRange(min=1), default=16,
              help="With --score: score on seeds 0..N-1.")
@click.option("--net", type=click.Choice(["alex", "vgg", "squeeze"]), default="alex",
              help="With --score: LPIPS backbone (its ImageNet weights are downloaded once to "
                   "$TORCH_HOME/hub/checkpoints).")
@click.option("--render", "do_render", is_flag=True,
              help="Render each class's --top directions into RUN/videos/: a grid video (a row "
                   "per direction, a column per seed) and a PNG strip.")
@click.option("--top", type=click.IntRange(min=1), default=8,
              help="Directions per class to render and list in the manifest: the best by the "
                   "score ranking when scored, else 0..K-1.")
@click.option("--render-seeds", default="0-5", metavar="LIST", help="With --render: samples, "
              "one column each.")
@click.option("--render-frames", type=click.IntRange(min=1), default=90,
              help="With --render: frames per video.")
@click.option("--render-format", type=click.Choice(["mp4", "gif"]), default="mp4",
              help="With --render: video format (mp4: H.264, small, plays in browsers; gif: large).")
@click.option("--backend", type=click.Choice(["local", "ray"]), default="local",
              help="local: jobs in this process, the model loaded once (one worker process per "
                   "GPU when --device auto sees several); ray: one Ray task per class.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --backend ray: the cluster to join (e.g. auto, or ray://head:10001)  "
                   "[default: start a local Ray]")
@click.option("--ray-cpus", type=click.IntRange(min=1), default=None,
              help="With --backend ray and no --ray-address: CPUs of the local Ray  "
                   "[default: all]")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=1.0,
              help="With --backend ray: GPUs each class's task asks for (0 is asked on a "
                   "cluster without GPUs).")
@click.option("--out", type=click.Path(file_okay=False), default="outputs",
              help="Runs go to OUT/<model>/<index>-<class>/, the batch record to "
                   "OUT/<model>/batch/.")
@click.option("--batch-name", default=None, metavar="NAME",
              help="Keep this batch's manifest and gallery in OUT/<model>/batch-NAME/  "
                   "[default: OUT/<model>/batch/]")
@click.option("--overwrite", is_flag=True,
              help="Start every class again (its run files, scores and videos are replaced).")
@click.option("--random-backbone", is_flag=True, hidden=True,
              help="Tests/timing only: score with a seeded random LPIPS backbone.")
@weights_dir_option
@device_option
@quiet_option
@click.pass_context
def batch(ctx, class_list, classes_file, model, do_score, score_seeds, net, do_render, top,
          render_seeds, render_frames, render_format, backend, ray_address, ray_cpus, gpus_per_job,
          out, batch_name, overwrite, random_backbone, weights_dir, device, quiet, **options):
    """Discover (and score, render) directions for many classes, with a manifest and a gallery.

    Each class is one job doing what `discover`, `score` and `render --top K` do, into the
    same run folder OUT/<model>/<index>-<class>/. OUT/<model>/batch/ holds manifest.jsonl
    (one JSON object per class: class_index, class_name, wnid, status, run_folder, step,
    steps, final_penalty, eval_penalty, top_directions, media, seconds, skipped, error,
    updated; rewritten atomically as each class ends), batch.json (the settings) and
    index.html (a gallery that opens from disk). Running the same command again skips
    finished classes and resumes unfinished ones from their checkpoints. A failing class
    does not stop the others; the exit status is 1 when any failed. Ctrl-C checkpoints the
    running classes (exit 130). With --backend ray each task loads the model itself, so the
    model (or --weights-dir) and OUT must be at the same paths on every node.

    \b
    Examples:
      biggan-directions batch --classes 0-9,207,church --steps 20000
      biggan-directions batch --classes-file classes.txt --score --render --top 8
      biggan-directions batch --classes 200-299 --backend ray --ray-address auto
      biggan-directions batch --classes 207,497 --steps 2000 --batch-name quick --render

    \b
    A --classes-file (one class per line):
      207            # golden retriever
      church
      n03028079
      0-9
    """
    from click.core import ParameterSource

    from biggan_directions.batch import (BatchInterrupted, BatchRender, format_summary,
                                         parse_class_list, read_class_file, run_batch)

    def given(name):
        return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT,
                                                      ParameterSource.DEFAULT_MAP)

    if (class_list is None) == (classes_file is None):
        raise UserError("give the classes with --classes LIST or --classes-file FILE (one of them).")
    if backend == "local":
        ray_only = [o for o in ("ray_address", "ray_cpus", "gpus_per_job") if given(o)]
        if ray_only:
            raise UserError(f"--{ray_only[0].replace('_', '-')} needs --backend ray.")
    for flag, names in (("--score", ("score_seeds", "net")),
                        ("--render", ("render_seeds", "render_frames", "render_format"))):
        unused = [n for n in names if given(n)]
        if unused and not (do_score if flag == "--score" else do_render):
            raise UserError(f"--{unused[0].replace('_', '-')} has no effect without {flag}; add {flag}.")
    classes = (parse_class_list(class_list) if class_list is not None
               else read_class_file(classes_file))
    config = discover_config(**options)
    score_config = render_config = None
    if do_score:
        from biggan_directions.score import ScoreConfig
        score_config = ScoreConfig(seeds=tuple(range(score_seeds)), net=net,
                                   random_backbone=random_backbone)
    if do_render:
        from biggan_directions.ranges import parse_int_list
        from biggan_directions.render import RenderConfig
        render_config = BatchRender(seeds=tuple(parse_int_list(render_seeds, "--render-seeds")),
                                    video=RenderConfig(frames=render_frames, fmt=render_format))

    def report(entry, done, total):
        penalty = "" if entry.get("final_penalty") is None else f", penalty {entry['final_penalty']:.4g}"
        seconds = "" if entry.get("seconds") is None else f", {entry['seconds']:.1f} s"
        status = "already complete" if entry.get("skipped") else entry["status"]
        error = f": {entry['error']}" if entry.get("error") else ""
        click.echo(f"[{done}/{total}] {entry['class_index']} {entry['class_name']}: "
                   f"{status}{penalty}{seconds}{error}")

    try:
        result = run_batch(model, classes, config, out, score=score_config, render=render_config,
                           top=top, backend=backend, device=device, ray_address=ray_address,
                           ray_cpus=ray_cpus, gpus_per_job=gpus_per_job, batch_name=batch_name,
                           weights_dir=weights_dir, overwrite=overwrite, progress=not quiet,
                           on_entry=report)
    except BatchInterrupted as e:
        click.echo(format_summary(e.result.entries))
        click.echo(f"Interrupted; checkpoints saved, manifest {e.result.manifest}. Run the same "
                   f"command again to resume.", err=True)
        sys.exit(130)
    click.echo(format_summary(result.entries))
    click.echo(f"manifest: {result.manifest}\ngallery:  {result.gallery}")
    if result.failed:
        raise UserError(f"{len(result.failed)} of {len(result.entries)} classes failed (see "
                        f"{result.manifest}); fix the cause and run the same command again "
                        f"(finished classes are skipped).")


def main(argv=None):
    """Console-script entry point."""
    return cli.main(args=argv, prog_name="biggan-directions")


if __name__ == "__main__":
    sys.exit(main())
