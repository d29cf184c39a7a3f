"""The step bench_penalty.py measures: its models (small, mid, full-size biggan-deep-128 with random
weights), one published discovery step (DiscoveryStep), the timing helpers and the peak-RSS helpers.

Kept apart from bench_penalty.py (the CPU and GPU suites, their tables and main) so each file
holds one concept; other benchmarks may build the same models from here.
"""
from __future__ import annotations

import contextlib
import os
import platform
import resource
import time
from pathlib import Path

import torch

from biggan_directions.core.directions import DirectionMatrix
from biggan_directions.core.penalty import hessian_penalty, tile_batch
from biggan_directions.models.generator import BigGANGenerator, truncated_normal

CLASS_INDEX = 207           # golden retriever, as published
TRUNCATION = 0.5
PATH_SIZE = 5.0             # eta: w = d e_j with d ~ U[-eta, eta]
K, EPSILON = 2, 0.1         # published settings
STEPS_50K = 50_000          # a published discovery run
OK_REL_ERR = 0.01           # reduced precision is "ok" within 1% of fp32 (issue 10)

MID_CONFIG = dict(output_dim=64, z_dim=128, class_embed_dim=128, channel_width=16, num_classes=1000,
                  layers=[(False, 16, 16), (True, 16, 8), (True, 8, 4), (False, 4, 4),
                          (True, 4, 2), (True, 2, 1)],
                  attention_layer_position=4)   # 64 px, ~2.1 M parameters


def model_config(name: str) -> dict:
    """'small' (the test model of tests/support.py), 'mid', or 'full' (biggan-deep-128)."""
    if name == "small":
        from tests.support import SMALL_CONFIG    # the exact test model

        return dict(SMALL_CONFIG)
    if name == "mid":
        return dict(MID_CONFIG)
    if name == "full":
        return {}                           # BigGANConfig() defaults: biggan-deep-128
    raise ValueError(f"unknown model {name!r}")


def build_generator(name: str, device: torch.device, seed: int = 0) -> BigGANGenerator:
    """A random-weight BigGAN bound to class 207, frozen, giving finite output in eval mode.

    As in tests/support.py: set the uninitialised generator.bn weight/bias, and converge the
    spectral-norm vectors with a few train-mode forwards under no_grad before eval.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**model_config(name))).to(device)
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, model.config.num_classes, device=device)
        one_hot[:, CLASS_INDEX] = 1
        for _ in range(5):
            model(torch.randn(4, model.config.z_dim, device=device), one_hot, TRUNCATION)
    model.eval()
    model.requires_grad_(False)
    gen = BigGANGenerator(model, CLASS_INDEX, TRUNCATION)
    with torch.no_grad():
        out = gen(torch.zeros(1, gen.z_dim, device=device))
    if not torch.isfinite(out).all():
        raise RuntimeError(f"the random {name} model gives non-finite output")
    return gen


class DiscoveryStep:
    """One discovery step on a generator: sample, penalty w.r.t. w, backward, Adam."""

    def __init__(self, gen: BigGANGenerator, device: torch.device, seed: int = 0):
        self.gen, self.device = gen, device
        self.dirs = DirectionMatrix(gen.z_dim, gen.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
        self.opt = torch.optim.Adam(self.dirs.parameters(), lr=0.01)
        self.rng = torch.Generator().manual_seed(seed + 1)      # CPU draws: same on every device

    def sample(self, batch: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, z_dim) and w (B, ndirs) = d e_j, on the device."""
        z = truncated_normal((batch, self.gen.z_dim), TRUNCATION, rng)
        j = torch.randint(0, self.dirs.ndirs, (batch,), generator=rng)
        d = (torch.rand(batch, generator=rng) * 2 - 1) * PATH_SIZE
        w = torch.zeros(batch, self.dirs.ndirs)
        w[torch.arange(batch), j] = d
        return z.to(self.device), w.to(self.device)

    def penalty(self, G, z, w, mode, rng, autocast) -> torch.Tensor:
        q = self.dirs()                                           # (ndirs, z_dim), float32

        def G_w(rows):                                            # rows: (m*B, ndirs)
            latent = tile_batch(z, rows.shape[0]) + rows @ q      # float32, outside autocast
            with autocast():
                return G(latent)

        return hessian_penalty(G_w, w, k=K, epsilon=EPSILON, reduction="mean",
                               generator=rng, mode=mode)

    def __call__(self, G, batch: int, mode: str, autocast=contextlib.nullcontext) -> float:
        z, w = self.sample(batch, self.rng)
        p = self.penalty(G, z, w, mode, self.rng, autocast)
        self.opt.zero_grad(set_to_none=True)
        p.backward()
        self.opt.step()
        return p.item()

    def fixed_value(self, G, batch: int, mode: str, autocast=contextlib.nullcontext,
                    grad: bool = True) -> float:
        """The penalty on fixed inputs and draws (seed 1234) and a fixed Q, without a step.

        grad=True builds the graph as training does, so a compiled G reuses its training graph.
        """
        rng = torch.Generator().manual_seed(1234)
        z, w = self.sample(batch, rng)
        a = self.dirs.A.detach().clone()
        self.dirs.A.data.copy_(DirectionMatrix(self.dirs.ndirs, self.gen.z_dim,
                                               generator=torch.Generator().manual_seed(99)).A)
        try:
            with torch.set_grad_enabled(grad):
                return self.penalty(G, z, w, mode, rng, autocast).item()
        finally:
            self.dirs.A.data.copy_(a)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        name += f", {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{name}; torch {torch.__version__}; python {platform.python_version()}"


# ---------------------------------------------------------------- memory
def _status_mib(field: str) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024                 # kB -> MiB
    return None


def reset_peak_rss() -> float:
    """Reset the peak-RSS mark where possible; return the current RSS (MiB)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    current = _status_mib("VmRSS")
    return current if current is not None else peak_rss()


def peak_rss() -> float:
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
