"""The Hessian Penalty against functions whose penalty is known exactly."""
from __future__ import annotations

import pytest
import torch

from biggan_directions.core.penalty import hessian_penalty, tile_batch


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def product(z):
    """G(z) = z0 * z1 per sample: every second difference is exactly 2 v0 v1."""
    return z[:, 0] * z[:, 1]


def separable(z):
    """sum_i f_i(z_i) with f_i = tanh or cubic: a diagonal Hessian, so a zero penalty."""
    return torch.tanh(z[:, :3]).sum(1) + (z[:, 3:] ** 3 - 2 * z[:, 3:]).sum(1)


class Quadratic:
    """G(z) = z^T H z / 2 per sample (Hessian H), and its exact penalty 2 sum_{i!=j} H_ij^2."""

    def __init__(self, dim: int, seed: int = 0):
        a = torch.randn(dim, dim, generator=seeded(seed), dtype=torch.float64)
        self.H = (a + a.T) / 2
        off = self.H - torch.diag(torch.diagonal(self.H))
        self.exact = 2 * (off ** 2).sum().item()

    def __call__(self, z):
        return 0.5 * torch.einsum("bi,ij,bj->b", z, self.H, z)


class TinyNet(torch.nn.Module):
    """A smooth, row-wise non-linear map with learnable directions Q in front (like discovery):
    rows of w (B, n) -> tanh(MLP(x + w Q)) with two outputs (a hidden layer and the output)."""

    def __init__(self, n: int = 4, d: int = 6, seed: int = 0):
        super().__init__()
        g = seeded(seed)
        self.Q = torch.nn.Parameter(torch.randn(n, d, generator=g, dtype=torch.float64))
        self.W1 = torch.randn(d, 8, generator=g, dtype=torch.float64)
        self.W2 = torch.randn(8, 3, generator=g, dtype=torch.float64)
        self.x = torch.randn(5, d, generator=g, dtype=torch.float64)   # per-sample latents

    def forward(self, w):
        h = torch.tanh((tile_batch(self.x, w.shape[0]) + w @ self.Q) @ self.W1)
        return [h, torch.tanh(h @ self.W2)]


def w_batch(net: TinyNet) -> torch.Tensor:
    return torch.randn(net.x.shape[0], net.Q.shape[0], generator=seeded(7), dtype=torch.float64)


# ---------------------------------------------------------------- exact values
def test_product_converges_to_four_for_every_mode():
    z = torch.randn(3, 5, generator=seeded(1), dtype=torch.float64)
    for mode in ("batched", "sequential"):
        p = hessian_penalty(product, z, k=4096, reduction="mean", generator=seeded(2), mode=mode)
        assert p.item() == pytest.approx(4.0, rel=0.05)


def test_product_with_two_draws_is_zero_or_eight():
    z = torch.randn(1, 2, dtype=torch.float64)
    values = {round(hessian_penalty(product, z, k=2, generator=seeded(s)).item(), 9)
              for s in range(40)}
    assert values == {0.0, 8.0}


def test_separable_function_has_zero_penalty():
    z = torch.randn(4, 6, generator=seeded(3), dtype=torch.float64)
    for mode in ("batched", "sequential"):
        p = hessian_penalty(separable, z, k=8, generator=seeded(4), mode=mode)
        assert abs(p.item()) < 1e-18
    # the same function with a cross term is clearly penalised
    cross = hessian_penalty(lambda z: separable(z) + z[:, 0] * z[:, 4], z, k=8, generator=seeded(4))
    assert cross.item() > 1.0


def test_quadratic_form_matches_two_sum_of_squared_off_diagonals():
    quad = Quadratic(dim=6)
    z = torch.randn(1, 6, generator=seeded(5), dtype=torch.float64)
    # k = 2 gives an unbiased estimate: its mean over many seeds equals the exact value.
    estimates = torch.stack([hessian_penalty(quad, z, k=2, epsilon=0.3, generator=seeded(s))
                             for s in range(3000)])
    assert estimates.mean().item() == pytest.approx(quad.exact, rel=0.06)
    # one large-k estimate does too, and the finite difference is exact for any epsilon.
    big = hessian_penalty(quad, z, k=20000, epsilon=1.7, generator=seeded(9))
    assert big.item() == pytest.approx(quad.exact, rel=0.05)


# ---------------------------------------------------------------- modes and options
@pytest.mark.parametrize("options", [dict(mode="sequential"), dict(chunk_size=5),
                                     dict(chunk_size=12), dict(chunk_size=1)])
