"""Describing a run into descriptions.json: its settings, the model, its directions' walks (no LPIPS)."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..foundation.errors import UserError
from ..models.generator import BigGANGenerator
from ..models.weights import load_biggan
from ..runs.layout import Run, RunSettings, open_run, resolve_run_settings
from ..runs.scores_file import read_scores
from .config import DescribeConfig
from .describe import describe_directions
from .files import check_descriptions_writable, descriptions_path, write_descriptions


@dataclass
class DescribeReport:
    """What run_describe did: the descriptions, the settings written, the run's settings, the file."""

    descriptions: list[dict[str, Any]]
    settings: dict[str, Any]
    run_settings: RunSettings
    path: Path
    inactive_from: str          # 'scores' (score's LPIPS rule) or 'delta_e'


def scored_inactive(run: Run) -> list[bool] | None:
    """The inactive flags of the run's scores (score's LPIPS rule), None when unscored or when
    the scores do not fit the run."""
    path = run.scores_paths[0]
    if run.scores is None and not path.is_file():
        return None
    try:
        rec = run.scores if run.scores is not None else read_scores(path)
    except UserError:
        return None
    directions = rec.get("directions")
    n = run.directions.shape[0]
    if not isinstance(directions, list) or len(directions) != n:
        return None
    flags = {d.get("direction"): d.get("inactive") for d in directions if isinstance(d, dict)}
    if sorted(k for k in flags if isinstance(k, int)) != list(range(n)):
        return None
    return [bool(flags[k]) for k in range(n)]


def run_describe(run: Run | str | os.PathLike, config: DescribeConfig | None = None, *,
                 device: torch.device | str = "cpu", weights_dir: str | os.PathLike | None = None,
                 overwrite: bool = False, progress: bool = True,
                 net: torch.nn.Module | None = None) -> DescribeReport:
    """Describe a run's directions (no LPIPS) into descriptions.json (files.descriptions_path).

    Checks first (the run's settings, that the file can be written and does not exist unless
    overwrite), then loads the model (net: an already loaded BigGAN) and describes every
    direction on config.seeds. `inactive` is score's LPIPS rule when the run is scored, else
    config.inactive_delta_e's."""
    config = config if config is not None else DescribeConfig()
    run = run if isinstance(run, Run) else open_run(run)
    chosen = resolve_run_settings(run, model=config.model, class_query=config.class_query,
                                  truncation=config.truncation, path_size=config.path_size)
    path = descriptions_path(run)
    check_descriptions_writable(path, overwrite)
    device = torch.device(device)
    if net is None:
        net = load_biggan(chosen.model, device, weights_dir, progress)
    G = BigGANGenerator(net, chosen.class_index, chosen.truncation).to(device)
    if G.z_dim != run.directions.shape[1]:
        raise UserError(f"{run.directions_path}: its directions have z_dim "
                        f"{run.directions.shape[1]} but model {chosen.model} has {G.z_dim}; use "
                        f"the model they were learned with.")
    inactive = scored_inactive(run)
    descriptions = describe_directions(G, run.directions, path_size=chosen.path_size,
                                       seeds=config.seeds, steps=config.steps, device=device,
                                       truncation=chosen.truncation, batch_size=config.batch_size,
                                       config=config, inactive=inactive, progress=progress)
    settings = dataclasses.asdict(config)
    del settings["class_query"]
    settings.update(chosen.record(), seeds=list(config.seeds), easing="linear",
                    inactive_rule="score's LPIPS threshold (scores.json)" if inactive is not None
                    else f"mean Delta E*ab < {config.inactive_delta_e:g}")
    write_descriptions(path, descriptions, settings)
    return DescribeReport(descriptions, settings, chosen, path,
                          "scores" if inactive is not None else "delta_e")
