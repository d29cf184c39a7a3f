"""Shared fixtures: a small random-weight BigGAN built, saved and loaded through the real path."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_configure(config):
    # The test model is tiny: threads cost more than they give. (Set here, not at import, so
    # benchmarks that import SMALL_CONFIG keep their own thread count.)
    torch.set_num_threads(1)


# 32 px, ~0.5 M parameters: 4 -> 8 -> 16 -> 32 with attention before the last block.
SMALL_CONFIG = dict(output_dim=32, z_dim=128, class_embed_dim=128, channel_width=4, num_classes=1000,
                    layers=[(True, 16, 8), (True, 8, 4), (False, 4, 2), (True, 2, 1)],
                    attention_layer_position=3)


def build_small_biggan(seed: int = 0):
    """A random-weight BigGAN that gives finite, deterministic output in eval mode.

    Two traps of pytorch-pretrained-biggan: generator.bn.weight/bias are created uninitialised,
    and the spectral-norm vectors start unconverged (NaN in eval mode), so a few train-mode
    forwards under no_grad converge them first.
    """
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    torch.manual_seed(seed)
    model = BigGAN(BigGANConfig(**SMALL_CONFIG))
    with torch.no_grad():
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.fill_(0.0)
        model.train()
        one_hot = torch.zeros(4, 1000)
        one_hot[:, 207] = 1
        for _ in range(5):
            model(torch.randn(4, 128), one_hot, 0.5)
    model.eval()
    return model


@pytest.fixture(scope="session")
def small_biggan_dir(tmp_path_factory) -> Path:
    """A folder with config.json + pytorch_model.bin of the small model (package's format)."""
    from biggan_directions.weights import save_biggan

    return save_biggan(build_small_biggan(), tmp_path_factory.mktemp("small-biggan"))


@pytest.fixture(scope="session")
def small_biggan(small_biggan_dir):
    """The small model loaded back through the real loader (eval, frozen, CPU)."""
    from biggan_directions.weights import load_biggan

    return load_biggan(str(small_biggan_dir), device="cpu")
