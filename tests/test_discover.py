"""Discovery: recovery of a hidden basis, run files, exact resume, NaN stop, hostile files."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import UserError
from biggan_directions.core.directions import load_directions, save_directions
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.methods.hessian import (Discovery, DiscoveryDiverged, DiscoveryInterrupted,
                                               discover_directions)
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.runs.discover import run_discover
from biggan_directions.runs.layout import open_run
from tests.support import TINY_EVAL, TINY_EVAL_ARGS, HiddenBasis, signal_when_logged

ROOT = Path(__file__).resolve().parents[1]


def alignment(q: torch.Tensor, r: torch.Tensor) -> float:
    """Mean over rows of q of the largest |cosine| with a row of r."""
    return (q @ r.T).abs().max(dim=1).values.mean().item()


def test_recovers_hidden_basis_from_random_start():
    G = HiddenBasis()
    cfg = DiscoverConfig(steps=150, batch_size=16, lr=0.05, path_size=1.0, seed=1)
    start = Discovery(G, cfg)
    assert alignment(start.directions(), G.R) < 0.9          # the random start is not aligned
    before = start.evaluate()
    q = discover_directions(G, cfg, progress=False)
    assert q.shape == (8, 8)
    assert torch.allclose(q @ q.T, torch.eye(8), atol=1e-5)
    assert alignment(q, G.R) > 0.98
    after = Discovery(G, cfg).evaluate(q)
    assert after < 1e-3 * before                              # the penalty is driven to ~0
    # and the hidden basis itself scores ~0 on the same fixed evaluation
    assert Discovery(G, cfg).evaluate(G.R) < 1e-6 * before


def test_same_seed_same_matrix_and_settings_override():
    G = HiddenBasis()
    a = discover_directions(G, steps=5, batch_size=4, progress=False, seed=3)
    b = discover_directions(G, DiscoverConfig(steps=5, batch_size=4, seed=3), progress=False)
    c = discover_directions(G, steps=5, batch_size=4, progress=False, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_callback_sees_every_step():
    seen = []
    discover_directions(HiddenBasis(), steps=4, batch_size=2, progress=False,
                        callback=lambda step, value: seen.append((step, value)))
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    assert all(v >= 0 for _, v in seen)


def test_subspace_directions_stay_inside():
    G = HiddenBasis(d=8)
    q = discover_directions(G, steps=3, batch_size=2, subspace=(2, 6), progress=False)
    assert q.shape == (4, 8)
    assert torch.count_nonzero(q[:, :2]) == 0 and torch.count_nonzero(q[:, 6:]) == 0
    assert torch.allclose(q @ q.T, torch.eye(4), atol=1e-5)


def test_invalid_settings_are_user_errors():
    for bad in (dict(k=1), dict(epsilon=0.0), dict(truncation=1.5), dict(reduction="sum"),
                dict(ndirs=9), dict(subspace=(4, 2))):
        with pytest.raises(UserError):
            discover_directions(HiddenBasis(), steps=1, progress=False, **bad)


# ---------------------------------------------------------------- run folders
def small_config(**kw) -> DiscoverConfig:
    base = dict(steps=6, batch_size=2, checkpoint_every=2, eval_every=3, eval_per_direction=1, eval_k=2,
                ndirs=8)
    return DiscoverConfig(**{**base, **kw})


def test_run_writes_every_file(tmp_path, small_biggan):
    G = BigGANGenerator(small_biggan, 207, 1.0)
    folder = tmp_path / "run"
    result = run_discover(G, small_config(), folder, meta={"model": "m", "class_index": 207},
                          progress=False)
    assert result.status == "finished" and result.step == 6
    for name in ("directions.safetensors", "run.json", "log.csv", "checkpoint.pt"):
        assert (folder / name).is_file(), name
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["step"] == 6
    assert record["config"]["steps"] == 6 and record["config"]["seed"] == 0
    assert {"identity", "random", "random_std", "random_values"} <= set(record["reference_eval"])
    assert len(record["reference_eval"]["random_values"]) == 4
    assert record["reference_eval"]["statistic"] == "trimmed mean 20%"
    assert record["eval_seconds"] > 0 and 0 < record["eval_share"] < 1
    assert record["versus_random"].startswith(("below random", "above random",
                                               "within the random spread", "too coarse to tell"))
    assert record["precision"] == "fp32" and record["compile"] is False
    for key in ("steps_per_second", "images_per_second", "tflops", "flops_per_step"):
        assert isinstance(record[key], (int, float)) and record[key] > 0, key
    assert record["final_penalty"] == pytest.approx(result.final_penalty)
    assert "torch" in record["versions"] and record["device"] == "cpu"
    rows = list(csv.DictReader(open(folder / "log.csv")))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5, 6]     # 0: the start's evaluation
    assert [bool(r["eval_penalty"]) for r in rows] == [True, False, False, True, False, False, True]
    assert rows[0]["penalty"] == ""
    q, meta = load_directions(folder / "directions.safetensors")
    assert q.shape == (8, 128)
    assert (q @ q.T - torch.eye(8)).abs().max() < 1e-5
    assert meta["step"] == 6 and meta["class_index"] == 207 and meta["path_size"] == 5.0
    assert open_run(folder).meta == meta



@pytest.mark.parametrize("method", ["hessian", "sefa", "ganspace"])
def test_the_result_carries_the_run_as_open_run_reads_it_back(tmp_path, small_biggan, method):
    """A finished run hands back its Run (the batch job reads nothing back): the same matrix,
    metadata and run.json as open_run gives; an 'already finished' resume carries none."""
    G = BigGANGenerator(small_biggan, 207, 1.0)
    folder = tmp_path / method
    cfg = small_config(steps=4).for_method(method)    # sefa, ganspace: no hessian settings
    result = run_discover(G, cfg, folder, meta={"model": "m", "class_index": 207}, progress=False)
    carried, read = result.run, open_run(folder)
    assert result.status == "finished" and carried is not None
    assert carried.folder == read.folder and carried.directions_path == read.directions_path
    assert carried.directions.dtype == torch.float32 and carried.directions.device.type == "cpu"
    assert torch.equal(carried.directions, read.directions)
    assert carried.meta == read.meta and carried.subspace == read.subspace
    assert carried.record == read.record == json.loads((folder / "run.json").read_text())
    assert result.versus_random == read.record["versus_random"] is not None
    again = run_discover(G, cfg, folder, resume=True, progress=False)
    assert again.status == "already finished" and again.run is None

def test_interrupt_then_resume_equals_uninterrupted(tmp_path, small_biggan):
    cfg = small_config(checkpoint_every=100,                  # only the Ctrl-C checkpoint;
                       init="random")                        # the wrapper hides G's first layer
    G = BigGANGenerator(small_biggan, 207, 1.0)
    run_discover(G, cfg, tmp_path / "whole", progress=False)

    calls = {"n": 0}

    def interrupting(z):                                     # Ctrl-C during step 3's forward
        calls["n"] += torch.is_grad_enabled()                # training calls only (the first
        if calls["n"] == 4 and torch.is_grad_enabled():      # one counts a step's FLOPs)
            os.kill(os.getpid(), signal.SIGINT)
        return G(z)
    interrupting.z_dim = G.z_dim

    with pytest.raises(DiscoveryInterrupted) as info:
        run_discover(interrupting, cfg, tmp_path / "cut", progress=False)
    assert info.value.step == 3                              # the step in flight was finished
    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"
    resumed = run_discover(G, cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.step == 6
    q_whole, _ = load_directions(tmp_path / "whole" / "directions.safetensors")
    q_cut, _ = load_directions(tmp_path / "cut" / "directions.safetensors")
    assert torch.equal(q_whole, q_cut)
    log_whole = (tmp_path / "whole" / "log.csv").read_text().splitlines()
    log_cut = (tmp_path / "cut" / "log.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in log_whole] == [r.split(",")[:3] for r in log_cut]
    record = json.loads((tmp_path / "cut" / "run.json").read_text())
    assert record["resumed_at_steps"] == [3] and record["status"] == "finished"
    # a finished run resumed again does nothing
    again = run_discover(G, cfg, tmp_path / "cut", resume=True, progress=False)
    assert again.status == "already finished"
    # more steps extend it exactly like a longer run
    longer = DiscoverConfig(**{**cfg.__dict__, "steps": 8})
    run_discover(G, longer, tmp_path / "cut", resume=True, progress=False)
    run_discover(G, longer, tmp_path / "long", progress=False)
    assert torch.equal(load_directions(tmp_path / "cut" / "directions.safetensors")[0],
                       load_directions(tmp_path / "long" / "directions.safetensors")[0])


def test_resume_of_a_run_evaluated_with_another_statistic_recomputes_its_references(tmp_path,
                                                                                     small_biggan):
    G = BigGANGenerator(small_biggan, 207, 1.0)
    folder = tmp_path / "run"
    run_discover(G, small_config(steps=2, eval_every=2), folder, progress=False)
    record = json.loads((folder / "run.json").read_text())
    fresh = record["reference_eval"]
    record["reference_eval"] = {k: (99.0 if k == "random" else v)       # as an older version
                                for k, v in fresh.items() if k != "statistic"}   # wrote it
    record["status"] = "interrupted"
    (folder / "run.json").write_text(json.dumps(record))
    run_discover(G, small_config(steps=4, eval_every=2), folder, resume=True, progress=False)
    assert json.loads((folder / "run.json").read_text())["reference_eval"] == fresh


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, small_biggan):
    G = BigGANGenerator(small_biggan, 207, 1.0)
    calls = {"n": 0}

    def poisoned(z):                                          # NaN from step 4's forward on
        calls["n"] += torch.is_grad_enabled()                # training calls only (the first
        out = G(z)                                           # one counts a step's FLOPs)
        return out * float("nan") if calls["n"] >= 5 else out
    poisoned.z_dim = G.z_dim
    cfg = small_config(eval_every=100)
    with pytest.raises(DiscoveryDiverged, match=r"nan at step 4.*step 2\) is kept"):
        run_discover(poisoned, cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and "nan" in record["error"]
    q, meta = load_directions(tmp_path / "run" / "directions.safetensors")
    assert meta["step"] == 2 and torch.isfinite(q).all()


def test_existing_run_is_refused_then_overwritten(tmp_path):
    G = HiddenBasis()
    cfg = DiscoverConfig(steps=2, batch_size=2, eval_per_direction=1, eval_k=2)
    run_discover(G, cfg, tmp_path, progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="--resume.*--overwrite"):
        run_discover(G, cfg, tmp_path, progress=False)
    run_discover(G, cfg, tmp_path, overwrite=True, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"      # not ours: left alone


def test_resume_with_other_settings_is_refused(tmp_path):
    G = HiddenBasis()
    run_discover(G, DiscoverConfig(steps=2, batch_size=2, eval_per_direction=1, eval_k=2), tmp_path, progress=False)
    with pytest.raises(UserError, match=r"lr=default \(now 0.02\)"):
        run_discover(G, DiscoverConfig(steps=4, batch_size=2, eval_per_direction=1, eval_k=2, lr=0.02), tmp_path,
                     resume=True, progress=False)


def test_hostile_checkpoint_is_not_unpickled(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))
    run_discover(HiddenBasis(), DiscoverConfig(steps=2, batch_size=2, eval_per_direction=1, eval_k=2,
                                               checkpoint_every=1), tmp_path, progress=False)
    (tmp_path / "checkpoint.pt").write_bytes(pickle.dumps({"x": Boom()}))
    with pytest.raises(UserError, match="unreadable checkpoint"):
        run_discover(HiddenBasis(), DiscoverConfig(steps=3, batch_size=2, eval_per_direction=1, eval_k=2),
                     tmp_path, resume=True, progress=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("case", ["garbage", "no-tag", "not-orthonormal", "nan", "bad-json"])
def test_malformed_directions_files_are_refused(tmp_path, case):
    from safetensors.torch import save_file

    path = tmp_path / "d.safetensors"
    if case == "garbage":
        path.write_bytes(os.urandom(300))
    elif case == "no-tag":
        save_file({"directions": torch.eye(3)}, str(path))
    elif case == "not-orthonormal":
        save_file({"directions": 2 * torch.eye(3)}, str(path),
                  metadata={"format": "biggan-directions", "version": "1", "meta": "{}"})
    elif case == "nan":
        save_file({"directions": torch.full((2, 3), float("nan"))}, str(path),
                  metadata={"format": "biggan-directions", "version": "1", "meta": "{}"})
    else:
        save_file({"directions": torch.eye(3)}, str(path),
                  metadata={"format": "biggan-directions", "version": "1", "meta": "{oops"})
    with pytest.raises(UserError, match=str(path)):
        load_directions(path)


def test_directions_round_trip(tmp_path):
    q = torch.linalg.qr(torch.randn(6, 4))[0].T                 # (4, 6) orthonormal rows
    save_directions(tmp_path / "d.safetensors", q, {"model": "x", "path_size": 2.5})
    back, meta = load_directions(tmp_path / "d.safetensors")
    assert torch.allclose(back, q) and meta == {"model": "x", "path_size": 2.5, "ndirs": 4, "z_dim": 6}


# ---------------------------------------------------------------- CLI
def test_cli_discover_writes_run_and_refuses_existing(tmp_path, small_biggan_dir):
    args = ["discover", "-c", "golden retriever", "--model", str(small_biggan_dir), "--steps", "3",
            "--batch-size", "2", "--ndirs", "4", "--out", str(tmp_path), "--device", "cpu", "-q",
            *TINY_EVAL_ARGS]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    folder = tmp_path / Path(small_biggan_dir).name.lower().replace("_", "-") / "207-golden-retriever"
    assert "finished at step 3" in result.output
    assert (folder / "directions.safetensors").is_file()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "already exists" in again.output and "Traceback" not in again.output
    assert len(again.output.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["-c", "golden retreiver"], "did you mean"),
    (["-c", "207", "--truncation", "1.5"], "(0, 1]"),
    (["-c", "207", "--subspace", "39"], "LO-HI"),
    (["-c", "207", "--subspace", "40-10"], "backwards"),
    (["-c", "207", "--subspace", "0-3,10"], "one range"),           # never silently 0-10
    (["-c", "207", "--steps", "0"], "--steps 0"),
    (["-c", "6", "-c", "stingray"], "given twice"),                 # 6 is stingray: no training
    (["-c", "207", "--resume"], "without --resume"),                # nothing to resume
    (["-c", "207", "--layers", "block99"], "block"),
    (["-c", "207", "--device", "cuda:7"], "cuda"),
    (["-c", "207", "--resume", "--overwrite"], "contradict"),
])
def test_cli_discover_user_errors(tmp_path, small_biggan_dir, extra, message):
    result = CliRunner().invoke(cli, ["discover", "--model", str(small_biggan_dir), "--steps", "1",
                                      "--out", str(tmp_path / "out"), "-q", *extra])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists()                   # checked before any folder is made


@pytest.mark.parametrize("extra, message", [
    (["--subspace", "0-200"], "subspace '0-200': not inside the latent's coordinates 0-127"),
    (["--ndirs", "200"], "--ndirs 200: must be between 1 and 128"),
    (["--subspace", "0-39", "--ndirs", "41"], "--ndirs 41: must be between 1 and 40"),
])
def test_cli_settings_that_need_the_model_leave_no_folder(tmp_path, small_biggan_dir, extra, message):
    """Checked against the loaded model's latent, still before any class folder exists."""
    result = CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                      "--steps", "1", "--out", str(tmp_path / "out"), "-q", *extra])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_cli_unwritable_out_is_one_line_before_any_work(tmp_path, small_biggan_dir):
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                      "--steps", "1", "--out", str(tmp_path / "file" / "out"), "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "is a file, not a folder" in result.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_cli_read_only_out_and_resume_in_read_only_run(tmp_path, small_biggan_dir):
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--steps", "2", "--batch-size",
            "1", "--ndirs", "4", "-q", *TINY_EVAL_ARGS]
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    run = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "runs")])
    assert run.exit_code == 0, run.output
    folder = next((tmp_path / "runs").glob("*/207-*"))
    folder.chmod(0o555)
    try:
        for out, extra in ((locked / "out", []), (tmp_path / "runs", ["--resume", "--steps", "3"])):
            result = CliRunner().invoke(cli, [*args, "--out", str(out), *extra])
            assert result.exit_code == 1 and "Traceback" not in result.output
            assert "cannot write" in result.output
            assert len(result.output.strip().splitlines()) == 1
    finally:
        locked.chmod(0o755)
        folder.chmod(0o755)


