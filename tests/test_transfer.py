"""The transfer table: every matrix on every class, against each class's own random band."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import discover_directions
from biggan_directions.scoring.transfer import Matrix, format_transfer, transfer_table
from tests.support import ClassBases

TRAIN = DiscoverConfig(steps=150, batch_size=16, lr=0.05, path_size=1.0, seed=1)
EVAL = DiscoverConfig(path_size=1.0, seed=5, eval_per_direction=8, eval_references=4)


def test_per_class_bases_each_own_matrix_beats_the_pooled_one_on_its_class():
    G = ClassBases(num_classes=3)
    own = [Matrix(f"class-{c}", "hessian", (c,), discover_directions(G.for_class(c), TRAIN,
                                                                       progress=False))
           for c in range(3)]
    pooled = Matrix("pooled", "hessian", (0, 1, 2), discover_directions(G, TRAIN, progress=False))
    report = transfer_table(G, [*own, pooled], [0, 1, 2], EVAL)
    assert len(report.cells) == 4 and all(len(row) == 3 for row in report.cells)
    for c, verdict in enumerate(report.verdicts):
        assert verdict["own"] == f"class-{c}"
        assert verdict["versus_pooled"]["beats"], verdict
        assert verdict["versus_others"]["beats"], verdict
        # in random-spreads: the own matrix far below chance and below the pooled one (which,
        # a compromise between three bases, need not beat chance on any one class)
        own_cell, pooled_cell = report.cells[c][c], report.cells[3][c]
        assert own_cell["spreads"] < pooled_cell["spreads"]
        assert own_cell["spreads"] < -3
    text = format_transfer(report)
    assert "class 0 (0): its own matrix beats the pooled matrix (pooled)" in text


def test_shared_basis_the_pooled_matrix_is_as_good_as_each_own():
    G = ClassBases(num_classes=3, shared=True)
    own = [Matrix(f"class-{c}", "hessian", (c,), discover_directions(G.for_class(c), TRAIN,
                                                                       progress=False))
           for c in range(3)]
    pooled = Matrix("pooled", "hessian", (0, 1, 2), discover_directions(G, TRAIN, progress=False))
    report = transfer_table(G, [*own, pooled], [0, 1, 2], EVAL)
    for c in range(3):        # on the scale of the random band, nothing to gain per class
        own, pooled = report.cells[c][c]["spreads"], report.cells[3][c]["spreads"]
        assert own < -3 and pooled < -3
        assert abs(pooled - own) < 0.01 * abs(own)


def test_each_class_is_measured_on_the_same_draws_for_every_matrix():
    G = ClassBases(num_classes=2)
    q = discover_directions(G.for_class(0), steps=5, batch_size=4, progress=False)
    twice = [Matrix("a", "hessian", (0,), q), Matrix("b", "hessian", (0,), q.clone())]
    report = transfer_table(G, twice, [0, 1], EVAL)
    assert report.cells[0] == report.cells[1]                  # same matrix, same numbers
    again = transfer_table(G, twice[:1], [1], EVAL)             # a class alone: the same value
    assert again.cells[0][0]["penalty"] == report.cells[0][1]["penalty"]


# ---------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_biggan_dir):
    """Per-class runs of 207 and 208, a pooled run over both, a SeFa run of 207."""
    out = tmp_path_factory.mktemp("transfer")
    base = ["discover", "--model", str(small_biggan_dir), "--out", str(out), "--device", "cpu",
            "--eval-per-direction", "1", "--eval-references", "2", "--ndirs", "4", "-q"]
    train = ["--steps", "2", "--batch-size", "2"]
    for extra in (["-c", "207", "-c", "208", *train], ["-c", "207", "-c", "208", "--pooled", *train],
                  ["-c", "207", "--method", "sefa"]):
        result = CliRunner().invoke(cli, [*base, *extra])
        assert result.exit_code == 0, result.output
    model = out / Path(small_biggan_dir).name.lower().replace("_", "-")
    return [model / "207-golden-retriever", model / "208-labrador-retriever",
            model / "pooled-207-208", model / "sefa" / "207-golden-retriever"]


def test_cli_transfer_writes_the_table(runs, tmp_path):
    out = tmp_path / "table"
    result = CliRunner().invoke(cli, ["compare", "--transfer", *map(str, runs), "--out", str(out),
                                      "--classes", "207,208,3", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "transfer.json").read_text())
    assert [m["name"] for m in record["matrices"]] == [
        "207-golden-retriever", "208-labrador-retriever", "pooled-207-208",
        "sefa/207-golden-retriever"]
    assert [m["trained_on"] for m in record["matrices"]] == [[207], [208], [207, 208], [207]]
    assert [c["index"] for c in record["classes"]] == [207, 208, 3]
    assert all(c["random_std"] > 0 for c in record["classes"])
    assert all(c["sefa"] is None for c in record["classes"])     # 4 of 128 rows: no SeFa basis
    rows = list(csv.DictReader(open(out / "transfer.csv")))
    assert len(rows) == 4 * 3
    first = rows[0]
    assert first["matrix"] == "207-golden-retriever" and first["class_index"] == "207"
    assert float(first["spreads"]) == pytest.approx(
        (float(first["penalty"]) - float(first["random_mean"])) / float(first["random_std"]),
        rel=1e-4)
    assert (out / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "class 207 (golden retriever): its own matrix" in result.output
    assert "class 3 (tiger shark): no per-class hessian run" in result.output
    # the default classes: those the runs were learned on; an existing table is kept
    again = CliRunner().invoke(cli, ["compare", "--transfer", *map(str, runs[:3]), "--out",
                                     str(out), "--device", "cpu", "-q"])
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert len(again.output.strip().splitlines()) == 1


def test_cli_classes_needs_transfer(runs, tmp_path):
    result = CliRunner().invoke(cli, ["compare", str(runs[0]), "--classes", "207",
                                      "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "add --transfer" in result.output
    assert not (tmp_path / "x").exists()
