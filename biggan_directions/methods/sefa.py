"""SeFa (Shen & Zhou, CVPR 2021): closed-form directions, the top right-singular vectors of the weight that first reads z.

A generator's first layer maps z linearly (before its bias and nonlinearity): h = A z, A of
shape (out, z_dim). The unit z-direction that moves h the most is the top right-singular vector
of A, the next one the second, and so on: Q = the top rows of V^T in A = U diag(s) V^T,
orthonormal by construction and ordered by singular value s (largest first).

Where A comes from (`first_linear_weight`):
  - a weight matrix (out, z_dim) given directly;
  - pytorch-pretrained-biggan (a BigGAN model or a BigGANGenerator holding one as `.model`):
    the z columns of `generator.gen_z`'s spectrally normalised weight, i.e. the one the forward
    pass uses, W[:, :z_dim] of the layer that reads cat(z, class_embedding). With
    layers="all", also the z columns of every conditional batch-norm `scale` and `offset`
    layer (each GenBlock's bn_0..bn_3 reads the same cat(z, embedding)), stacked row-wise:
    the layer-wise variant;
  - any other generator with a method `first_linear()` returning its (out, z_dim) weight.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.spectral_norm import SpectralNorm

from ..foundation.errors import UserError
from ..foundation.settings import need, one_of
from ..core.directions import canonical_signs

SEFA_LAYERS = ("gen_z", "all")   # the first layer only, or also every conditional batch norm


def sefa_directions(source: Any, ndirs: int | None = None,
                    layers: str = "gen_z") -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa directions of a generator (or of a weight matrix).

    source: a (out, z_dim) weight tensor, a pytorch-pretrained-biggan BigGAN model, a
            BigGANGenerator, or a generator with `first_linear()` (see `first_linear_weight`).
    ndirs:  how many directions, 1..min(out, z_dim); None gives all min(out, z_dim).
    layers: 'gen_z' (the first layer) or 'all' (BigGAN only: also the conditional batch norms).
    Returns (Q, s): Q (ndirs, z_dim) float32 with orthonormal rows, ordered by singular value;
    s (ndirs,) float32 the singular values, descending. Each row's largest-magnitude entry is
    positive, so the result does not depend on the SVD routine's sign choice.
    """
    weight = first_linear_weight(source, layers)
    return directions_of_weight(weight, ndirs)


def directions_of_weight(weight: torch.Tensor, ndirs: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q (ndirs, z_dim), s (ndirs,)): the top right-singular vectors of a (out, z_dim) weight,
    largest singular value first, with the sign rule of `sefa_directions`."""
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise UserError(f"SeFa needs a 2-D (out, z_dim) weight, got "
                        f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__}.")
    a = weight.detach().to("cpu", torch.float64)
    if not torch.isfinite(a).all():
        raise UserError("SeFa: the first layer's weight holds NaN or infinite values.")
    rank_max = min(a.shape)
    ndirs = rank_max if ndirs is None else ndirs
    need(isinstance(ndirs, int) and 1 <= ndirs <= rank_max, "ndirs", ndirs,
         f"SeFa gives at most min(out, z_dim) = {rank_max} directions for a "
         f"{tuple(a.shape)} weight; use 1-{rank_max}.")
    _, s, vh = torch.linalg.svd(a, full_matrices=False)      # vh: (rank_max, z_dim), s descending
    q = vh[:ndirs]                                             # (ndirs, z_dim)
    return canonical_signs(q).float(), s[:ndirs].float()


def sefa_available(source: Any, ndirs: int, layers: str = "gen_z") -> bool:
    """Whether SeFa can give `ndirs` directions of `source` (a readable first layer of rank
    room min(out, z_dim) >= ndirs): what `--init auto` asks before choosing sefa."""
    try:
        weight = first_linear_weight(source, layers)
    except UserError:
        return False
    return min(weight.shape) >= ndirs


def first_linear_weight(source: Any, layers: str = "gen_z") -> torch.Tensor:
    """The (out, z_dim) linear map from z that SeFa factorises (see the module docstring).

    UserError when `source` has no linear first layer this function can read.
    """
    one_of("layers", layers, SEFA_LAYERS)
    if isinstance(source, torch.Tensor):
        need(layers == "gen_z", "layers", layers, "a weight matrix given directly has one layer; use gen_z.")
        return source
    model = _biggan_model(source)
    if model is not None:
        return _biggan_z_weight(model, layers)
    first_linear = getattr(source, "first_linear", None)
    if callable(first_linear):
        need(layers == "gen_z", "layers", layers,
             "only BigGAN models have conditional batch-norm layers to stack; use gen_z.")
        weight = first_linear()
        z_dim = getattr(source, "z_dim", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or (
                z_dim is not None and weight.shape[1] != z_dim):
            raise UserError(f"{type(source).__name__}.first_linear() must return a (out, z_dim="
                            f"{z_dim}) weight, got "
                            f"{tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__}.")
        return weight
    raise UserError(f"SeFa needs a linear first layer, and {type(source).__name__} exposes none: "
                    f"use a BigGAN model, give the generator a first_linear() method returning "
                    f"its (out, z_dim) weight, or pass that weight directly.")


# ------------------------------------------------------------------ BigGAN
def _biggan_model(source: Any) -> nn.Module | None:
    """The pytorch-pretrained-biggan BigGAN behind `source` (itself or its `.model`), else None."""
    for candidate in (source, getattr(source, "model", None)):
        generator = getattr(candidate, "generator", None)
        if isinstance(candidate, nn.Module) and hasattr(generator, "gen_z") and hasattr(candidate, "config"):
            return candidate
    return None


def _biggan_z_weight(model: nn.Module, layers: str) -> torch.Tensor:
    """The z columns of gen_z (and with layers='all' of every conditional BN), stacked: (out, z_dim)."""
    # deferred: pytorch_pretrained_biggan loads boto3 (~1 s); only a BigGAN reaches here
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    z_dim = int(model.config.z_dim)
    modules = [model.generator.gen_z]
    if layers == "all":
        for module in model.generator.layers.modules():
            if isinstance(module, BigGANBatchNorm) and module.conditional:
                modules += [module.scale, module.offset]
    rows = [effective_weight(m)[:, :z_dim] for m in modules]   # each (out_i, z_dim)
    return torch.cat(rows, dim=0)


def effective_weight(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The weight a module's forward uses: W / sigma(u, v) for a spectrally normalised module
    whose normalisation is still live (eval mode, no power iteration), else the plain weight
    (e.g. after generator.freeze_spectral_norm)."""
    for hook in module._forward_pre_hooks.values():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            with torch.no_grad():
                return hook.compute_weight(module, do_power_iteration=False).detach()
    return getattr(module, name).detach()

