"""discover --method sefa|ganspace, curve.png, score --compare KINDS, and `compare` of runs of several methods."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import COMMANDS
from biggan_directions.cli import cli
from biggan_directions.runs.curves import running_mean, write_curve
from biggan_directions.runs.layout import open_run
from biggan_directions.runs.scores_file import read_scores
from biggan_directions.scoring.score import ScoreConfig
from tests.support import write_backbone_checkpoint


def discover(small_biggan_dir, out, *extra, cls="207"):
    hessian = "--method" not in extra or extra[extra.index("--method") + 1] == "hessian"
    batch = ["--batch-size", "2"] if hessian else []         # a [hessian] option: sefa refuses it
    evaluation = [] if "--eval-per-direction" in extra else ["--eval-per-direction", "4"]
    args = ["discover", "-c", cls, "--model", str(small_biggan_dir), "--ndirs", "4",
            *batch, *evaluation, "--out", str(out), "--device", "cpu", "-q", *extra]
    return CliRunner().invoke(cli, args)


def folder_of(out, small_biggan_dir, name="207-golden-retriever", method="hessian") -> Path:
    model = Path(out) / Path(small_biggan_dir).name.lower().replace("_", "-")
    return (model if method == "hessian" else model / method) / name


@pytest.fixture(scope="module")
def method_runs(tmp_path_factory, small_biggan_dir) -> dict[str, Path]:
    """One small run per method for class 207 (hessian: 4 steps, evaluated at 2 and 4), all
    under one --out: each method has its own folder there."""
    root = tmp_path_factory.mktemp("methods")
    runs = {}
    for method, extra in [("hessian", ["--steps", "4", "--eval-every", "2"]),
                          ("sefa", ["--method", "sefa"]),
                          ("ganspace", ["--method", "ganspace", "--samples", "64"])]:
        result = discover(small_biggan_dir, root, *extra)
        assert result.exit_code == 0, result.output
        runs[method] = folder_of(root, small_biggan_dir, method=method)
        assert runs[method].is_dir()
    return runs


@pytest.fixture
def with_compare(monkeypatch):
    monkeypatch.setitem(COMMANDS, "compare", "compare")


# ---------------------------------------------------------------- discover --method
@pytest.mark.parametrize("method", ["sefa", "ganspace"])
def test_method_run_writes_directions_and_record(method_runs, method):
    run = open_run(method_runs[method])
    record = json.loads((method_runs[method] / "run.json").read_text())
    assert run.directions.shape == (4, 128)
    assert run.meta["method"] == method and record["method"] == method
    assert record["status"] == "finished" and record["step"] == 0
    assert record["versus_random"].startswith(("below random", "above random",
                                               "within the random spread", "too coarse to tell"))
    ref = record["reference_eval"]
    assert {"identity", "random", "random_std", "random_values"} <= set(ref)
    assert record["eval_penalty"] > 0 and not (method_runs[method] / "checkpoint.pt").exists()
    if method == "sefa":
        assert record["method_settings"] == {"sefa_layers": "gen_z"}
        assert torch.allclose(run.directions @ run.directions.T, torch.eye(4), atol=1e-5)
        assert "orthonormal" not in run.meta
    else:
        assert record["method_settings"]["layer"] == "block0"
        assert record["method_settings"]["samples"] == 64
        assert run.meta["orthonormal"] is False
        assert torch.allclose(run.directions.norm(dim=1), torch.ones(4), atol=1e-5)


def test_hessian_run_records_method_and_draws_its_curve(method_runs):
    folder = method_runs["hessian"]
    assert json.loads((folder / "run.json").read_text())["method"] == "hessian"
    assert open_run(folder).meta["method"] == "hessian"
    assert (folder / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, message", [
    (["--method", "ganspace", "--layer", "block99"], "--layer 'block99'"),
    (["--method", "ganspace", "--samples", "0"], "--samples 0: must be at least 1"),
    (["--method", "ganspace", "--samples", "3"], "--samples 3: must be at least ndirs + 1"),
    (["--method", "sefa", "--subspace", "0-9"],
     "--subspace is a setting of --method hessian; --method sefa does not read it (drop it)."),
])
def test_method_bad_input_is_one_line_and_leaves_no_folder(tmp_path, small_biggan_dir, extra, message):
    result = discover(small_biggan_dir, tmp_path / "out", *extra)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_an_unknown_method_is_refused_by_the_parser(tmp_path, small_biggan_dir):
    """Like every value the parser refuses: usage line, one Error line, exit 2, no folder."""
    result = discover(small_biggan_dir, tmp_path / "out", "--method", "pca")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: Invalid value for '--method': 'pca' is not one of 'hessian', 'sefa', 'ganspace'.")
    assert not (tmp_path / "out").exists()


def test_sefa_needs_a_linear_first_layer():
    from biggan_directions.foundation.errors import UserError
    from biggan_directions.methods.interface import check_method
    from biggan_directions.methods.config import DiscoverConfig

    class NoLinear:
        z_dim = 4

    with pytest.raises(UserError, match="linear first layer"):
        check_method(NoLinear(), DiscoverConfig(method="sefa"))


# ---------------------------------------------------------------- curves
def test_running_mean_and_curve_file(tmp_path):
    assert running_mean([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]
    log = tmp_path / "log.csv"
    log.write_text("step,penalty,eval_penalty,seconds\n1,2.0,,0.1\n2,1.0,1.5,0.2\n3,0.5,,0.3\n"
                   "4,0.4,0.9,0.4\n")
    path = write_curve(tmp_path / "curve.png", log, {"identity": 1.2, "random": 1.0,
                                                     "random_std": 0.1})
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # atomic


# ---------------------------------------------------------------- render and score non-orthogonal rows
def test_ganspace_file_renders_and_scores_with_every_baseline(method_runs, small_biggan_dir,
                                                              tmp_path, monkeypatch):
    home = tmp_path / "home"
    write_backbone_checkpoint(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    run = method_runs["ganspace"]
    res = CliRunner().invoke(cli, ["render", str(run), "--dirs", "0-3", "--seeds", "0",
                                   "--strip", "--strip-steps", "3", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    assert Path(res.output.strip().splitlines()[-1]).is_file()
    res = CliRunner().invoke(cli, ["score", str(run), "--seeds", "0-1", "--steps", "3",
                                   "--compare", "random,coords,sefa,ganspace", "--device", "cpu",
                                   "-q", "--overwrite"])
    assert res.exit_code == 0, res.output
    rec = read_scores(run / "scores.json")
    cmp = rec["compare"]
    assert cmp["kinds"] == ["random", "coords", "sefa", "ganspace"]
    for kind in cmp["kinds"]:
        assert cmp[kind]["n"] == 4 and len(cmp[f"{kind}_directions"]) == 4
    header = next(line for line in res.output.splitlines() if line.startswith("metric"))
    assert header.split()[2:] == ["learned", "random", "coords", "sefa", "ganspace"]


def test_score_compare_parses_a_list():
    assert ScoreConfig(compare="random").compare == ("random",)
    assert ScoreConfig(compare="sefa, random,sefa").compare == ("sefa", "random")
    assert ScoreConfig().compare is None


# ---------------------------------------------------------------- compare
def test_compare_hessian_and_sefa_on_identical_draws(method_runs, small_biggan_dir, tmp_path,
                                                     with_compare):
    out = tmp_path / "cmp"
    runs = [method_runs["hessian"], method_runs["sefa"], method_runs["ganspace"]]
    res = CliRunner().invoke(cli, ["compare", *map(str, runs), "--model", str(small_biggan_dir),
                                   "--out", str(out), "--top", "2", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "compare.json").read_text())
    assert [r["method"] for r in rec["runs"]] == ["hessian", "sefa", "ganspace"]
    assert rec["settings"]["directions_evaluated"] == 4
    # identical draws: every run's value is the one its own fixed evaluation recorded
    for row, folder in zip(rec["runs"], runs):
        recorded = json.loads((folder / "run.json").read_text())["eval_penalty"]
        assert row["eval_penalty"] == pytest.approx(recorded, rel=1e-6)
    ref = json.loads((runs[0] / "run.json").read_text())["reference_eval"]
    assert rec["reference"]["random"] == pytest.approx(ref["random"], rel=1e-6)
    # each verdict weighs its own noise on these draws (issue 28): 'too coarse to tell' when
    # the standard error passes one random-spread
    from biggan_directions.core.evaluation import versus_random
    for row in rec["runs"]:
        assert row["standard_error"] > 0
        assert row["versus_random"] == versus_random(
            row["eval_penalty"], rec["reference"], noise=row["standard_error"],
            per_direction=rec["settings"]["eval_per_direction"])
        assert row["versus_random"] in res.output
    for name in ("compare.png", "compare_curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "identity" in res.output and "random" in res.output and "sefa" in res.output
    assert "trimmed mean 20%" in res.output
    assert "note: 4 of 128 directions: the first rows of ganspace and sefa" in res.output
    again = CliRunner().invoke(cli, ["compare", *map(str, runs), "--model", str(small_biggan_dir),
                                     "--out", str(out), "--device", "cpu", "-q"])
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_compare_refuses_runs_of_different_classes(method_runs, small_biggan_dir, tmp_path,
                                                   with_compare):
    other = discover(small_biggan_dir, tmp_path / "o", "--method", "sefa", cls="6")
    assert other.exit_code == 0, other.output
    res = CliRunner().invoke(cli, ["compare", str(method_runs["sefa"]),
                                   str(folder_of(tmp_path / "o", small_biggan_dir, "6-stingray", "sefa")),
                                   "--out", str(tmp_path / "cmp"), "--device", "cpu", "-q"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "one class" in res.output
    assert not (tmp_path / "cmp").exists()


# ---------------------------------------------------------------- one interface, one evaluation (issue 18)
def test_methods_are_peers_behind_one_interface_and_one_fixed_evaluation(small_biggan):
    """find_directions gives every method's matrix and record; a SeFa run is evaluated on the
    same FixedEvaluation (same draws, same size) as a Hessian Penalty run of those settings."""
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.methods.fixed_eval import FixedEvaluation, eval_size
    from biggan_directions.methods.hessian import Discovery
    from biggan_directions.methods.interface import check_method, find_directions
    from biggan_directions.models.generator import BigGANGenerator

    G = BigGANGenerator(small_biggan, 207, 1.0)
    base = dict(ndirs=4, steps=2, batch_size=2, eval_per_direction="auto", eval_k=2,
                eval_references=2)
    records = {}
    for method in ("hessian", "sefa", "ganspace"):
        config = DiscoverConfig(method=method, **base, **({"samples": 32} if method == "ganspace"
                                                          else {}))
        check_method(G, config)
        q, records[method] = find_directions(G, config, "cpu")
        assert q.shape == (4, G.z_dim) and torch.isfinite(q).all()
    assert set(records["hessian"]) == {     # the start, and what keeping the best measured
        "init", "step", "stop_reason", "best_step", "eval_penalty", "best_eval_penalty",
        "last_eval_penalty", "eval_standard_error", "eval_rounding_floor", "eval_samples",
        "test_eval"}
    assert set(records["sefa"]) == {"singular_values"}
    assert set(records["ganspace"]) == {"layer", "explained_variance"}

    hessian = DiscoverConfig(**base)
    run = Discovery(G, hessian, "cpu")
    shared = FixedEvaluation(G, DiscoverConfig(method="sefa", **base), 4, "cpu")
    assert shared.per_direction == run.eval_per_direction == eval_size(hessian, 4)
    assert torch.equal(shared.draws.z, run.draws.z)
    q = run.directions()
    assert shared.evaluate(q) == pytest.approx(run.evaluate(q), rel=1e-6)
