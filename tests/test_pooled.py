"""Pooled runs: one matrix learned over a set of classes (API, run folder, resume, CLI refusals)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.core.directions import load_directions
from biggan_directions.foundation.errors import UserError
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import Discovery, DiscoveryInterrupted, discover_directions
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.runs.class_sets import pooled_dir_for, pooled_name
from biggan_directions.runs.discover import run_discover
from tests.support import ClassBases, HiddenBasis, check_class_switching

FAST = DiscoverConfig(steps=150, batch_size=16, lr=0.05, path_size=1.0, seed=1)


def alignment(q: torch.Tensor, r: torch.Tensor) -> float:
    """Mean over rows of q of the largest |cosine| with a row of r."""
    return (q @ r.T).abs().max(dim=1).values.mean().item()


def small_config(**kw) -> DiscoverConfig:
    base = dict(steps=6, batch_size=2, checkpoint_every=100, eval_every=3, eval_per_direction=1,
                eval_k=2, ndirs=8, init="random")
    return DiscoverConfig(**{**base, **kw})


# ---------------------------------------------------------------- the method
def test_a_basis_shared_by_all_classes_is_recovered_by_the_pooled_run():
    G = ClassBases(num_classes=3, shared=True)
    q = discover_directions(G, FAST, progress=False)              # pooled over all 3 classes
    assert q.shape == (6, 6)
    assert alignment(q, G.R[0]) > 0.98


def test_a_list_of_single_class_generators_is_the_same_pooled_run():
    G = ClassBases(num_classes=3)
    cfg = DiscoverConfig(**{**FAST.__dict__, "steps": 20})
    conditional = discover_directions(G, cfg, progress=False)
    listed = discover_directions([G.for_class(c) for c in range(3)], cfg, progress=False)
    assert torch.allclose(conditional, listed, atol=1e-6)
    subset = discover_directions(G, cfg, classes=[2, 0], progress=False)
    assert not torch.allclose(conditional, subset, atol=1e-3)     # another set, another matrix


def test_the_pooled_evaluation_measures_each_class_on_the_same_draws():
    G = ClassBases(num_classes=3)
    pooled = Discovery(G, FAST)
    assert pooled.classes == (0, 1, 2)
    values = pooled.evaluate(per_sample=True)
    blocks = values.view(3, -1)
    for c in range(3):                  # each block is what a single-class run of c measures
        single = Discovery(G.for_class(c), FAST)
        single.eval_per_direction = pooled.eval_per_direction
        assert torch.allclose(blocks[c], single.evaluate(pooled.directions(), per_sample=True),
                              rtol=1e-5, atol=1e-9)


def test_a_pooled_step_costs_what_a_single_class_step_costs():
    """The same generator calls and rows per step: one batched call of (1 + 2k) B rows, each
    row carrying its own class (no call per class, nothing re-bound)."""
    G = ClassBases(num_classes=3)
    calls = []

    def pooled(z, classes):
        calls.append(("pooled", len(z), len(torch.unique(classes))))
        return G(z, classes)
    pooled.z_dim, pooled.num_classes = G.z_dim, G.num_classes
    one = G.for_class(1)

    def single(z):
        calls.append(("single", len(z), 1))
        return one(z)
    single.z_dim = G.z_dim
    cfg = DiscoverConfig(steps=1, batch_size=8, k=2, init="random", seed=0)
    Discovery(pooled, cfg).train_step()
    Discovery(single, cfg).train_step()
    assert calls[0][:2] == ("pooled", 8 * 5) and calls[1] == ("single", 8 * 5, 1)
    assert len(calls) == 2 and calls[0][2] > 1              # several classes in the one call


@pytest.mark.parametrize("classes, message", [
    ([1], "at least two classes"), ([1, 1], "given twice"), ([0, 5], "outside"),
])
def test_bad_class_sets_are_user_errors(classes, message):
    with pytest.raises(UserError, match=message):
        discover_directions(ClassBases(num_classes=3), steps=1, classes=classes, progress=False)
    with pytest.raises(UserError, match="conditional"):
        discover_directions(HiddenBasis(), steps=1, classes=[0, 1], progress=False)


def test_biggan_indexes_its_class_embedding_per_sample(small_biggan):
    G = BigGANGenerator(small_biggan, [208, 207, 3], 1.0)
    assert G.classes == (208, 207, 3) and G.class_index == 208
    z = torch.randn(3, 128, generator=torch.Generator().manual_seed(0)) * 0.5
    labels = torch.tensor([207, 3, 208])
    with torch.no_grad():
        mixed = G(z, labels)
        alone = torch.cat([BigGANGenerator(small_biggan, int(c), 1.0)(z[i:i + 1])
                           for i, c in enumerate(labels)])
        first = G(z)                                             # no classes: the first one
    assert torch.allclose(mixed, alone, atol=1e-5)
    assert torch.allclose(first, BigGANGenerator(small_biggan, 208, 1.0)(z), atol=1e-6)
    with pytest.raises(UserError, match="once"):
        BigGANGenerator(small_biggan, [207, 207], 1.0)


# ---------------------------------------------------------------- run folders
def test_folder_naming():
    assert pooled_name([208, 3, 207]) == "pooled-3-207-208"
    eight = list(range(100, 108))
    assert pooled_name(eight) == "pooled-" + "-".join(map(str, eight))
    nine = list(range(200, 209))
    import hashlib
    digest = hashlib.sha256(",".join(map(str, nine)).encode()).hexdigest()[:8]
    assert pooled_name(nine[::-1]) == f"pooled-9-{digest}"
    assert pooled_dir_for("out", "biggan-deep-128", [2, 1]) == Path("out/biggan-deep-128/pooled-1-2")


def test_interrupted_pooled_run_resumes_bit_for_bit(tmp_path, small_biggan):
    cfg = small_config()
    G = BigGANGenerator(small_biggan, [207, 208, 3], 1.0)
    whole = run_discover(G, cfg, tmp_path / "whole", progress=False, meta={"model": "m"})
    record = json.loads((tmp_path / "whole" / "run.json").read_text())
    assert record["meta"]["classes"] == [3, 207, 208]
    assert record["eval_samples"] == 3 * 8                       # 8 draws for each class
    assert whole.run.meta["classes"] == [3, 207, 208]

    calls = {"n": 0}

    def interrupting(z, classes=None):                       # Ctrl-C during step 3's forward
        calls["n"] += torch.is_grad_enabled()
        if calls["n"] == 4 and torch.is_grad_enabled():
            os.kill(os.getpid(), signal.SIGINT)
        return G(z, classes)
    interrupting.z_dim, interrupting.num_classes = G.z_dim, 1000

    with pytest.raises(DiscoveryInterrupted) as info:
        run_discover(interrupting, cfg, tmp_path / "cut", progress=False, meta={"model": "m"},
                     classes=[208, 3, 207])
    assert info.value.step == 3
    resumed = run_discover(G, cfg, tmp_path / "cut", resume=True, progress=False,
                           meta={"model": "m"})
    assert resumed.step == 6
    for name in ("directions.safetensors", "last.safetensors"):
        assert torch.equal(load_directions(tmp_path / "whole" / name)[0],
                           load_directions(tmp_path / "cut" / name)[0]), name
    log_whole = (tmp_path / "whole" / "log.csv").read_text().splitlines()
    log_cut = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in log_whole] == [r.split(",")[:3] for r in log_cut]

    # resuming over another set is refused, naming both, and changes nothing
    before = {p.name: p.read_bytes() for p in (tmp_path / "cut").iterdir()}
    other = BigGANGenerator(small_biggan, [207, 208], 1.0)
    with pytest.raises(UserError) as refused:
        run_discover(other, cfg, tmp_path / "cut", resume=True, progress=False,
                     meta={"model": "m"})
    assert "classes 3, 207, 208" in str(refused.value) and "classes 207, 208" in str(refused.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "cut").iterdir()} == before


# ---------------------------------------------------------------- the command line
def cli_args(model_dir, out, *extra):
    return ["discover", "--model", str(model_dir), "--steps", "2", "--batch-size", "2",
            "--ndirs", "4", "--eval-per-direction", "1", "--out", str(out), "--device", "cpu",
            "-q", *extra]


def test_cli_pooled_run_and_its_folder(tmp_path, small_biggan_dir):
    (tmp_path / "classes.txt").write_text("208  # labrador\n207\n")
    result = CliRunner().invoke(cli, cli_args(small_biggan_dir, tmp_path / "out", "--pooled",
                                              "-c", "3", "--classes-file",
                                              str(tmp_path / "classes.txt")))
    assert result.exit_code == 0, result.output
    model = Path(small_biggan_dir).name.lower().replace("_", "-")
    folder = tmp_path / "out" / model / "pooled-3-207-208"
    assert f"{folder}: finished at step 2" in result.output
    record = json.loads((folder / "run.json").read_text())
    assert record["meta"]["classes"] == [3, 207, 208]
    assert record["meta"]["class_index"] == 3                    # the default class: the first
    assert len(record["meta"]["class_names"]) == 3
    # the same set typed another way resumes it (already finished)
    again = CliRunner().invoke(cli, cli_args(small_biggan_dir, tmp_path / "out", "--pooled",
                                             "-c", "207-208", "-c", "3", "--resume"))
    assert again.exit_code == 0 and "already finished" in again.output, again.output
    # another set: nothing to resume there, and the run that exists is named
    other = CliRunner().invoke(cli, cli_args(small_biggan_dir, tmp_path / "out", "--pooled",
                                             "-c", "207-209", "--resume"))
    assert other.exit_code == 1 and "Traceback" not in other.output
    assert len(other.output.strip().splitlines()) == 1, other.output
    assert "classes 207, 208, 209" in other.output and "classes 3, 207, 208" in other.output
    assert sorted(p.name for p in (tmp_path / "out" / model).iterdir()
                  if not p.name.startswith(".")) == ["pooled-3-207-208"]


@pytest.mark.parametrize("extra, message", [
    (["--pooled", "-c", "207"], "got one class"),
    (["--pooled", "-c", "207", "-c", "golden retriever"], "given twice"),
    (["--pooled", "-c", "200-210", "-c", "207"], "given twice"),
    (["--pooled", "-c", "207", "-c", "208", "--method", "sefa"], "drop --pooled"),
    (["--pooled"], "give the classes"),
])
def test_cli_pooled_refusals_are_one_line_and_create_nothing(tmp_path, small_biggan_dir, extra,
                                                               message):
    result = CliRunner().invoke(cli, cli_args(small_biggan_dir, tmp_path / "out", *extra))
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()


def test_cli_class_ranges_also_work_per_class(tmp_path, small_biggan_dir):
    result = CliRunner().invoke(cli, cli_args(small_biggan_dir, tmp_path / "out", "-c", "1-2",
                                              "--steps", "1"))
    assert result.exit_code == 0, result.output
    model = Path(small_biggan_dir).name.lower().replace("_", "-")
    assert sorted(p.name for p in (tmp_path / "out" / model).iterdir()
                  if not p.name.startswith(".")) == ["1-goldfish", "2-great-white-shark"]


# ---------------------------------------------------------------- later stages take --class
def test_view_of_a_pooled_run_has_a_class_picker_over_its_set(tmp_path, small_biggan_dir):
    pytest.importorskip("starlette", reason="view needs the optional extra")
    from starlette.testclient import TestClient

    from biggan_directions.view.view import Viewer
    from biggan_directions.view.view_app import create_app
    from tests.support import make_run

    make_run(tmp_path, small_biggan_dir, ndirs=4, seed=0, truncation=0.5, path_size=2.0,
             classes=[207, 1])
    client = TestClient(create_app(Viewer(tmp_path, progress=False)))
    assert client.get("/api/info").json()["class_index"] == 207
    check_class_switching(client, "not a class of this pooled run")


def test_render_and_score_take_any_class_of_a_pooled_run(tmp_path, small_biggan_dir):
    from biggan_directions.runs.layout import open_run, resolve_run_settings
    from tests.support import make_run

    make_run(tmp_path, small_biggan_dir, ndirs=4, seed=0, truncation=0.5, path_size=2.0,
             classes=[207, 1])
    run = open_run(tmp_path)
    assert resolve_run_settings(run).class_index == 207               # the first of the set
    chosen = resolve_run_settings(run, class_query="goldfish")
    assert chosen.class_index == 1 and chosen.overridden("class_index")
    result = CliRunner().invoke(cli, ["render", str(tmp_path), "--class", "1", "--strip",
                                      "--strip-steps", "3", "--seeds", "0", "--dirs", "0-1",
                                      "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert [p.name.startswith("c1_") for p in (tmp_path / "videos").iterdir()] == [True]


# ---------------------------------------------------------------- batch --pooled
TINY = ["--steps", "2", "--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q",
        "--eval-per-direction", "1", "--eval-references", "2", "--eval-k", "2"]


def test_batch_pooled_renders_each_class_with_the_pooled_matrix(tmp_path, small_biggan_dir):
    from biggan_directions.batch.manifest import read_manifest
    from biggan_directions.runs.layout import model_label, open_run

    model, out = str(small_biggan_dir), tmp_path / "out"
    # a per-class run of 1 that the transfer table picks up beside the pooled one
    first = CliRunner().invoke(cli, ["discover", "-c", "1", "--model", model, "--out", str(out),
                                     *TINY])
    assert first.exit_code == 0, first.output
    args = ["batch", "--classes", "1,207", "--pooled", "--model", model, "--out", str(out),
            "--render", "--render-frames", "2", "--render-seeds", "0", "--render-format", "gif",
            "--top", "2", *TINY]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    base = out / model_label(model)
    pooled = base / "pooled-1-207"
    assert json.loads((pooled / "run.json").read_text())["meta"]["classes"] == [1, 207]
    entries = {e["class_index"]: e for e in read_manifest(base / "batch")}
    assert set(entries) == {1, 207}
    for index, name in ((1, "1-goldfish"), (207, "207-golden-retriever")):
        view = pooled / "classes" / name
        run = open_run(view)
        assert run.meta["class_index"] == index and run.meta["classes"] == [1, 207]
        assert torch.equal(run.directions, open_run(pooled).directions)
        e = entries[index]
        assert e["status"] == "finished" and e["run_folder"] == f"../pooled-1-207/classes/{name}"
        assert len(e["media"]) == 2 and all((base / "batch" / m).is_file() for m in e["media"])
        assert any(f"c{index}" in m or "grid" in m for m in e["media"])
    table = json.loads((base / "batch" / "transfer" / "transfer.json").read_text())
    assert [m["name"] for m in table["matrices"]] == ["pooled-1-207", "1-goldfish"]
    assert [c["index"] for c in table["classes"]] == [1, 207]
    page = (base / "batch" / "index.html").read_text()
    assert "Transfer table" in page and "transfer/transfer.png" in page
    # the same command again: nothing to do, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in pooled.rglob("*") if p.is_file()}
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in pooled.rglob("*") if p.is_file()} == before


def test_batch_pooled_refusals(tmp_path, small_biggan_dir):
    for extra, message in ((["--classes", "207"], "the batch has one"),
                           (["--classes", "1,207", "--methods", "hessian,sefa"], "drop --pooled")):
        result = CliRunner().invoke(cli, ["batch", "--pooled", "--model", str(small_biggan_dir),
                                          "--out", str(tmp_path / "out"), *extra, "-q"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
