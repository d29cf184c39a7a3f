"""Training that never hands back worse than it started: the best matrix kept, reported on a
test set, resumed exactly; --patience; the rotation parametrisation, schedule and losses; an
evaluation sized to its run, with references computed once."""
from __future__ import annotations

import csv
import json
import math
import os
import signal

import pytest
import torch

from biggan_directions.core.directions import (DirectionMatrix, load_directions, orthonormalize,
                                               random_orthonormal)
from biggan_directions.core.evaluation import (EVAL_FLOOR_SAMPLES, planned_eval_size, trim_mean,
                                                 trimmed_mean, trimmed_mean_se)
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import Discovery, DiscoveryInterrupted, patience_spread
from biggan_directions.runs.discover import run_discover
from tests.support import TINY_EVAL, HiddenBasis


class Isotropic:
    """G(z) = |z|^2 per output: its Hessian is 2I, diagonal in every basis, so every matrix has
    penalty exactly 0 and no evaluation can ever improve on the start."""

    z_dim = 6

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return (z ** 2).sum(1, keepdim=True).repeat(1, 4)


def noisy_config(**kw) -> DiscoverConfig:
    """A run that wanders: qr at a large constant rate on the hidden basis, evaluated each step."""
    base = dict(steps=8, batch_size=2, lr=0.5, parametrization="qr", schedule="constant",
                eval_every=1, checkpoint_every=100, eval_per_direction=4, eval_k=2,
                eval_references=2, path_size=1.0, seed=3, init="random")
    return DiscoverConfig(**{**base, **kw})


def eval_rows(folder) -> list[tuple[int, float]]:
    rows = csv.DictReader(open(folder / "log.csv"))
    return [(int(r["step"]), float(r["eval_penalty"])) for r in rows if r["eval_penalty"]]


def test_the_kept_matrix_is_the_best_evaluated_one_and_the_last_is_kept_too(tmp_path):
    G = HiddenBasis()
    cfg = noisy_config()
    run_discover(G, cfg, tmp_path / "run", progress=False)
    folder = tmp_path / "run"
    rows = eval_rows(folder)
    assert [s for s, _ in rows] == list(range(0, 9))              # the start is evaluated (step 0)
    best_step, best_value = min(rows, key=lambda r: r[1])
    record = json.loads((folder / "run.json").read_text())
    assert record["best_step"] == best_step and record["best_step"] != 8   # it wandered off
    assert record["eval_penalty"] == pytest.approx(best_value, rel=1e-5)
    kept, meta = load_directions(folder / "directions.safetensors")
    last, _ = load_directions(folder / "last.safetensors")
    judge = Discovery(G, cfg)
    assert judge.evaluate(kept) == pytest.approx(best_value, rel=1e-5)
    assert judge.evaluate(last) == pytest.approx(rows[-1][1], rel=1e-5)
    assert not torch.equal(kept, last)
    test = record["test_eval"]                                     # an independent draw set
    assert test["step"] == best_step and test["matrix"] == "best"
    assert test["value"] == pytest.approx(judge.evaluate(kept, judge.test_draws), rel=1e-6)
    assert test["value"] != pytest.approx(best_value, rel=1e-6)
    assert test["versus_random"].startswith(("below random", "above random",
                                               "within the random spread", "too coarse to tell"))
    assert {"identity", "random", "random_std"} <= set(record["reference_test"])
    assert record["reference_test"]["random"] != record["reference_eval"]["random"]
    assert record["stop_reason"] == "steps"

    run_discover(G, noisy_config(keep="last"), tmp_path / "last", progress=False)
    handed, _ = load_directions(tmp_path / "last" / "directions.safetensors")
    best, _ = load_directions(tmp_path / "last" / "best.safetensors")
    assert torch.equal(handed, last) and torch.equal(best, kept)    # same run, other file names


