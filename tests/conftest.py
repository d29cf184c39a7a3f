"""Shared fixtures: a small random-weight BigGAN built, saved and loaded through the real path."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support import SMALL_CONFIG, build_small_biggan

os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_configure(config):
    # The test model is tiny: threads cost more than they give. (Set here, not at import, so
    # benchmarks that import SMALL_CONFIG keep their own thread count.)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_biggan_dir(tmp_path_factory) -> Path:
    """A folder with config.json + pytorch_model.bin of the small model (package's format)."""
    from biggan_directions.models.weights import save_biggan

    return save_biggan(build_small_biggan(), tmp_path_factory.mktemp("small-biggan"))


@pytest.fixture(scope="session")
def small_biggan(small_biggan_dir):
    """The small model loaded back through the real loader (eval, frozen, CPU)."""
    from biggan_directions.models.weights import load_biggan

    return load_biggan(str(small_biggan_dir), device="cpu")


@pytest.fixture(scope="session")
def narrow_biggan():
    """The small model with a 16-dimensional latent (and class embedding), in memory: for tests
    of a full basis (one direction per latent coordinate), whose every fixed evaluation then
    measures 16 directions instead of 128."""
    return build_small_biggan(config=dict(SMALL_CONFIG, z_dim=16, class_embed_dim=16))


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module whose commands may set another (`--threads`): on a small
    shared CPU, two threads make the tiny model's calls ~30x slower (thread hand-offs dominate
    32 px convolutions). Put back afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def live_pid():
    """The pid of a running process (not this one), e.g. the holder of a lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()
