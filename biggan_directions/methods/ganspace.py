"""GANSpace (Härkönen et al., NeurIPS 2020): PCA of an early layer's activations, regressed back to z.

Sample N latents z, record the flattened activations y = f(z) of one named layer, and take the
top-k principal components V (D, k) of y. Each sample's PCA coordinates x = V^T (y - mean) are
then regressed back to its latent by least squares, z - mean(z) ~ x U with U (k, z_dim), and
direction j is row j of U normalised to unit length: the z-move that best reproduces a move
along principal axis j. Directions are ordered by explained variance and are, in general,
not orthogonal. Class-conditional when the generator is bound to a class.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..foundation.errors import SettingError, UserError
from ..foundation.settings import at_least, default_of, need, positive
from ..core.directions import canonical_signs, normalize_rows
from ..models.generator import LAYER_HELP, _find_layer, truncated_normal
from .config import DiscoverConfig

MAX_ACTIVATION_BYTES = 8 * 2**30   # refuse to hold more than 8 GiB of activations
EXACT_SVD_MAX = 512                # min(samples, layer size) up to which PCA is exact


class _Captured(Exception):
    """Raised by the forward hook to stop the generator once the layer's output is recorded."""


def ganspace_directions(G: nn.Module, layer: str | None = None,
                        samples: int = default_of(DiscoverConfig, "samples"),
                        ndirs: int = 10, seed: int = 0, truncation: float | None = None,
                        batch_size: int = 64, *, device: torch.device | str | None = None,
                        progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace directions of generator G (a torch module, latents (B, z_dim)).

    layer:      a module of G: for a BigGANGenerator 'blockN' (N-th generator block, 0-based)
                or a module name under its model; for other generators a name from
                G.named_modules(). None: 'block0' for BigGAN, else G.ganspace_layer.
    samples:    how many latents to draw (at least ndirs + 1); all their activations are held
                in memory at once (samples x layer size x 4 bytes, at most 8 GiB).
    ndirs:      how many directions, 1..min(z_dim, layer size).
    seed:       seeds the latents (truncated_normal) and the randomised PCA.
    truncation: the latents' truncation; None takes G.truncation (BigGAN), else 1.0.
    batch_size: latents per forward pass.
    device:     where G runs; None: the device of G's parameters.
    Returns (U, ratio): U (ndirs, z_dim) float32 unit rows, each with its largest-magnitude
    entry positive; ratio (ndirs,) the share of the layer's total variance that each principal
    component explains, descending.
    """
    z_dim = int(G.z_dim)
    at_least("samples", samples, 1)
    need(isinstance(ndirs, int) and 1 <= ndirs <= z_dim, "ndirs", ndirs,
         f"GANSpace gives 1-{z_dim} directions (the latent size).")
    need(samples >= ndirs + 1, "samples", samples,
         f"must be at least ndirs + 1 = {ndirs + 1} for {ndirs} principal components.")
    at_least("batch_size", batch_size, 1)
    truncation = positive("truncation", float(getattr(G, "truncation", 1.0) if truncation is None
                                              else truncation))
    layer = layer if layer is not None else default_layer(G)
    module = find_module(G, layer)
    device = torch.device(device) if device is not None else _device_of(G)

    z = truncated_normal((samples, z_dim), truncation, torch.Generator().manual_seed(seed))
    y = layer_activations(G, module, z, batch_size, device, progress)      # (N, D)
    need(y.shape[1] >= ndirs, "ndirs", ndirs,
         f"layer {layer!r} has only {y.shape[1]} values per sample.")
    x, ratio = principal_coordinates(y, ndirs, seed)                       # (N, k), (k,)
    del y
    u = regress_to_latent(x, z.to(x.device, torch.float64))               # (k, z_dim)
    return canonical_signs(normalize_rows(u)).float().cpu(), ratio.float().cpu()


def default_layer(G: nn.Module) -> str:
    """'block0' for a BigGAN adapter, else the generator's own `ganspace_layer` attribute."""
    if _biggan_model(G) is not None:
        return "block0"
    name = getattr(G, "ganspace_layer", None)
    if not isinstance(name, str):
        raise SettingError("layer", None, f"{type(G).__name__} names no default layer "
                           f"(ganspace_layer); name one of its modules.")
    return name


def find_module(G: nn.Module, layer: str) -> nn.Module:
    """The module called `layer` in G (BigGAN names as in generator.LAYER_HELP); SettingError
    when there is none."""
    model = _biggan_model(G)
    if model is not None:
        try:
            return _find_layer(model, layer)
        except (UserError, AttributeError):
            raise SettingError("layer", layer, f"not a layer of this model; use {LAYER_HELP}.") from None
    if not isinstance(G, nn.Module):
        raise UserError(f"GANSpace needs a torch module with named layers, got {type(G).__name__}.")
    modules = dict(G.named_modules())
    if layer not in modules or layer == "":
        names = ", ".join(name for name in modules if name)[:200]
        raise SettingError("layer", layer, f"not a module of {type(G).__name__}; it has: {names}.")
    return modules[layer]


def layer_activations(G: nn.Module, module: nn.Module, z: torch.Tensor, batch_size: int,
                      device: torch.device, progress: bool = False) -> torch.Tensor:
    """(N, D) flattened outputs of `module` for latents z (N, z_dim), float32 on `device`.

    A forward hook records the output and stops the forward pass there, so layers after it
    cost nothing. A tuple output counts by its first tensor.
    """
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        captured.append(out)
        raise _Captured

    y: torch.Tensor | None = None
    handle = module.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for start in tqdm(range(0, len(z), batch_size), desc="ganspace", unit="batch",
                              disable=not progress):
                batch = z[start:start + batch_size].to(device)
                captured.clear()
                try:
                    G(batch)
                except _Captured:
                    pass
                if not captured:
                    raise UserError("GANSpace: the chosen layer did not run in the generator's forward pass.")
                act = captured[0].reshape(len(batch), -1).float()           # (b, D)
                if y is None:
                    _check_memory(len(z), act.shape[1])
                    y = torch.empty(len(z), act.shape[1], device=act.device)
                y[start:start + len(batch)] = act
    finally:
        handle.remove()
    return y


def principal_coordinates(y: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of y (N, D): (x (N, k) float64 coordinates on the top-k axes, ratio (k,) explained
    variance ratios, descending).

    Exact when min(N, D) <= 512: the eigendecomposition of the smaller of the covariance
    Yc^T Yc (D, D) and the Gram matrix Yc Yc^T (N, N) of the centred data Yc, in float64.
    Larger: a seeded randomised PCA (torch.pca_lowrank, k + 20 columns, 4 power iterations).
    """
    y = y - y.mean(dim=0, keepdim=True)                                    # Yc, (N, D)
    n, d = y.shape
    total = y.double().pow(2).sum()
    if min(n, d) <= EXACT_SVD_MAX:
        yd = y.double()
        if d <= n:
            _, vectors = torch.linalg.eigh(yd.T @ yd)                      # ascending, (D, D)
            x = yd @ vectors[:, -k:].flip(1)                               # (N, k) = Yc V_k
        else:
            values, vectors = torch.linalg.eigh(yd @ yd.T)                 # ascending, (N, N)
            x = vectors[:, -k:].flip(1) * values[-k:].flip(0).clamp(min=0).sqrt()  # U_k S_k
    else:
        with torch.random.fork_rng(devices=[y.device] if y.device.type == "cuda" else []):
            torch.manual_seed(seed)
            u, s, _ = torch.pca_lowrank(y, q=min(k + 20, n, d), center=False, niter=4)
        x = (u[:, :k] * s[:k]).double()                                    # (N, k) = U_k S_k
    return x, x.pow(2).sum(dim=0) / total


def regress_to_latent(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Least-squares U (k, z_dim) with z - mean(z) ~ x U, for PCA coordinates x (N, k)
    (centred) and latents z (N, z_dim)."""
    zc = z - z.mean(dim=0, keepdim=True)
    return torch.linalg.lstsq(x, zc).solution                             # (k, z_dim)


def _check_memory(samples: int, width: int) -> None:
    need(samples * width * 4 <= MAX_ACTIVATION_BYTES, "samples", samples,
         f"{samples} x {width} activations would take {samples * width * 4 / 2**30:.1f} GiB "
         f"(limit {MAX_ACTIVATION_BYTES / 2**30:.0f} GiB); use fewer samples or an earlier layer.")


def _device_of(G: nn.Module) -> torch.device:
    for tensor in [*G.parameters(), *G.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _biggan_model(G: Any) -> nn.Module | None:
    """The pytorch-pretrained-biggan model inside a BigGANGenerator, else None."""
    model = getattr(G, "model", None)
    return model if hasattr(getattr(model, "generator", None), "gen_z") else None