def test_cli_corrupt_run_record_on_resume_is_reported_not_replaced(tmp_path, small_biggan_dir):
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--batch-size", "1",
            "--ndirs", "4", "--out", str(tmp_path), "-q", *TINY_EVAL_ARGS]
    assert CliRunner().invoke(cli, [*args, "--steps", "2"]).exit_code == 0
    record = next(tmp_path.glob("*/207-*/run.json"))
    record.write_text('{"status": "finis')
    result = CliRunner().invoke(cli, [*args, "--steps", "3", "--resume"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "unreadable run record" in result.output and str(record) in result.output
    assert record.read_text() == '{"status": "finis'                # left as it was
    assert torch.load(record.parent / "checkpoint.pt", weights_only=True)["step"] == 2


def test_cli_ctrl_c_then_resume_equals_uninterrupted(tmp_path, small_biggan_dir):
    """A real SIGINT to a real process: exit 130, checkpoint kept, --resume matches a run that
    was never interrupted."""
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--steps", "25",
            "--batch-size", "1", "--ndirs", "4", "--checkpoint-every", "1000", "--eval-every",
            "1000", "--device", "cpu", "--threads", "1", "-q", *TINY_EVAL_ARGS]
    # bitwise equality needs the same float summation order: the same thread count everywhere
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args, "--out", str(tmp_path / "b")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    logs = signal_when_logged(proc, tmp_path / "b", signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    folder_b = logs[0].parent
    stopped_at = torch.load(folder_b / "checkpoint.pt", weights_only=True)["step"]
    assert 3 <= stopped_at < 25
    resumed = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b"), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    whole = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a")])
    assert whole.exit_code == 0, whole.output
    folder_a = next((tmp_path / "a").glob("*/*"))
    assert torch.equal(load_directions(folder_a / "directions.safetensors")[0],
                       load_directions(folder_b / "directions.safetensors")[0])


