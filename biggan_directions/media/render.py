"""Rendering directions to files: the plan of a run (RenderPlan), file names, checks, the render loop.

A walk takes sample z along direction q: z - (z.q) q + t * P * q (walks.walk_latents), with t from
walks.easing. One video frame shows one t. frames.py builds the frames (batches of images
tiled on the device), video.py writes them (atomic files, a writer thread). Everything that can
fail is checked before the model is loaded and before any folder is created.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from ..foundation.errors import SettingError, UserError
from ..foundation.fileio import check_writable_dir, output_folder
from ..foundation.ranges import format_int_list
from ..foundation.settings import at_least, need, one_of, positive, setting
from ..core.directions import baseline_directions
from ..models.classes import slug
from ..models.generator import BigGANGenerator, check_truncation, latents_for_seeds
from ..models.weights import load_biggan
from ..runs.layout import DEFAULT_OUT, Run, RunSettings, model_label
from ..runs.scores_file import read_ranking
from ..runtime.precision import resolve
from ..runtime.settings import PRECISIONS, compile_setting, precision_setting
from .frames import BATCH_SIZE, frame_size, strip_image, walk_frames
from .inference import generator_call
from .video import VideoSink, ffmpeg_exe, save_png
from .walks import easing as easing_positions

FORMATS = ("mp4", "gif")
LAYOUTS = ("grid", "per-direction")
EASINGS = ("loop", "linear")
BASELINES = ("random", "coords")
FPS_RANGE = (0.1, 240.0)    # GIF delays are 10 ms steps (at most 100 fps); ffmpeg takes this range
DEFAULT_NDIRS = 8           # directions per video when neither dirs nor top is given
MAX_FRAMES = 100_000        # frames per video: 55 minutes at 30 fps (published: 180)
MAX_SEEDS = 512             # samples (frame columns): 512 x 128 px is past what MP4 and GIF take
MAX_FRAME_SIDE = {"mp4": 16384, "gif": 65535}   # pixels: libx264's limit; GIF's 16-bit sizes
BASELINES_DIR = Path(DEFAULT_OUT) / "baselines"   # baselines without a run: <model>/<class>/ below


@dataclass(frozen=True)
class RenderConfig:
    """How to render walks; written into file names (path size, easing) and validated by validate()."""

    path_size: float | None = setting(  # P: the walk spans t*P along q; None: the run's (RunSettings)
        None, "Walk length P: t*P along each direction, t in [-1, 1].",
        shown="the run's, else discover's")
    frames: int = setting(90, "Frames per video.")  # published: 180 at 60 fps; the same 3 s
    fps: float = setting(30.0, "Frames per second, 0.1 to 240 (GIF delays are rounded to 10 ms).")
    easing: str = setting(      # 'loop' centre->+1->centre->-1->centre, 'linear' -1..1
        "loop", "loop: centre -> +1 -> centre -> -1 -> centre, seamless; linear: -1 .. +1.",
        choices=EASINGS)
    fmt: str = setting("mp4", "mp4 (H.264, needs imageio-ffmpeg) or a looping gif.",
                       choices=FORMATS, option="--format")
    layout: str = setting(      # 'grid': one video; 'per-direction': one video per row
        "grid", "grid: one video, a row per direction, a column per seed; per-direction: one "
                "video per direction.", choices=LAYOUTS)
    strip: bool = setting(      # a PNG strip instead of videos
        False, "Write a PNG strip instead of videos: a row per direction, --strip-steps "
               "columns from -1 to +1, first seed only.")
    strip_steps: int = setting(9, "Columns of --strip.")   # t evenly spaced over [-1, 1]
    labels: bool = setting(True, "Direction numbers in a column on the left (grid and strip).")
    batch_size: int = setting(  # images per generator call
        BATCH_SIZE, "Images per generator call (lower it if the device runs out of memory).")
    precision: str = precision_setting()   # frames are uint8: no check against fp32
    compile: bool | None = compile_setting()

    def validate(self) -> RenderConfig:
        """Raise SettingError on a setting outside its range; return self. path_size may be
        None here (the run's, filled in before rendering)."""
        if self.path_size is not None:
            positive("path_size", self.path_size)
        need(isinstance(self.frames, int) and 1 <= self.frames <= MAX_FRAMES, "frames",
             self.frames, f"must be from 1 to {MAX_FRAMES} (55 minutes at 30 fps), e.g. 90.")
        low, high = FPS_RANGE
        need(isinstance(self.fps, (int, float)) and math.isfinite(self.fps)
             and low <= self.fps <= high, "fps", self.fps,
             f"must be from {low:g} to {high:g} frames per second, e.g. 30.")
        one_of("easing", self.easing, EASINGS)
        one_of("fmt", self.fmt, FORMATS)
        one_of("layout", self.layout, LAYOUTS)
        at_least("strip_steps", self.strip_steps, 2)
        at_least("batch_size", self.batch_size, 1)
        one_of("precision", self.precision, PRECISIONS)
        return self

    def walk_length(self) -> float:
        """path_size, which must be set by now (SettingError otherwise)."""
        need(self.path_size is not None, "path_size", self.path_size,
             "give the walk length P, e.g. 5.0 (a run's is RunSettings.path_size).")
        return float(self.path_size)


# ---------------------------------------------------------------- what to render from a run
@dataclass(frozen=True)
class RenderPlan:
    """What a run (or a baseline) renders, before the model is loaded.

    indices: row numbers in the run's (or the baseline's) matrix, in render order.
    directions: (K, z_dim) those rows; None for a baseline without a run (built from the
    model's z_dim by load()). out_dir: the run's videos/ folder, or outputs/baselines/<model>/<class>/.
    tag: file-name prefix naming the baseline and overridden settings (c<index>_, t<truncation>_).
    """

    run: Run | None
    settings: RunSettings
    indices: list[int]
    out_dir: Path
    tag: str = ""
    directions: torch.Tensor | None = None
    baseline: str | None = None          # 'random' | 'coords' | None
    seed: int = 0                        # the random baseline's seed
    captions: tuple[str, ...] | None = None   # row captions (e.g. '5 zoom'); None: the indices

    @property
    def class_index(self) -> int:
        return self.settings.class_index

    @property
    def truncation(self) -> float:
        return self.settings.truncation

    @property
    def path_size(self) -> float:
        return self.settings.path_size

    def record(self) -> dict[str, Any]:
        """What the rendered files record about where their directions came from."""
        s = self.settings
        out = dict(model=s.model, class_index=s.class_index, class_name=s.class_name,
                   directions_file=str(self.run.directions_path) if self.run is not None else None,
                   baseline=self.baseline)
        if self.baseline == "random":
            out["baseline_seed"] = self.seed
        return out

    def directions_for(self, z_dim: int) -> torch.Tensor:
        """(K, z_dim): the run's rows, or the baseline's rows inside the run's subspace."""
        if self.directions is not None:
            return self.directions
        lo, hi = self.settings.subspace or (0, z_dim)
        where = self.run.name if self.run is not None else f"the model {self.settings.model}"
        _check_indices(self.indices, hi - lo, f"the {self.baseline} baseline of {where}")
        full = baseline_rows(self.baseline, max(self.indices) + 1, z_dim, self.settings.subspace,
                             self.seed)
        return full[self.indices]

    def load(self, device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
             progress: bool = True):
        """Load the model bound to class and truncation; return (BigGANGenerator, (K, D) directions)."""
        s = self.settings
        G = BigGANGenerator(load_biggan(s.model, device, weights_dir, progress), s.class_index,
                            s.truncation)
        q = self.directions_for(G.z_dim)
        if q.shape[1] != G.z_dim:
            source = s.sources.get("model", "")
            where = f" ({source})" if source.startswith("recorded in ") else ""
            raise UserError(f"the directions have {q.shape[1]} latent coordinates but the model "
                            f"{s.model}{where} has z_dim {G.z_dim}; give the model they were "
                            f"found with.")
        return G, q.to(device)


def baseline_rows(kind: str, n: int, z_dim: int, subspace: tuple[int, int] | None,
                  seed: int) -> torch.Tensor:
    """(n, z_dim) baseline directions: random orthonormal (seeded) or axes, inside `subspace`."""
    return baseline_directions(kind, n, z_dim, subspace, torch.Generator().manual_seed(seed))


def plan_render(run: Run | None, settings: RunSettings, *, top: int | None = None,
                dirs: Sequence[int] | None = None, baseline: str | None = None,
                seed: int = 0) -> RenderPlan:
    """What to render of `run` with `settings` (layout.resolve_run_settings): the first `top` of its
    scores ranking (scores_file.read_ranking), the rows `dirs`, or the first DEFAULT_NDIRS rows.
    baseline 'random' (orthonormal, seeded by `seed`) or 'coords' (axes): the paper's comparisons,
    inside the run's subspace when there is a run. Raises UserError; reads, never writes."""
    if run is None and baseline is None:
        raise UserError("nothing to render: give a run, or a baseline kind (random or coords).")
    if baseline is not None:
        one_of("baseline", baseline, BASELINES)
    if dirs is not None and top is not None:
        raise UserError("top and dirs exclude each other; give one.")
    if top is not None and baseline is not None:
        raise UserError("top ranks a scored run's own directions; select baseline rows with dirs.")
    dirs = None if dirs is None else [int(i) for i in dirs]
    tag = [] if baseline is None else [f"random-seed{seed}" if baseline == "random" else "coords"]
    if settings.overridden("class_index"):
        tag.append(f"c{settings.class_index}")
    if settings.overridden("truncation"):
        tag.append(f"t{settings.truncation:g}")

    q = None
    if baseline is not None:
        indices = dirs if dirs is not None else list(range(DEFAULT_NDIRS))
    else:
        n = run.directions.shape[0]
        if top is not None:
            indices = read_ranking(run, top)
        elif dirs is not None:
            indices = dirs
            _check_indices(indices, n, run.name)
        else:
            indices = list(range(min(DEFAULT_NDIRS, n)))
        q = run.directions[indices]
    if run is None:
        out_dir = (BASELINES_DIR / model_label(settings.model)
                   / f"{settings.class_index}-{slug(settings.class_name)}")
    else:
        out_dir = run.videos_dir
    plan = RenderPlan(run=run, settings=settings, indices=indices, out_dir=out_dir,
                      tag="".join(f"{x}_" for x in tag), directions=q, baseline=baseline, seed=seed)
    if baseline is not None and run is not None:       # z_dim known: check the rows now
        plan = dataclasses.replace(plan, directions=plan.directions_for(run.directions.shape[1]))
    return plan


def _check_indices(indices: Sequence[int], n: int, source: str) -> None:
    if not indices:
        raise SettingError("dirs", [], "empty selection; give direction numbers like 0-7.")
    bad = [i for i in indices if i >= n]
    if bad:
        raise SettingError("dirs", bad[0], f"out of range; {source} has {n} directions (0-{n - 1}).")


# ---------------------------------------------------------------- names and checks
def render_paths(out_dir: str | os.PathLike, config: RenderConfig, indices: Sequence[int],
                 seeds: Sequence[int], tag: str = "") -> list[Path]:
    """The files render_directions writes, in order. Names say what is in them:
    [tag]grid_dirs0-7_seeds0-5_p5.0_loop.mp4, [tag]dir003_seeds0-5_p5.0_loop.gif,
    [tag]strip_dirs0-7_seed0_p5.0.png (a strip shows the first seed only)."""
    out_dir = Path(out_dir)
    p = f"p{config.walk_length()}"
    if config.strip:
        return [out_dir / f"{tag}strip_dirs{format_int_list(list(indices))}_seed{seeds[0]}_{p}.png"]
    tail = f"seeds{format_int_list(list(seeds))}_{p}_{config.easing}.{config.fmt}"
    if config.layout == "grid":
        return [out_dir / f"{tag}grid_dirs{format_int_list(list(indices))}_{tail}"]
    return [out_dir / f"{tag}dir{i:03d}_{tail}" for i in indices]


def preflight(paths: Sequence[Path], config: RenderConfig, overwrite: bool = False) -> None:
    """Everything that can fail before generating: settings, ffmpeg (MP4), the output folder
    (writable; it may not exist yet) and every target name (none may exist unless overwrite).
    Raises UserError; creates nothing."""
    config.validate()
    if config.fmt == "mp4" and not config.strip:
        ffmpeg_exe()
    for folder in dict.fromkeys(p.parent for p in paths):
        check_writable_dir(folder)
    existing = [p for p in paths if p.exists()]
    folders_in_the_way = [p for p in existing if p.is_dir()]
    if folders_in_the_way:
        raise UserError(f"{folders_in_the_way[0]} is a folder; move it or choose another output folder.")
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} exists{more}; pass --overwrite to replace, or choose "
                        f"another output folder.")