def test_resume_keeps_the_best_across_an_interruption_bit_for_bit(tmp_path):
    G = HiddenBasis()
    cfg = noisy_config()
    run_discover(G, cfg, tmp_path / "whole", progress=False)
    calls = {"n": 0}

    def interrupting(z):                                 # Ctrl-C during step 6's training call
        calls["n"] += torch.is_grad_enabled()
        if calls["n"] == 7 and torch.is_grad_enabled():  # (the first one counts the FLOPs)
            os.kill(os.getpid(), signal.SIGINT)
        return G(z)
    interrupting.z_dim = G.z_dim
    with pytest.raises(DiscoveryInterrupted) as info:
        run_discover(interrupting, cfg, tmp_path / "cut", progress=False)
    assert info.value.step == 6
    run_discover(G, cfg, tmp_path / "cut", resume=True, progress=False)
    for name in ("directions.safetensors", "last.safetensors"):
        a, _ = load_directions(tmp_path / "whole" / name)
        b, _ = load_directions(tmp_path / "cut" / name)
        assert torch.equal(a, b), name
    whole, cut = (json.loads((tmp_path / f / "run.json").read_text()) for f in ("whole", "cut"))
    for key in ("best_step", "best_eval_penalty", "eval_penalty", "test_eval"):
        assert whole[key] == cut[key], key
    assert eval_rows(tmp_path / "whole") == eval_rows(tmp_path / "cut")


def test_patience_stops_a_run_that_cannot_improve_and_says_why(tmp_path):
    cfg = DiscoverConfig(steps=50, batch_size=2, eval_every=2, patience=3, eval_per_direction=2,
                         eval_k=2, eval_references=2, init="random")
    result = run_discover(Isotropic(), cfg, tmp_path / "run", progress=False)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert result.step == 6 and record["step"] == 6               # 3 evaluations after the start
    assert record["stop_reason"] == "patience" and record["status"] == "finished"
    assert record["best_eval_penalty"] < 1e-6                      # rounding noise only
    again = run_discover(Isotropic(), cfg, tmp_path / "run", resume=True, progress=False)
    assert again.status == "already finished" and again.step == 6

    # without patience the same run goes past step 6, to its last step (12 steps: each
    # evaluation redraws curve.png, so 50 would cost 26 drawings)
    full = run_discover(Isotropic(), DiscoverConfig(**{**cfg.__dict__, "patience": None,
                                                     "steps": 12}),
                        tmp_path / "all", progress=False)
    assert full.step == 12
    assert json.loads((tmp_path / "all" / "run.json").read_text())["stop_reason"] == "steps"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_patience_stops_at_the_same_step_for_every_seed(tmp_path, seed):
    """Every evaluation of the isotropic generator is rounding noise: whatever the seed and the
    CPU's kernels (ATEN_CPU_CAPABILITY), no noise counts as an improvement."""
    cfg = DiscoverConfig(steps=50, batch_size=2, eval_every=2, patience=3, eval_per_direction=2,
                         eval_k=2, eval_references=2, init="random", seed=seed)
    assert run_discover(Isotropic(), cfg, tmp_path / "run", progress=False).step == 6


def test_rounding_noise_never_counts_as_an_improvement():
    """20 random matrices on the isotropic generator (each exactly 0 in exact arithmetic): no
    two evaluations are farther apart than the patience spread. The measured standard error
    alone is smaller than that noise (so without the rounding floor noise would count)."""
    run = Discovery(Isotropic(), DiscoverConfig(steps=50, batch_size=2, eval_per_direction=2,
                                                eval_k=2, init="random"))
    values = run.evaluate(per_sample=True)
    start, se = trimmed_mean(values), trimmed_mean_se(values)
    floor = run.evaluation.rounding_floor(start)
    g = torch.Generator().manual_seed(0)
    noise = [run.evaluate(random_orthonormal(6, 6, g)) for _ in range(20)]
    assert max(noise) - min(noise) > se                         # the standard error alone: fooled
    assert max(noise) - min(noise) < patience_spread(se, floor)  # with the floor: never


def test_the_rounding_floor_is_far_below_a_real_evaluations_spread():
    """On a generator with real curvature the floor is a tiny share of the value and of the
    standard error, so it never hides learning."""
    run = Discovery(HiddenBasis(), DiscoverConfig(steps=10, eval_per_direction=8, init="random"))
    values = run.evaluate(per_sample=True)
    value, se = trimmed_mean(values), trimmed_mean_se(values)
    floor = run.evaluation.rounding_floor(value)
    assert 0 < floor < 1e-2 * value and floor < 0.05 * se          # here 0.2% and 1.3%
    assert patience_spread(se, floor) == se
    assert patience_spread(float("nan"), floor) == floor


