"""The three methods as peers behind one interface: settings, checks, the matrix and its record.

`find_directions(G, config, device)` gives (Q (ndirs, z_dim), what the method records) for
config.method: hessian (Hessian Penalty training, hessian.py), sefa (closed form, sefa.py),
ganspace (PCA of a layer's activations, ganspace.py). No files: runs.discover writes a Hessian
Penalty run (checkpoints, resume) and runs.method_run a SeFa or GANSpace run into the same
folder layout; both evaluate on fixed_eval.FixedEvaluation.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

import torch

from ..foundation.errors import SettingError
from ..foundation.settings import option_name
from .config import DiscoverConfig
from .ganspace import default_layer, find_module, ganspace_directions
from .hessian import train_directions
from .sefa import first_linear_weight, sefa_directions


# Shared settings (every method reads them) that also define a method's own result, recorded
# beside its own fields: SeFa factorises the weights sefa_layers names; GANSpace's PCA draws its
# latents with seed and truncation.
SHARED_INPUTS = {"sefa": ("sefa_layers",), "ganspace": ("seed", "truncation")}
# hessian records a summary by hand, not its own fields (DiscoverConfig.owned_by('hessian'): 17,
# the whole config sits beside them in run.json): run.json files and directions files written so
# far hold these keys, and deriving them would change what they record.
HESSIAN_SUMMARY = ("steps", "lr", "batch_size", "init", "seed")
_KEYS = {f.name: option_name(f)[2:].replace("-", "_") for f in fields(DiscoverConfig)}


def method_settings(config: DiscoverConfig) -> dict[str, Any]:
    """The settings that define a method's result (recorded in the file and run.json): sefa and
    ganspace their own fields (from the config's tags, named as their options: ganspace_layer is
    'layer') and the shared ones their result depends on; hessian its summary."""
    if config.method == "hessian":
        return {name: getattr(config, name) for name in HESSIAN_SUMMARY}
    names = DiscoverConfig.owned_by(config.method) + SHARED_INPUTS[config.method]
    return {_KEYS[name]: getattr(config, name) for name in names}


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