def check_frame_size(config: RenderConfig, ndirs: int, nseeds: int, resolution: int) -> None:
    """UserError when a video frame of `ndirs` directions x `nseeds` seeds (cells of
    `resolution` pixels) is larger than its format takes (MAX_FRAME_SIDE); strips are PNGs."""
    if config.strip:
        return
    rows = ndirs if config.layout == "grid" else 1
    height, width = frame_size(rows, nseeds, resolution, config.labels and config.layout == "grid")
    side = MAX_FRAME_SIDE[config.fmt]
    if max(height, width) > side:
        fewer = "fewer seeds" if width > side else "fewer directions, or one video per direction"
        raise UserError(f"a frame of {rows} direction(s) x {nseeds} seed(s) is {width} x {height} "
                        f"pixels; {config.fmt.upper()} frames are at most {side} pixels a side: "
                        f"render {fewer}.")


# ---------------------------------------------------------------- the library entry points
def render_plan(plan: RenderPlan, config: RenderConfig, seeds: Sequence[int], *,
                out_dir: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                weights_dir: str | os.PathLike | None = None, overwrite: bool = False,
                progress: bool = True) -> list[Path]:
    """Render a plan: check every target, then load the model and render_directions.
    config.path_size None takes the plan's; out_dir None the plan's. Returns the files."""
    if config.path_size is None:
        config = dataclasses.replace(config, path_size=plan.path_size)
    out_dir = plan.out_dir if out_dir is None else Path(out_dir)
    preflight(render_paths(out_dir, config, plan.indices, seeds, plan.tag), config, overwrite)
    resolve(config.precision, device)     # e.g. tf32 on the CPU: refused before loading
    G, directions = plan.load(device, weights_dir, progress)
    return render_directions(G, directions, seeds, out_dir, config, indices=plan.indices,
                             tag=plan.tag, device=device, overwrite=overwrite, progress=progress,
                             record=plan.record(), captions=plan.captions)


