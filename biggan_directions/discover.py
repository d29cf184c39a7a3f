"""Direction discovery: learn an orthonormal Q that makes G(z + wQ) Hessian-diagonal in w."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch

from .directions import DirectionMatrix, baseline_directions, save_directions
from .errors import UserError, first_line
from .fileio import atomic_path, read_json, write_json as _write_json, write_text
from .generator import truncated_normal
from .penalty import hessian_penalty, tile_batch
from . import runs

REDUCTIONS = ("mean", "max")


@dataclass(frozen=True)
class DiscoverConfig:
    """Settings of one discovery run; written to run.json and checked again on --resume.

    Defaults follow the published BigGAN run (Peebles et al. 2020) where it has one, scaled to
    one GPU: the paper used batch 96 on 4 GPUs for 50 epochs x 1,000 steps.
    """

    ndirs: int | None = None      # directions to learn; None = one per latent coordinate (published: z_dim)
    steps: int = 50_000           # optimiser steps (published: 50 epochs x 1,000 steps)
    batch_size: int = 32          # samples per step (published 96 over 4 GPUs; 32 fits one)
    lr: float = 0.01              # Adam learning rate on the matrix only, default betas (published)
    k: int = 2                    # Rademacher draws per sample per step (published)
    epsilon: float = 0.1          # finite-difference step (published); the penalty scales like 1/eps^4
    reduction: str = "mean"       # over output elements: 'mean' (published for BigGAN) or 'max'
    path_size: float = 5.0        # eta: each sample moves d ~ U[-eta, eta] along one direction (published)
    truncation: float = 1.0       # latents are truncnorm(-2, 2) * truncation; 1.0 ~ the paper's z ~ N(0, I)
    init: str = "random"          # 'random' (Kaiming-normal, published) or 'coords' (identity)
    subspace: tuple[int, int] | None = None  # (lo, hi): learn inside z[lo:hi] only (coarse/mid/fine variant)
    layers: tuple[str, ...] = ("image",)     # outputs the penalty is taken on (published: the image)
    seed: int = 0                 # seeds every draw: init, latents, directions, distances, Rademacher
    checkpoint_every: int = 1000  # steps between atomic checkpoints (also taken on Ctrl-C)
    eval_every: int = 1000        # steps between fixed evaluations (and one at the end)
    eval_samples: int = 16        # held-out latents in the fixed evaluation
    eval_k: int = 8               # Rademacher draws in the fixed evaluation (more than training)
    chunk_size: int | None = None # at most this many rows per generator call (bounds memory); None: one call
    penalty_mode: str = "batched" # 'batched': the 1+2k passes in one forward (fastest on GPUs and
                                  # small CPU batches); 'sequential': the paper's loop (BENCHMARKS.md)

    def validate(self) -> "DiscoverConfig":
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UserError(message)
        need(self.steps >= 1, f"--steps {self.steps}: must be at least 1.")
        need(self.batch_size >= 1, f"--batch-size {self.batch_size}: must be at least 1.")
        need(self.lr > 0 and math.isfinite(self.lr), f"--lr {self.lr}: must be a positive number.")
        need(self.k >= 2, f"--k {self.k}: the penalty's variance needs at least 2 draws.")
        need(self.eval_k >= 2, f"eval_k {self.eval_k}: needs at least 2 draws.")
        need(self.epsilon > 0 and math.isfinite(self.epsilon), f"--epsilon {self.epsilon}: must be > 0.")
        need(self.reduction in REDUCTIONS, f"--reduction {self.reduction!r}: use mean or max.")
        need(self.path_size > 0 and math.isfinite(self.path_size), f"--path-size {self.path_size}: must be > 0.")
        need(0 < self.truncation <= 1, f"--truncation {self.truncation}: must be in (0, 1], e.g. 1.0 or 0.5.")
        need(self.init in ("random", "coords"), f"--init {self.init!r}: use random or coords.")
        need(self.checkpoint_every >= 1, "--checkpoint-every must be at least 1.")
        need(self.eval_every >= 1 and self.eval_samples >= 1, "--eval-every and eval_samples must be >= 1.")
        need(self.chunk_size is None or self.chunk_size >= 1, "--chunk-size must be at least 1.")
        need(self.penalty_mode in ("batched", "sequential"),
             f"--penalty-mode {self.penalty_mode!r}: use batched or sequential.")
        need(len(self.layers) >= 1, "--layers: give at least one layer, e.g. image.")
        return self

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["subspace"] = list(self.subspace) if self.subspace else None
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DiscoverConfig":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("subspace") is not None:
            d["subspace"] = tuple(d["subspace"])
        if "layers" in d:
            d["layers"] = tuple(d["layers"])
        return cls(**d)


# Settings that may change on --resume without changing the result up to the old step count.
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "eval_every", "chunk_size")


class DiscoveryDiverged(UserError):
    """The penalty became NaN or infinite."""


class DiscoveryInterrupted(Exception):
    """Ctrl-C: the state at the last finished step was kept."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


