"""The LPIPS metric: backbone file names, the backbone parameter and torchvision's cache, feature
reuse equal to lpips.forward, downloads, hostile and missing files.

The backbone is a seeded random AlexNet saved under torchvision's own checkpoint name
(support.write_backbone_checkpoint): given as `backbone=` or found in a temporary TORCH_HOME,
so lpips's real loading path runs offline.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from biggan_directions.foundation.errors import SettingError, UserError
from biggan_directions.scoring.lpips_metric import (backbone_checkpoint, load_lpips, lpips_distance,
                                                    lpips_features)
from tests.support import write_backbone_checkpoint

ALEX_FILE = "alexnet-owt-7be5be79.pth"


@pytest.fixture(autouse=True)
def offline_backbone_downloads(monkeypatch):
    """No test touches the network: a backbone download fails as it does offline."""
    from urllib.error import URLError

    def offline(url, dst, *args, **kwargs):
        raise URLError("offline (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory) -> Path:
    return write_backbone_checkpoint(tmp_path_factory.mktemp("backbone"))


@pytest.fixture(scope="module")
def metric(backbone_file):
    return load_lpips("alex", "cpu", backbone=backbone_file)


def test_backbone_file_names_are_torchvisions():
    assert backbone_checkpoint("alex") == (ALEX_FILE, "https://download.pytorch.org/models/" + ALEX_FILE)
    assert backbone_checkpoint("vgg")[0] == "vgg16-397923af.pth"
    assert backbone_checkpoint("squeeze")[0] == "squeezenet1_1-b8a52dc0.pth"
    with pytest.raises(SettingError, match="net 'resnet': use alex or vgg or squeeze") as e:
        backbone_checkpoint("resnet")
    assert "--net" not in str(e.value)          # library errors name the field, not the flag


def test_backbone_comes_from_the_given_file(metric, backbone_file):
    assert backbone_file.name == ALEX_FILE
    saved = torch.load(backbone_file, weights_only=True)
    assert torch.equal(metric.net.slice1[0].weight, saved["features.0.weight"])
    assert torch.equal(getattr(metric.net.slice5, "10").weight, saved["features.10.weight"])
    assert not metric.training and not any(p.requires_grad for p in metric.parameters())


def test_backbone_comes_from_torch_home_when_not_given(tmp_path, backbone_file, metric, monkeypatch):
    write_backbone_checkpoint(tmp_path / "hub" / "checkpoints")    # same seed: same weights
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from_cache = load_lpips("alex")
    assert torch.equal(from_cache.net.slice1[0].weight, metric.net.slice1[0].weight)


def test_loading_leaves_the_global_rng_alone(backbone_file):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    load_lpips("alex", backbone=backbone_file)
    assert torch.equal(torch.rand(3), expected)


def test_missing_or_wrong_backbone_parameter_is_one_line(tmp_path, backbone_file):
    with pytest.raises(UserError) as e:
        load_lpips("alex", backbone=tmp_path / "nothing.pth")
    assert "\n" not in str(e.value) and "nothing.pth" in str(e.value)
    # an AlexNet given as SqueezeNet (as VGG it is the same refusal, after building a random
    # 138 M-parameter VGG16 first: ~2 s)
    with pytest.raises(UserError, match="not a usable squeeze checkpoint") as e:
        load_lpips("squeeze", backbone=backbone_file)
    assert "\n" not in str(e.value)


def test_feature_distance_equals_lpips_forward(metric):
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(5, 3, 32, 32, generator=gen) * 2 - 1
    b = torch.rand(5, 3, 32, 32, generator=gen) * 2 - 1
    with torch.no_grad():
        ref = metric(a, b, normalize=False).flatten()
        mine = lpips_distance(metric, lpips_features(metric, a), lpips_features(metric, b))
        same_ref = metric(a, a, normalize=False).flatten()
        same = lpips_distance(metric, lpips_features(metric, a), lpips_features(metric, a))
    assert ref.shape == (5,) and bool((ref > 1e-4).all())
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7)
    assert float(same_ref.abs().max()) < 1e-6
    assert float(same.abs().max()) == 0.0


def test_missing_backbone_is_downloaded_once(tmp_path, backbone_file, monkeypatch):
    import shutil

    fetched = []

    def fake_download(url, dst, progress=True):             # what torch.hub would fetch
        fetched.append(url)
        shutil.copyfile(backbone_file, dst)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m = load_lpips("alex")
    assert fetched == ["https://download.pytorch.org/models/" + ALEX_FILE]
    assert (tmp_path / "hub" / "checkpoints" / ALEX_FILE).is_file()
    load_lpips("alex")                                       # second time: from the file
    assert len(fetched) == 1
    saved = torch.load(backbone_file, weights_only=True)
    assert torch.equal(m.net.slice5._modules["10"].weight, saved["features.10.weight"])


def test_hostile_backbone_file_is_not_unpickled(tmp_path, monkeypatch):
    import os
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ALEX_FILE).write_bytes(pickle.dumps({"features.0.weight": Boom()}))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not a usable alex checkpoint"):
        load_lpips("alex")
    with pytest.raises(UserError, match="not a usable alex checkpoint"):
        load_lpips("alex", backbone=folder / ALEX_FILE)
    assert not (tmp_path / "pwned").exists()


def test_missing_backbone_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError) as e:
        load_lpips("squeeze")
    msg = str(e.value)
    assert "\n" not in msg and "squeezenet1_1-b8a52dc0.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and "https://" in msg
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hub" / "checkpoints" / ALEX_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a usable alex checkpoint") as e:
        load_lpips("alex")
    assert "\n" not in str(e.value)
