"""The orthonormal direction matrix Q and its portable, pickle-free file format.

File format (safetensors, readable from any language with a safetensors reader):
  tensor   "directions": float32 (ndirs, z_dim), orthonormal rows; row j is direction j.
  metadata "format": "biggan-directions", "version": "1",
           "meta": a JSON object: model, class_index, class_name, wnid, truncation,
                   path_size, z_dim, ndirs, subspace, step, settings (the run's config), ...
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError, first_line
from .fileio import atomic_path

FORMAT = "biggan-directions"
VERSION = "1"
ORTHONORMAL_TOL = 1e-4


def orthonormalize(a: torch.Tensor) -> torch.Tensor:
    """Gram-Schmidt of the rows of a (n, d), n <= d, computed as a differentiable QR.

    Signs follow Gram-Schmidt (diag(R) > 0), so the result is a smooth function of `a`.
    """
    q, r = torch.linalg.qr(a.T)                 # q: (d, n), r: (n, n)
    signs = torch.sign(torch.diagonal(r))
    signs = torch.where(signs == 0, torch.ones_like(signs), signs)
    return (q * signs).T                          # (n, d)


class DirectionMatrix(nn.Module):
    """Learnable (ndirs, z_dim) matrix Q = orth(A), orthonormal at every step by construction.

    init: 'random' (Kaiming-normal A, from `generator`) or 'coords' (A = identity rows).
    subspace: (lo, hi) restricts the directions to z coordinates lo..hi-1 (the paper's
    coarse/mid/fine variant); Q is zero outside those columns.
    """

    def __init__(self, ndirs: int, z_dim: int, init: str = "random",
                 subspace: tuple[int, int] | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        lo, hi = subspace if subspace is not None else (0, z_dim)
        if not (0 <= lo < hi <= z_dim):
            raise UserError(f"subspace {lo}-{hi - 1} is not inside the latent's 0-{z_dim - 1}.")
        width = hi - lo
        if not 1 <= ndirs <= width:
            raise UserError(f"--ndirs {ndirs}: must be between 1 and {width} "
                            f"(the number of latent coordinates it spans).")
        if init == "random":
            a = torch.empty(ndirs, width)
            nn.init.kaiming_normal_(a, generator=generator)
        elif init == "coords":
            a = torch.eye(ndirs, width)
        else:
            raise UserError(f"init {init!r}: use 'random' or 'coords'.")
        self.ndirs, self.z_dim, self.lo, self.hi = ndirs, z_dim, lo, hi
        self.A = nn.Parameter(a)

    def forward(self) -> torch.Tensor:
        q = orthonormalize(self.A)                   # (ndirs, width)
        if (self.lo, self.hi) == (0, self.z_dim):
            return q
        return nn.functional.pad(q, (self.lo, self.z_dim - self.hi))  # (ndirs, z_dim)


def random_orthonormal(ndirs: int, z_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random orthonormal (ndirs, z_dim) matrix (the paper's 'random directions' baseline)."""
    return orthonormalize(torch.randn(ndirs, z_dim, generator=generator, dtype=torch.float64)).float()


def coordinate_directions(ndirs: int, z_dim: int) -> torch.Tensor:
    """The first `ndirs` coordinate axes (the paper's 'coords' baseline)."""
    return torch.eye(ndirs, z_dim)


def baseline_directions(kind: str, ndirs: int, z_dim: int,
                        subspace: tuple[int, int] | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """The paper's comparison directions, (ndirs, z_dim): 'random' orthonormal (from
    `generator`) or 'coords' (the first coordinate axes), inside z[lo:hi] when `subspace` is
    given (zero outside it), so a baseline spans what the learned directions could span."""
    lo, hi = subspace if subspace is not None else (0, z_dim)
    if kind == "random":
        q = random_orthonormal(ndirs, hi - lo, generator)
    elif kind == "coords":
        q = coordinate_directions(ndirs, hi - lo)
    else:
        raise UserError(f"baseline {kind!r}: use random or coords.")
    return nn.functional.pad(q, (lo, z_dim - hi))


def save_directions(path: str | os.PathLike, directions: torch.Tensor, meta: dict[str, Any]) -> Path:
    """Write Q and its metadata atomically (temporary file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    q = directions.detach().to("cpu", torch.float32).contiguous()
    meta = {**meta, "ndirs": int(q.shape[0]), "z_dim": int(q.shape[1])}
    metadata = {"format": FORMAT, "version": VERSION, "meta": json.dumps(meta, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({"directions": q}, str(tmp), metadata=metadata)
    return path


def load_directions(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a directions file: (Q (ndirs, z_dim) float32, meta dict). Never runs code.

    Raises UserError naming the file when it is missing, not a directions file, or its matrix
    is not orthonormal.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such directions file.")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise UserError(f"{path}: not a biggan-directions file (no '{FORMAT}' format tag).")
            if "directions" not in f.keys():
                raise UserError(f"{path}: has no 'directions' tensor.")
            q = f.get_tensor("directions")
    except UserError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: unreadable directions file ({first_line(e)}).") from None
    if metadata.get("version") != VERSION:
        raise UserError(f"{path}: format version {metadata.get('version')!r} is not supported "
                        f"(this tool reads version {VERSION}).")
    try:
        meta = json.loads(metadata.get("meta", "{}"))
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except ValueError as e:
        raise UserError(f"{path}: its metadata is not valid JSON ({e}).") from None
    if q.ndim != 2 or q.shape[0] < 1 or q.shape[0] > q.shape[1] or not q.is_floating_point():
        raise UserError(f"{path}: 'directions' must be a float (ndirs, z_dim) matrix with "
                        f"ndirs <= z_dim, got {tuple(q.shape)} {q.dtype}.")
    q = q.float()
    if not torch.isfinite(q).all():
        raise UserError(f"{path}: the direction matrix holds NaN or infinite values.")
    err = (q @ q.T - torch.eye(q.shape[0])).abs().max().item()
    if err > ORTHONORMAL_TOL:
        raise UserError(f"{path}: the directions are not orthonormal (max |QQ^T - I| = {err:.2g}).")
    return q, meta


