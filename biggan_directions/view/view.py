"""The `view` web app: one run's (or a batch's) directions as sliders over a live BigGAN image.

The image of a view is G(z - sum_i (z.q_i) q_i + sum_i a_i q_i) for the moved directions q_i
with amounts a_i in [-P, P] (P the run's path size): z's own projections on the moved
directions are replaced, as `render` does for one direction (walks.walk_latents with t = a/P).
A view's state (seed, truncation, amounts, class) travels in the URL query, so a link reproduces
it; every value is validated (ViewError, shown by the page). Starlette serves one static page
(data/view.html, inline JS/CSS, nothing from the network) and a JSON/PNG API; the model is
loaded once and a lock serialises generation, so two tabs never race it.
"""
from __future__ import annotations

import io
import json
import math
import shlex
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import urlencode

import numpy as np
import torch
from PIL import Image, PngImagePlugin
from torch import nn

from ..describe.files import run_descriptions
from ..foundation.errors import UserError, first_line
from ..foundation.fileio import atomic_path
from ..media.render import RenderConfig, render_directions
from ..models.classes import resolve_class
from ..models.generator import BigGANGenerator, latents_for_seeds
from ..models.weights import load_biggan
from ..runs.class_sets import pooled_set
from ..runs.layout import DIRECTIONS_FILE, Run, RunSettings, open_run, resolve_run_settings
from ..runs.scores_file import read_ranking, run_scores

SEED_MAX = 2**31 - 1       # seeds are 0..2**31-1 (what a page's random button draws)
DEFAULT_TOP = 16           # sliders of a scored run when neither top nor dirs is given
WALK_FRAMES = 48           # frames of a walk video: 2 s at WALK_FPS
WALK_FPS = 24.0
WALK_FORMATS = ("gif", "mp4")
PNG_KEY = "biggan-directions"  # PNG text key of a saved view's settings (as render's PNGs)
MANIFEST = "manifest.jsonl"


class ViewError(UserError):
    """A bad value in a view request (the page shows the message; HTTP 400)."""


# ---------------------------------------------------------------- the image of a view
def view_latent(z: torch.Tensor, directions: torch.Tensor, amounts: torch.Tensor) -> torch.Tensor:
    """z - sum_k (z.q_k) q_k + sum_k a_k q_k: z's projections on the moved directions replaced.

    z: (D,) sample; directions: (K, D) orthonormal rows q_k (K may be 0); amounts: (K,) a_k.
    Returns (D,). For one direction this is walks.walk_latents at t = a / P."""
    q = directions.to(z.dtype)
    coef = q @ z                                               # (K,)
    return z - coef @ q + amounts.to(z.dtype) @ q              # (D,)


def view_image(G, directions: torch.Tensor, seed: int, amounts: Mapping[int, float]) -> np.ndarray:
    """(R, R, 3) uint8 image of a view.

    G: a generator bound to a class and truncation (BigGANGenerator), on its device;
    directions: (N, D) the run's orthonormal rows; seed: the sample, drawn by latents_for_seeds at
    G.truncation; amounts: {direction index: a} in latent units (the sliders' values)."""
    device = next(G.parameters()).device
    z = latents_for_seeds([int(seed)], G.z_dim, G.truncation)[0].to(device)  # (D,)
    rows = sorted(amounts)
    q = directions[rows].to(device, torch.float32)                           # (K, D)
    a = torch.tensor([float(amounts[i]) for i in rows], dtype=torch.float32, device=device)
    with torch.inference_mode():
        x = G(view_latent(z, q, a).unsqueeze(0))[0]                      # (3, R, R) in [-1, 1]
    x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)     # as render.to_uint8
    return x.permute(1, 2, 0).cpu().numpy()


# ---------------------------------------------------------------- state in the URL
@dataclass(frozen=True)
class ViewState:
    """A validated view: seed, truncation, {direction: amount} (nonzero only), class index."""

    seed: int
    truncation: float
    amounts: tuple[tuple[int, float], ...]
    class_index: int

    def query(self) -> str:
        """The URL query that reproduces this view (what the page keeps in its address bar)."""
        q = {"cls": self.class_index, "seed": self.seed, "trunc": _num(self.truncation)}
        if self.amounts:
            q["a"] = format_amounts(dict(self.amounts))
        return urlencode(q, safe=",:")


def _num(x: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(x)).removesuffix(".0") if float(x).is_integer() else repr(float(x))


def format_amounts(amounts: Mapping[int, float]) -> str:
    """{12: 2.5, 3: -1.0} -> '3:-1,12:2.5' (what parse_amounts reads back)."""
    return ",".join(f"{i}:{_num(a)}" for i, a in sorted(amounts.items()))