def test_readme_python_example_runs():
    """The README's first Python example works as printed (with fewer steps)."""
    import re

    text = (ROOT / "README.md").read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    assert "steps=2000" in code
    scope: dict = {}
    exec(compile(code.replace("steps=2000", "steps=3"), "README.md", "exec"), scope)
    q = scope["Q"]
    assert q.shape == (16, 16) and torch.allclose(q @ q.T, torch.eye(16), atol=1e-5)
    assert scope["loss"].ndim == 0 and scope["loss"].item() >= 0


def test_sequential_penalty_mode_learns_the_same_matrix():
    G = HiddenBasis()
    a = discover_directions(G, steps=4, batch_size=4, progress=False)
    b = discover_directions(G, steps=4, batch_size=4, progress=False, penalty_mode="sequential")
    assert torch.allclose(a, b, atol=1e-5)


# ---------------------------------------------------------------- the start
def test_init_sefa_starts_from_the_sefa_basis_and_auto_chooses_it_for_full_bases(small_biggan):
    from biggan_directions.methods.sefa import sefa_directions

    G = BigGANGenerator(small_biggan, 207, 1.0)
    cfg = small_config(ndirs=6)
    basis = sefa_directions(G, 6)[0]
    start = Discovery(G, DiscoverConfig(**{**cfg.__dict__, "init": "sefa"}))
    assert start.init == "sefa"
    cos = (start.directions().detach() * basis).sum(dim=1).abs()
    assert torch.allclose(cos, torch.ones(6), atol=1e-5)          # the same rows, in order
    full = small_config(ndirs=None)                                # init auto (the default)
    auto = Discovery(G, full)
    assert full.init == "auto" and auto.init == "sefa"
    assert torch.allclose(auto.directions().detach(),
                          Discovery(G, small_config(ndirs=None, init="sefa")).directions().detach())
    # fewer directions than z_dim, a subspace, or a generator without a readable first layer
    # start from random
    assert Discovery(G, cfg).init == "random"
    assert Discovery(G, small_config(subspace=(0, 8), ndirs=8)).init == "random"
    hidden = Discovery(HiddenBasis(), small_config(ndirs=None))
    assert hidden.init == "random"
    random = Discovery(HiddenBasis(), small_config(ndirs=None, init="random"))
    assert torch.equal(hidden.directions(), random.directions())


