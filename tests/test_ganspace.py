"""GANSpace: PCA of a named layer's activations, regressed back to z."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import biggan_directions.methods.ganspace as ganspace
from biggan_directions.foundation.errors import SettingError
from biggan_directions.methods.ganspace import ganspace_directions, principal_coordinates
from biggan_directions.models.generator import BigGANGenerator


class Planted(nn.Module):
    """A generator whose layer `features` is y = A diag(sigma) R^T z + b: principal axis j of y
    is A[:, j], with variance ~ sigma_j^2, and moving z along R[:, j] moves along it alone."""

    ganspace_layer = "features"

    def __init__(self, z_dim=8, width=24, sigma=(4.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.3, 0.1), seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.resolution = z_dim, 4
        self.a = torch.linalg.qr(torch.randn(width, z_dim, generator=g))[0]    # (width, z), orthonormal columns
        self.r = torch.linalg.qr(torch.randn(z_dim, z_dim, generator=g))[0]    # (z, z) orthogonal
        self.sigma = torch.tensor(sigma)
        self.features = nn.Linear(z_dim, width)
        self.head = nn.Linear(width, 3 * 4 * 4)
        with torch.no_grad():
            self.features.weight.copy_(self.a @ torch.diag(self.sigma) @ self.r.T)

    def forward(self, z):
        return torch.tanh(self.head(torch.relu(self.features(z)))).view(-1, 3, 4, 4)


def test_ganspace_recovers_planted_axes_in_order_of_variance():
    G = Planted()
    head_calls = []
    G.head.register_forward_hook(lambda *_: head_calls.append(1))
    u, ratio = ganspace_directions(G, "features", samples=2000, ndirs=4, seed=0,
                                   truncation=1.0, batch_size=256)
    assert u.shape == (4, 8) and ratio.shape == (4,)
    assert torch.allclose(u.norm(dim=1), torch.ones(4), atol=1e-5)
    cos = (u @ G.r[:, :4]).abs()                             # (4, 4): |<u_i, r_j>|
    assert (torch.diagonal(cos) > 0.99).all(), cos
    # z has i.i.d. coordinates, so component j explains ~ sigma_j^2 / sum(sigma^2) of the variance.
    expected = G.sigma[:4] ** 2 / (G.sigma ** 2).sum()
    assert torch.allclose(ratio, expected, atol=0.02) and (ratio[:-1] > ratio[1:]).all()
    # The hook stops the forward pass at the layer: later layers never run.
    assert head_calls == []


def test_ganspace_is_seeded_and_uses_the_generator_default_layer():
    G = Planted()
    a = ganspace_directions(G, samples=300, ndirs=3, seed=5, truncation=1.0)
    b = ganspace_directions(G, "features", samples=300, ndirs=3, seed=5, truncation=1.0, batch_size=7)
    c = ganspace_directions(G, samples=300, ndirs=3, seed=6, truncation=1.0)
    assert torch.allclose(a[0], b[0], atol=1e-5) and torch.allclose(a[1], b[1], atol=1e-6)
    assert not torch.equal(a[0], c[0])
    assert (a[0].gather(1, a[0].abs().argmax(1, keepdim=True)) > 0).all()   # sign rule


def test_randomised_pca_agrees_with_the_exact_one(monkeypatch):
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(64, 5, generator=g))[0]             # (64, 5)
    y = torch.randn(600, 5, generator=g) * torch.tensor([5.0, 4, 3, 2, 1]) @ basis.T + 0.01 * torch.randn(600, 64, generator=g)
    x_exact, r_exact = principal_coordinates(y, 3)
    monkeypatch.setattr(ganspace, "EXACT_SVD_MAX", 0)
    x_fast, r_fast = principal_coordinates(y, 3, seed=1)
    assert torch.allclose(r_fast, r_exact, rtol=1e-4)
    assert torch.allclose(x_fast.abs(), x_exact.abs(), atol=1e-3)


def test_ganspace_on_small_biggan_gives_unit_rows_ordered_by_variance(small_biggan):
    G = BigGANGenerator(small_biggan, 207, 0.5)
    u, ratio = ganspace_directions(G, samples=200, ndirs=6, seed=0, batch_size=50)   # block0
    assert u.shape == (6, 128)
    assert torch.allclose(u.norm(dim=1), torch.ones(6), atol=1e-5)
    assert (ratio[:-1] >= ratio[1:]).all() and 0 < ratio.sum() <= 1
    u1, ratio1 = ganspace_directions(G, "block1", samples=200, ndirs=6, seed=0, batch_size=50)
    assert u1.shape == (6, 128) and not torch.allclose(ratio1, ratio)


@pytest.mark.parametrize("kwargs, setting, message", [
    (dict(layer="nope"), "layer", "not a module of Planted"),
    (dict(samples=0), "samples", "at least 1"),
    (dict(samples=4, ndirs=4), "samples", "ndirs \\+ 1 = 5"),
    (dict(ndirs=9), "ndirs", "1-8"),
    (dict(batch_size=0), "batch_size", "at least 1"),
])
def test_ganspace_bad_input_gets_one_clear_error(kwargs, setting, message):
    args = dict(samples=50, ndirs=3, truncation=1.0) | kwargs
    with pytest.raises(SettingError, match=message) as info:
        ganspace_directions(Planted(), **args)
    assert info.value.setting == setting


@pytest.mark.parametrize("layer", ["block9", "nope", "block0.no_such_module"])
def test_ganspace_unknown_biggan_layer(small_biggan, layer):
    with pytest.raises(SettingError, match="not a layer of this model") as info:
        ganspace_directions(BigGANGenerator(small_biggan, 207, 0.5), layer, samples=20, ndirs=2)
    assert info.value.setting == "layer"


def test_generator_without_a_default_layer_is_told_to_name_one():
    class Bare(Planted):
        ganspace_layer = None

    with pytest.raises(SettingError, match="names no default layer"):
        ganspace_directions(Bare(), samples=20, ndirs=2)
