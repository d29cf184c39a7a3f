"""The fixed evaluation: stratified draws, per-sample penalties of functions with known Hessians, the trimmed mean."""
from __future__ import annotations

import torch

from biggan_directions.core.evaluation import (EVAL_CHUNK, STATISTIC, direction_penalty,
                                                 eval_draws, evaluate, reference_values,
                                                 sample_penalties, trimmed_mean)


def bilinear(x: torch.Tensor) -> torch.Tensor:
    """Per sample (x0 x1, 3 x0 x1): the Hessian's only off-diagonal entries are 1 and 3, so the
    second difference along a Rademacher v is exactly 2 v0 v1 (times 1 and 3)."""
    p = x[:, 0] * x[:, 1]
    return torch.stack([p, 3 * p], dim=1)


def separable(x: torch.Tensor) -> torch.Tensor:
    """A sum of one-coordinate functions: diagonal Hessian in the coordinate basis."""
    return (x ** 4 + torch.sin(x)).sum(dim=1, keepdim=True)


def test_draws_are_stratified_per_direction_and_distance():
    draws = eval_draws(5, 7, per_direction=4, k=3, truncation=1.0, path_size=2.0, seed=3)
    assert draws.samples == 20 and draws.z.shape == (20, 7) and draws.w.shape == (20, 5)
    assert ((draws.w != 0).sum(dim=1) == 1).all()                    # one direction per sample
    j = draws.w.abs().argmax(dim=1)
    assert torch.bincount(j, minlength=5).tolist() == [4] * 5       # every direction 4 times
    for direction in range(5):                                     # one distance per stratum
        d = draws.w[j == direction, direction].sort().values
        edges = torch.linspace(-2.0, 2.0, 5)
        assert ((d >= edges[:-1] - 1e-6) & (d <= edges[1:] + 1e-6)).all()
    again = eval_draws(5, 7, per_direction=4, k=3, truncation=1.0, path_size=2.0, seed=3)
    assert torch.equal(again.z, draws.z) and torch.equal(again.w, draws.w)


def test_per_sample_penalties_of_known_hessians():
    draws = eval_draws(2, 2, per_direction=50, k=2, truncation=1.0, path_size=1.0, seed=0)
    q = torch.eye(2)
    mean = sample_penalties(bilinear, q, draws, epsilon=0.1, reduction="mean")
    worst = sample_penalties(bilinear, q, draws, epsilon=0.1, reduction="max")
    # k = 2: the two second differences 2 v0 v1 are equal (variance 0) or opposite (variance 8)
    # for the first output; 9 x that for the second. Mean over the 2 elements: 5 x; max: 9 x.
    first = mean / 5
    assert mean.shape == (100,) and mean.dtype == torch.float64
    assert torch.allclose(first, torch.where(first > 4, 8.0, 0.0).double(), atol=1e-3)
    assert 0 < (first > 4).sum() < 100                          # both cases occur
    assert torch.allclose(worst, 9 * first, rtol=1e-5, atol=1e-3)
    # a diagonal Hessian has no penalty, at every sample
    assert sample_penalties(separable, q, draws, epsilon=0.1, reduction="mean").abs().max() < 1e-3


def test_sample_penalties_agree_with_the_training_penalty_on_the_same_draws():
    torch.manual_seed(0)
    W = torch.randn(6, 3)
    G = lambda x: torch.tanh(x @ W.T) ** 2                                     # noqa: E731
    q = torch.linalg.qr(torch.randn(3, 3))[0]
    draws = eval_draws(3, 3, per_direction=30, k=4, truncation=1.0, path_size=1.0, seed=1)
    values = sample_penalties(G, q, draws, epsilon=0.1, reduction="mean")
    assert draws.samples == 90 > EVAL_CHUNK                         # two chunks
    for i, start in enumerate(range(0, 90, EVAL_CHUNK)):
        chunk = slice(start, start + EVAL_CHUNK)
        direct = direction_penalty(G, q, draws.z[chunk], draws.w[chunk], k=4, epsilon=0.1,
                                   reduction="mean",
                                   generator=torch.Generator().manual_seed(draws.seed + i))
        assert abs(float(direct) - float(values[chunk].mean())) < 1e-5 * float(direct)


def test_trimmed_mean_drops_the_tails():
    values = torch.tensor([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1000])
    assert trimmed_mean(values) == 6.0                 # 2 cut from each end: mean of 3..9
    assert trimmed_mean(values, 0.0) == float(values.mean())
    assert trimmed_mean(torch.tensor([5.0, 7.0])) == 6.0   # too few to cut anything
    values[-1] = 1e9                                   # an outlier moves nothing
    assert trimmed_mean(values) == 6.0


def test_evaluate_and_references_use_the_trimmed_mean():
    draws = eval_draws(2, 2, per_direction=50, k=2, truncation=1.0, path_size=1.0, seed=0)
    q = torch.eye(2)
    values = sample_penalties(bilinear, q, draws, epsilon=0.1, reduction="mean")
    assert evaluate(bilinear, q, draws, epsilon=0.1, reduction="mean") == trimmed_mean(values)
    ref = reference_values(separable, draws, 2, 2, epsilon=0.1, reduction="mean", matrices=3)
    assert ref["statistic"] == STATISTIC and len(ref["random_values"]) == 3
    assert abs(ref["identity"]) < 1e-3                 # separable in the coordinate basis
    assert ref["random"] > 0.1                         # but not in rotated ones
