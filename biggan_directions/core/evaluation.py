"""The fixed evaluation: a direction matrix's Hessian Penalty on fixed, stratified draws, and its references.

Training penalties are noisy (a new batch each step), so progress and comparisons are measured
on one fixed set of draws, the same for every matrix of a run and for every method:

- every direction j is measured on `per_direction` latents (stratified: no direction is left
  out or over-sampled by chance), at distances d stratified over [-P, P] (one per sub-interval
  of width 2P/per_direction, jittered inside it);
- the Rademacher vectors come from a seed of their own, per fixed chunk of EVAL_CHUNK samples,
  so the value does not depend on the device or its memory;
- a pooled run's draws (several classes) are stratified over its classes: every class is
  measured on the same latents, walks and Rademacher vectors, with the conditional generator
  G(z, classes) (models.pooled), so the pooled value is the trimmed mean over classes x draws
  and each class's block is exactly what a single-class run of that class is measured on;
- the value is a 20% trimmed mean of the per-sample penalties (the mean of the middle 60%):
  the per-sample penalty is heavy-tailed (a few latents give 10-30x the mean), and on the same
  draws the trimmed mean spreads 2.5x less between seeds than the plain mean
  (benchmarks/bench_eval.py, BENCHMARKS.md);
- the random reference is the mean and spread over several random orthonormal matrices, so a
  learned matrix can be said to beat chance only when it lies outside that spread.

Always in fp32 (whatever precision the training uses), so runs stay comparable.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..models.generator import truncated_normal
from .directions import baseline_directions
from .penalty import hessian_penalty, tile_batch

EVAL_CHUNK = 64          # samples per penalty call in an evaluation (fixed: it orders the draws)
TRIM = 0.2               # share of samples cut from each end before averaging
STATISTIC = "trimmed mean 20%"   # recorded with the references: values of other statistics do not compare

# Sizing an evaluation to its run (eval_per_direction 'auto'): the evaluations and references
# of a run cost at most EVAL_BUDGET of its planned training, counted in generator images (a
# training image costs about TRAIN_IMAGE_COST forward images: forward + backward), which keeps
# the size a function of the settings alone, so the same command gives the same evaluation.
EVAL_BUDGET = 0.10
TRAIN_IMAGE_COST = 3.0
EVAL_FLOOR_SAMPLES = 128       # never fewer samples than this (its spread is recorded)
EVAL_MAX_PER_DIRECTION = 16    # the measured default: two seeds agree within 2%


def planned_eval_size(*, ndirs: int, steps: int, batch_images: int, eval_k: int,
                      evaluations: int) -> int:
    """Latents per direction for `evaluations` evaluations of ndirs directions to cost about
    EVAL_BUDGET of `steps` training steps of `batch_images` generator images each, clamped to
    [EVAL_FLOOR_SAMPLES / ndirs, EVAL_MAX_PER_DIRECTION] (the floor wins for few directions)."""
    train = steps * batch_images * TRAIN_IMAGE_COST
    per_sample = 1 + 2 * eval_k
    size = int(EVAL_BUDGET * train / (max(1, evaluations) * ndirs * per_sample))
    floor = math.ceil(EVAL_FLOOR_SAMPLES / ndirs)
    return max(floor, min(EVAL_MAX_PER_DIRECTION, size))


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for a side stream (evaluation, references) that leaves the training stream alone."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def direction_penalty(G: Callable, q: torch.Tensor, z: torch.Tensor, w: torch.Tensor, *, k: int,
                      epsilon: float, reduction: str, generator: torch.Generator,
                      chunk_size: int | None = None, mode: str = "batched",
                      classes: torch.Tensor | None = None) -> torch.Tensor:
    """Hessian Penalty of w -> G(z + w Q) at w, for q (ndirs, z_dim), z (B, z_dim), w (B, ndirs):
    the penalty that makes G's Hessian diagonal in the basis of Q's rows. With `classes` (B,),
    G is conditional and each sample keeps its class in every pass: G(z + w Q, classes)."""
    def G_w(w_rows: torch.Tensor):                       # (m*B, ndirs) -> G((m*B, z_dim))
        rows = w_rows.shape[0]
        if classes is None:
            return G(tile_batch(z, rows) + w_rows @ q)
        return G(tile_batch(z, rows) + w_rows @ q, tile_batch(classes, rows))
    return hessian_penalty(G_w, w, k=k, epsilon=epsilon, reduction=reduction, generator=generator,
                           chunk_size=chunk_size, mode=mode)


@dataclass(frozen=True)
class EvalDraws:
    """The fixed draws: z (N, z_dim) latents and w (N, ndirs) walks (one direction each, N =
    ndirs * per_direction), the Rademacher draws per sample `k`, and their seed. `classes`: a
    pooled run's class set, each measured on all N draws (None: G is a single-class G(z))."""

    z: torch.Tensor
    w: torch.Tensor
    k: int
    seed: int
    classes: tuple[int, ...] | None = None

    @property
    def samples(self) -> int:
        """Samples evaluated: N, times the number of classes for a pooled set."""
        return int(self.z.shape[0]) * (len(self.classes) if self.classes else 1)

    def for_class(self, class_index: int) -> "EvalDraws":
        """The same draws for one class of a conditional generator (a pooled set's block)."""
        return EvalDraws(self.z, self.w, self.k, self.seed, (int(class_index),))


