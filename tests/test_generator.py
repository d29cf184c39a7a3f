"""Generator adapter, latent sampling, walks, device and range parsing."""
from __future__ import annotations

import math

import pytest
import torch

from biggan_directions.foundation.errors import UserError
from biggan_directions.foundation.ranges import parse_int_list
from biggan_directions.media.walks import easing, walk_latents
from biggan_directions.core.directions import DirectionMatrix, orthonormalize, random_orthonormal
from biggan_directions.models.generator import (BigGANGenerator, Generator, check_truncation,
                                                latents_for_seeds, truncated_normal)
from biggan_directions.runtime.device import resolve_device


def one_hot(n, index=207):
    y = torch.zeros(n, 1000)
    y[:, index] = 1
    return y


def test_adapter_matches_the_package_forward_bit_for_bit(small_biggan_dir):
    from biggan_directions.models.weights import load_biggan

    reference = load_biggan(str(small_biggan_dir))
    baked = load_biggan(str(small_biggan_dir))
    G = BigGANGenerator(baked, 207, 0.7)                # bakes spectral norm into the weights
    z = latents_for_seeds(range(4), 128, 0.7)
    with torch.no_grad():
        expected = reference(z, one_hot(4), 0.7)
        out = G(z)
    assert torch.equal(out, expected)
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
    assert G.z_dim == 128 and G.resolution == 32 and isinstance(G, Generator)
    assert not any(p.requires_grad for p in baked.parameters())
    assert not baked.training


def test_adapter_returns_requested_activations(small_biggan):
    G = BigGANGenerator(small_biggan, 3, 1.0, layers=("block1", "image", "block0.bn_1"))
    out = G(torch.zeros(2, 128))
    assert [tuple(t.shape) for t in out] == [(2, 16, 16, 16), (2, 3, 32, 32), (2, 16, 4, 4)]
    other = BigGANGenerator(small_biggan, 3, 1.0, layers=("block1",))   # shares the model
    assert torch.equal(other(torch.zeros(2, 128))[0], out[0])
    assert all(not m._forward_hooks for m in small_biggan.modules())   # no hooks left behind
    with pytest.raises(UserError, match="blocks 0-3"):
        BigGANGenerator(small_biggan, 3, 1.0, layers=("block9",))
    with pytest.raises(UserError, match="unknown layer"):
        BigGANGenerator(small_biggan, 3, 1.0, layers=("nope",))


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan")])
def test_truncation_is_validated(bad):
    with pytest.raises(UserError, match=r"\(0, 1\]"):
        check_truncation(bad)


def test_truncated_normal_range_moments_and_seeding():
    g = torch.Generator().manual_seed(0)
    x = truncated_normal((200_000,), 1.0, g)
    assert x.abs().max() <= 2.0
    # variance of N(0,1) truncated to [-2, 2]: 1 - 2*2*phi(2)/(Phi(2)-Phi(-2))
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    assert x.mean().item() == pytest.approx(0.0, abs=0.01)
    assert x.var().item() == pytest.approx(1 - 4 * phi2 / mass, abs=0.01)
    half = truncated_normal((1000,), 0.5, torch.Generator().manual_seed(1))
    full = truncated_normal((1000,), 1.0, torch.Generator().manual_seed(1))
    assert torch.allclose(half, full * 0.5)


def test_latents_for_seeds_do_not_depend_on_the_other_seeds():
    a = latents_for_seeds([3, 5, 7], 128, 0.5)
    b = latents_for_seeds([7], 128, 0.5)
    assert torch.equal(a[2], b[0])
    assert not torch.equal(a[0], a[1])
    assert latents_for_seeds([], 128, 0.5).shape == (0, 128)


def test_orthonormalize_is_gram_schmidt():
    a = torch.tensor([[3.0, 4.0, 0.0], [1.0, 0.0, 1.0]])
    q = orthonormalize(a)
    assert torch.allclose(q[0], torch.tensor([0.6, 0.8, 0.0]))
    second = a[1] - (a[1] @ q[0]) * q[0]
    assert torch.allclose(q[1], second / second.norm(), atol=1e-6)
    m = DirectionMatrix(5, 7, init="coords")
    assert torch.allclose(m(), torch.eye(5, 7))
    r = random_orthonormal(4, 9, torch.Generator().manual_seed(0))
    assert torch.allclose(r @ r.T, torch.eye(4), atol=1e-6)


def test_walk_geometry():
    z = torch.randn(3, 6)
    q = random_orthonormal(2, 6, torch.Generator().manual_seed(0))
    t = easing("linear", 5)
    assert torch.allclose(t, torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    w = walk_latents(z, q, t, path_size=4.0)                  # (K, T, S, D)
    assert w.shape == (2, 5, 3, 6)
    coord = torch.einsum("ktsd,kd->kts", w, q)                # position along each direction
    assert torch.allclose(coord, (4.0 * t).view(1, 5, 1).expand(2, 5, 3), atol=1e-5)
    # the component orthogonal to q is z's, unchanged along the walk
    resid = w - coord.unsqueeze(-1) * q.view(2, 1, 1, 6)
    proj = z - (z @ q.T).T.unsqueeze(-1) * q.unsqueeze(1)    # (K, S, D)
    assert torch.allclose(resid, proj.unsqueeze(1).expand_as(resid), atol=1e-5)
    zero = walk_latents(z, torch.zeros(1, 6), t, 4.0)
    assert torch.allclose(zero, z.expand(1, 5, 3, 6))


def test_loop_easing_is_seamless():
    t = easing("loop", 8)
    assert t[0] == 0 and t[2] == pytest.approx(1.0) and t[6] == pytest.approx(-1.0)
    # the next frame after the last would be t[0]: equal spacing across the wrap
    assert (t[1] - t[0]).item() == pytest.approx((t[0] - t[-1]).item(), abs=1e-6)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA"):
            resolve_device("cuda:1")
    with pytest.raises(UserError, match="not a device"):
        resolve_device("tpu")


def test_parse_int_list():
    assert parse_int_list("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_int_list("5, 2,5") == [5, 2]
    for bad, message in (("7-3", "backwards"), ("", "empty"), ("a", "not a number"), ("-2", "negative")):
        with pytest.raises(UserError, match=message):
            parse_int_list(bad, "--dirs")


def test_baselines_stay_inside_the_subspace():
    from biggan_directions.core.directions import baseline_directions

    r = baseline_directions("random", 3, 10, (2, 6), torch.Generator().manual_seed(0))
    assert r.shape == (3, 10) and torch.count_nonzero(r[:, :2]) == 0 and torch.count_nonzero(r[:, 6:]) == 0
    assert torch.allclose(r @ r.T, torch.eye(3), atol=1e-6)
    c = baseline_directions("coords", 2, 10, (4, 8))
    assert torch.equal(c, torch.eye(10)[4:6])
    full = baseline_directions("random", 3, 10, None, torch.Generator().manual_seed(0))
    assert torch.equal(full, random_orthonormal(3, 10, torch.Generator().manual_seed(0)))
