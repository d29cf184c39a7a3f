"""The discovery algorithm: learn an orthonormal Q that makes G(z + wQ) Hessian-diagonal in w (no files)."""
from __future__ import annotations

import json
import math
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import torch

from .directions import DirectionMatrix
from .errors import SettingError, UserError
from .generator import truncated_normal
from .evaluation import EvalDraws, direction_penalty, eval_draws, evaluate
from .precision import PRECISIONS
from .settings import at_least, need, one_of, positive, setting

REDUCTIONS = ("mean", "max")
INITS = ("random", "coords", "sefa", "ganspace")
METHODS = ("hessian", "sefa", "ganspace")
SEFA_LAYERS = ("gen_z", "all")          # = sefa.SEFA_LAYERS (not imported: sefa loads lazily)
PENALTY_MODES = ("batched", "sequential")


def parse_subspace(text: str) -> tuple[int, int]:
    """'0-39' -> (0, 40): ONE inclusive range LO-HI of latent coordinates, as [lo, hi).
    A single number or a list ('0-3,10') is a SettingError, never silently widened."""
    value = str(text).strip()
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", value)
    if m is None:
        raise SettingError("subspace", value, "give one range LO-HI of latent coordinates, "
                                              "e.g. 0-39 (not a single number or a list).")
    lo, hi = int(m.group(1)), int(m.group(2))
    if hi < lo:
        raise SettingError("subspace", value, f"the range runs backwards; write {hi}-{lo}.")
    return (lo, hi + 1)


def parse_layers(text: str) -> tuple[str, ...]:
    """'image,block3' -> ('image', 'block3')."""
    layers = tuple(s.strip() for s in str(text).split(",") if s.strip())
    if not layers:
        raise SettingError("layers", text, "give at least one layer, e.g. image.")
    return layers


