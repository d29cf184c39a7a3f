"""Scoring a run into its files: the run's settings, the model and LPIPS, its directions and baselines, scores.json."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..foundation.errors import UserError
from ..runtime.precision import resolve, resolve_compile
from ..core.directions import baseline_directions
from ..methods.ganspace import ganspace_directions
from ..methods.sefa import sefa_directions
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..runs.layout import Run, RunSettings, open_run, resolve_run_settings
from ..runs.scores_file import check_scores_writable, write_run_scores
from ..describe.config import DescribeConfig
from ..tracking.results import add_score_events, recorded_wandb
from .lpips_metric import load_lpips
from .score import ScoreConfig, ScoreResult, score_directions


# ---------------------------------------------------------------- the job: RUN -> files
@dataclass
class ScoreReport:
    """What run_score did: the scores, the random baseline's (or None), the settings written to
    scores.json, the run's resolved settings (with where each came from), and the files."""

    result: ScoreResult
    compare: dict[str, ScoreResult] | None      # baseline kind -> its scores (--compare)
    settings: dict[str, Any]
    run_settings: RunSettings
    json_path: Path
    csv_path: Path


def baseline_for(kind: str, run: Run, G: nn.Module, seed: int,
                 device: torch.device) -> torch.Tensor:
    """As many baseline directions as the run has, (K, z_dim), unit rows: 'random' orthonormal
    and 'coords' inside the run's subspace (when it has one), 'sefa' and 'ganspace' of G over
    the whole latent (GANSpace on max(2000, 5K) latents of G's class, seeded by `seed`)."""
    K, D = run.directions.shape
    if kind == "random":
        return random_baseline(run, seed)
    if kind == "coords":
        return baseline_directions("coords", K, D, run.subspace)
    if kind == "sefa":
        return sefa_directions(G, K)[0]
    return ganspace_directions(G, samples=max(2000, 5 * K), ndirs=K, seed=seed, device=device)[0]


def random_baseline(run: Run, seed: int) -> torch.Tensor:
    """Random orthonormal directions, as many as the run's, from torch.Generator(seed). When the
    run's metadata names a subspace as [lo, hi) (two ints), they are drawn inside it."""
    K, D = run.directions.shape
    return baseline_directions("random", K, D, run.subspace, torch.Generator().manual_seed(int(seed)))


def run_score(run: Run | str | os.PathLike, config: ScoreConfig | None = None, *,
              device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
              overwrite: bool = False, progress: bool = True, net: nn.Module | None = None,
              metric: nn.Module | None = None, log_wandb: bool = True) -> ScoreReport:
    """Score a run (a Run, or the path of a run folder or directions file) and write its scores
    files (Run.scores_paths); the run then holds the scores written (run.scores).

    Checks, before any heavy work: the run's settings (layout.resolve_run_settings: the config's
    values, else the run's), that the scores files can be written (and do not exist unless
    overwrite), and that the LPIPS backbone is present. Then loads the model
    (weights.load_biggan), scores the run's directions (and, with config.compare, as many
    directions of each baseline kind: baseline_for) and writes both files.
    net / metric: an already loaded BigGAN (on `device`, for the run's model) and LPIPS module
    (lpips_metric.load_lpips), so a caller scoring many runs loads each once.
    The results also go to the run's TensorBoard events (RUN/tb/) and, when log_wandb and the
    run recorded a W&B run (RUN/wandb.json), to that W&B run, continued before the model loads
    (tracking.results).
    """
    config = config if config is not None else ScoreConfig()
    run = run if isinstance(run, Run) else open_run(run)
    chosen = resolve_run_settings(run, model=config.model, class_query=config.class_query,
                                  truncation=config.truncation, path_size=config.path_size)
    json_path, csv_path = run.scores_paths
    check_scores_writable(json_path, csv_path, overwrite)
    device = torch.device(device)
    resolve(config.precision, device)          # e.g. tf32 on the CPU: refused before loading
    resolve_compile(config.compile, device)
    with recorded_wandb([run], "score", log_wandb) as (wandb_run,):   # before the work
        if metric is None:
            metric = load_lpips(config.net, device)
        if net is None:
            net = load_biggan(chosen.model, device, weights_dir, progress)
        G = BigGANGenerator(net, chosen.class_index, chosen.truncation).to(device)
        if G.z_dim != run.directions.shape[1]:
            source = chosen.sources.get("model", "given").rstrip("*")
            raise UserError(f"{run.directions_path}: its directions have z_dim "
                            f"{run.directions.shape[1]} but model {chosen.model} ({source}) has "
                            f"{G.z_dim}; use the model they were learned with.")
        common = dict(path_size=chosen.path_size, metric=metric, truncation=chosen.truncation,
                      steps=config.steps, batch_size=config.batch_size, device=device,
                      threshold=config.threshold, progress=progress, precision=config.precision,
                      compile=config.compile)
        result = score_directions(G, run.directions, config.seeds, desc="score",
                                  describe=DescribeConfig(seeds=config.seeds, steps=config.steps)
                                  if config.describe else None, **common)
        common["precision"] = result.inference["precision"]   # a baseline runs as the result did
        baseline = compare_record = None
        if config.compare:
            baseline = {kind: score_directions(G, baseline_for(kind, run, G, config.seed, device),
                                               config.seeds, desc=kind, **common)
                        for kind in config.compare}
            compare_record = {"kind": ",".join(config.compare), "kinds": list(config.compare),
                              "seed": config.seed, "subspace": run.meta.get("subspace"),
                              "learned": result.summary()}
            for kind, scores in baseline.items():
                compare_record.update({kind: scores.summary(),
                                       f"{kind}_directions": scores.rows()})
        settings = asdict(config)
        del settings["class_query"]
        settings.update(chosen.record(), seeds=list(config.seeds), easing="linear",
                        **result.inference)
        write_run_scores(run, result, settings, compare=compare_record, overwrite=overwrite)
        add_score_events(run, result.effect.tolist(), result.n_inactive,   # RUN/tb/,
                         wandb=wandb_run)                                  # W&B
    return ScoreReport(result, baseline, settings, chosen, json_path, csv_path)
