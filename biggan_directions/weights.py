"""The offline-first weight store: find a model in weights/, download it once, verify, load.

MINIMAL VERSION: loads a local folder strictly. The download/verify store is to be added.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from .errors import UserError

KNOWN_MODELS = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"


def default_weights_dir() -> Path:
    return Path(os.environ.get("BIGGAN_DIRECTIONS_WEIGHTS", "weights"))


def save_biggan(model: nn.Module, folder: str | os.PathLike) -> Path:
    """Save a BigGAN in pytorch-pretrained-biggan's own format: config.json + pytorch_model.bin."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(model.config.to_json_string())
    torch.save(model.state_dict(), folder / WEIGHTS_NAME)
    return folder


def load_biggan(model: str, device: torch.device | str = "cpu",
                weights_dir: str | os.PathLike | None = None, progress: bool = True) -> nn.Module:
    """Load a BigGAN by name (from the store) or from a folder; eval mode, frozen, on `device`."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    folder = Path(model)
    if model in KNOWN_MODELS:
        folder = Path(weights_dir or default_weights_dir()) / model
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise UserError(f"{folder}: needs {CONFIG_NAME} and {WEIGHTS_NAME}.")
    config = BigGANConfig.from_json_file(str(folder / CONFIG_NAME))
    net = BigGAN(config)
    state = torch.load(folder / WEIGHTS_NAME, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval().requires_grad_(False)
    return net.to(device)