@dataclass(frozen=True)
class DiscoverConfig:
    """Settings of one discovery run; written to run.json and checked again on --resume.

    Defaults follow the published BigGAN run (Peebles et al. 2020) where it has one, scaled to
    one GPU: the paper used batch 96 on 4 GPUs for 50 epochs x 1,000 steps. Each field's help
    is its CLI option's help (cli/options.py builds the options from these fields).
    """

    method: str = setting(
        "hessian", "hessian: learn the directions with the Hessian Penalty (the settings below); "
                   "sefa: closed form, the top right-singular vectors of the layer that first "
                   "reads z (orthonormal); ganspace: PCA of an early layer's activations "
                   "regressed back to z (unit rows, not orthogonal). sefa and ganspace train "
                   "nothing: they write the same run folder, with its fixed evaluation.",
        metavar="hessian|sefa|ganspace")
    sefa_layers: str = setting(
        "gen_z", "sefa: factorise the z columns of gen_z only, or also of every conditional "
                 "batch norm (all).", choices=SEFA_LAYERS)
    samples: int = setting(10_000, "ganspace: latents whose layer activations the PCA uses.")
    ganspace_layer: str | None = setting(
        None, "ganspace: the layer to take the PCA of (blockN: BigGAN generator block N, or a "
              "module name under the model).", option="--layer", metavar="NAME",
        shown="block0")
    ndirs: int | None = setting(
        None, "Directions to learn.", shown="one per latent coordinate, as published")
    steps: int = setting(50_000, "Optimiser steps (published: 50 epochs x 1,000).")
    batch_size: int = setting(32, "Samples per step (published: 96 over 4 GPUs; 32 fits one).")
    lr: float = setting(0.01, "Adam learning rate on the matrix (default betas, as published).")
    k: int = setting(2, "Rademacher draws per sample per step (published: 2).")
    epsilon: float = setting(0.1, "Finite-difference step; the penalty scales like 1/epsilon^4.")
    reduction: str = setting("mean", "How the penalty reduces over pixels (published BigGAN "
                                     "run: mean).", choices=REDUCTIONS)
    path_size: float = setting(5.0, "Each sample moves d ~ U[-P, P] along one direction.")
    truncation: float = setting(1.0, "Latents are truncnorm(-2, 2) x truncation, in (0, 1]; "
                                     "1.0 ~ the paper's z ~ N(0, I).")
    init: str = setting("random", "Start from a random orthonormal matrix (Kaiming-normal, "
                                  "published), the coordinate axes, or the SeFa or GANSpace "
                                  "directions of the generator (orthonormalised in their order).",
                        choices=INITS)
    subspace: tuple[int, int] | None = setting(
        None, "Learn inside latent coordinates LO..HI only, e.g. 0-39 (coarse).",
        metavar="LO-HI", parse=parse_subspace)
    layers: tuple[str, ...] = setting(
        ("image",), "Comma-separated outputs to penalise: image, blockN (BigGAN block N).",
        metavar="NAMES", parse=parse_layers)
    seed: int = setting(0, "Seeds every random draw (init, latents, directions, distances, "
                           "Rademacher).")
    checkpoint_every: int = setting(1000, "Steps between checkpoints (one is also taken on "
                                          "Ctrl-C or SIGTERM).")
    eval_every: int = setting(1000, "Steps between fixed held-out evaluations (and one at the end).")
    eval_per_direction: int = setting(
        4, "Fixed evaluation: latents per direction (each direction is measured on this many "
           "samples, distances stratified over [-P, P]); the evaluation has ndirs x this many.")
    eval_k: int = setting(4, "Fixed evaluation: Rademacher draws per sample.")
    eval_references: int = setting(
        4, "Random orthonormal matrices whose fixed-evaluation penalty (mean and spread) is the "
           "chance level a learned matrix is compared with.")
    precision: str = setting(
        "auto", "Precision of the generator's forward passes: fp32, tf32 (CUDA), bf16 autocast, "
                "or auto (bf16 on a CUDA GPU that supports it when a start-up check agrees with "
                "fp32 within 1%, else tf32; fp32 on the CPU). The matrix, penalty and Adam stay "
                "fp32; the fixed evaluation is always fp32.", choices=PRECISIONS)
    compile: bool | None = setting(
        None, "torch.compile the generator call (CUDA graphs where capture works, falling back "
              "to the default mode, then eager, with a warning).",
        shown="on for CUDA, off for the CPU")
    chunk_size: int | None = setting(
        None, "At most this many images per generator call (bounds memory).",
        shown="all 1+2k perturbations of the batch in one call")
    penalty_mode: str = setting(
        "batched", "batched: all 1+2k generator passes in one forward (fastest on a GPU); "
                   "sequential: the paper's loop (can be faster on a CPU at large batch).",
        choices=PENALTY_MODES)

    def validate(self, z_dim: int | None = None) -> "DiscoverConfig":
        """Check every field (SettingError naming the field); with `z_dim`, also that the
        subspace and ndirs fit a latent of that size. Returns self."""
        one_of("method", self.method, METHODS)
        one_of("sefa_layers", self.sefa_layers, SEFA_LAYERS)
        at_least("samples", self.samples, 1)
        need(self.ganspace_layer is None or (isinstance(self.ganspace_layer, str)
                                             and self.ganspace_layer.strip() != ""),
             "ganspace_layer", self.ganspace_layer, "name a layer, e.g. block0.")
        need(self.method == "hessian" or self.subspace is None, "subspace",
             None if self.subspace is None else f"{self.subspace[0]}-{self.subspace[1] - 1}",
             f"method {self.method} finds whole-latent directions; a subspace is for hessian.")
        at_least("steps", self.steps, 1)
        at_least("batch_size", self.batch_size, 1)
        positive("lr", self.lr)
        need(isinstance(self.k, int) and self.k >= 2, "k", self.k,
             "the penalty's variance needs at least 2 draws.")
        at_least("eval_k", self.eval_k, 2)
        positive("epsilon", self.epsilon)
        one_of("reduction", self.reduction, REDUCTIONS)
        positive("path_size", self.path_size)
        need(isinstance(self.truncation, (int, float)) and 0 < self.truncation <= 1,
             "truncation", self.truncation, "must be in (0, 1], e.g. 1.0 or 0.5.")
        one_of("init", self.init, INITS)
        at_least("checkpoint_every", self.checkpoint_every, 1)
        at_least("eval_every", self.eval_every, 1)
        at_least("eval_per_direction", self.eval_per_direction, 1)
        at_least("eval_references", self.eval_references, 2)
        one_of("precision", self.precision, PRECISIONS)
        need(self.chunk_size is None or (isinstance(self.chunk_size, int) and self.chunk_size >= 1),
             "chunk_size", self.chunk_size, "must be at least 1.")
        one_of("penalty_mode", self.penalty_mode, PENALTY_MODES)
        need(len(self.layers) >= 1, "layers", ",".join(self.layers),
             "give at least one layer, e.g. image.")
        need(self.ndirs is None or (isinstance(self.ndirs, int) and self.ndirs >= 1), "ndirs",
             self.ndirs, "must be at least 1.")
        if self.subspace is not None:
            lo, hi = self.subspace
            need(0 <= lo < hi, "subspace", f"{lo}-{hi - 1}", "give one range LO-HI, LO <= HI.")
        if z_dim is not None:
            lo, hi = self.subspace or (0, z_dim)
            need(hi <= z_dim, "subspace", f"{lo}-{hi - 1}",
                 f"not inside the latent's coordinates 0-{z_dim - 1}.")
            need(self.ndirs is None or self.ndirs <= hi - lo, "ndirs", self.ndirs,
                 f"must be between 1 and {hi - lo} (the {'subspace' if self.subspace else 'latent'}"
                 f"'s size).")
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
# (precision and compile change how fast the steps run, and the last bits of their values.)
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "eval_every", "chunk_size", "precision",
                     "compile")


