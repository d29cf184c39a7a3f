"""The generator protocol the tool talks to, the BigGAN adapter, and seeded latent sampling."""
from __future__ import annotations

import math
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn
from torch.nn.utils import remove_spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

from ..foundation.errors import UserError


@runtime_checkable
class Generator(Protocol):
    """What penalty, discovery, rendering and scoring need from a generator.

    z_dim:      latent size.
    resolution: output height == width in pixels.
    __call__:   (B, z_dim) latents -> (B, 3, H, W) images in [-1, 1], for a class and truncation
                bound beforehand. A generator with `layers` set may return a list instead:
                [image?, activation, ...] (the multi-layer Hessian Penalty sums one term each).
    """

    z_dim: int
    resolution: int

    def __call__(self, z: torch.Tensor) -> torch.Tensor | list[torch.Tensor]: ...


LAYER_HELP = ("'image' (the output), 'blockN' (output of BigGAN's N-th generator block, 0-based) "
              "or 'block N.bn_M' style module names under `generator.layers`")


class BigGANGenerator(nn.Module):
    """A frozen pytorch-pretrained-biggan model bound to one class (or a set of classes) and one
    truncation.

    forward(z): (B, z_dim) -> (B, 3, H, W) in [-1, 1] for the class (the first of the set);
    forward(z, classes): each row its own class, `classes` a (B,) tensor of class indices (the
    embedding's columns indexed per sample: the cost of one class). With `layers`, a list of
    tensors, one per requested layer, in the order given ('image' is the final output).

    class_index: one index, or a sequence of distinct indices (a pooled run's set: `classes`).
    """

    def __init__(self, model: nn.Module, class_index: int | Sequence[int], truncation: float,
                 layers: Sequence[str] = ("image",)):
        super().__init__()
        check_truncation(truncation)
        config = model.config
        indices = ([int(c) for c in class_index] if isinstance(class_index, (list, tuple, range))
                   else [int(class_index)])
        if not indices:
            raise UserError("BigGANGenerator: give at least one class.")
        for index in indices:
            if not 0 <= index < config.num_classes:
                raise UserError(f"class index {index} is outside 0-{config.num_classes - 1}.")
        if len(set(indices)) != len(indices):
            raise UserError(f"classes {indices}: each class must be given once.")
        freeze_spectral_norm(model)
        self.model = model
        self.classes = tuple(indices)          # one class, or a pooled run's set
        self.class_index = indices[0]
        self.num_classes = int(config.num_classes)
        self.truncation = float(truncation)
        self.z_dim = int(config.z_dim)
        self.resolution = int(config.output_dim)
        # The class embedding of a one-hot label is one column of the embedding matrix:
        # computing it once saves a (B, 1000) x (1000, z_dim) product per call.
        self.register_buffer("embed", model.embeddings.weight[:, indices[0]].detach().clone())
        self.layers = list(layers) if layers else ["image"]
        self._modules_for_layers = {name: _find_layer(model, name) for name in self.layers
                                    if name != "image"}

    def forward(self, z: torch.Tensor, classes: torch.Tensor | None = None
                ) -> torch.Tensor | list[torch.Tensor]:
        if classes is None:
            embed = self.embed.to(z.dtype).expand(z.shape[0], -1)
        else:            # per sample: columns of the embedding matrix, as a one-hot would give
            embed = self.model.embeddings.weight.t()[classes.to(z.device)].to(z.dtype)
        cond = torch.cat([z, embed], dim=1)                        # (B, 2*z_dim)
        if self.layers == ["image"]:
            return self.model.generator(cond, self.truncation)  # (B, 3, H, W) in [-1, 1]
        # Hooks live only for this call, so several adapters can share one model.
        captured: dict[str, torch.Tensor] = {}
        handles = [module.register_forward_hook(
                       lambda _m, _i, output, name=name: captured.__setitem__(name, output))
                   for name, module in self._modules_for_layers.items()]
        try:
            image = self.model.generator(cond, self.truncation)
        finally:
            for handle in handles:
                handle.remove()
        return [image if name == "image" else captured[name] for name in self.layers]


def freeze_spectral_norm(model: nn.Module) -> int:
    """Replace every spectral-norm reparameterisation by its eval-mode weight W / sigma(u, v).

    In eval mode spectral norm does no power iteration, so W / sigma is a constant of a frozen
    model; computing it once instead of in every forward gives bit-identical images ~25% faster
    on the small test model. Mutates `model` in place (idempotent); returns how many were baked.
    """
    if model.training:
        raise ValueError("freeze_spectral_norm needs a model in eval mode")
    baked = 0
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                remove_spectral_norm(module, hook.name)
                getattr(module, hook.name).requires_grad_(False)
                baked += 1
    return baked


def _find_layer(model: nn.Module, name: str) -> nn.Module:
    # deferred: pytorch_pretrained_biggan loads boto3 (~1 s); other generators never need it
    from pytorch_pretrained_biggan.model import GenBlock

    blocks = [m for m in model.generator.layers if isinstance(m, GenBlock)]
    if name.startswith("block"):
        head, _, rest = name[5:].partition(".")
        if head.isdigit():
            index = int(head)
            if index >= len(blocks):
                raise UserError(f"layer {name!r}: this model has blocks 0-{len(blocks) - 1}.")
            module = blocks[index]
            return module.get_submodule(rest) if rest else module
    names = dict(model.named_modules())
    if name in names:
        return names[name]
    raise UserError(f"unknown layer {name!r}; use {LAYER_HELP}.")


def check_truncation(truncation: float) -> float:
    """BigGAN's truncation must lie in (0, 1]."""
    if not (0.0 < float(truncation) <= 1.0) or math.isnan(float(truncation)):
        raise UserError(f"--truncation {truncation}: must be in (0, 1], e.g. 0.5.")
    return float(truncation)


def truncated_normal(shape: Sequence[int], truncation: float,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """BigGAN's latent: a standard normal truncated to [-2, 2], times `truncation`.

    Drawn on the CPU by inverting the normal CDF, so the same generator state gives the same
    latents on every device and platform.
    """
    lo = 0.5 * (1.0 + math.erf(-2.0 / math.sqrt(2.0)))   # Phi(-2)
    u = torch.rand(tuple(shape), generator=generator, dtype=torch.float64)
    u = lo + (1.0 - 2.0 * lo) * u                           # U[Phi(-2), Phi(2)]
    x = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)        # Phi^-1(u), in [-2, 2]
    return (x.clamp_(-2.0, 2.0) * truncation).to(torch.float32)


def latents_for_seeds(seeds: Sequence[int], z_dim: int, truncation: float) -> torch.Tensor:
    """(len(seeds), z_dim) latents, one seeded generator per sample, so a seed gives the same
    latent whatever other seeds are asked for and whatever the batch size."""
    rows = [truncated_normal((z_dim,), truncation, torch.Generator().manual_seed(int(s)))
            for s in seeds]
    return torch.stack(rows) if rows else torch.empty(0, z_dim)
