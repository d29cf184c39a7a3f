"""`directions import`: other tools' matrices as run folders (each layout), read without pickle,
refused in one line when they do not fit; then `score` and `compare` on the imported run, whose
results land in its TensorBoard events."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from biggan_directions.cli import cli
from biggan_directions.core.directions import random_orthonormal
from biggan_directions.runs.layout import open_run
from tests.support import write_backbone_checkpoint

Z = 128


def orthonormal(n: int, seed: int = 0) -> np.ndarray:
    return random_orthonormal(n, Z, torch.Generator().manual_seed(seed)).double().numpy()


def run_import(model_dir: Path, out: Path, path: Path, *extra: str):
    return CliRunner().invoke(cli, ["directions", "import", str(path), "--model", str(model_dir),
                                    "--class", "207", "--out", str(out), *extra])


def imported(out: Path, name: str) -> Path:
    (folder,) = out.glob(f"*/imported/{name}/207-golden-retriever")
    return folder


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ")
    return line


# ---------------------------------------------------------------------- layouts
def test_plain_npy_matrix_becomes_a_run(small_biggan_dir, tmp_path):
    q = orthonormal(6)
    np.save(tmp_path / "dirs.npy", q)
    result = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "dirs.npy")
    assert result.exit_code == 0, result.output
    folder = imported(tmp_path / "out", "dirs")
    run = open_run(folder)
    assert torch.allclose(run.directions, torch.from_numpy(q).float(), atol=1e-6)
    info = run.meta["imported"]
    assert info["layout"] == "matrix" and info["orthonormal"] and not info["normalised"]
    assert info["file"] == str((tmp_path / "dirs.npy").resolve()) and len(info["sha256"]) == 64
    assert run.meta["class_index"] == 207 and run.meta["model"] == str(small_biggan_dir)
    record = json.loads((folder / "run.json").read_text())
    assert record["method"] == "imported" and record["imported"]["layout"] == "matrix"
    assert (folder / "tb").is_dir()
    assert "6 directions (matrix), orthonormal" in result.output
    again = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "dirs.npy")
    assert "--overwrite" in one_error_line(again)


def test_ganspace_components_are_unit_rows_not_orthonormal(small_biggan_dir, tmp_path):
    rng = np.random.default_rng(0)
    comp = rng.normal(size=(5, 1, Z))
    comp /= np.linalg.norm(comp, axis=-1, keepdims=True)           # GANSpace normalises lat_comp
    np.savez_compressed(tmp_path / "biggan-deep-128-golden_retriever_generator.gen_z_ipca_c5_n1000.npz",
                        act_comp=rng.normal(size=(5, 1, 32)), lat_comp=comp,
                        lat_mean=rng.normal(size=(1, Z)), lat_stdev=np.ones(5),
                        var_ratio=np.full(5, 0.1))
    result = run_import(small_biggan_dir, tmp_path / "out",
                        next(tmp_path.glob("*.npz")), "--name", "ganspace")
    assert result.exit_code == 0, result.output
    run = open_run(imported(tmp_path / "out", "ganspace"))
    assert np.allclose(run.directions.numpy(), comp[:, 0, :], atol=1e-6)
    info = run.meta["imported"]
    assert (info["layout"], info["key"], info["orthonormal"]) == ("ganspace", "lat_comp", False)
    assert run.meta["orthonormal"] is False


def test_npz_with_several_arrays_needs_a_key(small_biggan_dir, tmp_path):
    np.savez(tmp_path / "many.npz", a=orthonormal(3), b=orthonormal(4, seed=1))
    line = one_error_line(run_import(small_biggan_dir, tmp_path / "out", tmp_path / "many.npz"))
    assert "holds 2 arrays (a, b)" in line and "--key" in line
    ok = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "many.npz", "--key", "b")
    assert ok.exit_code == 0, ok.output
    assert open_run(imported(tmp_path / "out", "many")).directions.shape == (4, Z)


def test_gan_latent_discovery_ortho_deformator(small_biggan_dir, tmp_path):
    """deformator.state_dict() of the ortho deformator: shift k = column k of expm(L - L^T)."""
    L = torch.randn(Z, Z, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.01
    torch.save({"log_mat_half": L.float()}, tmp_path / "deformator_0.pt")
    result = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "deformator_0.pt")
    assert result.exit_code == 0, result.output
    run = open_run(imported(tmp_path / "out", "deformator-0"))
    expected = torch.linalg.matrix_exp(L.float().double() - L.float().double().T)
    assert torch.allclose(run.directions.double(), expected.T, atol=1e-5)
    assert run.meta["imported"]["layout"] == "gld-ortho" and run.meta["imported"]["orthonormal"]


def test_gan_latent_discovery_linear_checkpoint_is_normalised(small_biggan_dir, tmp_path):
    """checkpoint.pt of a linear deformator: {'step', 'deformator': {linear.weight (z_dim, n),
    linear.bias}, 'shift_predictor': ...}; shift k = column k of the weight, not unit length."""
    W = torch.from_numpy(orthonormal(6).T * np.array([2.0, 0.5, 1.0, 3.0, 1.0, 1.0])).float()
    torch.save({"step": 1000, "deformator": {"linear.weight": W, "linear.bias": torch.zeros(Z)},
                "shift_predictor": {"fc.weight": torch.zeros(6, 4)}}, tmp_path / "checkpoint.pth")
    result = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "checkpoint.pth")
    assert result.exit_code == 0, result.output
    run = open_run(imported(tmp_path / "out", "checkpoint"))
    assert torch.allclose(run.directions, torch.from_numpy(orthonormal(6)).float(), atol=1e-5)
    info = run.meta["imported"]
    assert info["layout"] == "gld-linear" and info["key"] == "deformator.linear.weight"
    assert info["normalised"] and info["norm_range"] == pytest.approx([0.5, 3.0], rel=1e-5)
    assert info["orthonormal"] and info["bias_left_out"]
    assert "rows normalised (norms were 0.5 to 3)" in result.output


def test_plain_tensor_and_named_tensor_in_pt(small_biggan_dir, tmp_path):
    torch.save(torch.from_numpy(orthonormal(4)).float(), tmp_path / "plain.pt")
    torch.save({"meta": {"q": torch.from_numpy(orthonormal(3)).float()}, "step": torch.tensor(5)},
               tmp_path / "named.pt")
    assert run_import(small_biggan_dir, tmp_path / "out", tmp_path / "plain.pt").exit_code == 0
    line = one_error_line(run_import(small_biggan_dir, tmp_path / "out", tmp_path / "named.pt"))
    assert "--key" in line
    ok = run_import(small_biggan_dir, tmp_path / "out", tmp_path / "named.pt", "--key", "meta.q")
    assert ok.exit_code == 0, ok.output
    assert open_run(imported(tmp_path / "out", "named")).directions.shape == (3, Z)


# ---------------------------------------------------------------------- refusals
class WouldRunCode:
    """A pickle that creates `marker` when unpickled (open(marker, 'w'))."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".npy"])
