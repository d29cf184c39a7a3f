"""SeFa: the top right-singular vectors of the weight that first reads z."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from biggan_directions.foundation.errors import SettingError, UserError
from biggan_directions.methods.sefa import (directions_of_weight, effective_weight,
                                            first_linear_weight, sefa_directions)
from biggan_directions.models.generator import BigGANGenerator
from tests.support import build_small_biggan


def known_svd(out=40, z_dim=12, seed=0):
    """A (out, z_dim) weight U diag(s) V^T with distinct singular values s, and V^T, s."""
    g = torch.Generator().manual_seed(seed)
    r = min(out, z_dim)
    u = torch.linalg.qr(torch.randn(out, r, generator=g, dtype=torch.float64))[0]      # (out, r)
    vt = torch.linalg.qr(torch.randn(z_dim, r, generator=g, dtype=torch.float64))[0].T  # (r, z)
    s = torch.linspace(5.0, 0.5, r, dtype=torch.float64)                               # distinct
    return u @ torch.diag(s) @ vt, vt, s


class LinearFirst(nn.Module):
    """A toy generator whose first layer is a Linear map of z, exposed through first_linear()."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.z_dim, self.resolution = weight.shape[1], 4
        self.fc = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(weight)
        self.to_rgb = nn.Linear(weight.shape[0], 3 * 4 * 4)

    def first_linear(self) -> torch.Tensor:
        return self.fc.weight

    def forward(self, z):
        return torch.tanh(self.to_rgb(torch.relu(self.fc(z)))).view(-1, 3, 4, 4)


class NoLinear(nn.Module):
    z_dim, resolution = 8, 4

    def forward(self, z):
        return torch.zeros(len(z), 3, 4, 4)


@pytest.mark.parametrize("as_generator", [True, False])
def test_sefa_returns_the_planted_singular_vectors_in_order(as_generator):
    weight, vt, s = known_svd()
    source = LinearFirst(weight.float()) if as_generator else weight
    q, values = sefa_directions(source, ndirs=5)
    assert q.shape == (5, 12) and values.shape == (5,)
    cos = (q.double() @ vt[:5].T).abs()                    # (5, 5): |<q_i, v_j>|
    assert torch.allclose(cos, torch.eye(5, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(values.double(), s[:5], rtol=1e-5)
    # The sign rule: each row's largest-magnitude entry is positive.
    assert (q.gather(1, q.abs().argmax(1, keepdim=True)) > 0).all()


def test_sefa_all_directions_by_default_and_sign_independent_of_the_weight_sign():
    weight, _, s = known_svd(out=6, z_dim=10)              # out < z_dim: 6 directions at most
    q, values = sefa_directions(weight)
    assert q.shape == (6, 10) and torch.allclose(values.double(), s, rtol=1e-5)
    assert torch.equal(sefa_directions(-weight)[0], q)
    with pytest.raises(SettingError, match="at most min"):
        sefa_directions(weight, ndirs=7)


def test_sefa_on_small_biggan_is_orthonormal_descending_and_reads_the_normalised_weight():
    model = build_small_biggan()
    gen_z = model.generator.gen_z
    live = effective_weight(gen_z)                          # W / sigma through the live hook
    q, s = sefa_directions(model, ndirs=32)
    assert q.shape == (32, 128)
    assert torch.allclose(q @ q.T, torch.eye(32), atol=1e-5)
    assert (s[:-1] >= s[1:]).all() and s[-1] > 0
    # Spectral norm makes gen_z's whole weight have top singular value ~1; its z columns at most that.
    assert s[0] <= torch.linalg.matrix_norm(live, ord=2) + 1e-5
    # q_0 reaches the top singular value: |A q_0| = s_0 for A the z columns of the used weight.
    assert torch.allclose((live[:, :128] @ q[0]).norm(), s[0], rtol=1e-4)
    # The adapter (which bakes spectral norm into the weights) gives the same directions.
    G = BigGANGenerator(model, 207, 0.5)
    assert torch.allclose(effective_weight(gen_z), live, atol=1e-6)
    q2, s2 = sefa_directions(G, ndirs=32)
    assert torch.allclose(q2, q, atol=1e-5) and torch.allclose(s2, s, atol=1e-6)


def test_layerwise_sefa_stacks_every_conditional_batch_norm():
    model = build_small_biggan()
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    bns = [m for m in model.generator.layers.modules() if isinstance(m, BigGANBatchNorm) and m.conditional]
    stacked = first_linear_weight(model, layers="all")
    expected_rows = model.generator.gen_z.out_features + 2 * sum(bn.num_features for bn in bns)
    assert stacked.shape == (expected_rows, 128) and len(bns) == 16
    first = bns[0]
    start = model.generator.gen_z.out_features
    assert torch.allclose(stacked[start:start + first.num_features], effective_weight(first.scale)[:, :128])
    q, s = sefa_directions(model, ndirs=10, layers="all")
    assert torch.allclose(q @ q.T, torch.eye(10), atol=1e-5)
    assert s[0] >= sefa_directions(model, ndirs=1)[1][0]   # more rows, larger top singular value


def test_sefa_bad_input_gets_one_clear_error():
    with pytest.raises(UserError, match="linear first layer.*first_linear"):
        sefa_directions(NoLinear())
    weight, _, _ = known_svd()
    with pytest.raises(SettingError, match="layers 'bn'"):
        sefa_directions(weight, layers="bn")
    with pytest.raises(SettingError, match="only BigGAN"):
        sefa_directions(LinearFirst(weight.float()), layers="all")
    with pytest.raises(SettingError) as info:
        sefa_directions(weight, ndirs=0)
    assert info.value.setting == "ndirs"
    with pytest.raises(UserError, match="NaN"):
        directions_of_weight(torch.full((4, 3), float("nan")))
