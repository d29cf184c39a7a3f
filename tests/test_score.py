"""LPIPS scoring: feature reuse equals lpips.forward, zero/scaled directions, ranking, files, CLI.

The LPIPS backbone is a seeded random AlexNet saved under torchvision's own checkpoint name in a
temporary TORCH_HOME, so lpips's real loading path (torchvision's hub cache) runs offline.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.directions import random_orthonormal, save_directions
from biggan_directions.errors import UserError
from biggan_directions.generator import BigGANGenerator
from biggan_directions.runs import Run
from biggan_directions.score import (ScoreResult, backbone_checkpoint, load_lpips, lpips_distance,
                                     lpips_features, random_baseline, read_scores,
                                     score_directions, walk_pairs, write_scores)
from cli import cli

ALEX_FILE = "alexnet-owt-7be5be79.pth"
TRUNC = 0.5


@pytest.fixture(scope="session")
def backbone_home(tmp_path_factory) -> Path:
    """A TORCH_HOME whose hub/checkpoints holds a seeded random AlexNet under torchvision's name."""
    import torchvision

    home = tmp_path_factory.mktemp("torch-home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(1234)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), folder / ALEX_FILE)
    return home


@pytest.fixture(autouse=True)
def offline_backbone_downloads(monkeypatch):
    """No test touches the network: a backbone download fails as it does offline."""
    from urllib.error import URLError

    def offline(url, dst, *args, **kwargs):
        raise URLError("offline (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


@pytest.fixture
def torch_home(backbone_home, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(backbone_home))
    return backbone_home


@pytest.fixture(scope="module")
def metric(backbone_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(backbone_home))
        return load_lpips("alex", "cpu")


@pytest.fixture(scope="module")
def G(small_biggan):
    return BigGANGenerator(small_biggan, 207, TRUNC)


@pytest.fixture(scope="module")
def dirs() -> torch.Tensor:
    """3 random orthonormal directions with row 1 zeroed (a 'switched off' direction)."""
    q = random_orthonormal(3, 128, generator=torch.Generator().manual_seed(0))
    q[1] = 0.0
    return q


@pytest.fixture(scope="module")
def scored(G, dirs, metric) -> dict[float, ScoreResult]:
    """The same directions scored at path sizes 2 and 6 on 2 seeds, 9 steps."""
    return {p: score_directions(G, dirs, [0, 1], path_size=p, metric=metric, truncation=TRUNC,
                                steps=9, batch_size=16, threshold=1e-4)
            for p in (2.0, 6.0)}


def make_run(folder: Path, model_dir: Path, *, name: str = "directions.safetensors",
             ndirs: int = 4, **meta) -> Path:
    q = random_orthonormal(ndirs, 128, generator=torch.Generator().manual_seed(3))
    info = dict(model=str(model_dir), class_index=207, class_name="golden retriever",
                truncation=TRUNC, path_size=6.0)
    info.update(meta)
    info = {k: v for k, v in info.items() if v is not None}
    return save_directions(folder / name, q, info)


# ---------------------------------------------------------------- LPIPS
def test_backbone_file_names_are_torchvisions():
    assert backbone_checkpoint("alex") == (ALEX_FILE, "https://download.pytorch.org/models/" + ALEX_FILE)
    assert backbone_checkpoint("vgg")[0] == "vgg16-397923af.pth"
    assert backbone_checkpoint("squeeze")[0] == "squeezenet1_1-b8a52dc0.pth"
    with pytest.raises(UserError, match="--net"):
        backbone_checkpoint("resnet")


def test_backbone_comes_from_the_checkpoint_file(metric, backbone_home):
    saved = torch.load(backbone_home / "hub" / "checkpoints" / ALEX_FILE, weights_only=True)
    assert torch.equal(metric.net.slice1[0].weight, saved["features.0.weight"])
    assert torch.equal(getattr(metric.net.slice5, "10").weight, saved["features.10.weight"])


def test_feature_distance_equals_lpips_forward(metric):
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(5, 3, 32, 32, generator=gen) * 2 - 1
    b = torch.rand(5, 3, 32, 32, generator=gen) * 2 - 1
    with torch.no_grad():
        ref = metric(a, b, normalize=False).flatten()
        mine = lpips_distance(metric, lpips_features(metric, a), lpips_features(metric, b))
        same_ref = metric(a, a, normalize=False).flatten()
        same = lpips_distance(metric, lpips_features(metric, a), lpips_features(metric, a))
    assert ref.shape == (5,) and bool((ref > 1e-4).all())
    torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7)
    assert float(same_ref.abs().max()) < 1e-6
    assert float(same.abs().max()) == 0.0


def test_random_backbone_is_seeded_and_needs_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m1 = load_lpips("alex", random_backbone=True, seed=5)
    m2 = load_lpips("alex", random_backbone=True, seed=5)
    assert torch.equal(m1.net.slice1[0].weight, m2.net.slice1[0].weight)


def test_missing_backbone_is_downloaded_once(tmp_path, backbone_home, monkeypatch):
    import shutil

    source = backbone_home / "hub" / "checkpoints" / ALEX_FILE
    fetched = []

    def fake_download(url, dst, progress=True):             # what torch.hub would fetch
        fetched.append(url)
        shutil.copyfile(source, dst)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    m = load_lpips("alex")
    assert fetched == ["https://download.pytorch.org/models/" + ALEX_FILE]
    assert (tmp_path / "hub" / "checkpoints" / ALEX_FILE).is_file()
    load_lpips("alex")                                       # second time: from the file
    assert len(fetched) == 1
    saved = torch.load(source, weights_only=True)
    assert torch.equal(m.net.slice5._modules["10"].weight, saved["features.10.weight"])


def test_hostile_backbone_file_is_not_unpickled(tmp_path, monkeypatch):
    import os
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ALEX_FILE).write_bytes(pickle.dumps({"features.0.weight": Boom()}))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError, match="not a usable alex checkpoint"):
        load_lpips("alex")
    assert not (tmp_path / "pwned").exists()


