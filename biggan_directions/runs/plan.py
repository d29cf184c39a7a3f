"""What a discovery run will do, said before it does it: the plan line (before set-up), the time estimate from the first steps."""
from __future__ import annotations

from typing import Sequence

import torch

from ..core.published import PUBLISHED_K
from ..foundation.settings import default_of
from ..methods.config import K_FROM_RANDOM, DiscoverConfig

ESTIMATE_AFTER_STEPS = 3        # the estimate comes after this many steps of this process ...
ESTIMATE_AFTER_SECONDS = 5.0    # ... or this many seconds of stepping, whichever comes first
CPU_TRY_STEPS = 500             # what a CPU run of the default length is advised to try first


def _images(config: DiscoverConfig, k: int) -> int:
    return config.batch_size * config.accumulate * (1 + 2 * k)


def plan_line(configs: Sequence[DiscoverConfig], classes: int, device: torch.device | str,
              resume: bool = False) -> str:
    """One line: the steps, the generator images they cost (batch x accumulate x (1 + 2k); k
    is the given one, else 2 from a SeFa or GANSpace start and K_FROM_RANDOM from a random
    one, known once the model is read) and that the time comes after the first steps; on a
    CPU with the default step count, the advice to try --steps first. Said before set-up."""
    config = configs[0]
    what = f"{classes} class{'es' if classes != 1 else ''}"
    if config.method != "hessian":
        return (f"plan: {config.method} for {what}: no training; the fixed evaluation of the "
                f"result is sized once the model is loaded.")
    steps = sorted({c.steps for c in configs})
    told = (f"{steps[0]:,} steps" if len(steps) == 1
            else "steps " + ", ".join(f"{s:,}" for s in steps) + " (each run's plan)")
    if config.k is not None:
        per_step = f"{_images(config, config.k):,} generator images a step"
        total = f"{_count(steps[-1] * _images(config, config.k))} images"
    else:
        lo, hi = _images(config, PUBLISHED_K), _images(config, K_FROM_RANDOM)
        per_step = (f"{lo:,}-{hi:,} generator images a step (k {PUBLISHED_K} from a SeFa start, "
                    f"{K_FROM_RANDOM} from a random one)")
        total = f"{_count(steps[-1] * lo)}-{_count(steps[-1] * hi)} images"
    line = (f"plan: {'resume ' if resume else ''}{what} to {told}, batch {config.batch_size}"
            f"{f' x {config.accumulate}' if config.accumulate > 1 else ''}: {per_step}, "
            f"{total} per class, plus the fixed evaluations (about 10% with "
            f"--eval-per-direction auto); the time is estimated after the first steps.")
    if torch.device(device).type == "cpu" and steps[-1] >= default_of(DiscoverConfig, "steps"):
        line += (f" On the CPU {steps[-1]:,} steps take hours even on a small model: try "
                 f"--steps {CPU_TRY_STEPS} first.")
    return line


def estimate_line(steps_done: int, seconds: float, left: int, evaluations: int,
                  eval_seconds: float | None, device: torch.device | str,
                  config: DiscoverConfig) -> str:
    """One line after the first measured steps: seconds a step, and the time the `left` steps
    take, plus `evaluations` more fixed evaluations at `eval_seconds` each (the start's, when
    measured in this process)."""
    per_step = seconds / steps_done
    train = per_step * left
    evals = (eval_seconds or 0.0) * evaluations
    line = (f"first {steps_done} steps: {per_step:.3g} s a step; the {left:,} steps left take "
            f"about {format_duration(train)}")
    if eval_seconds is not None:
        line += f", plus {evaluations} fixed evaluations of {eval_seconds:.3g} s: {format_duration(evals)}"
    line += f" (about {format_duration(train + evals)} in all)."
    if torch.device(device).type == "cpu" and config.steps >= default_of(DiscoverConfig, "steps"):
        line += f" To try the pipeline first, stop (Ctrl-C) and pass --steps {CPU_TRY_STEPS}."
    return line


def _count(n: int) -> str:
    """'8 M', '14.4 M', '2,500'."""
    return f"{n / 1e6:.3g} M" if n >= 1_000_000 else f"{n:,}"


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '5.2 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
