"""Resolve `--device auto|cpu|cuda|cuda:N|mps` once, into a torch.device passed down everywhere."""
from __future__ import annotations

import os
import re

import torch

from ..foundation.errors import UserError
from .settings import DEVICE_HELP, THREADS_HELP  # noqa: F401 - THREADS_HELP: the help of --threads


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device spec into a torch.device that exists on this machine.

    'auto' prefers CUDA, then Apple MPS, then the CPU. Asking for a device that is absent
    (cuda on a machine without a GPU, cuda:3 with two GPUs) raises UserError.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise UserError("--device mps: Apple MPS is not available here; use --device auto or cpu.")
        return torch.device("mps")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if m:
        if not torch.cuda.is_available():
            raise UserError(f"--device {spec}: no CUDA GPU is visible to torch here; use --device auto or cpu.")
        index = int(m.group(1) or torch.cuda.current_device())
        count = torch.cuda.device_count()
        if index >= count:
            raise UserError(f"--device {spec}: only {count} CUDA device(s) here (cuda:0..cuda:{count - 1}).")
        return torch.device("cuda", index)
    raise UserError(f"--device {spec!r} is not a device; use {DEVICE_HELP}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def default_threads() -> int:
    """Half the CPUs this process may use, at least 1, at most 8 (see THREADS_HELP)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus // 2))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op CPU threads (None: default_threads()); returns the number set."""
    n = default_threads() if threads is None else int(threads)
    if n < 1:
        raise UserError(f"threads {n}: must be at least 1.")
    torch.set_num_threads(n)
    return n