def test_batched_equals_sequential_and_chunked_in_value_and_gradient(options):
    net = TinyNet()
    w = w_batch(net)
    ref = hessian_penalty(net, w, k=3, reduction="mean", generator=seeded(11))
    (ref_grad,) = torch.autograd.grad(ref, net.Q)
    other = hessian_penalty(net, w, k=3, reduction="mean", generator=seeded(11), **options)
    (other_grad,) = torch.autograd.grad(other, net.Q)
    assert other.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(other_grad, ref_grad, rtol=1e-10, atol=1e-14)
    assert ref_grad.abs().max().item() > 1e-3


def test_chunks_are_whole_batch_copies_of_at_most_chunk_size_rows():
    net = TinyNet()
    w = w_batch(net)                     # B = 5, k = 3: 35 rows in all
    seen = []

    def G(rows):
        seen.append(rows.shape[0])
        return net(rows)

    hessian_penalty(G, w, k=3, generator=seeded(0), chunk_size=12)
    assert seen == [10, 10, 10, 5]
    seen.clear()
    hessian_penalty(G, w, k=3, generator=seeded(0))
    assert seen == [35]
    seen.clear()                         # with autograd, chunks are checkpointed: rerun in backward
    p = hessian_penalty(G, w, k=3, generator=seeded(0), chunk_size=12)
    assert seen == [10, 10, 10, 5]
    p.backward()
    assert sorted(seen) == sorted([10, 10, 10, 5] * 2)
    seen.clear()
    with torch.no_grad():
        hessian_penalty(G, w, k=3, generator=seeded(0), chunk_size=12)
    assert seen == [10, 10, 10, 5]
    seen.clear()
    hessian_penalty(G, w, k=3, generator=seeded(0), mode="sequential")
    assert seen == [5] * 7


def test_gradient_matches_finite_difference_of_the_penalty():
    net = TinyNet()
    w = w_batch(net)

    def penalty():
        return hessian_penalty(net, w, k=2, reduction="mean", generator=seeded(21))

    (grad,) = torch.autograd.grad(penalty(), net.Q)
    assert grad.abs().max().item() > 1e-3
    h = 1e-6
    for index in [(0, 0), (1, 3), (3, 5)]:
        with torch.no_grad():
            net.Q[index] += h
            up = penalty().item()
            net.Q[index] -= 2 * h
            down = penalty().item()
            net.Q[index] += h
        assert grad[index].item() == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-8)


def test_gradient_reaches_z():
    z = torch.randn(2, 3, generator=seeded(0), dtype=torch.float64, requires_grad=True)
    p = hessian_penalty(lambda z: torch.sin(z[:, 0] * z[:, 1] * z[:, 2]), z, generator=seeded(1))
    p.backward()
    assert z.grad is not None and z.grad.abs().sum().item() > 0


def test_multi_layer_output_sums_per_tensor_terms():
    net = TinyNet()
    w = w_batch(net)
    parts = hessian_penalty(net, w, k=4, generator=seeded(3), return_separately=True)
    total = hessian_penalty(net, w, k=4, generator=seeded(3))
    alone = [hessian_penalty(lambda x, i=i: net(x)[i], w, k=4, generator=seeded(3)) for i in (0, 1)]
    assert len(parts) == 2 and all(p.dim() == 0 for p in parts)
    assert total.item() == pytest.approx(sum(p.item() for p in parts), rel=1e-12)
    for p, a in zip(parts, alone):
        assert p.item() == pytest.approx(a.item(), rel=1e-12)
    assert parts[0].item() > 0 and parts[1].item() > 0


def test_precomputed_G_z_equals_recomputation_and_skips_a_pass():
    net = TinyNet()
    w = w_batch(net)
    calls = []

    def G(rows):
        calls.append(rows.shape[0])
        return net(rows)

    for mode in ("batched", "sequential"):
        fresh = hessian_penalty(net, w, k=3, generator=seeded(4), mode=mode)
        calls.clear()
        given = hessian_penalty(G, w, k=3, generator=seeded(4), G_z=net(w), mode=mode)
        assert given.item() == pytest.approx(fresh.item(), rel=1e-12)
        assert sum(calls) == 2 * 3 * w.shape[0]     # 2k B rows: no evaluation at z itself