def eval_draws(ndirs: int, z_dim: int, *, per_direction: int, k: int, truncation: float,
               path_size: float, seed: int, classes=None) -> EvalDraws:
    """The stratified fixed draws of a run (see the module docstring), on the CPU; `classes`:
    a pooled run's set (each class gets these same draws)."""
    rng = torch.Generator().manual_seed(derived_seed(seed, "eval"))
    n = ndirs * per_direction
    z = truncated_normal((n, z_dim), truncation, rng)                      # (N, z_dim)
    j = torch.arange(ndirs).repeat_interleave(per_direction)                # (N,)
    slot = torch.arange(per_direction).repeat(ndirs).double()              # stratum of d
    u = torch.rand(n, generator=rng, dtype=torch.float64)
    d = ((slot + u) / per_direction * 2.0 - 1.0) * path_size               # in [-P, P]
    w = torch.zeros(n, ndirs)
    w[torch.arange(n), j] = d.float()
    return EvalDraws(z, w, k, derived_seed(seed, "eval-draws"),
                     tuple(int(c) for c in classes) if classes is not None else None)


def sample_penalties(G: Callable, q: torch.Tensor, draws: EvalDraws, *, epsilon: float,
                     reduction: str, device: torch.device | str = "cpu",
                     chunk_size: int | None = None,
                     on_chunk: Callable[[int], None] | None = None) -> torch.Tensor:
    """The penalty of direction matrix q (ndirs, z_dim) at each fixed draw, (N,) float64 on the
    CPU, without autograd: each sample's variance reduced over its own elements by `reduction`
    (mean or max) and summed over G's outputs; EVAL_CHUNK samples per generator call, after
    each of which `on_chunk(samples done in it)` is called (progress). Pooled draws give the
    classes' blocks one after the other, in the set's order, (C * N,): each block on the same
    latents, walks and Rademacher vectors."""
    q = q.detach().to(device)
    values = []
    n = int(draws.z.shape[0])
    blocks = draws.classes if draws.classes else (None,)
    with torch.no_grad():
        for c, i, start in [(c, i, s) for c in blocks
                            for i, s in enumerate(range(0, n, EVAL_CHUNK))]:
            z = draws.z[start:start + EVAL_CHUNK].to(device)
            w = draws.w[start:start + EVAL_CHUNK].to(device)
            rng = torch.Generator().manual_seed(draws.seed + i)
            labels = None if c is None else torch.full((len(z),), c, dtype=torch.long,
                                                       device=device)
            outputs: list[torch.Tensor] = []

            def per_sample(variance: torch.Tensor) -> torch.Tensor:      # (B, ...) -> scalar
                flat = variance.flatten(1)
                outputs.append(flat.amax(1) if reduction == "max" else flat.mean(1))
                return outputs[-1].sum()

            direction_penalty(G, q, z, w, k=draws.k, epsilon=epsilon, reduction=per_sample,
                              generator=rng, chunk_size=chunk_size, classes=labels)
            values.append(torch.stack(outputs).sum(0).double().cpu())
            if on_chunk is not None:
                on_chunk(len(z))
    return torch.cat(values)


