"""The discovery algorithm: learn an orthonormal Q that makes G(z + wQ) Hessian-diagonal in w (no files)."""
from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import torch

from .directions import DirectionMatrix, baseline_directions
from .errors import UserError
from .generator import truncated_normal
from .penalty import hessian_penalty, tile_batch

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



@contextmanager
def _progress(total: int, initial: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
               dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
