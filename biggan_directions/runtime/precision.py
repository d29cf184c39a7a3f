"""Numeric precision of the generator's forward passes (fp32, tf32 or bf16 autocast) and compile, resolved once.

Only the generator's forward runs at the chosen precision; its outputs come back as float32, so
the direction matrix, latents, second differences, the penalty and the optimiser stay in fp32.
`resolve` is the one resolver that training, render and score use: 'auto' is bf16 on a CUDA
device that supports it, kept only when the command's check (a callable measuring one figure
at fp32 and at bf16) agrees with fp32 within 1%, otherwise tf32 on CUDA, fp32 elsewhere;
`resolve_compile` turns compile None into on for CUDA, off elsewhere; `precision_record` is what
run.json and scores.json record of it.
"""
from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator

import torch

from ..foundation.settings import need
from .settings import PRECISIONS

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


def resolve_compile(compile: bool | None, device: torch.device | str) -> bool:
    """compile as asked; None (the default): on for CUDA, off elsewhere."""
    return torch.device(device).type == "cuda" if compile is None else bool(compile)


def resolve(spec: str, device: torch.device | str,
            check: Callable[[str], float] | None = None) -> tuple[str, dict[str, Any] | None]:
    """The precision a command runs at, and its check's figures (None when nothing was checked).

    SettingError for combinations that cannot run (candidate). Only 'auto' whose candidate is
    bf16 is checked, and only when the command has a `check`: check('fp32') and check('bf16')
    (training: the fixed evaluation's penalty; score: the first batch's mean LPIPS) must agree
    within BF16_TOLERANCE, else tf32 on CUDA (fp32 elsewhere) runs. render passes no check."""
    device = torch.device(device)
    precision = candidate(spec, device)
    if check is None:
        return precision, None
    return choose(spec, device, precision, check)


def choose(spec: str, device: torch.device | str, precision: str,
           measure: Callable[[str], float],
           tolerance: float = BF16_TOLERANCE) -> tuple[str, dict[str, Any] | None]:
    """resolve's check of `precision` (candidate(spec, device)): bf16 for 'auto' only when
    measure('fp32') and measure('bf16') agree within `tolerance` (relative)."""
    if spec != "auto" or precision != "bf16":
        return precision, None
    fp32, low = float(measure("fp32")), float(measure("bf16"))
    error = relative_error(low, fp32)
    check = {"fp32": fp32, "bf16": low, "relative_error": error, "tolerance": tolerance}
    if error <= tolerance:
        return "bf16", check
    return ("tf32" if torch.device(device).type == "cuda" else "fp32"), check


def precision_record(asked: str, precision: str, check: dict[str, Any] | None,
                     compile: bool) -> dict[str, Any]:
    """What run.json and scores.json record of the precision and compile a command ran with."""
    return {"precision": precision, "precision_asked": asked, "precision_check": check,
            "compile": compile}


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

    def run(z: torch.Tensor, *rest: torch.Tensor):     # rest: a conditional G's classes
        with autocast(precision, device):
            out = G(z, *rest)
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
