"""Test support shared by the tests and the benchmarks: the small random BigGAN, an LPIPS backbone
file, a generator with a known Hessian basis, and helpers several test files use (a call that must
not happen, a signal sent once a run has logged some steps).

Nothing here is product code: the package has no test-only paths. Benchmarks import this module
as `tests.support` (run as `python -m benchmarks.<name>` from the repository root) to time the
exact model the tests use.
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from biggan_directions.core.directions import random_orthonormal, save_directions

# 32 px, ~0.5 M parameters: 4 -> 8 -> 16 -> 32 with attention before the last block.
SMALL_CONFIG = dict(output_dim=32, z_dim=128, class_embed_dim=128, channel_width=4, num_classes=1000,
                    layers=[(True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
                    attention_layer_position=3)


def build_small_biggan(seed: int = 0, config: dict | None = None):
    """A random-weight BigGAN (SMALL_CONFIG unless `config`) that gives finite, deterministic
    output in eval mode.

    Two traps of pytorch-pretrained-biggan: generator.bn.weight/bias are created uninitialised,
    and the spectral-norm vectors start unconverged (NaN in eval mode), so a few train-mode
    forwards under no_grad converge them first.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**(config or SMALL_CONFIG)))
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, model.config.num_classes)
        one_hot[:, 207 % model.config.num_classes] = 1
        for _ in range(5):
            model(torch.randn(4, model.config.z_dim), one_hot, 0.5)
    model.eval()
    return model


def write_backbone_checkpoint(folder: str | Path, net: str = "alex", seed: int = 1234) -> Path:
    """A seeded random torchvision backbone saved under torchvision's own file name in `folder`
    (e.g. folder/alexnet-owt-7be5be79.pth): a stand-in for the ImageNet weights that LPIPS
    loads, for tests that cannot download them. Returns the file's path."""
    import torchvision

    from biggan_directions.scoring.lpips_metric import backbone_checkpoint

    arch = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16,
            "squeeze": torchvision.models.squeezenet1_1}[net]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / backbone_checkpoint(net)[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.save(arch(weights=None).state_dict(), path)
    return path


class HiddenBasis:
    """G(z) = C f(R z), f(u) = tanh(u) + 0.1 u^3: its Hessian is diagonal exactly in R's rows."""

    def __init__(self, d: int = 8, outputs: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.R = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))[0].float()
        self.C = torch.randn(outputs, d, generator=g)
        self.z_dim = d

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        u = z @ self.R.T
        return (torch.tanh(u) + 0.1 * u ** 3) @ self.C.T


def forbid(monkeypatch, target: Any, name: str, message: str) -> None:
    """Replace target.name (a module's function, a class's method) with one that fails the test
    with `message` when called: e.g. "LPIPS loaded before the options were checked". Patch the
    name where the caller looks it up (the calling module), or the patch changes nothing."""
    def not_now(*args, **kwargs):
        raise AssertionError(message)
    monkeypatch.setattr(target, name, not_now)


def default_hangup() -> None:
    """A Popen preexec_fn: the child takes SIGHUP's default action even when the test runs under
    nohup (which makes SIGHUP ignored, and a child inherits that): a test that sends SIGHUP
    tests the terminal closing, not nohup."""
    import signal

    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def signal_when_logged(proc: subprocess.Popen, out: Path, sig: int, rows: int = 4,
                       timeout: float = 120.0) -> list[Path]:
    """Wait until the discover run `proc` writes under `out` has `rows` lines in its log.csv
    (<out>/<model>/<class>/log.csv, header included: rows - 1 steps), or it exits, or `timeout`
    seconds pass; then send it `sig`. Returns the log files found."""
    logs: list[Path] = []
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:   # wait until a few steps are done
        logs = list(Path(out).glob("*/*/log.csv"))
        if logs and len(logs[0].read_text().splitlines()) >= rows:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    return logs


def make_run(folder: str | Path, model_dir: str | Path, *, ndirs: int, seed: int, truncation: float,
             path_size: float, name: str = "directions.safetensors", **meta: Any) -> Path:
    """A run as score, render and view open it: <folder>/<name> holding a seeded random
    orthonormal (ndirs, 128) matrix whose metadata names `model_dir`, class 207 (golden
    retriever), `truncation` and `path_size`; `meta` adds or overrides fields (None drops one).
    Returns the directions file."""
    q = random_orthonormal(ndirs, 128, torch.Generator().manual_seed(seed))
    info = {"model": str(model_dir), "class_index": 207, "class_name": "golden retriever",
            "truncation": truncation, "path_size": path_size, **meta}
    return save_directions(Path(folder) / name, q, {k: v for k, v in info.items() if v is not None})