def test_patience_counts_only_improvements_larger_than_the_spread():
    run = Discovery(HiddenBasis(), DiscoverConfig(steps=10))
    run.observe(10.0, 0.5)                                       # the start
    assert run.best["value"] == 10.0 and run.stale == 0
    run.observe(9.8, 0.5)                                        # better, within the spread
    assert run.best["value"] == 9.8 and run.stale == 1
    run.observe(9.0, 0.5)                                        # better by more than the spread
    assert run.best["value"] == 9.0 and run.stale == 0
    run.observe(9.5, 0.5)
    assert run.best["value"] == 9.0 and run.stale == 1


def test_cayley_rotation_starts_exactly_at_the_start_and_stays_orthonormal():
    start = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    m = DirectionMatrix(5, 8, start, parametrization="cayley")
    assert torch.allclose(m(), orthonormalize(start.double()).float(), atol=1e-6)
    with torch.no_grad():
        m.A.normal_(0, 0.5, generator=torch.Generator().manual_seed(1))
    q = m()
    assert torch.allclose(q @ q.T, torch.eye(5), atol=1e-5)
    assert not torch.allclose(q, orthonormalize(start.double()).float(), atol=1e-2)
    sub = DirectionMatrix(3, 8, "random", subspace=(2, 6), parametrization="cayley",
                          generator=torch.Generator().manual_seed(0))
    assert sub().shape == (3, 8) and sub()[:, :2].abs().max() == 0 and sub()[:, 6:].abs().max() == 0


def test_learning_rate_schedule_warms_up_then_decays_to_zero():
    run = Discovery(HiddenBasis(), DiscoverConfig(steps=100, lr=0.1, warmup=0.1, schedule="cosine"))
    assert run.learning_rate(0) == pytest.approx(0.01)           # 1/10 of the warmup
    assert run.learning_rate(9) == pytest.approx(0.1)
    assert run.learning_rate(10) == pytest.approx(0.1)
    assert run.learning_rate(55) == pytest.approx(0.05)           # half way down the cosine
    assert run.learning_rate(99) < 1e-3
    constant = Discovery(HiddenBasis(), DiscoverConfig(steps=100, lr=0.1, schedule="constant"))
    assert {constant.learning_rate(s) for s in (0, 50, 99)} == {0.1}


def test_trimmed_loss_is_the_trimmed_mean_of_the_per_sample_penalties():
    G = HiddenBasis()
    cfg = DiscoverConfig(steps=1, batch_size=10, loss="trimmed", seed=4)
    run = Discovery(G, cfg)
    run.setup()
    rng = run.rng.get_state()
    trimmed = run._loss()
    run.rng.set_state(rng)
    mean = Discovery(G, DiscoverConfig(steps=1, batch_size=10, seed=4))
    mean.setup()
    mean.rng.set_state(rng)
    plain = mean._loss()
    values = torch.tensor([8.0, 1.0, 2.0, 3.0, 100.0])
    assert float(trim_mean(values)) == pytest.approx(13 / 3)        # 1 cut from each end
    assert float(trimmed.detach()) != pytest.approx(float(plain.detach()))
    assert float(trimmed.detach()) < float(plain.detach())          # the heavy tail is cut


def test_accumulation_sums_batches_into_one_step():
    G = HiddenBasis()
    one = Discovery(G, DiscoverConfig(steps=3, batch_size=4, accumulate=1))
    two = Discovery(G, DiscoverConfig(steps=3, batch_size=4, accumulate=2))
    assert two.images_per_step == 2 * one.images_per_step
    state = two.rng.get_state()
    two.train_step()
    used_two = two.rng.get_state()
    two.rng.set_state(state)
    two._loss(), two._loss()
    assert torch.equal(two.rng.get_state(), used_two)            # two batches drawn per step
    assert two.step == 1


def test_auto_evaluation_is_sized_to_the_run_with_a_floor_and_a_cap():
    cost = dict(ndirs=128, batch_images=32 * 5, eval_k=4, evaluations=20)
    assert planned_eval_size(steps=50_000, **cost) == 16          # a published run: the cap
    assert planned_eval_size(steps=30, **cost) == math.ceil(EVAL_FLOOR_SAMPLES / 128)
    middle = planned_eval_size(steps=3_000, **cost)
    assert 1 < middle < 16
    assert planned_eval_size(steps=10, ndirs=4, batch_images=10, eval_k=2, evaluations=9) \
        == EVAL_FLOOR_SAMPLES // 4                                  # few directions: the floor
    values = torch.arange(100, dtype=torch.float64)
    se = trimmed_mean_se(values)
    assert 0 < se < values.std() / 10 * 1.5