def test_missing_backbone_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserError) as e:
        load_lpips("squeeze")
    msg = str(e.value)
    assert "\n" not in msg and "squeezenet1_1-b8a52dc0.pth" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg and "https://" in msg
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hub" / "checkpoints" / ALEX_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a usable alex checkpoint") as e:
        load_lpips("alex")
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- scoring
def test_walk_pairs():
    pairs, roles = walk_pairs(9)
    assert len(pairs) == 11 and len(set(pairs)) == 11
    assert [pairs[i] for i in roles["endpoint"]] == [(0, 8)]
    assert [pairs[i] for i in roles["centre"]] == [(0, 4), (4, 8)]
    pairs3, roles3 = walk_pairs(3)
    assert pairs3 == [(0, 1), (1, 2), (0, 2)] and roles3["centre"] == roles3["consecutive"]
    with pytest.raises(UserError, match="odd"):
        walk_pairs(8)


def test_zero_direction_is_inactive_with_effect_zero(scored):
    r = scored[6.0]
    assert float(r.effect[1]) < 1e-6 and float(r.endpoint[1].abs().max()) < 1e-6
    assert bool(r.inactive[1]) and r.n_inactive == 1 and r.n_active == 2
    assert math.isnan(float(r.smoothness[1])) and math.isnan(float(r.consistency[1]))
    assert r.ranking[-1] == 1


def test_larger_path_size_scores_larger_effect(scored):
    small, large = scored[2.0], scored[6.0]
    for k in (0, 2):
        assert float(large.effect[k]) > 1.5 * float(small.effect[k]) > 0
        assert float(large.effect_centre[k]) > float(small.effect_centre[k]) > 0


