"""A run's fixed evaluation, the same for every method: its draws, a matrix's penalty on them, the references.

Hessian Penalty training uses it for its curve, its best matrix and its test-set report; SeFa
and GANSpace runs use it to place their matrix on the same scale (same draws for the same
settings). Always fp32, whatever precision training runs at, so values compare across runs.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..core.evaluation import (EvalDraws, derived_seed, eval_draws, evaluate, planned_eval_size,
                                 reference_values, rounding_floor, sample_penalties, trimmed_mean)
from ..core.published import PUBLISHED_K
from ..runtime.precision import tf32_state
from .config import DiscoverConfig
from .sefa import sefa_available, sefa_directions


def images_per_step(config: DiscoverConfig, k: int | None = None) -> int:
    """Generator images of one training step: batch x accumulate x (1 + 2k), for the run's k
    (`k`), else the k given, else the published one. The fixed evaluation is sized with the
    last two, never the start's default, so every start gets the same draws for one command."""
    k = k or config.k or PUBLISHED_K
    return config.batch_size * config.accumulate * (1 + 2 * k)


def planned_evaluations(config: DiscoverConfig) -> int:
    """Evaluations a run plans (what 'auto' sizes them for): the start, every eval_every and
    the end, the identity and random references and the SeFa line on the validation draws, the
    random references and the kept matrix on the test draws."""
    points = 1 + math.ceil(config.steps / config.eval_every)
    return points + (2 + config.eval_references) + config.eval_references + 1


def eval_size(config: DiscoverConfig, ndirs: int, classes: int = 1) -> int:
    """Latents per direction of the fixed evaluation: the config's, or for 'auto' about 10% of
    the planned training (evaluation.planned_eval_size); a pooled run measures each of its
    `classes` on those latents, so 'auto' sizes them for ndirs x classes samples per latent."""
    if config.eval_per_direction != "auto":
        return int(config.eval_per_direction)
    return planned_eval_size(ndirs=ndirs * max(1, classes), steps=config.steps,
                             batch_images=images_per_step(config), eval_k=config.eval_k,
                             evaluations=planned_evaluations(config))


class FixedEvaluation:
    """The fixed evaluation of a run of `config` on G: `ndirs` directions in a latent of
    G.z_dim, `per_direction` latents each (settable until the draws are first used: a resumed
    run keeps the size it began with). `classes`: a pooled run's set, G then conditional
    (G(z, classes)); every class is measured on the same draws (stratified over classes)."""

    def __init__(self, G: Callable, config: DiscoverConfig, ndirs: int, device: torch.device | str,
                 per_direction: int | None = None, classes: tuple[int, ...] | None = None):
        self.G, self.config, self.ndirs, self.z_dim = G, config, ndirs, int(G.z_dim)
        self.classes = tuple(classes) if classes else None
        self.device = torch.device(device)
        self.per_direction = (eval_size(config, ndirs, len(self.classes or (0,)))
                              if per_direction is None else per_direction)
        self._draws: EvalDraws | None = None

    @property
    def draws(self) -> EvalDraws:
        """The validation draws: the curve and the best matrix."""
        if self._draws is None:
            self._draws = self._make_draws(self.config.seed)
        return self._draws

    @property
    def test_draws(self) -> EvalDraws:
        """A second, independent draw set that no choice looks at: the kept matrix's report."""
        return self._make_draws(derived_seed(self.config.seed, "test"))

    def _make_draws(self, seed: int) -> EvalDraws:
        cfg = self.config
        return eval_draws(self.ndirs, self.z_dim, per_direction=self.per_direction, k=cfg.eval_k,
                          truncation=cfg.truncation, path_size=cfg.path_size, seed=seed,
                          classes=self.classes)

    def evaluate(self, q: torch.Tensor, draws: EvalDraws | None = None,
                 on_chunk: Callable[[int], None] | None = None, *,
                 per_sample: bool = False) -> float | torch.Tensor:
        """Penalty of q (ndirs, z_dim) on `draws` (default: the validation draws), in fp32: the
        trimmed mean, or with per_sample the (N,) per-sample penalties."""
        cfg = self.config
        with tf32_state(self.device, False):
            values = sample_penalties(self.G, q, draws or self.draws, epsilon=cfg.epsilon,
                                      reduction=cfg.reduction, device=self.device,
                                      chunk_size=cfg.chunk_size, on_chunk=on_chunk)
        return values if per_sample else trimmed_mean(values)

    def rounding_floor(self, value: float) -> float:
        """The smallest change of `value` on the validation draws that is not float32 rounding
        (evaluation.rounding_floor): improvements below it never count as learning."""
        with tf32_state(self.device, False):
            return rounding_floor(self.G, self.draws, value, epsilon=self.config.epsilon,
                                  device=self.device)

    def evaluate_with(self, G: Callable, q: torch.Tensor) -> float:
        """Penalty of q on the validation draws through another call of the generator (e.g. G
        at bf16: training's precision check)."""
        cfg = self.config
        return evaluate(G, q, self.draws, epsilon=cfg.epsilon, reduction=cfg.reduction,
                        device=self.device, chunk_size=cfg.chunk_size)

    def reference_values(self, draws: EvalDraws | None = None,
                         on_chunk: Callable[[int], None] | None = None,
                         full: bool = True) -> dict[str, Any]:
        """Fixed-evaluation penalty of eval_references random orthonormal matrices in the same
        subspace (mean, spread), of the SeFa basis when the generator's first layer can be read
        and the run learns a full basis (the test set's too: test_eval puts the kept matrix
        beside SeFa's value there), and, when `full`, of the identity (coordinate axes): what a
        learned matrix should beat (evaluation.reference_values), in fp32. The test set needs
        no identity (full=False): its verdict is against chance."""
        cfg = self.config
        draws = draws or self.draws
        with tf32_state(self.device, False):
            ref = reference_values(self.G, draws, self.ndirs, self.z_dim,
                                   epsilon=cfg.epsilon, reduction=cfg.reduction,
                                   subspace=cfg.subspace, matrices=cfg.eval_references,
                                   seed=cfg.seed, device=self.device, chunk_size=cfg.chunk_size,
                                   on_chunk=on_chunk, identity=full)
        basis = cfg.subspace is None and self.ndirs == self.z_dim
        if basis and sefa_available(self.G, self.ndirs, cfg.sefa_layers):
            q = sefa_directions(self.G, self.ndirs, cfg.sefa_layers)[0]
            ref["sefa"] = self.evaluate(q, draws, on_chunk)
        return ref