def parse_amounts(text: str, ndirs: int, path_size: float) -> dict[int, float]:
    """'12:2.5,3:-1' -> {3: -1.0, 12: 2.5}; zero amounts dropped. ViewError on a malformed
    pair, a direction outside 0..ndirs-1, a repeated direction, or an amount outside [-P, P]."""
    out: dict[int, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        index, sep, value = part.partition(":")
        try:
            i, a = int(index), float(value)
        except ValueError:
            raise ViewError(f"amount {part!r}: write DIRECTION:AMOUNT, e.g. 12:2.5.") from None
        if not sep or not 0 <= i < ndirs:
            raise ViewError(f"amount {part!r}: the direction must be an index 0-{ndirs - 1}.")
        if i in out:
            raise ViewError(f"amount {part!r}: direction {i} is given twice.")
        if not math.isfinite(a) or abs(a) > path_size * (1 + 1e-9):
            raise ViewError(f"amount {part!r}: must be a number in [-{path_size:g}, {path_size:g}] "
                            f"(the run's path size).")
        if a != 0.0:
            out[i] = a
    return out


def parse_seed(text: str) -> int:
    try:
        seed = int(str(text).strip())
    except ValueError:
        raise ViewError(f"seed {text!r}: must be a whole number 0-{SEED_MAX}.") from None
    if not 0 <= seed <= SEED_MAX:
        raise ViewError(f"seed {seed}: must be in 0-{SEED_MAX}.")
    return seed


def parse_truncation(text: str) -> float:
    try:
        t = float(text)
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and 0.0 < t <= 1.0):
        raise ViewError(f"truncation {text!r}: must be a number in (0, 1], e.g. 0.5.")
    return t


# ---------------------------------------------------------------- what is served
@dataclass(frozen=True)
class ViewClass:
    """One class the viewer serves: its run folder, settings and the directions with sliders."""

    index: int
    name: str
    run: Run
    settings: RunSettings
    shown: tuple[int, ...]        # direction indices with a slider, best first when scored
    ranked: bool                  # shown comes from the run's scores
    scores: dict[int, dict[str, Any]] = field(default_factory=dict)  # direction -> rank, effect
    net: str | None = None        # the LPIPS net the scores were made with
    score_path_size: float | None = None   # the walks' path size the effects were measured at
    labels: tuple[tuple[int, str, float], ...] = ()   # (direction, label, confidence), if known


def select_directions(run: Run, top: int | None = None, dirs: Sequence[int] | None = None
                      ) -> tuple[list[int], bool]:
    """(direction indices with sliders, ranked?): `dirs` as given; else the `top` best by the
    run's scores (DEFAULT_TOP when scored and top is None); else all, when the run is unscored."""
    n = run.directions.shape[0]
    if dirs is not None:
        if top is not None:
            raise UserError("dirs and top both given; pass one.")
        bad = [i for i in dirs if not 0 <= i < n]
        if bad or not dirs:
            raise UserError(f"dirs: {run.name} has directions 0-{n - 1}" +
                            (f", not {bad[0]}." if bad else "; the selection is empty."))
        return list(dirs), False
    if top is not None:
        return read_ranking(run, min(top, n)), True
    try:
        return read_ranking(run, min(DEFAULT_TOP, n)), True
    except UserError:
        if run.scored:
            raise                      # scored, but the file is damaged: say so
        return list(range(n)), False


def slider_scores(run: Run) -> tuple[dict[int, dict[str, Any]], str | None, float | None]:
    """({direction: {rank, effect, inactive}} from the run's scores, the LPIPS net they were
    made with, the path size of the walks they measured): what each slider's label shows
    beside it; ({}, None, None) for an unscored run."""
    if not run.scored:
        return {}, None, None
    rec = run_scores(run)
    rows = {d["direction"]: {"rank": d.get("rank"), "effect": d.get("effect"),
                             "inactive": bool(d.get("inactive"))}
            for d in rec.get("directions") or [] if isinstance(d, dict) and "direction" in d}
    settings = rec.get("settings") or {}
    return rows, settings.get("net"), settings.get("path_size")


def batch_runs(folder: Path) -> list[tuple[int, str, Path]]:
    """(class index, class name, run folder) of each class in a batch folder's manifest.jsonl
    whose run folder holds directions; UserError when there is none."""
    entries = []
    path = folder / MANIFEST
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            index, name, rel = int(e["class_index"]), str(e["class_name"]), str(e["run_folder"])
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path} line {number} is not a class record.") from None
        run_folder = (folder / rel).resolve()
        if (run_folder / DIRECTIONS_FILE).is_file() and index not in [x[0] for x in entries]:
            entries.append((index, name, run_folder))
    if not entries:
        raise UserError(f"{path}: no class of this batch has directions yet; run the batch first.")
    return entries