def test_ranking_matches_effects_and_metrics_are_consistent(scored):
    r = scored[6.0]
    assert sorted(r.ranking) == [0, 1, 2]
    effects = [float(r.effect[k]) for k in r.ranking[:r.n_active]]
    assert effects == sorted(effects, reverse=True)
    for k in (0, 2):
        # squared-distance LPIPS: (steps-1) * path / endpoint >= 1 (1 = evenly paced)
        assert float(r.smoothness[k]) >= 1.0 - 1e-6
        expected = 8 * r.path[k].sum() / r.endpoint[k].sum()
        assert float(r.smoothness[k]) == pytest.approx(float(expected), rel=1e-9)
        cv = r.endpoint[k].std(correction=1) / r.endpoint[k].mean()
        assert float(r.consistency[k]) == pytest.approx(float(cv), rel=1e-9)
    assert r.frames == 3 * 2 * 9 and r.pairs == 3 * 2 * 11


def test_each_frame_generated_once_and_batch_size_does_not_matter(G, dirs, metric, scored):
    calls = []

    def counting(z):
        calls.append(z.shape[0])
        return G(z)

    r = score_directions(counting, dirs, [0, 1], path_size=6.0, metric=metric,
                         truncation=TRUNC, steps=9, batch_size=5, threshold=1e-4)
    assert sum(calls) == 3 * 2 * 9 and max(calls) <= 9
    torch.testing.assert_close(r.endpoint, scored[6.0].endpoint, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(r.path, scored[6.0].path, rtol=1e-4, atol=1e-6)


def test_random_baseline_is_seeded_and_stays_in_the_runs_subspace():
    run = Run(None, Path("x.safetensors"), torch.zeros(5, 128), {"subspace": [40, 80]})
    q = random_baseline(run, seed=3)
    assert q.shape == (5, 128) and float(q[:, :40].abs().max()) == 0 == float(q[:, 80:].abs().max())
    torch.testing.assert_close(q @ q.T, torch.eye(5), atol=1e-5, rtol=0)
    assert torch.equal(q, random_baseline(run, seed=3)) and not torch.equal(q, random_baseline(run, seed=4))
    full = random_baseline(Run(None, Path("x"), torch.zeros(5, 128), {"subspace": None}), seed=3)
    assert float(full[:, :40].abs().max()) > 0


# ---------------------------------------------------------------- files
def test_write_and_read_back(tmp_path, scored):
    r = scored[6.0]
    js, cs = write_scores(tmp_path / "scores.json", tmp_path / "scores.csv", r, {"steps": 9})
    rec = read_scores(tmp_path)
    json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert rec["ranking"] == r.ranking and rec["n_inactive"] == 1
    assert rec["directions"][1]["smoothness"] is None and rec["directions"][1]["inactive"] is True
    assert rec["directions"][0]["effect"] == pytest.approx(float(r.effect[0]), rel=1e-12)
    rows = cs.read_text().splitlines()
    assert rows[0].startswith("rank,direction,effect")
    assert [int(line.split(",")[1]) for line in rows[1:]] == r.ranking
    with pytest.raises(UserError, match="--overwrite"):
        write_scores(js, cs, r, {})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a biggan-directions scores file"):
        read_scores(tmp_path / "bad.json")


# ---------------------------------------------------------------- CLI
def test_cli_scores_a_run_and_refuses_to_overwrite(tmp_path, small_biggan_dir, torch_home):
    run = tmp_path / "run"
    make_run(run, small_biggan_dir)
    args = ["score", str(run), "--num-seeds", "3", "--steps", "5", "--device", "cpu", "-q"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "LPIPS alex, 3 seeds, 5 steps, path size 6, 4 directions" in res.output
    assert "NOT MEANINGFUL" not in res.output
    assert "inactive:" in res.output and "rank  dir   effect" in res.output
    rec = read_scores(run)
    assert sorted(rec["ranking"]) == [0, 1, 2, 3] and rec["meaningful"] is True
    assert rec["settings"]["truncation"] == TRUNC and rec["settings"]["path_size"] == 6.0
    assert rec["settings"]["seeds"] == [0, 1, 2] and rec["settings"]["class_index"] == 207
    table = [line.split() for line in res.output.splitlines() if line[:4].strip().isdigit()]
    assert [int(row[1]) for row in table] == rec["ranking"]
    assert [float(row[2]) for row in table] == pytest.approx(
        [rec["directions"][k]["effect"] for k in rec["ranking"]], abs=6e-5)

    before = (run / "scores.json").read_bytes()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "--overwrite" in again.output and "Traceback" not in again.output
    assert (run / "scores.json").read_bytes() == before
    forced = CliRunner().invoke(cli, args + ["--overwrite", "--path-size", "2", "--class", "1"])
    assert forced.exit_code == 0, forced.output
    settings = read_scores(run)["settings"]
    assert settings["path_size"] == 2.0 and settings["class_index"] == 1


def test_cli_missing_backbone_is_one_line(tmp_path, small_biggan_dir, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    run = tmp_path / "run"
    make_run(run, small_biggan_dir)
    res = CliRunner().invoke(cli, ["score", str(run), "--device", "cpu", "-q"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and ALEX_FILE in lines[0]
    assert str(tmp_path / "empty" / "hub" / "checkpoints") in lines[0]
    assert "Traceback" not in res.output and not (run / "scores.json").exists()


def test_cli_compare_random_beside_a_bare_file(tmp_path, small_biggan_dir, torch_home):
    file = make_run(tmp_path, small_biggan_dir, name="mine.safetensors")
    res = CliRunner().invoke(cli, ["score", str(file), "--seeds", "0-2", "--steps", "3",
                                   "--compare", "random", "--seed", "7", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    assert "learned vs random orthonormal directions (seed 7)" in res.output
    assert "effect" in res.output and "smoothness" in res.output and "consistency" in res.output
    rec = read_scores(tmp_path / "mine.scores.json")
    assert (tmp_path / "mine.scores.csv").is_file() and not (tmp_path / "scores.json").exists()
    cmp = rec["compare"]
    assert cmp["kind"] == "random" and cmp["seed"] == 7
    assert cmp["learned"]["n"] == cmp["random"]["n"] == 4
    assert cmp["learned"]["active"] == rec["n_active"]
    assert cmp["learned"]["effect"]["max"] == pytest.approx(
        max(d["effect"] for d in rec["directions"]), rel=1e-12)
    random_effects = [d["effect"] for d in cmp["random_directions"]]
    assert cmp["random"]["effect"]["min"] == pytest.approx(min(random_effects), rel=1e-12)
    assert random_effects != [d["effect"] for d in rec["directions"]]
    active_line = next(line for line in res.output.splitlines() if line.startswith("active"))
    assert f"{cmp['learned']['active']}/4" in active_line and f"{cmp['random']['active']}/4" in active_line


def test_cli_random_backbone_is_marked(tmp_path, small_biggan_dir, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    run = tmp_path / "run"
    make_run(run, small_biggan_dir, ndirs=2)
    res = CliRunner().invoke(cli, ["score", str(run), "--num-seeds", "2", "--steps", "3",
                                   "--random-backbone", "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("RANDOM LPIPS BACKBONE: SCORES NOT MEANINGFUL")
    assert read_scores(run)["meaningful"] is False
    assert "--random-backbone" not in CliRunner().invoke(cli, ["score", "--help"]).output


def test_cli_option_mistakes_are_one_line(tmp_path, small_biggan_dir, torch_home):
    run = tmp_path / "run"
    make_run(run, small_biggan_dir, path_size=None)
    for args, needle in [([], "--path-size"),
                         (["--path-size", "3", "--steps", "4"], "odd"),
                         (["--path-size", "3", "--seeds", "0-2", "--num-seeds", "3"], "pass one"),
                         (["--path-size", "3", "--truncation", "1.5"], "(0, 1]")]:
        res = CliRunner().invoke(cli, ["score", str(run), "--device", "cpu", "-q", *args])
        assert res.exit_code == 1, (args, res.output)
        assert needle in res.output and len(res.output.strip().splitlines()) == 1, res.output