def trim_mean(values: torch.Tensor, trim: float = TRIM) -> torch.Tensor:
    """The mean of `values` without the floor(trim * n) smallest and as many largest, as a
    (differentiable) scalar tensor: the fixed evaluation's statistic, and the trimmed loss."""
    ordered = values.flatten().sort().values
    cut = int(trim * ordered.numel())
    return ordered[cut:ordered.numel() - cut].mean()


def trimmed_mean(values: torch.Tensor, trim: float = TRIM) -> float:
    """trim_mean as a float."""
    return float(trim_mean(values, trim))


def trimmed_mean_se(values: torch.Tensor, trim: float = TRIM) -> float:
    """The standard error of trimmed_mean(values): the winsorised standard deviation over
    (1 - 2 trim) sqrt(n) (Tukey and McLaughlin): how far two draw sets of this size would put
    the same matrix apart, measured from the samples themselves."""
    ordered = values.flatten().double().sort().values
    n = ordered.numel()
    cut = int(trim * n)
    if n - 2 * cut < 2:
        return float("nan")
    winsorised = ordered.clamp(ordered[cut], ordered[n - cut - 1])
    return float(winsorised.std() / ((1 - 2 * trim) * math.sqrt(n)))


# The rounding floor (patience): how far apart two evaluations can be from float32 rounding
# alone. A second difference (G(z+ev) - 2G(z) + G(z-ev)) / e^2 of outputs of size S carries an
# error of about ROUNDING_UNITS * u * S / e^2 (u = float32's unit roundoff): each of the three
# outputs comes out of a deep network whose own rounding, and the order of its sums, varies with
# the CPU's kernels (ATEN_CPU_CAPABILITY). Measured on a generator whose every matrix has
# penalty exactly 0 (|z|^2), the kernels moved evaluations by 1e-8 where this floor is ~1e-5;
# on the small BigGAN (values ~1) it is ~0.1% of the value, far below any evaluation's
# standard error, so it never hides learning.
ROUNDING_UNITS = 32
FLOAT32_UNIT = 2.0 ** -24


def rounding_floor(G: Callable, draws: EvalDraws, value: float, *, epsilon: float,
                   device: torch.device | str = "cpu") -> float:
    """The smallest change of a fixed-evaluation `value` that is not float32 rounding: with
    d = ROUNDING_UNITS * u * S / epsilon^2 the error of one second difference (S the mean over
    the draws of max |G(z)|, summed over G's outputs), the error of a variance of such
    differences is about 4 d sqrt(value) + 4 d^2. One forward pass of the draws' latents."""
    scale = 0.0
    n = int(draws.z.shape[0])
    with torch.no_grad():
        for c, start in [(c, s) for c in (draws.classes or (None,))    # pooled: every class
                         for s in range(0, n, EVAL_CHUNK)]:
            z = draws.z[start:start + EVAL_CHUNK].to(device)
            out = G(z) if c is None else G(z, torch.full((len(z),), c, dtype=torch.long,
                                                           device=device))
            outs = out if isinstance(out, (list, tuple)) else [out]
            scale += sum(float(o.detach().flatten(1).abs().amax(1).double().sum()) for o in outs)
    scale /= max(1, draws.samples)
    d = ROUNDING_UNITS * FLOAT32_UNIT * scale / epsilon ** 2
    return 4.0 * d * math.sqrt(max(0.0, value)) + 4.0 * d * d


def evaluate(G: Callable, q: torch.Tensor, draws: EvalDraws, *, epsilon: float, reduction: str,
             device: torch.device | str = "cpu", chunk_size: int | None = None,
             on_chunk: Callable[[int], None] | None = None) -> float:
    """The fixed-evaluation penalty of direction matrix q (ndirs, z_dim): the trimmed mean
    (TRIM) of its per-sample penalties on the fixed draws (sample_penalties)."""
    return trimmed_mean(sample_penalties(G, q, draws, epsilon=epsilon, reduction=reduction,
                                         device=device, chunk_size=chunk_size, on_chunk=on_chunk))


