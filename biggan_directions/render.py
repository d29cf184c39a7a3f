"""Interpolation videos (MP4/GIF) and PNG strips of latent walks along directions, streamed in batches.

A walk takes sample z along direction q: z - (z.q) q + t * P * q (walks.walk_latents), with t from
walks.easing. One video frame shows one t. Frames are generated in batches of images on the
device, tiled into the frame there, and handed one by one through a bounded queue to a writer
thread (ffmpeg for MP4, Pillow's GIF pieces for GIF), so memory does not grow with the number
of frames. Every file goes to a temporary name in its folder first, then os.replace.

Frame layout (grid): one row per direction, one column per sample, each cell R x R pixels (R the
generator's resolution), plus, with labels, a black column of label_width(R) pixels on the left
holding each row's direction index. yuv420p video needs even sizes: an odd height or width gets
one black pixel row/column at the bottom/right (never happens for BigGAN: R is even).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from .errors import UserError, first_line
from .fileio import atomic_path, temp_beside
from .discover import DiscoverConfig
from .generator import check_truncation, latents_for_seeds
from .walks import easing as easing_positions
from .walks import walk_latents

FORMATS = ("mp4", "gif")
LAYOUTS = ("grid", "per-direction")
EASINGS = ("loop", "linear")
BASELINES = ("random", "coords")
# Baselines and files that record no settings use discover's defaults, so a baseline video is
# directly comparable with a default discovery run.
DEFAULT_PATH_SIZE = DiscoverConfig.path_size    # the published path size (eta)
DEFAULT_TRUNCATION = DiscoverConfig.truncation
DEFAULT_NDIRS = 8           # directions per video when neither --dirs nor --top is given
MP4_QUALITY = 8             # imageio-ffmpeg's 1-10 scale; 8 -> libx264 -crf 10 (visually lossless)
QUEUE_FRAMES = 8            # frames waiting for the writer thread at most
RECORD_KEY = "biggan-directions"  # PNG text key of the settings record (MP4/GIF: 'comment')


@dataclass(frozen=True)
class RenderConfig:
    """How to render walks; written into file names (path size, easing) and validated by check()."""

    path_size: float = DEFAULT_PATH_SIZE  # P: the walk spans t*P along q, t in [-1, 1]
    frames: int = 90                      # frames per video (published: 180 at 60 fps; same 3 s)
    fps: float = 30.0                     # playback rate; GIF stores delays in 10 ms steps
    easing: str = "loop"                  # 'loop' centre->+1->centre->-1->centre, 'linear' -1..1
    fmt: str = "mp4"                      # 'mp4' (H.264 via imageio-ffmpeg) or 'gif'
    layout: str = "grid"                  # 'grid': one video; 'per-direction': one video per row
    strip: bool = False                   # write a PNG strip instead of videos
    strip_steps: int = 9                  # strip columns: t evenly spaced over [-1, 1]
    labels: bool = True                   # direction-index column on the left (grid, strip)
    batch_size: int = 16                  # images per generator call

    def check(self) -> RenderConfig:
        """Raise UserError on a setting outside its range; return self."""
        if not self.path_size > 0:
            raise UserError(f"--path-size {self.path_size}: must be > 0, e.g. 5.")
        if self.frames < 1:
            raise UserError(f"--frames {self.frames}: must be at least 1.")
        if not self.fps > 0:
            raise UserError(f"--fps {self.fps}: must be > 0.")
        if self.easing not in EASINGS:
            raise UserError(f"--easing {self.easing!r}: use {' or '.join(EASINGS)}.")
        if self.fmt not in FORMATS:
            raise UserError(f"--format {self.fmt!r}: use {' or '.join(FORMATS)}.")
        if self.layout not in LAYOUTS:
            raise UserError(f"--layout {self.layout!r}: use {' or '.join(LAYOUTS)}.")
        if self.strip_steps < 2:
            raise UserError(f"--strip-steps {self.strip_steps}: must be at least 2.")
        if self.batch_size < 1:
            raise UserError(f"--batch-size {self.batch_size}: must be at least 1.")
        return self


# ---------------------------------------------------------------- frames
def label_width(resolution: int) -> int:
    """Width in pixels of the label column for cells of `resolution` pixels (even, >= 32)."""
    return max(32, resolution // 4 // 2 * 2)


def frame_size(rows: int, cols: int, resolution: int, labels: bool) -> tuple[int, int]:
    """(height, width) of a frame of rows x cols cells, label column included, padded to even."""
    h = rows * resolution
    w = cols * resolution + (label_width(resolution) if labels else 0)
    return h + h % 2, w + w % 2


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 3, H, W) uint8 in 0..255 (clamped, rounded)."""
    return ((images.clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)


def _generate(G, latents: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N, D) latents -> (N, 3, R, R) uint8 images, batch_size at a time, without autograd."""
    parts = []
    with torch.inference_mode():
        for i in range(0, latents.shape[0], batch_size):
            parts.append(to_uint8(G(latents[i:i + batch_size])))
    return torch.cat(parts)


def _tile(cells: torch.Tensor) -> torch.Tensor:
    """(..., A, B, 3, R, R) uint8 -> (..., A*R, B*R, 3): A rows and B columns of cells."""
    *lead, a, b, c, h, w = cells.shape
    x = cells.movedim(-3, -1)                       # (..., A, B, R, R, 3)
    x = x.transpose(-4, -3)                         # (..., A, R, B, R, 3)
    return x.reshape(*lead, a * h, b * w, c)


class _Canvas:
    """A black frame with the label column drawn once; frame(cells) pastes a tiled grid in."""

    def __init__(self, rows: int, cols: int, resolution: int, labels: Sequence[str] | None):
        self.rows, self.cols, self.res = rows, cols, resolution
        self.left = label_width(resolution) if labels else 0
        self.base = np.zeros((*frame_size(rows, cols, resolution, bool(labels)), 3), np.uint8)
        if labels:
            if len(labels) != rows:
                raise ValueError(f"{len(labels)} labels for {rows} rows")
            self.base[:rows * resolution, :self.left] = _label_column(labels, resolution, self.left)

    def frame(self, grid: np.ndarray) -> np.ndarray:
        """grid: (rows*R, cols*R, 3) uint8 -> the full (H, W, 3) frame."""
        out = self.base.copy()
        out[:grid.shape[0], self.left:self.left + grid.shape[1]] = grid
        return out


def _label_column(labels: Sequence[str], resolution: int, width: int) -> np.ndarray:
    """(len(labels)*R, width, 3) uint8: white text centred in each row, on black."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=max(10, width * 3 // 8))
    except TypeError:                                   # Pillow < 10.1 or no FreeType
        font = ImageFont.load_default()
    img = Image.new("RGB", (width, len(labels) * resolution))
    draw = ImageDraw.Draw(img)
    for k, text in enumerate(labels):
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        x = (width - (x1 - x0)) / 2 - x0
        y = k * resolution + (resolution - (y1 - y0)) / 2 - y0
        draw.text((x, y), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def walk_frames(G, directions: torch.Tensor, z: torch.Tensor, t: torch.Tensor, path_size: float,
                *, labels: Sequence[str] | None = None, batch_size: int = 16) -> Iterator[np.ndarray]:
    """The frames of a grid video, generated lazily in batches.

    G: generator with z_dim, resolution R, G(z) -> (B, 3, R, R) in [-1, 1].
    directions: (K, D) unit rows (row k of the grid); z: (S, D) samples (column s); both on G's
    device. t: (T,) walk positions in [-1, 1], one frame each. labels: K strings or None.
    Yields T arrays (H, W, 3) uint8 of frame_size(K, S, R, labels): cell (k, s) of frame i is
    G(z_s - (z_s.q_k) q_k + t_i * path_size * q_k). At most max(batch_size, K*S) images live at once.
    """
    k, s, d = directions.shape[0], z.shape[0], z.shape[1]
    canvas = _Canvas(k, s, G.resolution, labels)
    per_chunk = max(1, batch_size // (k * s))            # frames per chunk
    for start in range(0, t.shape[0], per_chunk):
        tc = t[start:start + per_chunk].to(z.device)
        lat = walk_latents(z, directions, tc, path_size)  # (K, Tc, S, D)
        lat = lat.transpose(0, 1).reshape(-1, d)          # (Tc*K*S, D), frame-major
        cells = _generate(G, lat, batch_size)             # (Tc*K*S, 3, R, R)
        grids = _tile(cells.view(-1, k, s, *cells.shape[1:])).cpu().numpy()  # (Tc, K*R, S*R, 3)
        for grid in grids:
            yield canvas.frame(grid)


def strip_image(G, directions: torch.Tensor, z: torch.Tensor, steps: int, path_size: float,
                *, labels: Sequence[str] | None = None, batch_size: int = 16) -> np.ndarray:
    """(H, W, 3) uint8 PNG strip: row k walks one sample z ((D,) or (1, D)) along directions[k];
    column j is t = -1 + 2j/(steps-1), i.e. `steps` positions evenly over [-1, 1]."""
    z = z.reshape(1, -1)
    d = z.shape[1]
    t = torch.linspace(-1.0, 1.0, steps, device=z.device)
    lat = walk_latents(z, directions, t, path_size).reshape(-1, d)   # (K*steps, D)
    cells = _generate(G, lat, batch_size)                            # (K*steps, 3, R, R)
    grid = _tile(cells.view(directions.shape[0], steps, *cells.shape[1:])).cpu().numpy()
    return _Canvas(directions.shape[0], steps, G.resolution, labels).frame(grid)


# ---------------------------------------------------------------- encoders and atomic files
def ffmpeg_exe() -> str:
    """The ffmpeg binary imageio-ffmpeg will use; UserError saying how to get one if absent."""
    hint = "MP4 needs ffmpeg from imageio-ffmpeg: pip install imageio-ffmpeg, or use --format gif."
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UserError(f"imageio-ffmpeg is not installed; {hint}") from None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # RuntimeError when no binary is found
        raise UserError(f"no ffmpeg found ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                        f"{hint}") from None
    if not (os.path.isfile(exe) or shutil.which(exe)):
        raise UserError(f"ffmpeg {exe!r} does not exist; {hint}")
    return exe


class _Mp4Encoder:
    """H.264 (libx264, yuv420p) through imageio-ffmpeg's pipe; frames are not resized
    (macro_block_size=1), so sizes must be even (frame_size pads them)."""

    def __init__(self, path: Path, size_hw: tuple[int, int], fps: float, comment: str = ""):
        import imageio_ffmpeg

        self.path = path
        self._gen = imageio_ffmpeg.write_frames(
            str(path), (size_hw[1], size_hw[0]), fps=float(fps), codec="libx264",
            pix_fmt_out="yuv420p", macro_block_size=1, quality=MP4_QUALITY,
            ffmpeg_log_level="error",
            output_params=["-movflags", "+faststart", "-metadata", f"comment={comment}"])
        self._gen.send(None)

    def add(self, frame: np.ndarray) -> None:
        self._gen.send(np.ascontiguousarray(frame))

    def close(self) -> None:
        self._gen.close()                                   # waits for ffmpeg to finish
        if self.path.stat().st_size == 0:
            raise OSError("ffmpeg wrote nothing; see its message above")


class _GifEncoder:
    """Looping GIF (NETSCAPE loop 0 = forever), streamed frame by frame through Pillow's GIF
    writer pieces (GifImagePlugin.getheader / getdata): each frame gets its own 256-colour
    adaptive palette, every frame is kept (Pillow's save_all would merge identical neighbours and
    hold all frames until the end). Delays are stored in 10 ms steps. `comment` goes into a GIF
    comment extension."""

    def __init__(self, path: Path, size_hw: tuple[int, int], fps: float, comment: str = ""):
        self.duration = max(10, int(round(100.0 / fps)) * 10)   # ms per frame
        self.comment = comment
        self._fp = open(path, "wb")
        self._started = False

    def add(self, frame: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        im = Image.fromarray(frame).convert("P", palette=Image.Palette.ADAPTIVE)
        if not self._started:
            info = {"loop": 0, "duration": self.duration, "comment": self.comment}
            header, _ = GifImagePlugin.getheader(im, None, info)
            self._fp.write(b"".join(header))
            self._started = True
        self._fp.write(b"".join(GifImagePlugin.getdata(im, duration=self.duration,
                                                       include_color_table=True)))

    def close(self) -> None:
        if not self._fp.closed:
            self._fp.write(b";")                                 # GIF trailer
            self._fp.close()




class _VideoSink:
    """Writes frames to `path` atomically: encoder on a temp file in the same folder, fed by a
    writer thread through a bounded queue, then os.replace on finish(); abort() removes the temp."""

    _DONE = object()

    def __init__(self, path: Path, fmt: str, size_hw: tuple[int, int], fps: float,
                 comment: str = ""):
        self.path = path
        self.tmp = temp_beside(path)
        self._error: BaseException | None = None
        self._aborted = False
        try:
            encoder = _Mp4Encoder if fmt == "mp4" else _GifEncoder
            self._encoder = encoder(self.tmp, size_hw, fps, comment)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._thread = threading.Thread(target=self._work, name=f"write {path.name}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if self._error is None and not self._aborted:
                try:
                    self._encoder.add(item)
                except BaseException as e:  # reported to the producer by put()/finish()
                    self._error = e

    def put(self, frame: np.ndarray) -> None:
        while True:
            self._raise_error()
            try:
                self._queue.put(frame, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> Path:
        self._queue.put(self._DONE)
        self._thread.join()
        self._raise_error()
        try:
            self._encoder.close()
        except OSError as e:
            raise UserError(f"{self.path}: could not write the video ({first_line(e)}).") from None
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._aborted = True
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._queue.put(self._DONE)
        self._thread.join(timeout=30)
        try:
            self._encoder.close()                        # ffmpeg ends; the partial file goes
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def _raise_error(self) -> None:
        if self._error is not None:
            if isinstance(self._error, OSError):
                raise UserError(f"{self.path}: could not write the video "
                                f"({first_line(self._error)}).") from None
            raise self._error


def _save_png(path: Path, image: np.ndarray, comment: str = "") -> Path:
    from PIL import Image, PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text(RECORD_KEY, comment)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", pnginfo=text)
    return path




# ---------------------------------------------------------------- names and checks
def format_int_list(values: Sequence[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7' (what ranges.parse_int_list reads back); order is kept.
    Lists whose text would be longer than 40 characters become 'n<count>-<hash>'."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if j == i else f"{values[i]}-{values[j]}")
        i = j + 1
    text = ",".join(parts)
    if len(text) > 40:
        text = f"n{len(values)}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return text


def render_paths(out_dir: str | os.PathLike, config: RenderConfig, indices: Sequence[int],
                 seeds: Sequence[int], tag: str = "") -> list[Path]:
    """The files render_directions writes, in order. Names say what is in them:
    [tag]grid_dirs0-7_seeds0-5_p5.0_loop.mp4, [tag]dir003_seeds0-5_p5.0_loop.gif,
    [tag]strip_dirs0-7_seed0_p5.0.png (a strip shows the first seed only)."""
    out_dir = Path(out_dir)
    p = f"p{float(config.path_size)}"
    seeds_text = format_int_list(list(seeds))
    if config.strip:
        return [out_dir / f"{tag}strip_dirs{format_int_list(list(indices))}_seed{seeds[0]}_{p}.png"]
    tail = f"seeds{seeds_text}_{p}_{config.easing}.{config.fmt}"
    if config.layout == "grid":
        return [out_dir / f"{tag}grid_dirs{format_int_list(list(indices))}_{tail}"]
    return [out_dir / f"{tag}dir{i:03d}_{tail}" for i in indices]


def preflight(paths: Sequence[Path], config: RenderConfig, overwrite: bool = False) -> None:
    """Everything that can fail before generating: settings, ffmpeg (MP4), the output folder
    (created if needed, must be writable) and every target name (none may exist unless
    overwrite). Raises UserError; writes nothing but the folder."""
    config.check()
    if config.fmt == "mp4" and not config.strip:
        ffmpeg_exe()
    folders = {p.parent for p in paths}
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test.")
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise UserError(f"cannot write to the output folder {folder} ({first_line(e)}); "
                            f"choose another with --out.") from None
    existing = [p for p in paths if p.exists()]
    folders_in_the_way = [p for p in existing if p.is_dir()]
    if folders_in_the_way:
        raise UserError(f"{folders_in_the_way[0]} is a folder; move it or choose --out.")
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise UserError(f"{existing[0]} exists{more}; pass --overwrite to replace, or choose --out.")


# ---------------------------------------------------------------- the library entry point
def render_directions(G, directions: torch.Tensor, seeds: Sequence[int], out_dir: str | os.PathLike,
                      config: RenderConfig | None = None, *, indices: Sequence[int] | None = None,
                      tag: str = "", truncation: float | None = None,
                      device: torch.device | str | None = None, overwrite: bool = False,
                      progress: bool = True, record: dict[str, Any] | None = None,
                      **settings) -> list[Path]:
    """Render walks along `directions` as videos (or a PNG strip) into out_dir; return the paths.

    G: generator (z_dim D, resolution R, G(z) -> (B, 3, R, R) in [-1, 1]), already on `device`.
    directions: (K, D) unit rows, rendered in this order. seeds: the samples (one column each),
    latents drawn by latents_for_seeds at `truncation` (default: G.truncation, else 1).
    config: RenderConfig; keyword `settings` override its fields (e.g. frames=30, fmt='gif').
    indices: K direction numbers for names and labels (default 0..K-1). tag: file-name prefix.
    All targets are checked before anything is generated; nothing is overwritten unless overwrite.
    Each file carries a JSON record of what it shows (directions, seeds, truncation, config,
    plus `record`, e.g. model and class) in its comment (MP4, GIF) or PNG text 'biggan-directions'.
    """
    config = dataclasses.replace(config or RenderConfig(), **settings).check()
    seeds = [int(s) for s in seeds]
    q = directions.detach().float()
    if q.ndim != 2 or q.shape[0] < 1:
        raise UserError("no directions selected; give --dirs like 0-7.")
    if q.shape[1] != G.z_dim:
        raise UserError(f"the directions have {q.shape[1]} latent coordinates but the model's "
                        f"z_dim is {G.z_dim}; render them with the model they were found in.")
    if not seeds:
        raise UserError("--seeds: empty selection; give seeds like 0-5.")
    indices = list(range(q.shape[0])) if indices is None else [int(i) for i in indices]
    if len(indices) != q.shape[0]:
        raise ValueError(f"{len(indices)} indices for {q.shape[0]} directions")
    paths = render_paths(out_dir, config, indices, seeds, tag)
    preflight(paths, config, overwrite)

    device = torch.device(device) if device is not None else _device_of(G)
    if truncation is None:
        truncation = getattr(G, "truncation", 1.0)
    z = latents_for_seeds(seeds, q.shape[1], check_truncation(truncation)).to(device)  # (S, D)
    q = q.to(device)
    labels = [str(i) for i in indices] if config.labels else None

    def comment(rows: list[int]) -> str:
        return json.dumps({"tool": "biggan-directions render", **(record or {}),
                           "directions": rows, "seeds": seeds, "truncation": float(truncation),
                           "config": dataclasses.asdict(config)}, sort_keys=True)

    if config.strip:
        image = strip_image(G, q, z[0], config.strip_steps, config.path_size, labels=labels,
                            batch_size=config.batch_size)
        return [_save_png(paths[0], image, comment(indices))]

    t = easing_positions(config.easing, config.frames)
    jobs = ([(paths[0], q, labels, indices)] if config.layout == "grid"
            else [(path, q[k:k + 1], None, [indices[k]]) for k, path in enumerate(paths)])
    from tqdm.auto import tqdm

    written = []
    with tqdm(total=config.frames * len(jobs), unit="frame", disable=not progress,
              desc="render", dynamic_ncols=True) as bar:
        for path, rows, row_labels, row_indices in jobs:
            size = frame_size(rows.shape[0], len(seeds), G.resolution, bool(row_labels))
            sink = _VideoSink(path, config.fmt, size, config.fps, comment(row_indices))
            try:
                for frame in walk_frames(G, rows, z, t, config.path_size, labels=row_labels,
                                         batch_size=config.batch_size):
                    sink.put(frame)
                    bar.update(1)
                written.append(sink.finish())
            except BaseException:
                sink.abort()
                raise
    return written


def _device_of(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


# ---------------------------------------------------------------- runs and baselines
@dataclass
class RenderSource:
    """What a RUN (or a baseline) resolves to, before the model is loaded.

    directions: (K, z_dim) the selected rows in render order, None for a baseline (built from the
    model's z_dim by load()). indices: their row numbers in the run's (or baseline's) matrix.
    """

    model: str
    class_index: int
    class_name: str
    truncation: float
    path_size: float
    indices: list[int]
    out_dir: Path
    tag: str = ""                        # file-name prefix: baseline kind, overridden settings
    directions: torch.Tensor | None = None
    baseline: str | None = None          # 'random' | 'coords' | None
    seed: int = 0                        # random baseline's seed
    subspace: tuple[int, int] | None = None  # the run's latent range: baselines stay inside it
    source: str | None = None            # the directions file, None for a bare baseline

    def record(self) -> dict[str, Any]:
        """What the rendered files should record about where their directions came from."""
        out = dict(model=self.model, class_index=self.class_index, class_name=self.class_name,
                   directions_file=self.source, baseline=self.baseline)
        if self.baseline == "random":
            out["baseline_seed"] = self.seed
        return out

    def load(self, device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
             progress: bool = True):
        """Load the model bound to class and truncation; return (BigGANGenerator, (K, D) directions)."""
        from .directions import baseline_directions
        from .generator import BigGANGenerator
        from .weights import load_biggan

        net = load_biggan(self.model, device, weights_dir, progress)
        G = BigGANGenerator(net, self.class_index, self.truncation)
        if self.baseline is None:
            q = self.directions
        else:
            lo, hi = self.subspace or (0, G.z_dim)
            _check_indices(self.indices, hi - lo, f"the {self.baseline} baseline of {self.model}",
                           "directions")
            n = max(self.indices) + 1
            full = baseline_directions(self.baseline, n, G.z_dim, self.subspace,
                                       torch.Generator().manual_seed(self.seed))
            q = full[self.indices]
        if q.shape[1] != G.z_dim:
            raise UserError(f"the directions have {q.shape[1]} latent coordinates but {self.model} "
                            f"has z_dim {G.z_dim}; pass the model they were found with (--model).")
        return G, q.to(device)


def open_render_source(run: str | os.PathLike | None = None, *, baseline: str | None = None,
                       dirs: str | None = None, top: int | None = None,
                       class_query: str | int | None = None, truncation: float | None = None,
                       path_size: float | None = None, model: str | None = None,
                       seed: int = 0) -> RenderSource:
    """Resolve a RUN (run folder or directions file) and/or a baseline into what to render.

    Class, truncation, path size and model default to those recorded with the directions;
    explicit values override them (and then appear in file names: c<index>, t<truncation>).
    dirs: '0-7'-style selection; top: the K best of the run's scores.json ranking.
    baseline 'random' (seeded orthonormal) or 'coords' (axes): the paper's comparisons; with a
    RUN they take its settings, without one they need class_query.
    """
    from .classes import resolve_class
    from .runs import VIDEOS_DIR, model_label, open_run, slug

    if run is None and baseline is None:
        raise UserError("give a RUN (run folder or directions file), or --directions random|coords "
                        "with --class.")
    if baseline is not None and baseline not in BASELINES:
        raise UserError(f"--directions {baseline!r}: use random or coords.")
    if dirs is not None and top is not None:
        raise UserError("--dirs and --top exclude each other; use one.")
    if top is not None and baseline is not None:
        raise UserError("--top ranks a scored run's own directions; select baseline directions "
                        "with --dirs.")
    r = open_run(run) if run is not None else None
    meta = r.meta if r is not None else {}
    source_name = str(r.directions_path) if r is not None else "--directions"

    tag = [] if baseline is None else [f"random-seed{seed}" if baseline == "random" else "coords"]
    if class_query is not None:
        c = resolve_class(class_query)
        class_index, class_name = c.index, c.name
        if "class_index" in meta and int(meta["class_index"]) != class_index:
            tag.append(f"c{class_index}")
    elif "class_index" in meta:
        class_index = int(meta["class_index"])
        class_name = meta.get("class_name") or resolve_class(class_index).name
    elif r is None:
        raise UserError(f"--directions {baseline} needs --class (e.g. --class 'golden retriever').")
    else:
        raise UserError(f"{source_name} records no class_index; pass --class.")

    recorded_t = float(meta.get("truncation", DEFAULT_TRUNCATION))
    trunc = check_truncation(recorded_t if truncation is None else truncation)
    if trunc != recorded_t:
        tag.append(f"t{trunc:g}")
    p = float(meta.get("path_size", DEFAULT_PATH_SIZE) if path_size is None else path_size)
    if not p > 0:
        raise UserError(f"--path-size {p}: must be > 0, e.g. 5.")
    model = model or meta.get("model") or "biggan-deep-128"

    from .ranges import parse_int_list

    q = None
    if baseline is not None:
        indices = parse_int_list(dirs, "--dirs") if dirs is not None else list(range(DEFAULT_NDIRS))
    else:
        n = r.directions.shape[0]
        if top is not None:
            indices = _top_ranked(r, run, top, n)
        elif dirs is not None:
            indices = parse_int_list(dirs, "--dirs")
            _check_indices(indices, n, source_name, "directions")
        else:
            indices = list(range(min(DEFAULT_NDIRS, n)))
        q = r.directions[indices]

    if r is None:
        out_dir = Path("outputs") / "baselines" / model_label(model) / f"{class_index}-{slug(class_name)}"
    elif r.folder is not None:
        out_dir = r.folder / VIDEOS_DIR
    else:
        out_dir = r.directions_path.parent / VIDEOS_DIR
    return RenderSource(model=model, class_index=class_index, class_name=class_name,
                        truncation=trunc, path_size=p, indices=indices, out_dir=out_dir,
                        tag="".join(f"{x}_" for x in tag), directions=q, baseline=baseline,
                        seed=seed, source=str(r.directions_path) if r is not None else None,
                        subspace=r.subspace if r is not None else None)


def _check_indices(indices: Sequence[int], n: int, source: str, what: str) -> None:
    if not indices:
        raise UserError("--dirs: empty selection; give direction numbers like 0-7.")
    bad = [i for i in indices if i >= n]
    if bad:
        raise UserError(f"--dirs {bad[0]}: out of range; {source} has {n} {what} (0-{n - 1}).")


def _top_ranked(r, run, top: int, n: int) -> list[int]:
    """The first `top` direction indices of the run's scores.json 'ranking' (best first)."""
    from .runs import SCORES_JSON

    if top < 1:
        raise UserError(f"--top {top}: must be at least 1.")
    file = r.folder / SCORES_JSON if r.folder is not None else None
    if file is None or not file.is_file():
        raise UserError(f"--top needs the ranking in {SCORES_JSON}, which {run} lacks; run "
                        f"`biggan-directions score {run}` first.")
    try:
        ranking = json.loads(file.read_text())["ranking"]
        if not (isinstance(ranking, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                                  and 0 <= i < n for i in ranking)
                and len(set(ranking)) == len(ranking)):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{file}: no valid 'ranking' of direction indices; rerun "
                        f"`biggan-directions score {run}`.") from None
    if top > len(ranking):
        raise UserError(f"--top {top}: {file} ranks only {len(ranking)} directions; "
                        f"use --top {len(ranking)} or less.")
    return ranking[:top]