class DiscoveryDiverged(UserError):
    """The penalty became NaN or infinite."""


class DiscoveryInterrupted(Exception):
    """Ctrl-C or SIGTERM: the state at the last finished step was kept."""

    def __init__(self, step: int):
        super().__init__(f"interrupted at step {step}")
        self.step = step


class Discovery:
    """The state of one discovery: direction matrix, Adam, RNG, step. Step it, evaluate it,
    save and restore it. Works on any generator G with `z_dim` and G(z) (B, z_dim) -> tensor(s).

    Training calls G at the run's precision (and compiled, when asked) through `train_G`; the
    fixed evaluation always calls G itself in fp32, so values compare across precisions.
    """

    def __init__(self, G: Callable, config: DiscoverConfig, device: torch.device | str = "cpu"):
        from . import precision

        self.z_dim = int(G.z_dim)
        self.G, self.config, self.device = G, config.validate(self.z_dim), torch.device(device)
        lo, hi = config.subspace or (0, self.z_dim)
        self.ndirs = config.ndirs or (hi - lo)
        self.rng = torch.Generator().manual_seed(config.seed)  # every training draw comes from here
        init = (config.init if config.init in ("random", "coords")
                else initial_rows(config.init, G, self.ndirs, config.subspace, config.seed,
                                  config.truncation, self.device, sefa_layers=config.sefa_layers,
                                  layer=config.ganspace_layer))
        self.matrix = DirectionMatrix(self.ndirs, self.z_dim, init, config.subspace,
                                      generator=self.rng).to(self.device)
        self.optimizer = torch.optim.Adam(self.matrix.parameters(), lr=config.lr)
        self.step = 0
        self.elapsed = 0.0          # seconds of stepping, carried across resumes
        self.precision = precision.candidate(config.precision, self.device)   # checked by setup() for auto
        self.compile = config.compile if config.compile is not None else self.device.type == "cuda"
        self.precision_check: dict[str, Any] | None = None
        self._train_G: Callable | None = None
        self._draws: EvalDraws | None = None

    # ------------------------------------------------------------------ precision and compile
    def setup(self) -> dict[str, Any]:
        """Resolve the training precision ('auto' -> bf16 only when the fixed evaluation's
        penalty at bf16 is within 1% of fp32, else tf32), set TF32, build the training call
        (compiled when asked). Idempotent; returns what it chose, for the run record."""
        from .compiling import compiled
        from .precision import BF16_TOLERANCE, at_precision, relative_error, set_tf32

        if self._train_G is None:
            if self.config.precision == "auto" and self.precision == "bf16":
                q = self.matrix().detach()
                fp32 = self.evaluate(q)
                bf16 = self._evaluate_with(at_precision(self.G, "bf16", self.device), q)
                error = relative_error(bf16, fp32)
                self.precision_check = {"fp32": fp32, "bf16": bf16, "relative_error": error,
                                        "tolerance": BF16_TOLERANCE}
                if not error <= BF16_TOLERANCE:
                    self.precision = "tf32" if self.device.type == "cuda" else "fp32"
            set_tf32(self.device, self.precision != "fp32")
            modes_ok = self.config.penalty_mode == "batched" and self.config.chunk_size is None
            self._train_G = compiled(at_precision(self.G, self.precision, self.device),
                                     self.device, self.compile, cuda_graphs=modes_ok)
        return {"precision": self.precision, "precision_asked": self.config.precision,
                "precision_check": self.precision_check, "compile": self.compile}

    @property
    def compile_report(self) -> dict[str, Any]:
        """The compiled call's mode and first-call seconds (compilation included), if compiled."""
        G = self._train_G
        return {"compile_mode": getattr(G, "mode", None) if self.compile else "eager",
                "compile_seconds": getattr(G, "compile_seconds", None),
                "compile_warnings": getattr(G, "warnings", [])}

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

    def _loss(self) -> torch.Tensor:
        """The penalty of one training batch (draws advance the training RNG)."""
        cfg = self.config
        z, w = self._draw(self.rng, cfg.batch_size)
        mark_step = getattr(torch.compiler, "cudagraph_mark_step_begin", None)
        if self.compile and self.device.type == "cuda" and mark_step is not None:
            mark_step()                      # CUDA graphs: the previous step's outputs are done
        return direction_penalty(self._train_G, self.matrix(), z, w, k=cfg.k,
                                 epsilon=cfg.epsilon, reduction=cfg.reduction, generator=self.rng,
                                 chunk_size=cfg.chunk_size, mode=cfg.penalty_mode)

    def train_step(self) -> float:
        """One optimiser step; returns the step's penalty. Raises DiscoveryDiverged on NaN/inf
        before touching the matrix, so the state stays that of the last good step."""
        self.setup()
        loss = self._loss()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DiscoveryDiverged(f"the penalty became {value} at step {self.step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        return value

    def step_flops(self) -> int:
        """FLOPs of one training step (penalty forward and backward, fp32 eager), counted on a
        copy of the RNG so the run's draws are untouched; the optimiser is not stepped."""
        from .flops import count_flops

        saved = self.rng.get_state()
        train_G, self._train_G = self._train_G, self.G
        try:
            def step():
                loss = self._loss()
                loss.backward()
            flops = count_flops(step)
        finally:
            self._train_G = train_G
            self.rng.set_state(saved)
            self.optimizer.zero_grad(set_to_none=True)
        return flops

    @property
    def images_per_step(self) -> int:
        return self.config.batch_size * (1 + 2 * self.config.k)

    def directions(self) -> torch.Tensor:
        """The current (ndirs, z_dim) orthonormal matrix, detached, on the CPU."""
        with torch.no_grad():
            return self.matrix().detach().cpu()

    # ------------------------------------------------------------------ fixed evaluation
    @property
    def draws(self) -> EvalDraws:
        """The run's fixed evaluation draws (evaluation.eval_draws), made once."""
        if self._draws is None:
            cfg = self.config
            self._draws = eval_draws(self.ndirs, self.z_dim, per_direction=cfg.eval_per_direction,
                                     k=cfg.eval_k, truncation=cfg.truncation,
                                     path_size=cfg.path_size, seed=cfg.seed)
        return self._draws

    def evaluate(self, q: torch.Tensor | None = None) -> float:
        """Penalty of q (default: the current matrix) on the fixed evaluation draws, in fp32."""
        from .precision import tf32_state

        with tf32_state(self.device, False):
            return self._evaluate_with(self.G, self.matrix() if q is None else q)

    def _evaluate_with(self, G: Callable, q: torch.Tensor) -> float:
        cfg = self.config
        return evaluate(G, q, self.draws, epsilon=cfg.epsilon, reduction=cfg.reduction,
                        device=self.device, chunk_size=cfg.chunk_size)

    def reference_values(self) -> dict[str, Any]:
        """Fixed-evaluation penalty of the identity (coordinate axes) and of eval_references
        random orthonormal matrices in the same subspace (mean, spread): what a learned matrix
        should beat (evaluation.reference_values), in fp32."""
        from .evaluation import reference_values
        from .precision import tf32_state

        cfg = self.config
        with tf32_state(self.device, False):
            return reference_values(self.G, self.draws, self.ndirs, self.z_dim,
                                    epsilon=cfg.epsilon, reduction=cfg.reduction,
                                    subspace=cfg.subspace, matrices=cfg.eval_references,
                                    seed=cfg.seed, device=self.device, chunk_size=cfg.chunk_size)

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



def initial_rows(method: str, G: Callable, ndirs: int, subspace: tuple[int, int] | None,
                 seed: int, truncation: float, device: torch.device, *,
                 sefa_layers: str = "gen_z", layer: str | None = None) -> torch.Tensor:
    """(ndirs, z_dim) starting rows from a closed-form or sampling method ('sefa': the top
    right-singular vectors of the layer that first reads z; 'ganspace': principal directions of
    an early layer); DirectionMatrix orthonormalises them in order."""
    from .errors import SettingError

    if subspace is not None:
        raise SettingError("init", method, "starts from whole-latent directions; it does not "
                                           "combine with a subspace (use random or coords).")
    if method == "sefa":
        from .sefa import sefa_directions
        return sefa_directions(G, ndirs, sefa_layers)[0]
    from .ganspace import ganspace_directions
    samples = max(2000, 5 * ndirs)
    return ganspace_directions(G, layer, samples=samples, ndirs=ndirs, seed=seed,
                               truncation=truncation, device=device)[0]


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