def test_a_pickle_that_would_run_code_never_runs(small_biggan_dir, tmp_path, suffix):
    marker = tmp_path / "ran"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pt":
        torch.save({"directions": torch.zeros(2, Z), "payload": WouldRunCode(marker)}, path)
    else:
        np.save(path, np.array([WouldRunCode(marker)], dtype=object), allow_pickle=True)
    line = one_error_line(run_import(small_biggan_dir, tmp_path / "out", path))
    assert not marker.exists()                                       # nothing in the file ran
    assert "never" in line or "nothing in it was run" in line
    assert not (tmp_path / "out").exists()


def test_wrong_width_is_refused_in_one_line(small_biggan_dir, tmp_path):
    np.save(tmp_path / "paper.npy", np.eye(120)[:10])                # the original BigGAN's 120-d
    line = one_error_line(run_import(small_biggan_dir, tmp_path / "out", tmp_path / "paper.npy"))
    assert "120-dimensional but" in line and "z_dim 128" in line and "original BigGAN" in line
    assert not (tmp_path / "out").exists()


def test_nan_rows_are_refused(small_biggan_dir, tmp_path):
    q = orthonormal(5)
    q[1, 7] = np.nan
    q[3, 0] = np.inf
    np.save(tmp_path / "nan.npy", q)
    line = one_error_line(run_import(small_biggan_dir, tmp_path / "out", tmp_path / "nan.npy"))
    assert "rows 1, 3 hold NaN or infinite values" in line
    assert not (tmp_path / "out").exists()


