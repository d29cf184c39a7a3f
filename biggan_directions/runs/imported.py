"""Direction matrices from other tools made into run folders: .npy, .npz, .pt/.pth, read without pickle.

`import_directions` reads a file, finds the matrix in it, checks it against the model's latent
and writes a run folder (directions.safetensors, run.json, an empty tb/) that render, score,
view and compare open like any other run. Nothing a file holds is ever run: NumPy files are
read with allow_pickle=False and PyTorch files with torch.load(weights_only=True), which refuse
a pickle that would build anything but tensors and plain containers.

Layouts found in a file (LAYOUTS), besides a plain (ndirs, z_dim) matrix (one direction a row)
or a named array (`key`):
  ganspace     GANSpace's saved components (harskish/ganspace, decomposition.py: np.savez of
               act_comp, lat_comp, lat_mean, lat_stdev, var_ratio, ...): `lat_comp` is
               (n_components, *latent_shape), for BigGAN (n, 1, z_dim), unit rows in z.
  gld-ortho    GANLatentDiscovery's `--deformator ortho` (anvoynov/GANLatentDiscovery,
               latent_deformator.py; trainer saves deformator.state_dict() as deformator_*.pt,
               and checkpoint.pt holds it under "deformator"): `log_mat_half` L (D, D); the
               shift of direction k is column k of expm(L - L^T), so the rows are its transpose.
  gld-linear   its `linear` and `proj` deformators: `linear.weight` W (z_dim, ndirs), shift k
               = column k of W (the bias, a constant shift, is left out and recorded).
The paper's own BigGAN deformators are for the 120-dimensional original BigGAN, not
BigGAN-deep's 128: a width that is not the model's z_dim is refused.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..core.directions import ORTHONORMAL_TOL, row_errors
from ..foundation.errors import UserError, WriteError, first_line
from ..foundation.fileio import write_json
from ..methods.config import DiscoverConfig
from ..models.classes import class_meta, resolve_class, slug
from ..models.weights.checkpoint import read_config
from ..models.weights.load import ensure_available, weights_identity
from ..models.weights.store import CONFIG_NAME, KNOWN_MODELS, store_folder
from . import files, layout
from .files import prepare_run_folder

SUFFIXES = (".npy", ".npz", ".pt", ".pth")
LAYOUTS = ("matrix", "ganspace", "gld-ortho", "gld-linear")
METHOD = "imported"                  # the method a run of imported directions records
UNIT_TOL = 1e-4                      # |norm - 1| above which rows are normalised (and it is said)


def imported_run_dir(out: str | os.PathLike, model: str, class_index: int, class_name: str,
                     name: str) -> Path:
    """OUT/<model>/imported/<name>/<index>-<class-slug>/."""
    return (Path(out) / layout.model_label(model) / METHOD / slug(name)
            / f"{class_index}-{slug(class_name)}")


# ---------------------------------------------------------------------- reading a file
def read_matrix(path: str | os.PathLike, key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """(the (ndirs, width) float64 matrix in `path`, {layout, key, ...}) without running any
    code the file holds. UserError naming the file when it cannot be read or holds no matrix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"{path}: not a file this import reads; give a {', '.join(SUFFIXES)} file.")
    if suffix == ".npy":
        return _matrix(path, _load_npy(path), None, "matrix")
    if suffix == ".npz":
        return _from_npz(path, key)
    return _from_torch(path, key)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a plain NumPy array ({first_line(e)}); pickled objects are "
                        f"never loaded.") from None


def _from_npz(path: Path, key: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if key is not None:
                if key not in names:
                    raise UserError(f"{path}: no array {key!r}; it holds {', '.join(names) or 'none'}.")
                return _matrix(path, data[key], key, "matrix")
            if "lat_comp" in names:                      # GANSpace's components
                comp = data["lat_comp"]
                return _matrix(path, comp.reshape(comp.shape[0], -1) if comp.ndim >= 2 else comp,
                               "lat_comp", "ganspace")
            if len(names) == 1:
                return _matrix(path, data[names[0]], names[0], "matrix")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: unreadable NumPy archive ({first_line(e)}); pickled objects are "
                        f"never loaded.") from None
    raise UserError(f"{path}: holds {len(names)} arrays ({', '.join(names)}); name the matrix "
                    f"with --key.")