class Discovery:
    """The state of one discovery: direction matrix, Adam, RNG, step. Step it, evaluate it,
    save and restore it. Works on any generator G with `z_dim` and G(z) (B, z_dim) -> tensor(s).
    """

    def __init__(self, G: Callable, config: DiscoverConfig, device: torch.device | str = "cpu"):
        self.G, self.config, self.device = G, config.validate(), torch.device(device)
        self.z_dim = int(G.z_dim)
        lo, hi = config.subspace or (0, self.z_dim)
        self.ndirs = config.ndirs or (hi - lo)
        self.rng = torch.Generator().manual_seed(config.seed)  # every training draw comes from here
        self.matrix = DirectionMatrix(self.ndirs, self.z_dim, config.init, config.subspace,
                                      generator=self.rng).to(self.device)
        self.optimizer = torch.optim.Adam(self.matrix.parameters(), lr=config.lr)
        self.step = 0
        self.elapsed = 0.0          # seconds of stepping, carried across resumes
        self._eval_set = None

    # ------------------------------------------------------------------ training
    def _draw(self, rng: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n latents (n, z_dim) and their walks w (n, ndirs): one direction, d ~ U[-eta, eta]."""
        cfg = self.config
        z = truncated_normal((n, self.z_dim), cfg.truncation, rng)
        j = torch.randint(0, self.ndirs, (n,), generator=rng)
        d = (torch.rand(n, generator=rng) * 2.0 - 1.0) * cfg.path_size
        w = torch.zeros(n, self.ndirs)
        w[torch.arange(n), j] = d
        return z.to(self.device), w.to(self.device)

    def _penalty(self, q: torch.Tensor, z: torch.Tensor, w: torch.Tensor, k: int,
                 rng: torch.Generator) -> torch.Tensor:
        """Hessian Penalty of w -> G(z + w Q) at w, for q (ndirs, z_dim)."""
        def G_w(w_rows: torch.Tensor):                       # (m*B, ndirs) -> G((m*B, z_dim))
            return self.G(tile_batch(z, w_rows.shape[0]) + w_rows @ q)
        cfg = self.config
        return hessian_penalty(G_w, w, k=k, epsilon=cfg.epsilon, reduction=cfg.reduction,
                               generator=rng, chunk_size=cfg.chunk_size, mode=cfg.penalty_mode)

    def train_step(self) -> float:
        """One optimiser step; returns the step's penalty. Raises DiscoveryDiverged on NaN/inf
        before touching the matrix, so the state stays that of the last good step."""
        z, w = self._draw(self.rng, self.config.batch_size)
        loss = self._penalty(self.matrix(), z, w, self.config.k, self.rng)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DiscoveryDiverged(f"the penalty became {value} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return value

    def directions(self) -> torch.Tensor:
        """The current (ndirs, z_dim) orthonormal matrix, detached, on the CPU."""
        with torch.no_grad():
            return self.matrix().detach().cpu()

    # ------------------------------------------------------------------ fixed evaluation
    def evaluate(self, q: torch.Tensor | None = None) -> float:
        """Penalty of q (default: the current matrix) on a fixed held-out set: the same
        latents, directions, distances and Rademacher draws every time, eval_k draws."""
        cfg = self.config
        if self._eval_set is None:
            eval_rng = torch.Generator().manual_seed(_derived_seed(cfg.seed, "eval"))
            self._eval_set = self._draw(eval_rng, cfg.eval_samples)
        z, w = self._eval_set
        q = (self.matrix() if q is None else q).to(self.device)
        draws = torch.Generator().manual_seed(_derived_seed(cfg.seed, "eval-draws"))
        with torch.no_grad():
            return float(self._penalty(q, z, w, cfg.eval_k, draws))

    def reference_values(self) -> dict[str, float]:
        """Fixed-evaluation penalty of the identity (coordinate axes) and of a random
        orthonormal matrix in the same subspace: what a learned matrix should beat."""
        sub = self.config.subspace
        rng = torch.Generator().manual_seed(_derived_seed(self.config.seed, "reference"))
        return {"identity": self.evaluate(baseline_directions("coords", self.ndirs, self.z_dim, sub)),
                "random": self.evaluate(baseline_directions("random", self.ndirs, self.z_dim, sub, rng))}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {"format": "biggan-directions-checkpoint", "version": 1, "step": self.step,
                "elapsed": self.elapsed, "A": self.matrix.A.detach().cpu(),
                "optimizer": self.optimizer.state_dict(), "rng": self.rng.get_state(),
                "config": json.dumps(self.config.to_json(), sort_keys=True)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.matrix.A.copy_(state["A"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])


def _derived_seed(seed: int, purpose: str) -> int:
    """A seed for a side stream (evaluation, references) that leaves the training stream alone."""
    import hashlib
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


# ---------------------------------------------------------------------- Python API
def discover_directions(G: Callable, config: DiscoverConfig | None = None, *,
                        device: torch.device | str | None = None, progress: bool = True,
                        callback: Callable[[int, float], None] | None = None,
                        **settings: Any) -> torch.Tensor:
    """Learn directions for any generator and return Q, (ndirs, z_dim), orthonormal rows.

    G:        an object with `z_dim` and a call G(z): (B, z_dim) -> tensor (or list of tensors),
              deterministic (eval mode), already on `device`.
    config:   a DiscoverConfig; keyword `settings` override its fields (steps=200, lr=0.05, ...).
    device:   where the direction matrix lives (default: the device of G's first parameter, or
              the CPU).
    callback: called as callback(step, penalty) after every step.

    No files are written; `run_discover` adds run folders, checkpoints and resume.
    """
    config = DiscoverConfig(**{**asdict(config or DiscoverConfig()), **settings})
    if device is None:
        params = getattr(G, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        device = first.device if first is not None else "cpu"
    run = Discovery(G, config, device)
    with _progress(config.steps, 0, progress, "discover") as bar:
        while run.step < config.steps:
            value = run.train_step()
            bar.update(1)
            bar.set_postfix(penalty=f"{value:.4g}", refresh=False)
            if callback is not None:
                callback(run.step, value)
    return run.directions()


# ---------------------------------------------------------------------- runs on disk
@dataclass
class RunResult:
    folder: Path
    status: str                  # 'finished' or 'already finished'
    step: int
    final_penalty: float | None  # mean training penalty over the last (up to) 100 steps
    eval_penalty: float | None


def prepare_run_folder(folder: Path, resume: bool, overwrite: bool) -> None:
    """Refuse an existing run unless --resume or --overwrite; with --overwrite remove only the
    files this tool writes there."""
    existing = [n for n in _owned_files() if (folder / n).exists()]
    if not existing or resume:
        return
    if not overwrite:
        raise UserError(f"{folder}: a run already exists here; pass --resume to continue it or "
                        f"--overwrite to start it again.")
    for name in existing:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def _owned_files() -> tuple[str, ...]:
    return (runs.DIRECTIONS_FILE, runs.RUN_RECORD, runs.STEP_LOG, runs.CHECKPOINT,
            runs.SCORES_JSON, runs.SCORES_CSV, runs.VIDEOS_DIR)


def run_discover(G: Callable, config: DiscoverConfig, folder: str | os.PathLike, *,
                 meta: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                 resume: bool = False, overwrite: bool = False, progress: bool = True,
                 describe: str = "discover") -> RunResult:
    """Discovery with files: run.json, log.csv, checkpoints every N steps and on Ctrl-C, the
    directions file (also refreshed at each checkpoint), resume from the last checkpoint.

    meta: what the directions file and run.json record about the generator (model, class_index,
    class_name, wnid, ...). Raises DiscoveryInterrupted after saving on Ctrl-C, and
    DiscoveryDiverged (a UserError) on a NaN penalty, keeping the last good checkpoint.
    """
    folder = Path(folder)
    config.validate()
    prepare_run_folder(folder, resume, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    run = Discovery(G, config, device)
    ckpt_path = folder / runs.CHECKPOINT
    record = read_json(folder / runs.RUN_RECORD) if resume else {}
    if resume and ckpt_path.exists():
        state = _load_checkpoint(ckpt_path)
        _check_resumable(ckpt_path, state, config)
        run.load_state_dict(state)
        if record.get("status") == "finished" and run.step >= config.steps:
            return RunResult(folder, "already finished", run.step, record.get("final_penalty"),
                             record.get("eval_penalty"))
    _truncate_log(folder / runs.STEP_LOG, run.step)

    record.update({
        "tool": "biggan-directions", "version": _version(), "status": "running",
        "config": config.to_json(), "meta": meta, "device": str(run.device),
        "device_name": _device_name(run.device), "versions": _versions(),
        "started": record.get("started") or _now(), "resumed_at_steps": record.get("resumed_at_steps", []),
    })
    if run.step > 0:
        record["resumed_at_steps"].append(run.step)
    if "reference_eval" not in record:
        record["reference_eval"] = run.reference_values()
    _write_json(folder / runs.RUN_RECORD, record)

    recent: list[float] = _recent_penalties(folder / runs.STEP_LOG)
    eval_value = record.get("eval_penalty")
    log = open(folder / runs.STEP_LOG, "a", newline="")
    writer = csv.writer(log)
    if log.tell() == 0:
        writer.writerow(["step", "penalty", "eval_penalty", "seconds"])

    def checkpoint(status: str) -> None:
        log.flush()
        _atomic_torch_save(run.state_dict(), ckpt_path)
        save_directions(folder / runs.DIRECTIONS_FILE, run.directions(),
                        {**meta, **_settings_meta(config, run)})
        record.update(status=status, step=run.step, seconds=round(run.elapsed, 3),
                      final_penalty=_mean(recent), eval_penalty=eval_value,
                      steps_per_second=round(run.step / run.elapsed, 4) if run.elapsed else None,
                      updated=_now())
        _write_json(folder / runs.RUN_RECORD, record)

    try:
        with _sigint_as_flag() as stop, _progress(config.steps, run.step, progress, describe) as bar:
            while run.step < config.steps:
                t0 = time.perf_counter()
                try:
                    value = run.train_step()
                except DiscoveryDiverged as e:
                    record.update(status="failed", error=str(e), updated=_now())
                    _write_json(folder / runs.RUN_RECORD, record)
                    kept = f"the last good checkpoint (step {_checkpoint_step(ckpt_path)}) is kept" \
                        if ckpt_path.exists() else "no checkpoint was written yet"
                    raise DiscoveryDiverged(f"{e}; {kept} in {folder}. Lower --lr or raise "
                                            f"--epsilon, then --overwrite (or --resume).") from None
                run.elapsed += time.perf_counter() - t0
                recent = (recent + [value])[-100:]
                row_eval = ""
                if run.step % config.eval_every == 0 or run.step == config.steps:
                    eval_value = run.evaluate()
                    row_eval = f"{eval_value:.6g}"
                writer.writerow([run.step, f"{value:.6g}", row_eval, f"{run.elapsed:.3f}"])
                log.flush()                               # a crash loses no logged step
                bar.update(1)
                bar.set_postfix(penalty=f"{_mean(recent):.4g}", refresh=False)
                if run.step % config.checkpoint_every == 0 and run.step < config.steps:
                    checkpoint("running")
                if stop.is_set() and run.step < config.steps:
                    checkpoint("interrupted")
                    raise DiscoveryInterrupted(run.step)
        record["finished"] = _now()
        checkpoint("finished")
    finally:
        log.close()
    return RunResult(folder, "finished", run.step, _mean(recent), eval_value)


def _settings_meta(config: DiscoverConfig, run: Discovery) -> dict[str, Any]:
    return {"truncation": config.truncation, "path_size": config.path_size,
            "subspace": list(config.subspace) if config.subspace else None, "seed": config.seed,
            "step": run.step, "steps": config.steps, "settings": config.to_json()}


def _check_resumable(path: Path, state: dict[str, Any], config: DiscoverConfig) -> None:
    try:
        old = DiscoverConfig.from_json(json.loads(state["config"])).to_json()
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a checkpoint of this tool ({e}); use --overwrite to start again.") from None
    new = config.to_json()
    changed = [f"{k}={old[k]!r} (now {new[k]!r})" for k in new
               if k not in RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        raise UserError(f"{path}: the run was started with " + ", ".join(changed)
                        + "; resume with the same settings or pass --overwrite.")
    if int(state["step"]) > config.steps:
        raise UserError(f"{path}: the run is already at step {state['step']}, past --steps "
                        f"{config.steps}; raise --steps to continue it.")


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise UserError(f"{path}: unreadable checkpoint ({first_line(e)}); "
                        f"use --overwrite to start again.") from None
    if not isinstance(state, dict) or state.get("format") != "biggan-directions-checkpoint":
        raise UserError(f"{path}: not a biggan-directions checkpoint; use --overwrite to start again.")
    return state


def _checkpoint_step(path: Path) -> int:
    return int(_load_checkpoint(path)["step"])


def _atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)




def _truncate_log(path: Path, step: int) -> None:
    """Keep log rows up to `step` (rows written after the checkpoint are redone on resume)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [r for i, r in enumerate(rows) if i == 0 or (r and r[0].isdigit() and int(r[0]) <= step)]
    if step == 0:
        kept = []
    buf = io.StringIO()
    csv.writer(buf).writerows(kept)
    write_text(path, buf.getvalue())


def _recent_penalties(path: Path) -> list[float]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["penalty"]) for r in rows[-100:]]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


