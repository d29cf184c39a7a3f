"""The printed score tables: a run's ranking, and learned vs baseline score distributions side by side."""
from __future__ import annotations

import math
from typing import Any

import torch

from .lpips_metric import DEFAULT_NET
from .score import QUANTILES, ScoreResult, quantile_name


def format_table(result: ScoreResult, *, limit: int | None = 20, net: str = DEFAULT_NET) -> str:
    """The short table: rank, direction, effect (+ centre), smoothness, consistency, and the
    inactive count. `limit` rows at most (None: all)."""
    lines = [f"LPIPS {net}, {len(result.seeds)} seeds, {result.steps} steps, path size "
             f"{result.path_size:g}, {result.n_directions} directions",
             f"{'rank':>4} {'dir':>4} {'effect':>8} {'centre':>8} {'smooth':>8} {'consist':>8}"
             + (f"  {'label':<14} {'conf':>5}" if result.descriptions else "")]
    shown = result.ranking if limit is None else result.ranking[:limit]
    for r, k in enumerate(shown, 1):
        if result.descriptions:
            d = result.descriptions[k]
            mark = f"  {d['label']:<14} {d['label_confidence']:>5.2f}"
        else:
            mark = "  inactive" if bool(result.inactive[k]) else ""
        lines.append(f"{r:>4} {k:>4} {_fmt(result.effect[k])} {_fmt(result.effect_centre[k])} "
                     f"{_fmt(result.smoothness[k])} {_fmt(result.consistency[k])}{mark}")
    if len(shown) < result.n_directions:
        lines.append(f"  ... {result.n_directions - len(shown)} more in the scores files")
    lines.append(f"inactive: {result.n_inactive} of {result.n_directions} directions "
                 f"(effect < {result.threshold:g} LPIPS)")
    return "\n".join(lines)


def format_compare(learned: dict[str, Any], random: dict[str, Any] | None = None, *,
                   baselines: dict[str, dict[str, Any]] | None = None,
                   net: str = DEFAULT_NET) -> str:
    """Side-by-side distributions of ScoreResult.summary() dicts: the learned directions, then
    each baseline (`baselines`: kind -> summary, in order; `random` alone is the old form), all
    scored with the LPIPS `net` the first line names."""
    columns = {"learned": learned, **({"random": random} if random is not None else {}),
               **(baselines or {})}
    lines = [f"LPIPS {net}, every column on the same seeds and settings",
             f"{'metric':<12} {'stat':<5} " + " ".join(f"{name:>9}" for name in columns)]
    lines.append(f"{'active':<12} {'count':<5} " + " ".join(
        f"{c['active']:>5}/{c['n']:<3}" for c in columns.values()))
    for metric in ("effect", "smoothness", "consistency"):
        for i, stat in enumerate([*map(quantile_name, QUANTILES), "mean"]):
            lines.append(f"{metric if i == 0 else '':<12} {stat:<5} " + " ".join(
                _fmt(c[metric][stat], 9) for c in columns.values()))
    return "\n".join(lines)


def _fmt(v: torch.Tensor | float | None, width: int = 8) -> str:
    if v is None or math.isnan(float(v)):
        return f"{'-':>{width}}"
    return f"{float(v):>{width}.4f}"
