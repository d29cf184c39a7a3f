"""The settings of a discovery run: DiscoverConfig (one owner of every default and its help).

Each field says which methods read it (`setting(..., methods=...)`; None: every method, e.g. the
fixed evaluation's settings): `DiscoverConfig.owned_by(method)` lists a method's own fields,
`config.unread()` the fields a config sets that its method does not read (validate refuses
them), and the CLI marks each option's help with its methods and refuses a typed option that
the chosen --method does not read.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..foundation.errors import SettingError
from ..foundation.settings import at_least, default_of, methods_of, need, one_of, positive, setting
from ..core.published import PUBLISHED_EPSILON, PUBLISHED_K
from ..runtime.settings import PRECISIONS, compile_setting, precision_setting

REDUCTIONS = ("mean", "max")
INITS = ("auto", "random", "coords", "sefa", "ganspace")
METHODS = ("hessian", "sefa", "ganspace")
SEFA_LAYERS = ("gen_z", "all")          # = sefa.SEFA_LAYERS (not imported: sefa loads lazily)
PENALTY_MODES = ("batched", "sequential")
PARAMETRIZATIONS = ("cayley", "qr")      # = directions.PARAMETRIZATIONS
SCHEDULES = ("cosine", "constant")
LOSSES = ("mean", "trimmed")
KEEPS = ("best", "last")
AUTO = "auto"
HESSIAN = ("hessian",)                   # the fields only the Hessian Penalty training reads
# The hessian settings that also size an 'auto' fixed evaluation (fixed_eval.eval_size: about
# 10% of the planned training): a sefa or ganspace run with eval_per_direction 'auto' reads them
# too, so it is evaluated on the draws a hessian run of the same settings uses (batch --methods
# hands every method one set of options and compares them on one set of draws).
AUTO_EVAL_SIZE = ("steps", "batch_size", "accumulate", "k", "eval_every")
# Values of settings added after the first release, for run records written before them: a
# checkpoint of an old run resumes with the settings it was trained with.
LEGACY = {"parametrization": "qr", "schedule": "constant", "warmup": 0.0, "accumulate": 1,
          "loss": "mean", "keep": "last", "patience": None, "eval_per_direction": 16}


LR_FROM_BASIS = 1e-4     # a rotation of a good basis (SeFa, GANSpace): small steps
LR_FROM_RANDOM = 1e-2    # the paper's rate, for a start that has to travel (random, coords)
K_FROM_RANDOM = 4        # Rademacher draws from a random start: k = 4 learned in fewer steps
# What a run uses for the settings not given, by the start it took (the learning study,
# BENCHMARKS.md): a small cosine-decayed rotation of a good basis; the paper's run otherwise.
START_DEFAULTS = {
    "basis": {"lr": LR_FROM_BASIS, "parametrization": "cayley", "schedule": "cosine",
              "k": PUBLISHED_K},
    "random": {"lr": LR_FROM_RANDOM, "parametrization": "qr", "schedule": "constant",
               "k": K_FROM_RANDOM},
}


def start_default(name: str, init: str) -> Any:
    """The value of setting `name` (lr, parametrization, schedule, k) for a run that starts from
    `init` and was not given one."""
    return START_DEFAULTS["basis" if init in ("sefa", "ganspace") else "random"][name]


def parse_eval_size(text: str) -> int | str:
    """'auto' or a whole number >= 1 of latents per direction."""
    value = str(text).strip().lower()
    if value == AUTO:
        return AUTO
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise SettingError("eval_per_direction", text, "give auto or a whole number >= 1, e.g. 16.")
    return number


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
        "hessian", "hessian: learn the directions with the Hessian Penalty (the options marked "
                   "[hessian]); sefa: closed form, the top right-singular vectors of the layer "
                   "that first reads z (orthonormal); ganspace: PCA of an early layer's activations "
                   "regressed back to z (unit rows, not orthogonal). sefa and ganspace train "
                   "nothing: they write the same run folder, with its fixed evaluation.",
        choices=METHODS)
    sefa_layers: str = setting(
        "gen_z", "The weights SeFa factorises: the z columns of gen_z only, or also of every "
                 "conditional batch norm (all). Read by --method sefa, by hessian's SeFa start "
                 "and by every run's SeFa reference line.", choices=SEFA_LAYERS)
    samples: int = setting(10_000, "Latents whose layer activations the PCA uses.",
                           methods=("ganspace",))
    ganspace_layer: str | None = setting(
        None, "The layer whose activations GANSpace takes the PCA of (blockN: BigGAN generator "
              "block N, or a module name under the model): --method ganspace's directions, "
              "hessian's --init ganspace start.", option="--layer", metavar="NAME",
        shown="block0", methods=("hessian", "ganspace"))
    ndirs: int | None = setting(
        None, "Directions to learn.", shown="one per latent coordinate, as published")
    steps: int = setting(50_000, "Optimiser steps (published: 50 epochs x 1,000).",
                         methods=HESSIAN)
    batch_size: int = setting(32, "Samples per step (published: 96 over 4 GPUs; 32 fits one).",
                              methods=HESSIAN)
    lr: float | None = setting(
        None, "Adam learning rate on the matrix (default betas). With cayley it is an angle per "
              "step. Measured on a real generator (BENCHMARKS.md, the learning study): from a "
              "SeFa start every rate above 1e-4 rotated the basis away from SeFa's quality.",
        shown=f"{LR_FROM_BASIS:g} from a SeFa or GANSpace start, {LR_FROM_RANDOM:g} (published) "
              f"from a random or coordinate start", methods=HESSIAN)
    parametrization: str | None = setting(
        None, "How the matrix stays orthonormal. cayley: Q = Q0 R(S), a rotation of the "
                  "start by the Cayley map of a skew-symmetric S that starts at 0 (the start is "
                  "exact, lr is an angle); qr: Q = Gram-Schmidt of a free matrix A (published; a "
                  "step's size depends on the scale of A).", choices=PARAMETRIZATIONS,
        shown="cayley from a SeFa or GANSpace start, qr (published) from a random or coordinate "
              "start", methods=HESSIAN)
    schedule: str | None = setting(
        None, "Learning rate over the run: cosine (linear warmup over --warmup of the steps, "
              "then cosine decay to 0 at --steps) or constant (published).", choices=SCHEDULES,
        shown="cosine from a SeFa or GANSpace start, constant (published) from a random or "
              "coordinate start", methods=HESSIAN)
    warmup: float = setting(0.05, "Share of --steps of linear warmup (cosine schedule).",
                            methods=HESSIAN)
    accumulate: int = setting(1, "Batches whose gradients are summed into one optimiser step "
                                 "(an effective batch of --batch-size x this).", methods=HESSIAN)
    loss: str = setting(
        "mean", "Training loss over a batch's per-sample penalties: mean (published) or trimmed "
                "(the 20% trimmed mean the fixed evaluation uses; on a real generator it did "
                "worse than the mean from both starts, BENCHMARKS.md).", choices=LOSSES,
        methods=HESSIAN)
    keep: str = setting(
        "best", "Which matrix the run hands back as directions.safetensors: the best on the fixed "
                "evaluation (the start, step 0, included) or the last; the other is kept as "
                "last.safetensors or best.safetensors.", choices=KEEPS,
        methods=HESSIAN)
    patience: int | None = setting(
        None, "Stop after this many fixed evaluations without an improvement larger than both "
              "the evaluation's measured standard error and its float32 rounding floor (README); "
              "run.json's stop_reason says why a run ended.",
        shown="off: run all --steps", methods=HESSIAN)
    k: int | None = setting(
        None, f"Rademacher draws per sample per step (published: {PUBLISHED_K}); a step costs "
              f"batch x (1 + 2k) images. Measured on a real generator (BENCHMARKS.md, the "
              f"learning study): from a random start k = {K_FROM_RANDOM} learned in fewer steps "
              f"than {PUBLISHED_K}; from a SeFa start no k improved on SeFa.",
        shown=f"{PUBLISHED_K} (published) from a SeFa or GANSpace start, {K_FROM_RANDOM} from a "
              f"random or coordinate start", methods=HESSIAN)
    epsilon: float = setting(PUBLISHED_EPSILON, "Finite-difference step; the penalty scales like "
                                                "1/epsilon^4.")
    reduction: str = setting("mean", "How the penalty reduces over pixels (published BigGAN "
                                     "run: mean).", choices=REDUCTIONS)
    path_size: float = setting(5.0, "Each sample moves d ~ U[-P, P] along one direction.")
    truncation: float = setting(1.0, "Latents are truncnorm(-2, 2) x truncation, in (0, 1]; "
                                     "1.0 ~ the paper's z ~ N(0, I).")
    init: str = setting("auto", "Start from the SeFa or GANSpace directions of the generator "
                                "(orthonormalised in their order), a random orthonormal matrix "
                                "(Kaiming-normal, published), or the coordinate axes. auto: sefa "
                                "for a full basis (no subspace, --ndirs = z_dim) when the "
                                "generator's first layer can be read, else random (measured: a SeFa start beats random "
                                "matrices, a random start did not learn to; BENCHMARKS.md).",
                        choices=INITS, methods=HESSIAN)
    subspace: tuple[int, int] | None = setting(
        None, "Learn inside latent coordinates LO..HI only, e.g. 0-39. (The paper's "
              "coarse/mid/fine split is the original BigGAN's, whose z is cut into per-block "
              "chunks; in BigGAN-deep every block reads all of z.)",
        metavar="LO-HI", parse=parse_subspace, methods=HESSIAN)
    layers: tuple[str, ...] = setting(
        ("image",), "Comma-separated outputs to penalise: image, blockN (BigGAN block N).",
        metavar="NAMES", parse=parse_layers)
    seed: int = setting(0, "Seeds every random draw (init, latents, directions, distances, "
                           "Rademacher).")
    checkpoint_every: int = setting(1000, "Steps between checkpoints (one is also taken on "
                                          "Ctrl-C or SIGTERM).", methods=HESSIAN)
    eval_every: int = setting(2500, "Steps between fixed held-out evaluations (and one at the "
                                    "end); run.json's eval_share says what they cost.",
                              methods=HESSIAN)
    eval_per_direction: int | str = setting(
        AUTO, "Fixed evaluation: latents per direction (each direction is measured on this many "
              "samples, distances stratified over [-P, P]); the evaluation has ndirs x this many. "
              "At 16, two evaluations with different seeds agree within 2%. auto: sized so that "
              "all evaluations and references cost about 10% of the planned training, between "
              "128 samples and 16 per direction (a sefa or ganspace run takes the size of a "
              "hessian run of the same settings, so it is evaluated on the same draws); "
              "run.json records the size and its measured standard error.", metavar="auto|N",
        parse=parse_eval_size)
    eval_k: int = setting(4, "Fixed evaluation: Rademacher draws per sample.")
    eval_references: int = setting(
        4, "Random orthonormal matrices whose fixed-evaluation penalty (mean and spread) is the "
           "chance level a learned matrix is compared with.")
    precision: str = precision_setting()    # auto: checked on the fixed evaluation at start-up
    compile: bool | None = compile_setting()
    chunk_size: int | None = setting(
        None, "At most this many images per generator call (bounds memory).",
        shown="all 1+2k perturbations of the batch in one call")
    penalty_mode: str = setting(
        "batched", "batched: all 1+2k generator passes in one forward (fastest on a GPU); "
                   "sequential: the paper's loop (can be faster on a CPU at large batch).",
        choices=PENALTY_MODES, methods=HESSIAN)

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
        need(self.lr is None or (isinstance(self.lr, (int, float)) and math.isfinite(self.lr)
                                 and self.lr > 0), "lr", self.lr, "must be a finite number > 0.")
        need(self.k is None or (isinstance(self.k, int) and self.k >= 2), "k", self.k,
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
        need(self.eval_per_direction == AUTO or (isinstance(self.eval_per_direction, int)
                                                 and self.eval_per_direction >= 1),
             "eval_per_direction", self.eval_per_direction, "give auto or a number >= 1.")
        need(self.parametrization is None or self.parametrization in PARAMETRIZATIONS,
             "parametrization", self.parametrization, f"use {' or '.join(PARAMETRIZATIONS)}.")
        need(self.schedule is None or self.schedule in SCHEDULES, "schedule", self.schedule,
             f"use {' or '.join(SCHEDULES)}.")
        need(isinstance(self.warmup, (int, float)) and 0 <= self.warmup < 1, "warmup",
             self.warmup, "must be in [0, 1), a share of --steps, e.g. 0.05.")
        at_least("accumulate", self.accumulate, 1)
        one_of("loss", self.loss, LOSSES)
        one_of("keep", self.keep, KEEPS)
        need(self.patience is None or (isinstance(self.patience, int) and self.patience >= 1),
             "patience", self.patience, "must be at least 1 (evaluations).")
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
        unread = self.unread()
        if unread:
            name = unread[0]
            raise SettingError(name, getattr(self, name), not_read_reason(name, self.method))
        return self

    # ------------------------------------------------------------ which method reads what
    @classmethod
    def methods_reading(cls, name: str) -> tuple[str, ...] | None:
        """The methods that read field `name` (its `methods=` tag); None: every method."""
        for f in fields(cls):
            if f.name == name:
                return methods_of(f)
        raise KeyError(name)

    @classmethod
    def owned_by(cls, method: str) -> tuple[str, ...]:
        """The fields that only some methods read and `method` is one of them (declaration
        order): e.g. owned_by('ganspace') == ('samples', 'ganspace_layer')."""
        one_of("method", method, METHODS)
        return tuple(f.name for f in fields(cls) if method in (methods_of(f) or ()))

    def reads(self, name: str, method: str | None = None) -> bool:
        """Does a run of `method` (default: this config's) with these settings read field
        `name`? Shared fields always; a method's own; and the hessian fields that size an
        'auto' fixed evaluation (AUTO_EVAL_SIZE) for every method while it is 'auto'."""
        owners = self.methods_reading(name)
        return (owners is None or (method or self.method) in owners
                or (name in AUTO_EVAL_SIZE and self.eval_per_direction == AUTO))

    def unread(self) -> tuple[str, ...]:
        """The fields this config sets away from their defaults that its method does not read
        (validate refuses the first)."""
        return tuple(f.name for f in fields(self)
                     if getattr(self, f.name) != f.default and not self.reads(f.name))

    def same_as_recorded(self, recorded: Any, ignore: tuple[str, ...] = ()) -> bool:
        """Does a run record's config (run.json) hold this config's value for every setting this
        config's method reads, except `ignore`? A setting the record lacks counts as its
        default; a setting the method does not read changes nothing."""
        if not isinstance(recorded, dict):
            return False
        default = DiscoverConfig().to_json()
        return all(recorded.get(k, default[k]) == v for k, v in self.to_json().items()
                   if k not in ignore and self.reads(k))

    def for_method(self, method: str) -> "DiscoverConfig":
        """This config for a run of `method`: the method replaced, the fields that method does
        not read back at their defaults (batch --methods: one set of options for every method,
        each reading its own)."""
        config = replace(self, method=method)
        return replace(config, **{name: default_of(DiscoverConfig, name)
                                  for name in config.unread()})

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["subspace"] = list(self.subspace) if self.subspace else None
        d["layers"] = list(self.layers)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DiscoverConfig":
        names = {f.name for f in fields(cls)}
        d = {**{k: v for k, v in LEGACY.items() if k not in d}, **d}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("subspace") is not None:
            d["subspace"] = tuple(d["subspace"])
        if "layers" in d:
            d["layers"] = tuple(d["layers"])
        return cls(**d)


def not_read_reason(name: str, method: str) -> str:
    """Why field `name`, set away from its default, is refused for a run of `method`."""
    owners = DiscoverConfig.methods_reading(name) or METHODS
    default = default_of(DiscoverConfig, name)
    sized = (" (eval_per_direction is given, so it does not size the fixed evaluation either)"
             if name in AUTO_EVAL_SIZE else "")
    return (f"a setting of method {' or '.join(owners)}; method {method} does not read it"
            f"{sized}; leave it at its default ({default!r}).")


# Settings that may change on --resume without changing the result up to the old step count.
# (precision and compile change how fast the steps run, and the last bits of their values.)
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "eval_every", "chunk_size", "precision",
                     "compile", "keep", "patience")