def render_directions(G, directions: torch.Tensor, seeds: Sequence[int], out_dir: str | os.PathLike,
                      config: RenderConfig | None = None, *, indices: Sequence[int] | None = None,
                      tag: str = "", truncation: float | None = None,
                      device: torch.device | str | None = None, overwrite: bool = False,
                      progress: bool = True, record: dict[str, Any] | None = None,
                      captions: Sequence[str] | None = None, **settings) -> list[Path]:
    """Render walks along `directions` as videos (or a PNG strip) into out_dir; return the paths.

    G: generator (z_dim D, resolution R, G(z) -> (B, 3, R, R) in [-1, 1]), already on `device`.
    directions: (K, D) unit rows, rendered in this order. seeds: the samples (one column each),
    latents drawn by latents_for_seeds at `truncation` (default: G.truncation, else 1).
    config: RenderConfig (its path_size must be set); keyword `settings` override its fields
    (e.g. frames=30, fmt='gif', path_size=5.0). indices: K direction numbers for names and labels
    (default 0..K-1). tag: file-name prefix. captions: K row captions of the grid and strip
    (e.g. '5 zoom'; default: the indices).
    All targets are checked before anything is generated; nothing is overwritten unless overwrite.
    out_dir is created only once the checks pass, and removed again if it stays empty.
    Each file carries a JSON record of what it shows (directions, seeds, truncation, config,
    plus `record`, e.g. model and class) in its comment (MP4, GIF) or PNG text 'biggan-directions'.
    """
    config = dataclasses.replace(config or RenderConfig(), **settings).validate()
    path_size = config.walk_length()
    seeds = [int(s) for s in seeds]
    q = directions.detach().float()
    if q.ndim != 2 or q.shape[0] < 1:
        raise SettingError("dirs", [], "no directions selected; give direction numbers like 0-7.")
    if q.shape[1] != G.z_dim:
        raise UserError(f"the directions have {q.shape[1]} latent coordinates but the model's "
                        f"z_dim is {G.z_dim}; render them with the model they were found in.")
    if not seeds:
        raise SettingError("seeds", [], "empty selection; give seeds like 0-5.")
    need(len(seeds) <= MAX_SEEDS, "seeds", format_int_list(seeds, None),
         f"{len(seeds)} seeds; at most {MAX_SEEDS} (one frame column each).")
    indices = list(range(q.shape[0])) if indices is None else [int(i) for i in indices]
    if len(indices) != q.shape[0]:
        raise ValueError(f"{len(indices)} indices for {q.shape[0]} directions")
    paths = render_paths(out_dir, config, indices, seeds, tag)
    preflight(paths, config, overwrite)

    check_frame_size(config, q.shape[0], len(seeds), G.resolution)
    device = torch.device(device) if device is not None else _device_of(G)
    if truncation is None:
        truncation = getattr(G, "truncation", 1.0)
    z = latents_for_seeds(seeds, q.shape[1], check_truncation(truncation)).to(device)  # (S, D)
    G = generator_call(G, config.precision, config.compile, device)   # runtime.precision.resolve
    q = q.to(device)
    if captions is not None and len(captions) != len(indices):
        raise ValueError(f"{len(captions)} captions for {len(indices)} directions")
    labels = (list(captions) if captions is not None else [str(i) for i in indices]) \
        if config.labels else None

    def comment(rows: list[int]) -> str:
        return json.dumps({"tool": "biggan-directions render", **(record or {}),
                           "directions": format_int_list(rows, None),   # '0-7': bounded in size
                           "seeds": format_int_list(seeds, None), "truncation": float(truncation),
                           "config": dataclasses.asdict(config), "precision": G.precision},
                          sort_keys=True)

    with output_folder(out_dir):                     # removed again if the render fails
        if config.strip:
            image = strip_image(G, q, z[0], config.strip_steps, path_size, labels=labels,
                                batch_size=config.batch_size)
            return [save_png(paths[0], image, comment(indices))]
        jobs = ([(paths[0], q, labels, indices)] if config.layout == "grid"
                else [(path, q[k:k + 1], None, [indices[k]]) for k, path in enumerate(paths)])
        return _write_videos(G, jobs, z, config, comment, progress)


def _write_videos(G, jobs, z: torch.Tensor, config: RenderConfig, comment, progress: bool) -> list[Path]:
    """One video per job (path, (K, D) rows, labels, row indices); frames streamed to the sink."""
    t = easing_positions(config.easing, config.frames)
    written = []
    with tqdm(total=config.frames * len(jobs), unit="frame", disable=not progress,
              desc="render", dynamic_ncols=True) as bar:
        for path, rows, row_labels, row_indices in jobs:
            size = frame_size(rows.shape[0], z.shape[0], G.resolution, row_labels)
            sink = None
            try:
                sink = VideoSink(path, config.fmt, size, config.fps, comment(row_indices))
                for frame in walk_frames(G, rows, z, t, config.path_size, labels=row_labels,
                                         batch_size=config.batch_size):
                    sink.put(frame)
                    bar.update(1)
                written.append(sink.finish())
            except BaseException:
                if sink is not None:
                    sink.abort()
                raise
    return written


def _device_of(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")