def _from_torch(path: Path, key: str | None) -> tuple[np.ndarray, dict[str, Any]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any refusal or corruption reads the same to a user
        raise UserError(f"{path}: not a plain tensor file: torch.load(weights_only=True) refused "
                        f"it ({first_line(e, 120)}); nothing in it was run.") from None
    if key is not None:
        found = _lookup(obj, key)
        if found is None:
            raise UserError(f"{path}: no tensor {key!r}; it holds {_listing(obj)}.")
        return _matrix(path, found, key, "matrix")
    if isinstance(obj, torch.Tensor):
        return _matrix(path, obj, None, "matrix")
    if isinstance(obj, Mapping) and isinstance(obj.get("deformator"), Mapping):
        obj = obj["deformator"]                          # GANLatentDiscovery's checkpoint.pt
        prefix = "deformator."
    else:
        prefix = ""
    if isinstance(obj, Mapping):
        if isinstance(obj.get("log_mat_half"), torch.Tensor):
            half = obj["log_mat_half"].double()
            if half.ndim != 2 or half.shape[0] != half.shape[1]:
                raise UserError(f"{path}: log_mat_half is {tuple(half.shape)}, not square.")
            mat = torch.linalg.matrix_exp(half - half.T)  # (D, D); shift k = column k
            return _matrix(path, mat.T, prefix + "log_mat_half", "gld-ortho")
        if isinstance(obj.get("linear.weight"), torch.Tensor):
            weight = obj["linear.weight"]                # (z_dim, ndirs); shift k = column k
            array, info = _matrix(path, weight.T, prefix + "linear.weight", "gld-linear")
            if isinstance(obj.get("linear.bias"), torch.Tensor):
                info["bias_left_out"] = True
            return array, info
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor) and v.ndim == 2}
        if len(tensors) == 1:
            (name, value), = tensors.items()
            return _matrix(path, value, prefix + name, "matrix")
    raise UserError(f"{path}: no direction matrix found ({_listing(obj)}); name the tensor with "
                    f"--key.")


def _lookup(obj: Any, key: str) -> Any:
    """obj[key], else a dotted path through nested dicts ('deformator.linear.weight')."""
    if isinstance(obj, Mapping) and key in obj:
        return obj[key]
    head, _, rest = key.partition(".")
    if rest and isinstance(obj, Mapping) and head in obj:
        return _lookup(obj[head], rest)
    return None


def _listing(obj: Any) -> str:
    if isinstance(obj, Mapping):
        names = [f"{k} {tuple(v.shape)}" if isinstance(v, torch.Tensor) else str(k)
                 for k, v in list(obj.items())[:8]]
        return ", ".join(names) + (", ..." if len(obj) > 8 else "")
    return type(obj).__name__


def _matrix(path: Path, value: Any, key: str | None, found: str) -> tuple[np.ndarray, dict[str, Any]]:
    array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.ndim == 3 and array.shape[1] == 1:
        array = array[:, 0, :]                             # (n, 1, d), GANSpace's latent shape
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        what = f"'{key}' " if key else ""
        raise UserError(f"{path}: {what}is a {array.dtype} array of shape {tuple(array.shape)}, not "
                        f"an (ndirs, z_dim) matrix of numbers.")
    return array.astype(np.float64), {"layout": found, "key": key}


