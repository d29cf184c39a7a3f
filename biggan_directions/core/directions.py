"""The direction matrix Q (ndirs, z_dim) and its portable, pickle-free file format.

File format (safetensors, readable from any language with a safetensors reader):
  tensor   "directions": float32 (ndirs, z_dim); row j is direction j. Rows are orthonormal
           unless the meta says `"orthonormal": false`; then they are unit-norm only (GANSpace).
  metadata "format": "biggan-directions", "version": "1",
           "meta": a JSON object: model, class_index, class_name, wnid, truncation,
                   path_size, z_dim, ndirs, subspace, step, settings (the run's config), ...
                   and "orthonormal": false for unit rows that are not orthogonal. The key is
                   absent from orthonormal files, so files written before it existed read the
                   same (and are checked for orthonormality).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..foundation.errors import UserError, first_line
from ..foundation.fileio import atomic_path

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


PARAMETRIZATIONS = ("cayley", "qr")


def cayley(s: torch.Tensor) -> torch.Tensor:
    """The Cayley map of a skew-symmetric (n, n) S: (I + S)^-1 (I - S), a rotation; I at S = 0."""
    eye = torch.eye(s.shape[0], dtype=s.dtype, device=s.device)
    return torch.linalg.solve(eye + s, eye - s)


class DirectionMatrix(nn.Module):
    """Learnable (ndirs, z_dim) matrix Q with orthonormal rows at every step, by construction.

    parametrization 'qr' (the paper): Q = orth(A), A free and starting at the start's rows; a
    step's angle depends on the scale of A. 'cayley': Q = Q0 R(S), Q0 the orthonormalised start
    (a buffer), R the Cayley map of the skew-symmetric part of a free (width, width) matrix B
    that starts at zero, so Q starts exactly at Q0 and the learning rate is an angle.

    init: 'random' (Kaiming-normal A, from `generator`), 'coords' (A = identity rows), or a
    tensor of starting rows, (ndirs, z_dim) or (ndirs, hi - lo) (e.g. SeFa or GANSpace
    directions); Q starts at their Gram-Schmidt orthonormalisation, in row order.
    subspace: (lo, hi) restricts the directions to z coordinates lo..hi-1 (the paper's
    coarse/mid/fine variant); Q is zero outside those columns.
    """

    def __init__(self, ndirs: int, z_dim: int, init: str | torch.Tensor = "random",
                 subspace: tuple[int, int] | None = None,
                 generator: torch.Generator | None = None, parametrization: str = "qr"):
        super().__init__()
        if parametrization not in PARAMETRIZATIONS:
            raise UserError(f"parametrization {parametrization!r}: use one of "
                            f"{', '.join(PARAMETRIZATIONS)}.")
        lo, hi = subspace if subspace is not None else (0, z_dim)
        if not (0 <= lo < hi <= z_dim):
            raise UserError(f"subspace {lo}-{hi - 1} is not inside the latent's 0-{z_dim - 1}.")
        width = hi - lo
        if not 1 <= ndirs <= width:
            raise UserError(f"--ndirs {ndirs}: must be between 1 and {width} "
                            f"(the number of latent coordinates it spans).")
        if isinstance(init, torch.Tensor):
            a = _starting_rows(init, ndirs, z_dim, lo, hi)
        elif init == "random":
            a = torch.empty(ndirs, width)
            nn.init.kaiming_normal_(a, generator=generator)
        elif init == "coords":
            a = torch.eye(ndirs, width)
        else:
            raise UserError(f"init {init!r}: use 'random' or 'coords'.")
        self.ndirs, self.z_dim, self.lo, self.hi = ndirs, z_dim, lo, hi
        self.parametrization = parametrization
        if parametrization == "qr":
            self.A = nn.Parameter(a)
        else:
            self.register_buffer("Q0", orthonormalize(a.double()).float())     # (ndirs, width)
            self.A = nn.Parameter(torch.zeros(width, width))              # B; S = skew(B)

    def forward(self) -> torch.Tensor:
        if self.parametrization == "qr":
            q = orthonormalize(self.A)                   # (ndirs, width)
        else:
            upper = torch.triu(self.A, diagonal=1)
            q = self.Q0 @ cayley(upper - upper.T)        # (ndirs, width)
        if (self.lo, self.hi) == (0, self.z_dim):
            return q
        return nn.functional.pad(q, (self.lo, self.z_dim - self.hi))  # (ndirs, z_dim)


def _starting_rows(rows: torch.Tensor, ndirs: int, z_dim: int, lo: int, hi: int) -> torch.Tensor:
    """The (ndirs, hi - lo) starting A from given rows (full z or subspace columns), checked."""
    rows = rows.detach().to("cpu", torch.float64)
    if rows.ndim != 2 or rows.shape[0] != ndirs or rows.shape[1] not in (z_dim, hi - lo):
        raise UserError(f"init: starting directions of shape {tuple(rows.shape)} do not fit "
                        f"{ndirs} directions over z[{lo}:{hi}] of a {z_dim}-dim latent.")
    if rows.shape[1] == z_dim:
        rows = rows[:, lo:hi]                                   # (ndirs, width)
    if not torch.isfinite(rows).all() or torch.linalg.matrix_rank(rows) < ndirs:
        raise UserError(f"init: the {ndirs} starting directions are not linearly independent "
                        f"inside z[{lo}:{hi}].")
    return orthonormalize(rows).float()


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


def rows_orthonormal(meta: dict[str, Any]) -> bool:
    """Whether a directions file's rows are orthonormal, from its meta (True unless it says
    `"orthonormal": false`, so files from before the flag count as orthonormal)."""
    return meta.get("orthonormal", True) is not False


def normalize_rows(directions: torch.Tensor) -> torch.Tensor:
    """Each row of a (n, d) matrix divided by its Euclidean norm (unit-length directions)."""
    return directions / directions.norm(dim=1, keepdim=True)


def canonical_signs(q: torch.Tensor) -> torch.Tensor:
    """Each row of (n, d) flipped so that its largest-magnitude entry is positive: a fixed sign
    for directions whose sign an SVD or PCA leaves arbitrary."""
    index = q.abs().argmax(dim=1, keepdim=True)                # (n, 1)
    signs = torch.sign(torch.gather(q, 1, index))              # (n, 1)
    return q * torch.where(signs == 0, torch.ones_like(signs), signs)


def row_errors(q: torch.Tensor) -> tuple[float, float]:
    """(max |QQ^T - I|, max ||row| - 1|) of a (n, d) matrix: how far from orthonormal and
    from unit rows."""
    q = q.double()
    gram = q @ q.T                                               # (n, n)
    orth = (gram - torch.eye(q.shape[0], dtype=q.dtype)).abs().max().item()
    unit = (torch.diagonal(gram).sqrt() - 1).abs().max().item()
    return orth, unit


def check_rows(q: torch.Tensor, orthonormal: bool, where: str) -> None:
    """UserError naming `where` unless Q's rows are orthonormal (when promised) or unit-norm."""
    orth, unit = row_errors(q)
    if orthonormal and orth > ORTHONORMAL_TOL:
        raise UserError(f"{where}: the directions are not orthonormal (max |QQ^T - I| = {orth:.2g}).")
    if not orthonormal and unit > ORTHONORMAL_TOL:
        raise UserError(f"{where}: the directions are not unit vectors (max ||row| - 1| = {unit:.2g}).")