def test_unknown_suffix_and_missing_file(small_biggan_dir, tmp_path):
    (tmp_path / "dirs.txt").write_text("1 2 3")
    assert "give a .npy, .npz, .pt, .pth file" in one_error_line(
        run_import(small_biggan_dir, tmp_path / "out", tmp_path / "dirs.txt"))
    assert "no such file" in one_error_line(
        run_import(small_biggan_dir, tmp_path / "out", tmp_path / "absent.npy"))


# ---------------------------------------------------------------------- then score and compare
def test_score_and_compare_take_the_imported_run_and_add_events(small_biggan_dir, tmp_path,
                                                                monkeypatch):
    home = tmp_path / "torch-home"
    write_backbone_checkpoint(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    np.save(tmp_path / "dirs.npy", orthonormal(6))
    out = tmp_path / "out"
    assert run_import(small_biggan_dir, out, tmp_path / "dirs.npy", "--path-size", "2").exit_code == 0
    folder = imported(out, "dirs")
    runner = CliRunner()
    scored = runner.invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3", "-q"])
    assert scored.exit_code == 0, scored.output
    scores = json.loads((folder / "scores.json").read_text())
    described = runner.invoke(cli, ["describe", str(folder), "--num-seeds", "2", "--steps", "3",
                                    "-q"])
    assert described.exit_code == 0, described.output
    assert len(json.loads((folder / "descriptions.json").read_text())["directions"]) == 6
    rendered = runner.invoke(cli, ["render", str(folder), "--strip", "--strip-steps", "3", "-q"])
    assert rendered.exit_code == 0, rendered.output
    (strip,) = (folder / "videos").glob("strip_dirs0-5_seed0_p2.0.png")
    assert strip.read_bytes()[:4] == b"\x89PNG"
    discovered = runner.invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                     "--out", str(out), "--steps", "2", "--batch-size", "2",
                                     "--eval-per-direction", "1", "--eval-k", "2",
                                     "--eval-references", "2", "--ndirs", "8", "-q"])
    assert discovered.exit_code == 0, discovered.output
    (hessian,) = out.glob("*/207-golden-retriever")
    compared = runner.invoke(cli, ["compare", str(hessian), str(folder), "--out",
                                   str(tmp_path / "cmp"), "--top", "2", "-q"])
    assert compared.exit_code == 0, compared.output
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["runs"]
    assert [r["method"] for r in rows] == ["hessian", "imported"]
    assert rows[1]["scores"]["summary"]["n"] == 6

    acc = EventAccumulator(str(folder / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    effect = [r["effect"] for r in scores["directions"]]
    (mean,) = acc.Scalars("score/effect_mean")
    assert mean.step == 0 and mean.value == pytest.approx(np.mean(effect), rel=1e-5)
    (inactive,) = acc.Scalars("score/inactive")
    assert inactive.value == sum(r["inactive"] for r in scores["directions"])
    (hist,) = acc.Histograms("score/effect")
    assert hist.histogram_value.num == 6
    assert hist.histogram_value.min == pytest.approx(min(effect), rel=1e-6)
    (value,) = acc.Scalars("compare/eval_penalty")
    assert value.value == pytest.approx(rows[1]["eval_penalty"], rel=1e-5)
    hacc = EventAccumulator(str(hessian / "tb"), size_guidance={"scalars": 0})
    hacc.Reload()
    (hvalue,) = hacc.Scalars("compare/eval_penalty")
    assert hvalue.step == 2 and hvalue.value == pytest.approx(rows[0]["eval_penalty"], rel=1e-5)