# ---------------------------------------------------------------------- checking a matrix
def checked_rows(q: np.ndarray, z_dim: int, where: str, model: str) -> tuple[torch.Tensor, dict[str, Any]]:
    """The (ndirs, z_dim) float32 unit rows to store and what was found: refused (UserError)
    for a width other than z_dim, NaN or infinite rows, zero rows, more rows than z_dim."""
    n, width = q.shape
    if width != z_dim:
        hint = (" (GANLatentDiscovery's and the Hessian Penalty paper's BigGAN files are for the "
                "120-dimensional original BigGAN, not BigGAN-deep)" if width == 120 else "")
        raise UserError(f"{where}: its directions are {width}-dimensional but {model} has z_dim "
                        f"{z_dim}{hint}; import directions found in this model's latent.")
    bad = np.flatnonzero(~np.isfinite(q).all(axis=1))
    if bad.size:
        raise UserError(f"{where}: row{'s' if bad.size > 1 else ''} "
                        f"{', '.join(map(str, bad[:5]))}{' ...' if bad.size > 5 else ''} "
                        f"hold NaN or infinite values; fix or drop them before importing.")
    norms = np.linalg.norm(q, axis=1)
    zero = np.flatnonzero(norms < 1e-12)
    if zero.size:
        raise UserError(f"{where}: row {zero[0]} is all zeros (no direction); drop it before importing.")
    if n < 1 or n > z_dim:
        raise UserError(f"{where}: {n} rows; a direction matrix has 1 to {z_dim} rows (z_dim).")
    normalised = bool(np.abs(norms - 1).max() > UNIT_TOL)
    unit = torch.from_numpy(q / norms[:, None])
    orth, _ = row_errors(unit)
    info = {"rows": int(n), "z_dim": int(width), "normalised": normalised,
            "norm_range": [float(norms.min()), float(norms.max())],
            "orthonormal": bool(orth <= ORTHONORMAL_TOL), "max_gram_error": float(orth)}
    return unit.float(), info


def model_z_dim(model: str, weights_dir: str | os.PathLike | None = None) -> int:
    """The model's z_dim from its config.json (a store model is fetched when absent, as
    discover would; no weights are loaded)."""
    ensure_available(model, weights_dir)
    folder = store_folder(model, weights_dir) if model in KNOWN_MODELS else Path(model)
    return int(read_config(folder / CONFIG_NAME, fix="replace it with a good copy").z_dim)


# ---------------------------------------------------------------------- the run folder
def import_directions(path: str | os.PathLike, model: str, class_query: str | int, *,
                      out: str | os.PathLike = layout.DEFAULT_OUT, name: str | None = None,
                      key: str | None = None, truncation: float | None = None,
                      path_size: float | None = None,
                      weights_dir: str | os.PathLike | None = None,
                      overwrite: bool = False) -> layout.Run:
    """Make a run folder of the directions in `path` (see the module docstring) for `model`
    and class `class_query`, at imported_run_dir(out, model, class, name or the file's stem).
    truncation and path_size (None: discover's defaults) are recorded for render and score.
    Everything is checked before the folder is made; nothing is overwritten unless overwrite.
    Returns the Run as open_run reads it back."""
    path = Path(path)
    cls = resolve_class(class_query)
    q, found = read_matrix(path, key)
    z_dim = model_z_dim(model, weights_dir)
    rows, info = checked_rows(q, z_dim, str(path), model)
    folder = imported_run_dir(out, model, cls.index, cls.name, name or path.stem)
    defaults = DiscoverConfig()
    source = {"file": str(path.resolve()), "sha256": _sha256(path), **found, **info}
    meta = {**class_meta(model, cls), "model_weights": weights_identity(model, weights_dir),
            "method": METHOD, "imported": source,
            "truncation": float(truncation if truncation is not None else defaults.truncation),
            "path_size": float(path_size if path_size is not None else defaults.path_size),
            "subspace": None, "step": 0, "steps": 0, "orthonormal": info["orthonormal"]}
    with files.locked_run_folder(folder):
        prepare_run_folder(folder, resume=False, overwrite=overwrite)
        record = {**files.environment(), "status": "finished", "method": METHOD,
                  "method_settings": {"source": source["file"], "layout": found["layout"]},
                  "meta": {k: meta[k] for k in ("model", "class_index", "class_name", "wnid",
                                                "model_weights")},
                  "imported": source, "started": files.now(), "finished": files.now(),
                  "updated": files.now(), "step": 0, "final_penalty": None, "eval_penalty": None}
        try:
            files.save_run_directions(folder / layout.DIRECTIONS_FILE, rows, meta)
            write_json(folder / layout.RUN_RECORD, record)
            (folder / layout.TB_DIR).mkdir(exist_ok=True)   # score and compare add events here
        except (WriteError, OSError) as e:
            for file in (layout.DIRECTIONS_FILE, layout.RUN_RECORD):
                (folder / file).unlink(missing_ok=True)
            reason = e.reason if isinstance(e, WriteError) else (e.strerror or str(e))
            raise UserError(f"could not write the run into {folder} ({reason}); free space or "
                            f"choose another --out.") from None
    return layout.open_run(folder)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
