"""What a run folder records: run.json's common part and the directions file's metadata, built once for every method."""
from __future__ import annotations

from typing import Any

import torch

from ..methods.interface import method_settings
from ..methods.config import DiscoverConfig
from . import files


def run_record(config: DiscoverConfig, meta: dict[str, Any], device: torch.device, *,
               status: str, started: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of run.json every method writes: the environment (versions), status, method and
    the settings that define its result (`settings`, default method_settings(config)), the
    config, the generator's `meta` (class_meta and the weights), the device, the start time."""
    return {**files.environment(), "status": status, "method": config.method,
            "method_settings": method_settings(config) if settings is None else settings,
            "config": config.to_json(), "meta": meta, "device": str(device),
            "device_name": files.device_name(device), "started": started}


def directions_meta(config: DiscoverConfig, meta: dict[str, Any], *, step: int, steps: int,
                    settings: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The directions file's metadata: the generator's `meta`, the method and its settings, what
    render and score read back (truncation, path size, subspace, seed), the step the matrix is
    from of `steps`, the whole config, and `extra` (a method's report, init, orthonormal)."""
    return {**meta, "method": config.method,
            "method_settings": method_settings(config) if settings is None else settings,
            **extra, "truncation": config.truncation, "path_size": config.path_size,
            "subspace": list(config.subspace) if config.subspace else None, "seed": config.seed,
            "step": step, "steps": steps, "settings": config.to_json()}