def save_directions(path: str | os.PathLike, directions: torch.Tensor, meta: dict[str, Any], *,
                    orthonormal: bool | None = None) -> Path:
    """Write Q (ndirs, z_dim) and its metadata atomically (temporary file, then rename).

    orthonormal: whether the rows are orthonormal (Hessian Penalty, SeFa) or only unit-norm
    (GANSpace); None takes it from `meta` (orthonormal unless `"orthonormal": false`). The
    promise is checked before writing: UserError naming the file when Q breaks it.
    """
    path = Path(path)
    q = directions.detach().to("cpu", torch.float32).contiguous()
    if orthonormal is None:
        orthonormal = rows_orthonormal(meta)
    if q.ndim != 2 or not torch.isfinite(q).all():
        raise UserError(f"{path}: directions to save must be a finite (ndirs, z_dim) matrix, "
                        f"got shape {tuple(q.shape)}.")
    check_rows(q, orthonormal, str(path))
    metadata = {"format": FORMAT, "version": VERSION,
                "meta": json.dumps(stored_meta(q, meta, orthonormal=orthonormal), sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file({"directions": q}, str(tmp), metadata=metadata)
    return path


def stored_meta(directions: torch.Tensor, meta: dict[str, Any], *,
                orthonormal: bool | None = None) -> dict[str, Any]:
    """The metadata save_directions stores with `directions` (before its JSON encoding):
    `meta` with ndirs and z_dim, and `"orthonormal": false` only for unit-norm rows."""
    if orthonormal is None:
        orthonormal = rows_orthonormal(meta)
    stored = {key: value for key, value in meta.items() if key != "orthonormal"}
    stored.update(ndirs=int(directions.shape[0]), z_dim=int(directions.shape[1]))
    if not orthonormal:
        stored["orthonormal"] = False
    return stored


def load_directions(path: str | os.PathLike) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read a directions file: (Q (ndirs, z_dim) float32, meta dict). Never runs code.

    `rows_orthonormal(meta)` says whether the rows are orthonormal or only unit-norm.
    Raises UserError naming the file when it is missing, not a directions file, or its matrix
    breaks its promise (orthonormal rows, or unit rows for `"orthonormal": false`).
    """
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
    if not isinstance(meta.get("orthonormal", True), bool):
        raise UserError(f"{path}: its 'orthonormal' flag must be true or false, "
                        f"got {meta['orthonormal']!r}.")
    check_rows(q, rows_orthonormal(meta), str(path))
    return q, meta