@contextmanager
def _sigint_as_flag():
    """The first Ctrl-C sets a flag the loop checks after each step (so the checkpoint holds a
    whole step); a second one interrupts at once. Only in the main thread."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if stop.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("biggan-directions")
    except PackageNotFoundError:
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for name in ("pytorch-pretrained-biggan", "biggan-directions"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------- BigGAN classes
def discover_classes(model: str, classes: list[str], config: DiscoverConfig, out: str | os.PathLike, *,
                     device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
                     resume: bool = False, overwrite: bool = False, progress: bool = True,
                     on_result: Callable[[RunResult], None] | None = None) -> list[RunResult]:
    """What `discover` does: load the BigGAN once, then one run per class into
    <out>/<model>/<index>-<class-slug>/. Classes are resolved (and run folders checked) before
    anything is loaded, so a typo in the last class fails at once."""
    from .classes import resolve_class
    from .generator import BigGANGenerator
    from .weights import load_biggan

    config.validate()
    resolved = [resolve_class(c) for c in classes]
    folders = [runs.run_dir_for(out, model, c.index, c.name) for c in resolved]
    if not resume and not overwrite:
        for folder in folders:
            prepare_run_folder(folder, resume=False, overwrite=False)
    net = load_biggan(model, device=device, weights_dir=weights_dir, progress=progress)
    results = []
    for cls, folder in zip(resolved, folders):
        G = BigGANGenerator(net, cls.index, config.truncation, config.layers)
        meta = {"model": model, "class_index": cls.index, "class_name": cls.name, "wnid": cls.wnid}
        result = run_discover(G, config, folder, meta=meta, device=device, resume=resume,
                              overwrite=overwrite, progress=progress,
                              describe=f"{cls.index} {cls.name}"[:30])
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
