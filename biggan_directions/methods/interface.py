"""The three methods as peers behind one interface: settings, checks, the matrix and its record.

`find_directions(G, config, device)` gives (Q (ndirs, z_dim), what the method records) for
config.method: hessian (Hessian Penalty training, hessian.py), sefa (closed form, sefa.py),
ganspace (PCA of a layer's activations, ganspace.py). No files: runs.discover writes a Hessian
Penalty run (checkpoints, resume) and runs.method_run a SeFa or GANSpace run into the same
folder layout; both evaluate on fixed_eval.FixedEvaluation.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..foundation.errors import SettingError
from .config import DiscoverConfig
from .ganspace import default_layer, find_module, ganspace_directions
from .hessian import train_directions
from .sefa import first_linear_weight, sefa_directions


def method_settings(config: DiscoverConfig) -> dict[str, Any]:
    """The settings that define a method's result (recorded in the file and run.json)."""
    if config.method == "sefa":
        return {"sefa_layers": config.sefa_layers}
    if config.method == "ganspace":
        return {"layer": config.ganspace_layer, "samples": config.samples, "seed": config.seed,
                "truncation": config.truncation}
    return {"steps": config.steps, "lr": config.lr, "batch_size": config.batch_size,
            "init": config.init, "seed": config.seed}


def check_method(G: Callable, config: DiscoverConfig) -> None:
    """Everything that can fail before a folder is made: the settings against G's latent, and
    that G has what the method reads (a linear first layer for SeFa, the named layer for
    GANSpace). SettingError / UserError in one line."""
    config.validate(int(G.z_dim))
    ndirs = config.ndirs or int(G.z_dim)
    if config.method == "sefa":
        weight = first_linear_weight(G, config.sefa_layers)
        rank = min(weight.shape)
        if ndirs > rank:
            raise SettingError("ndirs", ndirs, f"SeFa gives at most {rank} directions for this "
                                               f"generator's first layer.")
    elif config.method == "ganspace":
        try:
            find_module(G, config.ganspace_layer or default_layer(G))
        except SettingError as e:
            raise SettingError("ganspace_layer", e.value, e.reason) from None
        if config.samples < ndirs + 1:
            raise SettingError("samples", config.samples,
                               f"must be at least ndirs + 1 = {ndirs + 1} for {ndirs} directions.")


def find_directions(G: Callable, config: DiscoverConfig, device: torch.device | str = "cpu",
                    progress: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """(Q (ndirs, z_dim), what the method records: hessian the start it took, sefa the singular
    values, ganspace the layer and the explained variance). Run check_method first."""
    if config.method == "hessian":
        return train_directions(G, config, device, progress)
    ndirs = config.ndirs or int(G.z_dim)
    if config.method == "sefa":
        q, s = sefa_directions(G, ndirs, config.sefa_layers)
        return q, {"singular_values": [round(float(v), 6) for v in s]}
    layer = config.ganspace_layer or default_layer(G)
    q, ratio = ganspace_directions(G, layer, samples=config.samples, ndirs=ndirs,
                                   seed=config.seed, truncation=config.truncation,
                                   device=device, progress=progress)
    return q, {"layer": layer, "explained_variance": [round(float(v), 6) for v in ratio]}