def test_auto_size_spread_and_references_are_recorded_and_shared_by_later_runs(tmp_path):
    G = HiddenBasis()
    cfg = DiscoverConfig(steps=4, batch_size=2, eval_k=2, eval_references=2)
    meta = {"model": "hidden-basis", "class_index": 1}
    run_discover(G, cfg, tmp_path / "a", meta=meta, progress=False)
    first = json.loads((tmp_path / "a" / "run.json").read_text())
    assert first["eval_size_asked"] == "auto"
    assert first["eval_per_direction"] * 8 >= EVAL_FLOOR_SAMPLES
    assert first["eval_samples"] == first["eval_per_direction"] * 8
    assert first["eval_standard_error"] > 0
    assert "cached" not in first["reference_eval"]
    run_discover(G, cfg, tmp_path / "b", meta=meta, progress=False)
    second = json.loads((tmp_path / "b" / "run.json").read_text())
    assert second["reference_eval"]["cached"].endswith(".json")    # read, not computed again
    for key in ("reference_eval", "reference_test"):
        assert {k: v for k, v in second[key].items() if k != "cached"} == first[key]
    other = DiscoverConfig(steps=4, batch_size=2, eval_k=2, eval_references=2, path_size=2.0)
    run_discover(G, other, tmp_path / "c", meta=meta, progress=False)
    third = json.loads((tmp_path / "c" / "run.json").read_text())
    assert "cached" not in third["reference_eval"]                 # other settings: computed


def test_default_learning_rate_follows_the_start(small_biggan):
    from biggan_directions.models.generator import BigGANGenerator

    G = BigGANGenerator(small_biggan, 207, 1.0)
    assert Discovery(G, DiscoverConfig(steps=1)).lr == 1e-4                  # auto -> SeFa: rotate
    assert Discovery(G, DiscoverConfig(steps=1, init="random")).lr == 1e-2   # travel: published
    assert Discovery(G, DiscoverConfig(steps=1, init="coords")).lr == 1e-2
    assert Discovery(G, DiscoverConfig(steps=1, lr=0.5)).lr == 0.5           # given wins
    basis, paper = Discovery(G, DiscoverConfig(steps=1)), Discovery(G, DiscoverConfig(init="random"))
    assert (basis.parametrization, basis.schedule) == ("cayley", "cosine")
    assert (paper.parametrization, paper.schedule) == ("qr", "constant")    # the published run
    given = Discovery(G, DiscoverConfig(init="random", parametrization="cayley", schedule="cosine"))
    assert (given.parametrization, given.schedule) == ("cayley", "cosine")


def test_rademacher_draws_follow_the_start_and_the_evaluation_does_not(small_biggan, tmp_path):
    """k: 2 (published) from SeFa, 4 from random (the learning study); a given k wins. A step
    costs batch x (1 + 2k) images. The fixed evaluation's size is planned from the k given (or
    the published one), so both starts of one command are measured on the same draws."""
    from biggan_directions.models.generator import BigGANGenerator

    G = BigGANGenerator(small_biggan, 207, 1.0)
    cfg = dict(steps=40, batch_size=3)
    basis, travel = Discovery(G, DiscoverConfig(**cfg)), Discovery(G, DiscoverConfig(init="random", **cfg))
    given = Discovery(G, DiscoverConfig(init="random", k=3, **cfg))
    assert (basis.init, basis.k, travel.k, given.k) == ("sefa", 2, 4, 3)
    assert (basis.images_per_step, travel.images_per_step, given.images_per_step) == (15, 27, 21)
    assert basis.eval_per_direction == travel.eval_per_direction
    assert (basis.draws.z == travel.draws.z).all()
    calls = []
    plain = travel.G
    travel._train_G = lambda x: (calls.append(x.shape[0]), plain(x))[1]    # count the images
    travel.train_step()
    assert calls == [27]                                  # 3 latents x (1 + 2 x 4) in one call

    record_folder = tmp_path / "run"
    run_discover(G, DiscoverConfig(steps=2, batch_size=2, init="random", ndirs=4, **TINY_EVAL),
                 record_folder, progress=False)          # k follows the start, not ndirs
    record = json.loads((record_folder / "run.json").read_text())
    assert record["k"] == 4 and record["config"]["k"] is None          # used, and as typed
