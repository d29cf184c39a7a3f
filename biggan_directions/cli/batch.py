"""`batch`: many classes, a manifest and a gallery."""
from __future__ import annotations

import sys

import click

from ..errors import UserError
from .options import (CONTEXT_SETTINGS, device_option, model_option, quiet_option,
                      weights_dir_option)
from .discover import discover_config, discover_options


@click.command(context_settings=CONTEXT_SETTINGS)
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