def test_same_seed_same_value_other_seed_other_value():
    net = TinyNet()
    w = w_batch(net)
    a = hessian_penalty(net, w, generator=seeded(5))
    b = hessian_penalty(net, w, generator=seeded(5))
    c = hessian_penalty(net, w, generator=seeded(6))
    assert a.item() == b.item()
    assert c.item() != a.item()
    torch.manual_seed(0)                             # generator=None: the global RNG
    d = hessian_penalty(net, w)
    torch.manual_seed(0)
    assert hessian_penalty(net, w).item() == d.item()


def test_max_and_mean_and_callable_reductions():
    net = TinyNet()
    w = w_batch(net)
    variance = {}

    def keep(v):
        variance["v"] = v
        return v.sum()

    total = hessian_penalty(lambda x: net(x)[1], w, k=3, generator=seeded(8), reduction=keep)
    v = variance["v"]
    assert v.shape == (5, 3)                         # per output element, batch included
    assert total.item() == pytest.approx(v.sum().item(), rel=1e-12)
    mx = hessian_penalty(lambda x: net(x)[1], w, k=3, generator=seeded(8), reduction="max")
    mean = hessian_penalty(lambda x: net(x)[1], w, k=3, generator=seeded(8), reduction="mean")
    assert mx.item() == pytest.approx(v.max().item(), rel=1e-12)
    assert mean.item() == pytest.approx(v.mean().item(), rel=1e-12)
    assert mx.item() > mean.item()


def test_low_precision_outputs_are_differenced_in_float32():
    z = torch.randn(2, 3, generator=seeded(0)).half()
    p = hessian_penalty(lambda z: z[:, 0] * z[:, 1], z, k=2, epsilon=0.5, generator=seeded(1))
    assert p.dtype == torch.float32


@pytest.mark.parametrize("kwargs, match", [
    (dict(k=1), "k >= 2"), (dict(k=2.0), "k >= 2"), (dict(epsilon=0.0), "> 0"),
    (dict(epsilon=-0.1), "> 0"), (dict(mode="loop"), "batched, sequential"),
    (dict(reduction="sum"), "max, mean"), (dict(chunk_size=0), "positive"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        hessian_penalty(product, torch.randn(2, 3), **kwargs)


def test_bad_outputs_raise_value_error():
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="batch dimension"):
        hessian_penalty(lambda z: z.sum(), z)
    with pytest.raises(ValueError, match="tensor"):
        hessian_penalty(lambda z: z.tolist(), z)
    with pytest.raises(ValueError, match="G_z"):
        hessian_penalty(lambda z: z * 2, z, G_z=torch.zeros(2, 4))
    for mode in ("batched", "sequential"):
        with pytest.raises(ValueError, match="G_z"):
            hessian_penalty(lambda z: [z, z], z, G_z=[z], mode=mode)
    with pytest.raises(ValueError, match="floating-point"):
        hessian_penalty(lambda z: z * 2, torch.ones(2, 3, dtype=torch.long))


# ---------------------------------------------------------------- with the small BigGAN
def test_small_biggan_batched_equals_sequential_through_direction_matrix(small_biggan):
    """The real use: penalty w.r.t. w of G(z + w Q), gradient on the direction matrix."""
    from biggan_directions.core.directions import DirectionMatrix
    from biggan_directions.models.generator import BigGANGenerator, truncated_normal

    gen = BigGANGenerator(small_biggan, class_index=207, truncation=0.5)
    dirs = DirectionMatrix(16, gen.z_dim, generator=seeded(0))
    batch = 3
    z = truncated_normal((batch, gen.z_dim), 0.5, seeded(1))
    w = torch.zeros(batch, 16)
    w[torch.arange(batch), torch.tensor([0, 5, 9])] = torch.tensor([2.0, -4.0, 1.0])

    results = []
    for mode in ("batched", "sequential"):
        q = dirs()
        p = hessian_penalty(lambda rows: gen(tile_batch(z, rows.shape[0]) + rows @ q), w,
                            k=2, epsilon=0.1, reduction="mean", generator=seeded(2), mode=mode)
        (grad,) = torch.autograd.grad(p, dirs.A)
        results.append((p.item(), grad))
    (pb, gb), (ps, gs) = results
    assert pb > 0 and gb.abs().max().item() > 0
    assert ps == pytest.approx(pb, rel=1e-3)
    torch.testing.assert_close(gs, gb, rtol=1e-2, atol=1e-3 * gb.abs().max().item())