def reference_values(G: Callable, draws: EvalDraws, ndirs: int, z_dim: int, *, epsilon: float,
                     reduction: str, subspace: tuple[int, int] | None = None, matrices: int = 4,
                     seed: int = 0, device: torch.device | str = "cpu",
                     chunk_size: int | None = None,
                     on_chunk: Callable[[int], None] | None = None,
                     identity: bool = True) -> dict[str, Any]:
    """The fixed-evaluation penalty of the identity (coordinate axes; unless identity=False) and
    of `matrices` random orthonormal matrices (in the same subspace): {'identity': x, 'random':
    mean, 'random_std': sample std, 'random_values': [...], 'statistic': STATISTIC} - what a
    learned matrix should beat, with its spread."""
    def run(q: torch.Tensor) -> float:
        return evaluate(G, q, draws, epsilon=epsilon, reduction=reduction, device=device,
                        chunk_size=chunk_size, on_chunk=on_chunk)

    rng = torch.Generator().manual_seed(derived_seed(seed, "reference"))
    values = [run(baseline_directions("random", ndirs, z_dim, subspace, rng)) for _ in range(matrices)]
    mean = sum(values) / len(values)
    std = (math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
           if len(values) > 1 else 0.0)
    return {"identity": run(baseline_directions("coords", ndirs, z_dim, subspace))
            if identity else None,
            "random": mean, "random_std": std, "random_values": values, "statistic": STATISTIC}


# The verdict against random matrices needs an evaluation finer than the band it tests: its own
# standard error (the noise of one evaluation of one matrix, trimmed_mean_se) must be at most
# NOISE_LIMIT random-spreads (standard deviations of the random matrices on the same draws), else
# a 2-spread verdict is mostly the draws' noise and the verdict says it cannot tell.
NOISE_LIMIT = 1.0
COARSE = "too coarse to tell"     # how such a verdict starts


def random_spreads(value: float | None, reference: dict[str, Any] | None) -> float | None:
    """How many random-spreads `value` lies from the random matrices' mean on ITS OWN draws
    ((value - mean) / std; negative: below random), None when it cannot be said (no value,
    no reference, or a zero spread). Values on different draw sets compare only this way."""
    if value is None or not reference or reference.get("random") is None:
        return None
    std = reference.get("random_std") or 0.0
    if not (std > 0 and math.isfinite(value)):
        return None
    return (float(value) - reference["random"]) / std


def noise_spreads(noise: float | None, reference: dict[str, Any] | None) -> float | None:
    """An evaluation's standard error `noise` in random-spreads of `reference` (None: unknown)."""
    std = (reference or {}).get("random_std") or 0.0
    if noise is None or not (std > 0) or not math.isfinite(noise):
        return None
    return float(noise) / std


def per_direction_to_tell(per_direction: int, noise_ratio: float) -> int:
    """Latents per direction at which an evaluation whose noise is `noise_ratio` random-spreads
    at `per_direction` gets to NOISE_LIMIT (the standard error falls as 1/sqrt(samples))."""
    return max(per_direction + 1, math.ceil(per_direction * (noise_ratio / NOISE_LIMIT) ** 2))


def versus_random(value: float, reference: dict[str, Any], spread: float = 2.0, *,
                  noise: float | None = None, per_direction: int | None = None) -> str:
    """'below random' / 'above random' when `value` lies more than `spread` standard deviations
    of the random matrices from their mean, else 'within the random spread'. With the
    evaluation's standard error `noise` (trimmed_mean_se) above NOISE_LIMIT random-spreads:
    'too coarse to tell (noise N random-spreads)', naming the --eval-per-direction that would
    tell when `per_direction` (the evaluation's latents per direction) is given."""
    mean, std = reference["random"], reference.get("random_std") or 0.0
    ratio = noise_spreads(noise, reference)
    if ratio is not None and ratio > NOISE_LIMIT:
        finer = (f": --eval-per-direction {per_direction_to_tell(per_direction, ratio)} would tell"
                 if per_direction else "")
        return f"{COARSE} (noise {ratio:.1f} random-spreads){finer}"
    if value < mean - spread * std:
        return "below random"
    if value > mean + spread * std:
        return "above random"
    return "within the random spread"