class Viewer:
    """The run (or batch folder) a view app serves, its model (loaded once) and a generation lock.

    target: a discover run folder, a directions file, or a batch folder (with manifest.jsonl);
    top/dirs: which directions get sliders (select_directions); model: overrides the run's
    recorded model; device: where generation runs."""

    def __init__(self, target: str | Path, *, top: int | None = None,
                 dirs: Sequence[int] | None = None, model: str | None = None,
                 weights_dir: str | Path | None = None, device: torch.device | str = "cpu",
                 progress: bool = True):
        self.target = Path(target)
        self.top, self.dirs, self.model_given = top, dirs, model
        self.weights_dir = weights_dir
        self.batch = self.target.is_dir() and (self.target / MANIFEST).is_file() \
            and not (self.target / DIRECTIONS_FILE).is_file()
        self._folders = (batch_runs(self.target) if self.batch else None)
        # a pooled run (one matrix over a set of classes): a class picker over its set
        self._pool = None if self.batch else pooled_set(open_run(self.target))
        self._classes: dict[int, ViewClass] = {}
        first = self.open_class(self._folders[0][0] if self.batch else None)
        self.default_class = first.index
        self.model_name = first.settings.model
        self.device = torch.device(device)
        self.model = load_biggan(self.model_name, self.device, weights_dir, progress=progress)
        self.lock = threading.Lock()

    @property
    def class_list(self) -> list[tuple[int, str]]:
        """(index, name) of each served class, in the batch's order."""
        if self.batch:
            return [(i, name) for i, name, _ in self._folders]
        if self._pool is not None:
            return [(i, resolve_class(i).name) for i in self._pool]
        only = self.open_class(self.default_class)
        return [(only.index, only.name)]

    def open_class(self, index: int | None) -> ViewClass:
        """The served class `index` (None: the single run's), opened once."""
        if index in self._classes:
            return self._classes[index]
        if self.batch:
            folder = next((f for i, _, f in self._folders if i == index), None)
            if folder is None:
                raise ViewError(f"class {index}: not a class of this batch "
                                f"({', '.join(str(i) for i, _, _ in self._folders)}).")
            run = open_run(folder)
        else:
            run = open_run(self.target)
        if self._pool is not None and index is not None and index not in self._pool:
            raise ViewError(f"class {index}: not a class of this pooled run "
                            f"({', '.join(str(i) for i in self._pool)}).")
        settings = resolve_run_settings(run, model=self.model_given,
                                        class_query=index if self._pool is not None else None)
        if index is not None and not self.batch and index != settings.class_index:
            raise ViewError(f"class {index}: this run is for class {settings.class_index} "
                            f"({settings.class_name}).")
        shown, ranked = select_directions(run, self.top, self.dirs)
        try:                                  # the slider labels, when score or describe ran
            labels = tuple((d["direction"], d["label"], float(d.get("label_confidence") or 0))
                           for d in run_descriptions(run))
        except UserError:
            labels = ()
        vc = ViewClass(settings.class_index, settings.class_name, run, settings, tuple(shown),
                       ranked, *slider_scores(run), labels=labels)
        self._classes[vc.index] = vc
        return vc

    # ------------------------------------------------------------ requests
    def parse_state(self, query: Mapping[str, str]) -> ViewState:
        """A ViewState from a URL query (cls, seed, trunc, a); defaults are the run's; ViewError
        on any bad value."""
        cls_text = query.get("cls")
        if cls_text is None or cls_text == "":
            vc = self.open_class(self.default_class)
        else:
            try:
                index = int(cls_text)
            except ValueError:
                raise ViewError(f"class {cls_text!r}: must be a class index.") from None
            vc = self.open_class(index)
        seed = parse_seed(query.get("seed", "0"))
        trunc = vc.settings.truncation if query.get("trunc") in (None, "") \
            else parse_truncation(query["trunc"])
        amounts = parse_amounts(query.get("a", ""), vc.run.directions.shape[0],
                                vc.settings.path_size)
        return ViewState(seed, trunc, tuple(sorted(amounts.items())), vc.index)

    def generator(self, state: ViewState) -> BigGANGenerator:
        G = BigGANGenerator(self.model, state.class_index, state.truncation)
        if G.z_dim != self.open_class(state.class_index).run.directions.shape[1]:
            raise ViewError(f"the directions do not fit the model {self.model_name} "
                            f"(z_dim {G.z_dim}); serve them with the model they were found in.")
        return G

    def image(self, state: ViewState) -> np.ndarray:
        """(R, R, 3) uint8 image of a view; one generation at a time."""
        vc = self.open_class(state.class_index)
        with self.lock:
            return view_image(self.generator(state), vc.run.directions, state.seed,
                              dict(state.amounts))

    def png(self, state: ViewState, *, settings: bool = False) -> bytes:
        """The view as PNG bytes; with settings, its record (record()) in the text chunk PNG_KEY."""
        info = PngImagePlugin.PngInfo()
        if settings:
            info.add_text(PNG_KEY, json.dumps(self.record(state), sort_keys=True))
        buf = io.BytesIO()
        Image.fromarray(self.image(state)).save(buf, format="PNG", pnginfo=info)
        return buf.getvalue()

    def save(self, state: ViewState, path: str | Path) -> Path:
        """Write the view's PNG, settings embedded, to `path` atomically; UserError on failure."""
        data = self.png(state, settings=True)
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        except OSError as e:
            raise UserError(f"could not write {path} ({first_line(e)}).") from None
        return Path(path)

    def record(self, state: ViewState) -> dict[str, Any]:
        """What a saved PNG says about itself: enough to regenerate its pixels."""
        vc = self.open_class(state.class_index)
        return {"tool": "biggan-directions view", "run": str(vc.run.directions_path),
                "model": self.model_name, "class_index": vc.index, "class_name": vc.name,
                "seed": state.seed, "truncation": state.truncation,
                "path_size": vc.settings.path_size,
                "amounts": {str(i): a for i, a in state.amounts}, "command": self.command(state)}

    def save_name(self, state: ViewState) -> str:
        return f"view_{state.class_index}_seed{state.seed}.png"

    def command(self, state: ViewState) -> str:
        """The one-line command that writes this view's PNG."""
        words = ["biggan-directions", "view", str(self.target)]
        if self.model_given is not None:
            words += ["--model", self.model_given]
        if self.weights_dir is not None:
            words += ["--weights-dir", str(self.weights_dir)]
        if self.batch or self._pool is not None:        # a batch, or a pooled run's set
            words += ["--class", str(state.class_index)]
        words += ["--seed", str(state.seed), "--truncation", _num(state.truncation)]
        if state.amounts:
            words += ["--amounts", format_amounts(dict(state.amounts))]
        words += ["--save", self.save_name(state)]
        return shlex.join(words)

    def walk(self, state: ViewState, direction: str, fmt: str) -> tuple[bytes, str]:
        """(video bytes, file name): `direction` walked from -P to P and back around this view
        (the other moved directions keep their amounts), rendered by render.render_directions."""
        vc = self.open_class(state.class_index)
        n = vc.run.directions.shape[0]
        try:
            d = int(direction)
        except (TypeError, ValueError):
            d = -1
        if not 0 <= d < n:
            raise ViewError(f"walk direction {direction!r}: must be an index 0-{n - 1}.")
        if fmt not in WALK_FORMATS:
            raise ViewError(f"walk format {fmt!r}: use {' or '.join(WALK_FORMATS)}.")
        others = {i: a for i, a in state.amounts if i != d}
        q = vc.run.directions.float()
        z = latents_for_seeds([state.seed], q.shape[1], state.truncation)[0]     # (D,)
        moved = sorted(others)
        a = torch.tensor([others[i] for i in moved])
        offset = view_latent(z, q[moved], a) - z          # (D,), orthogonal to q_d
        config = RenderConfig(path_size=vc.settings.path_size, frames=WALK_FRAMES, fps=WALK_FPS,
                              fmt=fmt, labels=False)
        with self.lock, tempfile.TemporaryDirectory(prefix="biggan-view-") as tmp:
            G = _Shifted(self.generator(state), offset.to(self.device))
            path = render_directions(G, q[d:d + 1], [state.seed], tmp, config, indices=[d],
                                     truncation=state.truncation, device=self.device,
                                     overwrite=True, progress=False,
                                     record={**self.record(state), "command": None})[0]
            data = path.read_bytes()
        return data, f"walk_{state.class_index}_seed{state.seed}_dir{d}.{fmt}"


class _Shifted(nn.Module):
    """G(w + offset): a generator seen from a view whose other directions are moved."""

    def __init__(self, G, offset: torch.Tensor):
        super().__init__()
        self.G, self.z_dim, self.resolution = G, G.z_dim, G.resolution
        self.truncation = G.truncation
        self.register_buffer("offset", offset)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.G(w + self.offset)
