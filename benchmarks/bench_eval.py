"""Benchmark the fixed evaluation: how well two evaluations of one matrix with different seeds agree.

For a fixed random orthonormal matrix Q, the per-sample penalties are computed with draws
from seeds 0..S-1 (new latents, distances and Rademacher vectors each time), and two statistics
of them are reported per setting: the plain mean and the 20% trimmed mean the evaluation uses
(evaluation.trimmed_mean). For each: mean over seeds, coefficient of variation (std / mean over
seeds), the mean and the largest relative difference between two seeds. Settings:

  old       the first release's evaluation: 16 latents, one random direction each, 8 draws;
  m x k     the stratified evaluation (evaluation.eval_draws): every direction on m latents,
            distances stratified over [-P, P], k Rademacher draws per sample.

Also the time of one evaluation, to choose defaults that keep it a small share of a run.
Generators: the small test model (random weights, z 128) and a real pretrained one, the face
DCGAN (z 100, 64 px) from the gan-face-generate wheel (skipped with a message when it cannot be
downloaded). Issue 13's target: two seeds agree within 2% (read here as CV <= 2%; the mean
difference between two seeds is about 1.1 x CV).

    python -m benchmarks.bench_eval                  # both generators, 5 seeds
    python -m benchmarks.bench_eval --only small --seeds 3
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch

from biggan_directions.core.directions import random_orthonormal
from biggan_directions.core.evaluation import (EvalDraws, eval_draws, sample_penalties,
                                                 trimmed_mean)
from biggan_directions.models.generator import truncated_normal


def old_draws(ndirs: int, z_dim: int, path_size: float, seed: int) -> EvalDraws:
    """The first release's fixed evaluation: 16 latents, random direction and distance each."""
    rng = torch.Generator().manual_seed(seed)
    z = truncated_normal((16, z_dim), 1.0, rng)
    j = torch.randint(0, ndirs, (16,), generator=rng)
    d = (torch.rand(16, generator=rng) * 2 - 1) * path_size
    w = torch.zeros(16, ndirs)
    w[torch.arange(16), j] = d
    return EvalDraws(z, w, 8, seed + 1000)


def generators(only: str | None):
    if only in (None, "small"):
        from biggan_directions.models.generator import BigGANGenerator
        from tests.support import build_small_biggan
        yield "small (random, z 128)", BigGANGenerator(build_small_biggan(), 207, 1.0), 5.0
    if only in (None, "face"):
        from benchmarks.real_dcgan import Unavailable, load_face_dcgan
        try:
            yield "face DCGAN (real, z 100)", load_face_dcgan(), 2.0
        except Unavailable as e:
            print(f"face DCGAN skipped: {e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", choices=["small", "face"], default=None)
    parser.add_argument("--per-direction", type=int, nargs="+", default=[4, 16, 32])
    parser.add_argument("--k", type=int, nargs="+", default=[4])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, CPU; {args.seeds} seeds per setting")
    statistics_ = {"mean": lambda v: float(v.mean()), "trimmed": trimmed_mean}
    for name, G, path_size in generators(args.only):
        d = G.z_dim
        q = random_orthonormal(d, d, torch.Generator().manual_seed(123))
        print(f"\n{name}: ndirs {d}, path size {path_size}, eps 0.1, mean reduction")
        print(f"{'setting':<10} {'samples':>7} {'statistic':<9} {'value':>9} {'CV':>6} "
              f"{'mean diff':>9} {'max diff':>8} {'s/eval':>7}")
        settings = [("old", None, None)] + [(f"{m} x {k}", m, k)
                                           for m, k in itertools.product(args.per_direction, args.k)]
        for label, m, k in settings:
            per_seed, times = [], []
            for seed in range(args.seeds):
                draws = (old_draws(d, d, path_size, seed) if m is None else
                         eval_draws(d, d, per_direction=m, k=k, truncation=1.0,
                                    path_size=path_size, seed=seed))
                t0 = time.perf_counter()
                per_seed.append(sample_penalties(G, q, draws, epsilon=0.1, reduction="mean"))
                times.append(time.perf_counter() - t0)
            for stat, f in statistics_.items():
                values = [f(v) for v in per_seed]
                mean = statistics.fmean(values)
                diffs = [abs(a - b) / mean for a, b in itertools.combinations(values, 2)]
                print(f"{label:<10} {draws.samples:>7} {stat:<9} {mean:>9.4g} "
                      f"{statistics.stdev(values) / mean:>5.1%} {statistics.fmean(diffs):>8.1%} "
                      f"{max(diffs):>8.1%} {statistics.median(times):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
