"""Where the labels show, from the command line: score, describe, render --label, view, batch
(manifest, gallery, atlas) and find; and the bad input each one refuses in one line."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from biggan_directions.cli import cli
from biggan_directions.describe.labels import LABELS
from biggan_directions.runs.layout import model_label
from tests import support
from tests.support import write_backbone_checkpoint

TINY = ["--steps", "2", "--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q",
        "--eval-per-direction", "1", "--eval-references", "2", "--eval-k", "2"]
SCORE = ["--num-seeds", "2", "--steps", "5", "--device", "cpu", "-q"]


pytestmark = pytest.mark.usefixtures("one_thread")          # conftest


@pytest.fixture
def torch_home(tmp_path_factory, monkeypatch) -> Path:
    """A TORCH_HOME holding a seeded random AlexNet under torchvision's name (offline LPIPS)."""
    home = tmp_path_factory.mktemp("torch-home")
    write_backbone_checkpoint(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(result, *needles: str) -> None:
    """Exit 1, one `Error:` line holding every needle, no traceback."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])


@pytest.fixture
def scored_run(tmp_path, small_biggan_dir, torch_home) -> Path:
    run = tmp_path / "run"
    support.make_run(run, small_biggan_dir, ndirs=4, seed=3, truncation=0.5, path_size=6.0)
    r = invoke("score", str(run), *SCORE)
    assert r.exit_code == 0, r.output
    return run


def test_score_writes_labels_and_measures_and_prints_a_label_column(scored_run):
    rec = json.loads((scored_run / "scores.json").read_text())
    for d in rec["directions"]:
        assert d["label"] in LABELS and 0 <= d["label_confidence"] <= 1
        assert set(d["measures"]) >= {"shift_x_fraction", "scale_ratio", "rotation_degrees",
                                      "brightness_delta", "color_hue", "background_share"}
        assert d["inactive"] == (d["label"] == "inactive")
    assert "label" in rec["definitions"] and rec["describe_seconds"] >= 0
    with open(scored_run / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["direction"]) for r in rows] == rec["ranking"]
    assert [r["label"] for r in rows] == [rec["directions"][k]["label"] for k in rec["ranking"]]
    assert "scale_ratio" in rows[0] and "color_hue" in rows[0]


def test_score_no_describe_skips_labels(tmp_path, small_biggan_dir, torch_home):
    run = tmp_path / "run"
    support.make_run(run, small_biggan_dir, ndirs=2, seed=3, truncation=0.5, path_size=6.0)
    r = invoke("score", str(run), *SCORE, "--no-describe")
    assert r.exit_code == 0, r.output
    assert "label" not in r.output.splitlines()[1]
    rec = json.loads((run / "scores.json").read_text())
    assert all("label" not in d for d in rec["directions"])
    # a run scored before labels existed: render --label and describe's readers say what to do
    r = invoke("render", str(run), "--label", "zoom", "--strip", "-q")
    one_error_line(r, "scored before labels existed", "score", "--overwrite", "describe")
    assert not (run / "videos").exists()


def test_describe_writes_descriptions_without_lpips_and_keeps_them(tmp_path, small_biggan_dir,
                                                                   monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-backbone-here"))
    run = tmp_path / "run"
    support.make_run(run, small_biggan_dir, ndirs=3, seed=4, truncation=0.5, path_size=6.0)
    r = invoke("describe", str(run), "--num-seeds", "2", "--steps", "5", "-q")
    assert r.exit_code == 0, r.output
    assert "label" in r.output and "wrote" in r.output and "Delta E" in r.output
    rec = json.loads((run / "descriptions.json").read_text())
    assert [d["direction"] for d in rec["directions"]] == [0, 1, 2]
    assert all(d["label"] in LABELS for d in rec["directions"])
    assert rec["settings"]["seeds"] == [0, 1] and rec["vocabulary"] == list(LABELS)
    before = (run / "descriptions.json").read_bytes()
    again = invoke("describe", str(run), "--num-seeds", "2", "--steps", "5", "-q")
    one_error_line(again, "--overwrite")
    assert (run / "descriptions.json").read_bytes() == before
    # a corrupt descriptions.json: one line, and the file is left for the user
    (run / "descriptions.json").write_text("{not json")
    r = invoke("render", str(run), "--label", "zoom", "--strip", "-q")
    one_error_line(r, "descriptions.json", "describe", "--overwrite")
    assert (run / "descriptions.json").read_text() == "{not json"
    r = invoke("describe", str(run), "--num-seeds", "2", "--steps", "5", "-q", "--overwrite")
    assert r.exit_code == 0, r.output


def test_render_label_renders_the_directions_with_that_label_captioned(scored_run):
    rec = json.loads((scored_run / "scores.json").read_text())
    labels = {d["direction"]: d["label"] for d in rec["directions"]}
    label = labels[rec["ranking"][0]]
    wanted = [k for k in rec["ranking"] if labels[k] == label]
    r = invoke("render", str(scored_run), "--label", label, "--strip", "--strip-steps", "3", "-q")
    assert r.exit_code == 0, r.output
    png = Path(r.output.strip().splitlines()[-1])
    record = json.loads(Image.open(png).text["biggan-directions"])
    from biggan_directions.foundation.ranges import parse_int_list
    assert parse_int_list(record["directions"]) == wanted
    image = np.asarray(Image.open(png))
    assert image.shape[0] == 32 * len(wanted) and image.shape[1] > 3 * 32 + 32   # wider captions
    # plain render of a labelled run: the rows carry the labels too (the caption column widens)
    r = invoke("render", str(scored_run), "--dirs", "0-3", "--strip", "--strip-steps", "3", "-q")
    assert r.exit_code == 0, r.output
    assert np.asarray(Image.open(r.output.strip().splitlines()[-1])).shape[1] > 3 * 32 + 32


def test_render_label_mistakes_are_one_line(scored_run):
    r = invoke("render", str(scored_run), "--label", "zooom", "--strip", "-q")
    one_error_line(r, "unknown label 'zooom'", "shift-x", "color:magenta", "inactive")
    rec = json.loads((scored_run / "scores.json").read_text())
    absent = next(label for label in LABELS if label not in {d["label"] for d in rec["directions"]})
    r = invoke("render", str(scored_run), "--label", absent, "--strip", "-q")
    one_error_line(r, f"labelled '{absent}'", "its labels are")
    r = invoke("render", str(scored_run), "--label", "zoom", "--dirs", "0", "-q")
    one_error_line(r, "--label")
    assert not (scored_run / "videos").exists()


def test_view_shows_each_sliders_label(scored_run):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from biggan_directions.view.view import Viewer
    from biggan_directions.view.view_app import create_app
    rec = json.loads((scored_run / "scores.json").read_text())
    info = TestClient(create_app(Viewer(scored_run, progress=False))).get("/api/info").json()
    assert [(d["index"], d["label"]) for d in info["directions"]] == \
        [(k, rec["directions"][k]["label"]) for k in rec["ranking"]]
    page = (Path(__file__).parents[1] / "biggan_directions" / "data" / "view.html").read_text()
    assert "d.label" in page


def test_batch_labels_in_manifest_gallery_and_atlas_then_find(tmp_path, small_biggan_dir,
                                                              torch_home):
    model, out = str(small_biggan_dir), tmp_path / "out"
    r = invoke("batch", "--classes", "1,207", "--model", model, "--out", str(out), "--score",
               "--score-seeds", "2", *TINY)
    assert r.exit_code == 0, r.output
    folder = out / model_label(model) / "batch"
    entries = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    for e in entries:
        assert e["labels"] and all(label in LABELS for label in e["labels"])
        assert sorted(k for ks in e["labels"].values() for k in ks) == [0, 1, 2, 3]
        assert e["methods"]["hessian"]["labels"] == e["labels"]
    page = (folder / "index.html").read_text()
    assert "<th>label</th>" in page
    with open(folder / "atlas.csv", newline="") as f:
        atlas = list(csv.DictReader(f))
    assert len(atlas) == 8 and {int(a["class_index"]) for a in atlas} == {1, 207}
    assert all(a["label"] in LABELS and a["effect"] != "" for a in atlas)
    for e in entries:
        for label, ks in e["labels"].items():
            assert sorted(int(a["direction"]) for a in atlas
                          if a["label"] == label and int(a["class_index"]) == e["class_index"]) == ks

    label = atlas[0]["label"]
    r = invoke("find", label, str(folder))
    assert r.exit_code == 0, r.output
    for a in atlas:                   # each class's strongest direction with that label
        if a["label"] == label:
            best = max((b for b in atlas if b["label"] == label and b["class_index"] == a["class_index"]),
                       key=lambda b: float(b["effect"]))
            assert any(line.split()[0] == a["class_index"] and line.split()[-3] == best["direction"]
                       for line in r.output.splitlines()[1:-1]), r.output
    r = invoke("find", label, str(folder), "--render", "--steps", "3", "-q", "--device", "cpu")
    assert r.exit_code == 0, r.output
    grid = Path(r.output.strip().splitlines()[-1].removeprefix("wrote "))
    rows = len(r.output.strip().splitlines()) - 3
    assert np.asarray(Image.open(grid)).shape[0] == 32 * rows
    again = invoke("find", label, str(folder), "--render", "--steps", "3", "-q")
    one_error_line(again, "--overwrite")

    one_error_line(invoke("find", "colour", str(folder)), "unknown label 'colour'", "color:red")


def test_find_refuses_a_folder_without_scores(tmp_path, small_biggan_dir):
    model, out = str(small_biggan_dir), tmp_path / "out"
    r = invoke("batch", "--classes", "1", "--model", model, "--out", str(out), *TINY)
    assert r.exit_code == 0, r.output
    folder = out / model_label(model) / "batch"
    assert not (folder / "atlas.csv").exists()
    one_error_line(invoke("find", "zoom", str(folder)), "no class of this batch has labels",
                   "--score")
    one_error_line(invoke("find", "zoom", str(tmp_path)), "not a batch folder")


def test_view_serves_the_labels_from_the_command_line(scored_run):
    """`biggan-directions view RUN` as a user starts it: /api/info carries each slider's label."""
    import os
    import re
    import subprocess
    import sys
    import urllib.request
    pytest.importorskip("uvicorn")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, str(root / "cli.py"), "view", str(scored_run),
                             "--port", "0", "-q", "--threads", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(root)})
    try:
        url = None
        for _ in range(50):
            line = proc.stdout.readline()
            m = re.search(r"(http://[\w.:\[\]]+/)", line or "")
            if m or not line:
                url = m.group(1) if m else None
                break
        assert url, "no URL printed"
        with urllib.request.urlopen(url + "api/info", timeout=60) as answer:
            info = json.loads(answer.read())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    rec = json.loads((scored_run / "scores.json").read_text())
    assert {d["index"]: d["label"] for d in info["directions"]} == \
        {d["direction"]: d["label"] for d in rec["directions"]}