def test_run_records_the_start_it_took(tmp_path, narrow_biggan):
    G = BigGANGenerator(narrow_biggan, 207, 1.0)
    run_discover(G, small_config(steps=2, ndirs=None, eval_references=2), tmp_path / "run",
                 progress=False)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["init"] == "sefa" and record["config"]["init"] == "auto"
    assert load_directions(tmp_path / "run" / "directions.safetensors")[1]["init"] == "sefa"


# ---------------------------------------------------------------------- the API keeps the best
def _exact_basis() -> HiddenBasis:
    """A hidden-basis generator whose basis is the coordinate axes: the 'coords' start is
    already optimal (penalty 0), so any training step can only make it worse."""
    G = HiddenBasis()
    G.R = torch.eye(G.z_dim)
    return G


def test_the_api_hands_back_the_start_when_training_makes_it_worse():
    G = _exact_basis()
    settings = dict(steps=12, batch_size=4, lr=0.5, init="coords", parametrization="qr",
                    schedule="constant", eval_every=4, eval_per_direction=4, seed=2)
    start = Discovery(G, DiscoverConfig(**settings)).directions()
    q, record = discover_directions(G, progress=False, return_record=True, **settings)
    assert torch.equal(q, start)                                  # keep="best" is the default
    assert record["best_step"] == 0 and record["step"] == 12 and record["stop_reason"] == "steps"
    assert record["eval_penalty"] == record["best_eval_penalty"] < record["last_eval_penalty"]
    assert record["test_eval"]["step"] == 0 and record["test_eval"]["matrix"] == "best"
    assert record["test_eval"]["value"] == pytest.approx(
        Discovery(G, DiscoverConfig(**settings)).evaluate(start, Discovery(
            G, DiscoverConfig(**settings)).test_draws), rel=1e-9)
    last = discover_directions(G, progress=False, keep="last", **settings)
    assert not torch.allclose(last, start, atol=1e-3)             # today's behaviour, on request
    trained = Discovery(G, DiscoverConfig(**settings))
    assert trained.evaluate(last) > trained.evaluate(start)       # ... and it is worse


def test_the_api_with_patience_stops_and_says_why():
    G = _exact_basis()
    q, record = discover_directions(G, steps=40, batch_size=4, lr=0.5, init="coords",
                                    parametrization="qr", schedule="constant", eval_every=2,
                                    eval_per_direction=4, patience=2, progress=False,
                                    return_record=True)
    assert record["stop_reason"] == "patience" and record["step"] == 4 and record["best_step"] == 0
