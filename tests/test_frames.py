"""Walk frames against the walk maths: cells, batching, labels, sizes, strips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from biggan_directions.media.frames import frame_size, label_width, to_uint8, walk_frames
from biggan_directions.media.walks import easing
from biggan_directions.core.directions import random_orthonormal
from biggan_directions.models.generator import BigGANGenerator, latents_for_seeds

R = 32          # the small test model's resolution
LW = label_width(R)


@pytest.fixture(scope="module")
def G(small_biggan):
    return BigGANGenerator(small_biggan, 207, 0.5)


def test_loop_centre_frame_is_the_projected_sample(G):
    q = random_orthonormal(3, 128, torch.Generator().manual_seed(2))
    z = latents_for_seeds([4, 5], 128, 0.5)
    frames = list(walk_frames(G, q, z, easing("loop", 4), 3.0, labels=None, batch_size=4))
    assert len(frames) == 4 and frames[0].shape == (3 * R, 2 * R, 3) and frames[0].dtype == np.uint8
    for k in range(3):
        for s in range(2):
            projected = z[s] - (z[s] @ q[k]) * q[k]                       # t = 0
            with torch.no_grad():
                want = to_uint8(G(projected[None]))[0].permute(1, 2, 0).numpy()
            cell = frames[0][k * R:(k + 1) * R, s * R:(s + 1) * R]
            assert np.abs(cell.astype(int) - want.astype(int)).max() <= 1
    # the walk moves: the +1 end (frame 1 of 4, t = sin(pi/2) = 1) differs from the centre
    assert np.abs(frames[1].astype(int) - frames[0].astype(int)).mean() > 1.0


def test_linear_first_frame_is_the_minus_end(G):
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(3))
    z = latents_for_seeds([0], 128, 0.5)
    first = next(walk_frames(G, q, z, easing("linear", 5), 2.5, batch_size=8))
    for k in range(2):
        end = z[0] - (z[0] @ q[k]) * q[k] - 2.5 * q[k]                   # t = -1
        with torch.no_grad():
            want = to_uint8(G(end[None]))[0].permute(1, 2, 0).numpy()
        got = first[k * R:(k + 1) * R]
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_frames_do_not_depend_on_batch_size_and_labels_keep_sizes(G):
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(4))
    z = latents_for_seeds([0, 1, 2], 128, 0.5)
    t = easing("loop", 6)
    a = np.stack(list(walk_frames(G, q, z, t, 3.0, labels=["0", "7"], batch_size=1)))
    b = np.stack(list(walk_frames(G, q, z, t, 3.0, labels=["0", "7"], batch_size=64)))
    assert a.shape == (6, 2 * R, LW + 3 * R, 3) == (6, *frame_size(2, 3, R, True), 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert a[:, :, :LW].max() == 255                     # white label text on black
    assert (a[:, :, :LW] == a[:1, :, :LW]).all()         # labels are static


def test_frames_are_generated_lazily_in_batches(G):
    calls = []

    def counting(z):
        calls.append(z.shape[0])
        return G(z)
    counting.z_dim, counting.resolution = G.z_dim, G.resolution
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(5))
    z = latents_for_seeds([0], 128, 0.5)
    frames = walk_frames(counting, q, z, easing("loop", 12), 3.0, batch_size=4)
    next(frames)
    assert calls == [4]                                  # 2 frames of 2x1 cells, not 12
    assert sum(1 for _ in frames) == 11 and calls == [4] * 6


def test_odd_sizes_are_padded_to_even():
    assert frame_size(3, 3, 33, False) == (100, 100)
    assert frame_size(2, 2, 33, True) == (66, 66 + label_width(33))
