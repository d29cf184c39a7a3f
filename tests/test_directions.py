"""The directions file's orthonormal flag, row checks and starting a DirectionMatrix from given rows."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from biggan_directions.foundation.errors import UserError
from biggan_directions.core.directions import (DirectionMatrix, canonical_signs, load_directions,
                                                 normalize_rows, orthonormalize, random_orthonormal,
                                                 rows_orthonormal, save_directions)


def unit_rows(n=4, d=6, seed=0):
    """n unit-norm rows of d values that are not orthogonal to each other."""
    g = torch.Generator().manual_seed(seed)
    q = normalize_rows(torch.randn(n, d, generator=g) + 1.0)
    assert (q @ q.T - torch.eye(n)).abs().max() > 0.1
    return q


def raw_file(path, q, meta):
    save_file({"directions": q.contiguous()}, str(path),
              metadata={"format": "biggan-directions", "version": "1", "meta": json.dumps(meta)})


def test_non_orthogonal_unit_rows_save_and_load_with_the_flag(tmp_path):
    q = unit_rows()
    path = save_directions(tmp_path / "g.safetensors", q, {"method": "ganspace"}, orthonormal=False)
    back, meta = load_directions(path)
    assert torch.allclose(back, q) and meta["orthonormal"] is False and not rows_orthonormal(meta)
    # Re-saving with the loaded meta keeps the flag (orthonormal=None takes it from meta).
    again, meta_again = load_directions(save_directions(tmp_path / "h.safetensors", back, meta))
    assert meta_again == meta and torch.equal(again, back)


def test_orthonormal_files_carry_no_flag_and_old_files_still_load(tmp_path):
    q = random_orthonormal(3, 5, torch.Generator().manual_seed(1))
    _, meta = load_directions(save_directions(tmp_path / "new.safetensors", q, {"model": "x"}))
    assert "orthonormal" not in meta and rows_orthonormal(meta)
    raw_file(tmp_path / "old.safetensors", q, {"model": "x"})            # a file from before the flag
    back, meta = load_directions(tmp_path / "old.safetensors")
    assert torch.equal(back, q) and rows_orthonormal(meta)
    # ... and stays checked for orthonormality: unit rows that are not orthogonal are refused.
    raw_file(tmp_path / "old-bad.safetensors", unit_rows(), {"model": "x"})
    with pytest.raises(UserError, match="old-bad.safetensors.*not orthonormal"):
        load_directions(tmp_path / "old-bad.safetensors")


def test_a_non_unit_row_is_refused_naming_the_file(tmp_path):
    q = unit_rows()
    q[2] *= 1.01
    raw_file(tmp_path / "stretched.safetensors", q, {"orthonormal": False})
    with pytest.raises(UserError, match="stretched.safetensors.*not unit vectors"):
        load_directions(tmp_path / "stretched.safetensors")
    with pytest.raises(UserError, match="out.safetensors.*not unit vectors"):
        save_directions(tmp_path / "out.safetensors", q, {}, orthonormal=False)
    with pytest.raises(UserError, match="promised.safetensors.*not orthonormal"):
        save_directions(tmp_path / "promised.safetensors", unit_rows(), {})
    assert not (tmp_path / "out.safetensors").exists() and not (tmp_path / "promised.safetensors").exists()


def test_a_flag_that_is_not_a_bool_is_refused(tmp_path):
    raw_file(tmp_path / "odd.safetensors", unit_rows(), {"orthonormal": "no"})
    with pytest.raises(UserError, match="odd.safetensors.*true or false"):
        load_directions(tmp_path / "odd.safetensors")


def test_canonical_signs_make_the_largest_entry_positive():
    q = torch.tensor([[0.1, -0.9, 0.3], [0.5, 0.2, -0.1]])
    assert torch.equal(canonical_signs(q), torch.tensor([[-0.1, 0.9, -0.3], [0.5, 0.2, -0.1]]))
    assert torch.equal(canonical_signs(-q), canonical_signs(q))


def test_direction_matrix_starts_from_given_rows():
    start = random_orthonormal(4, 10, torch.Generator().manual_seed(2))
    assert torch.allclose(DirectionMatrix(4, 10, init=start)(), start, atol=1e-6)
    rows = unit_rows(4, 10)                                   # non-orthogonal: Gram-Schmidt, in order
    q = DirectionMatrix(4, 10, init=rows)()
    assert torch.allclose(q, orthonormalize(rows.double()).float(), atol=1e-6)
    assert torch.allclose(q[0], rows[0], atol=1e-6)           # the first direction is kept as is
    sub = DirectionMatrix(3, 10, init=rows[:3], subspace=(2, 8))()
    assert torch.allclose(sub[:, :2], torch.zeros(3, 2)) and torch.allclose(sub @ sub.T, torch.eye(3), atol=1e-6)
    assert torch.allclose(sub[0, 2:8], normalize_rows(rows[:1, 2:8])[0], atol=1e-6)


def test_direction_matrix_refuses_unfit_starting_rows():
    with pytest.raises(UserError, match="do not fit"):
        DirectionMatrix(4, 10, init=torch.randn(3, 10))
    with pytest.raises(UserError, match="not linearly independent"):
        DirectionMatrix(2, 10, init=torch.ones(2, 10))
