"""Latent walks along a direction: the published visualisation, shared by render and score."""
from __future__ import annotations

import math

import torch


def easing(kind: str, steps: int) -> torch.Tensor:
    """(steps,) walk positions t in [-1, 1].

    'loop':   centre -> +1 -> centre -> -1 -> centre on t = sin(2 pi i / steps); frame 0 is the
              centre and the video loops seamlessly (the frame after the last is frame 0).
    'linear': -1 .. +1 evenly, both ends included.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    i = torch.arange(steps, dtype=torch.float64)
    if kind == "loop":
        t = torch.sin(2.0 * math.pi * i / steps)
    elif kind == "linear":
        t = torch.linspace(-1.0, 1.0, steps, dtype=torch.float64) if steps > 1 else torch.zeros(1, dtype=torch.float64)
    else:
        raise ValueError(f"easing {kind!r}: use 'loop' or 'linear'")
    return t.float()


def walk_latents(z: torch.Tensor, directions: torch.Tensor, t: torch.Tensor,
                 path_size: float) -> torch.Tensor:
    """Latents of the walks: for each direction q and sample z, z - (z.q) q + t * P * q.

    z: (S, D) samples; directions: (K, D) unit rows; t: (T,) positions in [-1, 1].
    Returns (K, T, S, D). A zero row of `directions` gives z unchanged at every t.
    """
    q = directions.to(z.dtype)
    coef = z @ q.T                                                    # (S, K)
    base = z.unsqueeze(0) - coef.T.unsqueeze(-1) * q.unsqueeze(1)      # (K, S, D)
    step = (t.to(z.dtype) * path_size).view(1, -1, 1, 1) * q.view(q.shape[0], 1, 1, -1)  # (K, T, 1, D)
    return base.unsqueeze(1) + step                                    # (K, T, S, D)
