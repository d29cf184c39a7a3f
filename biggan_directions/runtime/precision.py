"""Numeric precision of the generator's forward passes: fp32, tf32 or bf16 autocast, resolved once.

Only the generator's forward runs at the chosen precision; its outputs come back as float32, so
the direction matrix, latents, second differences, the penalty and the optimiser stay in fp32.
'auto' is bf16 on a CUDA device that supports it (when a check on fixed draws agrees with fp32,
see `agrees`), otherwise tf32 on CUDA, fp32 elsewhere.
"""
from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator

import torch

from ..foundation.settings import need

PRECISIONS = ("auto", "fp32", "tf32", "bf16")
BF16_TOLERANCE = 0.01        # auto keeps bf16 when the check penalty is within 1% of fp32


def candidate(spec: str, device: torch.device) -> str:
    """The precision to use (or, for 'auto' -> 'bf16', to check) on `device`; SettingError for
    combinations that cannot run."""
    need(spec in PRECISIONS, "precision", spec, f"use {', '.join(PRECISIONS)}.")
    cuda = device.type == "cuda"
    if spec == "auto":
        if cuda and torch.cuda.is_bf16_supported():
            return "bf16"
        return "tf32" if cuda else "fp32"
    need(spec != "tf32" or cuda, "precision", spec,
         f"TF32 is a CUDA feature; on {device.type} use fp32 or bf16.")
    need(spec != "bf16" or device.type in ("cuda", "cpu"), "precision", spec,
         f"bf16 autocast is not supported on {device.type} here; use fp32.")
    need(spec != "bf16" or not cuda or torch.cuda.is_bf16_supported(), "precision", spec,
         "this GPU has no bf16 support; use tf32 or fp32.")
    return spec


def set_tf32(device: torch.device, enabled: bool) -> None:
    """TF32 for CUDA matmuls and cuDNN convolutions on (tf32, bf16) or off (fp32)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def autocast(precision: str, device: torch.device):
    """The context the generator's forward runs in: bf16 autocast, or nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def at_precision(G: Callable, precision: str, device: torch.device) -> Callable:
    """G called under `precision`, outputs returned as float32 (a tensor or a list of them)."""
    if precision != "bf16":
        return G

    def run(z: torch.Tensor):
        with autocast(precision, device):
            out = G(z)
        if isinstance(out, (list, tuple)):
            return [o.float() for o in out]
        return out.float()

    for name in ("z_dim", "resolution"):
        if hasattr(G, name):
            setattr(run, name, getattr(G, name))
    return run


def relative_error(value: float, reference: float) -> float:
    """|value - reference| / |reference| (inf when the reference is 0 and the value is not)."""
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return abs(value - reference) / abs(reference)


@contextmanager
def tf32_state(device: torch.device, enabled: bool) -> Iterator[None]:
    """TF32 set for the duration, restored after (for fp32 evaluations inside a tf32 run)."""
    if device.type != "cuda":
        yield
        return
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    set_tf32(device, enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old
