"""Batch: class lists, manifest, skip and resume, one failing class, Ctrl-C, worker processes, Ray."""
from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.batch.batch import run_batch
from biggan_directions.batch.manifest import MANIFEST_FIELDS, read_manifest
from biggan_directions.cli import cli
from biggan_directions.foundation.errors import UserError
from biggan_directions.core.directions import load_directions
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.models.classlists import parse_class_list, read_class_file
from biggan_directions.runs import discover as discover_mod
from biggan_directions.runs.layout import model_label, run_dir_for
from tests.support import TINY_EVAL, TINY_EVAL_ARGS

# A tiny run with a tiny fixed evaluation (the auto size's floor, 128 samples, is most of a
# small run's time, and no test here looks at the evaluation's size).
TINY = ["--steps", "2", "--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q",
        *TINY_EVAL_ARGS]


pytestmark = pytest.mark.usefixtures("one_thread")          # conftest


def batch(*args: str):
    return CliRunner().invoke(cli, ["batch", *args], catch_exceptions=False)


def manifest(out: Path, model: str, name: str = "batch") -> dict[int, dict]:
    return {e["class_index"]: e for e in read_manifest(out / model_label(model) / name)}


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- class lists
def test_class_list_items_ranges_names_wnids_deduped(tmp_path):
    classes = parse_class_list("0-2, 207,golden retriever,n03028079,Church,1")
    assert [c.index for c in classes] == [0, 1, 2, 207, 497]
    f = tmp_path / "classes.txt"
    f.write_text("# my classes\n207   # golden retriever\n\n  church\n5-6\nn01443537\n207\n")
    assert [c.index for c in read_class_file(f)] == [207, 497, 5, 6, 1]


@pytest.mark.parametrize("text, expected", [
    ("chruch", "--classes item 'chruch': unknown class 'chruch'; did you mean:"),
    ("9-3", "--classes item '9-3': range '9-3' runs backwards; write 3-9."),
    ("crane", "ambiguous: 134 n02012849 crane; 517 n03126707 crane"),
    ("990-1001", "--classes item '990-1001': class index 1000 is out of range"),
    ("1,foo,2000", "2 classes could not be resolved: --classes item 'foo'"),
])
def test_class_list_errors_are_one_line(text, expected):
    with pytest.raises(UserError) as e:
        parse_class_list(text)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_cli_errors_before_any_work(tmp_path, small_biggan_dir):
    f = tmp_path / "c.txt"
    f.write_text("1\n\n  nosuchclass  # typo\n")
    cases = [([], "give the classes with --classes LIST or --classes-file FILE"),
             (["--classes", "1", "--classes-file", str(f)], "(one of them)"),
             (["--classes-file", str(f)], "c.txt line 3: unknown class 'nosuchclass'"),
             (["--classes-file", str(tmp_path / "none.txt")], "none.txt: no such file"),
             (["--classes", "1", "--ray-address", "auto"], "--ray-address needs --backend ray"),
             (["--classes", "1", "--render-frames", "3"], "--render-frames has no effect without --render"),
             (["--classes", "1", "--lr", "-1"], "--lr -1.0: must be a")]
    for args, message in cases:
        r = CliRunner().invoke(cli, ["batch", "--model", str(small_biggan_dir), "--out",
                                     str(tmp_path / "out"), *args])
        assert r.exit_code == 1 and "Error: " in r.output and message in r.output, (args, r.output)
        assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()                  # nothing was written


def test_missing_ray_and_missing_lpips_backbone_fail_before_any_work(tmp_path, small_biggan_dir,
                                                                     monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setitem(sys.modules, "ray", None)           # `import ray` raises ImportError
    r = CliRunner().invoke(cli, ["batch", "--classes", "1", "--model", str(small_biggan_dir),
                                 "--out", str(out), "--backend", "ray"])
    assert r.exit_code == 1
    assert "Error: --backend ray needs Ray, which is not installed; pip install 'biggan-directions[ray]'" in r.output
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    from urllib.error import URLError

    def offline(url, dst, *args, **kwargs):                  # no test touches the network
        raise URLError("offline (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    r = CliRunner().invoke(cli, ["batch", "--classes", "1", "--model", str(small_biggan_dir),
                                 "--out", str(out), "--score", *TINY])
    assert r.exit_code == 1 and "LPIPS 'alex' backbone could not be downloaded" in r.output
    assert "alexnet-owt-7be5be79.pth" in r.output and "Traceback" not in r.output
    assert not out.exists()


# ---------------------------------------------------------------------- local backend
def test_failing_class_then_rerun_skips_finished_and_completes(tmp_path, small_biggan_dir):
    model, out = str(small_biggan_dir), tmp_path / "out"
    bad = run_dir_for(out, model, 2, "great white shark")
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_bytes(b"not a checkpoint")   # resuming it fails, cleanly
    args = ["--classes", "1,great white shark,goldfish,n01491361", "--model", model,
            "--out", str(out), *TINY]

    r = batch(*args)
    assert r.exit_code == 1
    assert "Error: 1 of 3 classes failed" in r.output and "run the same command again" in r.output
    m = manifest(out, model)
    assert list(m) == [1, 2, 3]                              # order given, goldfish deduped
    for e in m.values():
        assert set(e) == set(MANIFEST_FIELDS)
    assert m[2]["status"] == "failed" and "unreadable checkpoint" in m[2]["error"]
    assert m[2]["step"] is None and "\n" not in m[2]["error"]
    # the remedy is per class: --overwrite would start the two finished classes again
    assert f"; to start this class again, delete {bad.resolve()} and run" in m[2]["error"]
    assert "use --overwrite" not in r.output and "pass --overwrite" not in r.output
    assert "To start one class anew, delete its run folder" in r.output
    for i in (1, 3):
        e = m[i]
        assert e["status"] == "finished" and e["error"] is None and not e["skipped"]
        assert e["step"] == 2 and e["steps"] == 2 and e["seconds"] > 0
        assert e["top_directions"] is None and e["media"] == []     # neither scored nor rendered
        folder = (out / model_label(model) / "batch" / e["run_folder"]).resolve()
        record = json.loads((folder / "run.json").read_text())
        assert record["status"] == "finished"
        assert e["final_penalty"] == pytest.approx(record["final_penalty"], rel=1e-12)
        assert e["eval_penalty"] == pytest.approx(record["eval_penalty"], rel=1e-12)
    assert (out / model_label(model) / "batch" / "index.html").is_file()
    summary = json.loads((out / model_label(model) / "batch" / "batch.json").read_text())
    assert summary["counts"]["finished"] == 2 and summary["counts"]["failed"] == 1

    # the same job as `discover` itself: same folder name, same files, same directions
    single = tmp_path / "single"
    r1 = CliRunner().invoke(cli, ["discover", "-c", "1", "--model", model, "--out", str(single), *TINY])
    assert r1.exit_code == 0, r1.output
    a = run_dir_for(out, model, 1, "goldfish")
    b = run_dir_for(single, model, 1, "goldfish")
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    qa, meta_a = load_directions(a / "directions.safetensors")
    qb, meta_b = load_directions(b / "directions.safetensors")
    assert (qa - qb).abs().max().item() < 1e-6
    assert meta_a["model"] == meta_b["model"] == model and meta_a["class_index"] == 1

    # fix the cause and rerun: the two finished classes are not touched
    (bad / "checkpoint.pt").unlink()
    before = {i: mtimes(run_dir_for(out, model, i, m[i]["class_name"])) for i in (1, 3)}
    r = batch(*args)
    assert r.exit_code == 0, r.output
    assert "3 classes: 3 finished (2 already complete" in r.output
    m2 = manifest(out, model)
    assert [m2[i]["status"] for i in (1, 2, 3)] == ["finished"] * 3
    assert m2[1]["skipped"] and m2[3]["skipped"] and not m2[2]["skipped"]
    assert m2[1]["final_penalty"] == m[1]["final_penalty"] and m2[1]["seconds"] == m[1]["seconds"]
    assert m2[2]["step"] == 2 and m2[2]["error"] is None
    for i in (1, 3):
        assert mtimes(run_dir_for(out, model, i, m[i]["class_name"])) == before[i]


def test_ctrl_c_mid_class_then_rerun_resumes_from_checkpoint(tmp_path, small_biggan_dir, monkeypatch):
    model, out = str(small_biggan_dir), tmp_path / "out"
    args = ["--classes", "1,2", "--model", model, "--out", str(out), *TINY, "--steps", "4"]
    original = discover_mod.Discovery.train_step
    fired = []

    def train_step_then_ctrl_c(self):
        value = original(self)
        if self.step == 2 and not fired:                    # Ctrl-C after step 2 of the first class
            fired.append(self.step)
            os.kill(os.getpid(), signal.SIGINT)
        return value

    monkeypatch.setattr(discover_mod.Discovery, "train_step", train_step_then_ctrl_c)
    r = batch(*args)
    assert r.exit_code == 130 and fired == [2]
    assert "Interrupted; checkpoints saved" in r.output
    m = manifest(out, model)
    assert m[1]["status"] == "interrupted" and m[1]["step"] == 2
    assert "interrupted at step 2" in m[1]["error"]
    assert m[2]["status"] == "pending" and m[2]["step"] is None     # never started
    folder = run_dir_for(out, model, 1, "goldfish")
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    assert not run_dir_for(out, model, 2, "great white shark").exists()

    r = batch(*args)                                        # the same command again
    assert r.exit_code == 0, r.output
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "finished" and record["step"] == 4
    assert record["resumed_at_steps"] == [2]
    assert [int(line.split(",")[0]) for line in (folder / "log.csv").read_text().splitlines()[1:]] == [0, 1, 2, 3, 4]
    m = manifest(out, model)
    assert m[1]["status"] == m[2]["status"] == "finished" and m[1]["step"] == m[2]["step"] == 4
    assert m[1]["error"] is None and not m[1]["skipped"]


def test_unexpected_error_fails_one_class_with_its_traceback_kept(tmp_path, small_biggan_dir,
                                                                  monkeypatch):
    from biggan_directions.batch import class_job as batch_module

    def broken_render(plan, run, load, force):
        if "goldfish" in run.folder.name:
            raise RuntimeError("boom\nsecond line")
        return []

    monkeypatch.setattr(batch_module, "_render_step", broken_render)
    model, out = str(small_biggan_dir), tmp_path / "out"
    r = batch("--classes", "1,2", "--model", model, "--out", str(out), *TINY, "--render")
    assert r.exit_code == 1 and "1 of 2 classes failed" in r.output
    m = manifest(out, model)
    assert m[1]["status"] == "failed" and m[2]["status"] == "finished"
    assert m[1]["error"] == "RuntimeError: boom (traceback in errors/1-goldfish.txt)"
    assert m[1]["step"] == 2                                 # discovery itself finished
    log = (out / model_label(model) / "batch" / "errors" / "1-goldfish.txt").read_text()
    assert "Traceback" in log and "second line" in log and "broken_render" in log

    # --overwrite starts a finished class again: new files, no resume
    folder = run_dir_for(out, model, 2, "great white shark")
    before = json.loads((folder / "run.json").read_text())
    old_times = mtimes(folder)
    monkeypatch.undo()
    r = batch("--classes", "2", "--model", model, "--out", str(out), *TINY, "--overwrite")
    assert r.exit_code == 0, r.output
    after = json.loads((folder / "run.json").read_text())
    assert after["status"] == "finished" and after["resumed_at_steps"] == []
    new_times = mtimes(folder)
    assert all(new_times[name] > old_times[name] for name in ("run.json", "checkpoint.pt",
                                                              "directions.safetensors", "log.csv"))
    assert not manifest(out, model)[2]["skipped"]
    assert after["final_penalty"] == pytest.approx(before["final_penalty"], rel=1e-6)  # same seed


def test_one_worker_process_per_device(tmp_path, small_biggan_dir):
    """With several devices the local backend spawns one worker per device (here two 'cpu's,
    as it would for two GPUs); the results equal the in-process ones."""
    model = str(small_biggan_dir)
    config = DiscoverConfig(steps=2, batch_size=1, ndirs=4, **TINY_EVAL)
    seen = []
    pooled = run_batch(model, [1, 2], config, tmp_path / "pool", devices=["cpu", "cpu"],
                       progress=False, on_entry=lambda e, done, total: seen.append((done, total)))
    assert [e["status"] for e in pooled.entries] == ["finished"] * 2
    assert sorted(seen) == [(1, 2), (2, 2)]
    single = run_batch(model, [2], config, tmp_path / "one", progress=False)
    assert pooled.entries[1]["final_penalty"] == pytest.approx(single.entries[0]["final_penalty"], rel=1e-5)
    qa, _ = load_directions(run_dir_for(tmp_path / "pool", model, 2, "great white shark") / "directions.safetensors")
    qb, _ = load_directions(run_dir_for(tmp_path / "one", model, 2, "great white shark") / "directions.safetensors")
    assert (qa - qb).abs().max().item() < 1e-5


# ---------------------------------------------------------------------- Ray
def test_ray_backend_on_local_ray(tmp_path, small_biggan_dir, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    model, out = str(small_biggan_dir), tmp_path / "out"
    try:
        r = batch("--classes", "1,2", "--model", model, "--out", str(out), *TINY,
                  "--backend", "ray", "--ray-cpus", "2", "--gpus-per-job", "1")
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert r.exit_code == 0, r.output
    assert not ray.is_initialized()                         # the batch shut its own Ray down
    m = manifest(out, model)
    assert list(m) == [1, 2]
    for e in m.values():
        assert set(e) == set(MANIFEST_FIELDS)
        assert e["status"] == "finished" and e["step"] == 2 and e["seconds"] > 0
        record = json.loads((run_dir_for(out, model, e["class_index"], e["class_name"]) / "run.json").read_text())
        assert record["device"] == "cpu"                    # no GPU here: the task asked for 0
        assert record["meta"]["model"] == model             # recorded as given, like `discover`
        assert e["final_penalty"] == pytest.approx(record["final_penalty"], rel=1e-12)
    # the same job as the local backend
    local = run_batch(model, [2], DiscoverConfig(steps=2, batch_size=1, ndirs=4, **TINY_EVAL), tmp_path / "local",
                      progress=False)
    assert m[2]["final_penalty"] == pytest.approx(local.entries[0]["final_penalty"], rel=1e-5)


# ---------------------------------------------------------------------- defects of issue 9
@pytest.mark.parametrize("message, expected", [
    ("C: unreadable checkpoint (x); use --overwrite to start again.", "C: unreadable checkpoint (x)"),
    ("C: the run was started with lr=0.1 (now 0.2); resume with the same settings or pass "
     "--overwrite.", "C: the run was started with lr=0.1 (now 0.2); resume with the same settings"),
    ("R: unreadable run record (x); repair or remove it, or pass --overwrite to start the run "
     "again.", "R: unreadable run record (x); repair or remove it"),
    ("nan at step 3; the last good checkpoint (step 2) is kept in F. Lower --lr or raise "
     "--epsilon, then --overwrite (or --resume).",
     "nan at step 3; the last good checkpoint (step 2) is kept in F. Lower --lr or raise --epsilon"),
])
def test_class_errors_name_the_per_class_remedy_not_overwrite(message, expected):
    from biggan_directions.batch.class_job import _per_class_remedy

    text = _per_class_remedy(message, Path("/o/m/1-goldfish"))
    assert text == (f"{expected}; to start this class again, delete /o/m/1-goldfish and run the "
                    f"same command again (--overwrite would restart every class).")
    assert _per_class_remedy("C: no such class.", Path("x")) == "C: no such class."


def test_unwritable_out_is_one_line_before_any_work(tmp_path, small_biggan_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    r = CliRunner().invoke(cli, ["batch", "--classes", "1", "--model", str(small_biggan_dir),
                                 "--out", str(blocker / "out"), *TINY])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert r.output.strip().splitlines() == [r.output.strip()]             # one line
    assert f"Error: cannot write to {blocker / 'out'}" in r.output and "is a file" in r.output
    assert blocker.read_text() == "not a folder"


def test_two_batches_into_one_folder_do_not_interleave(tmp_path, small_biggan_dir):
    """A batch folder in use by another live process is refused, naming that process; nothing
    of the second batch is written."""
    import subprocess

    model, out = str(small_biggan_dir), tmp_path / "out"
    folder = out / model_label(model) / "batch"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from biggan_directions.foundation.lock import FolderLock\n"
         f"with FolderLock({str(folder)!r}, what='batch folder'):\n"
         "    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        r = CliRunner().invoke(cli, ["batch", "--classes", "1", "--model", model, "--out",
                                     str(out), *TINY])
    finally:
        holder.kill()
        holder.wait()
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"in use by process {holder.pid}" in r.output
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]            # no manifest of ours
    assert not run_dir_for(out, model, 1, "goldfish").exists()
    r = batch("--classes", "1", "--model", model, "--out", str(out), *TINY)  # holder gone: stale
    assert r.exit_code == 0, r.output
    assert manifest(out, model)[1]["status"] == "finished" and not (folder / ".lock").exists()


def test_fewer_steps_than_a_finished_run_skips_the_class(tmp_path, small_biggan_dir):
    model, out = str(small_biggan_dir), tmp_path / "out"
    args = ["--classes", "1", "--model", model, "--out", str(out), *TINY]
    r = batch(*args, "--steps", "3")
    assert r.exit_code == 0, r.output
    folder = run_dir_for(out, model, 1, "goldfish")
    before = mtimes(folder)
    r = batch(*args, "--steps", "2")
    assert r.exit_code == 0, r.output
    assert "1 class: 1 finished (1 already complete" in r.output
    e = manifest(out, model)[1]
    assert e["status"] == "finished" and e["skipped"] and e["error"] is None
    assert e["step"] == 3 and e["steps"] == 2                 # it has more steps than asked
    assert mtimes(folder) == before


def test_sigterm_acts_like_ctrl_c(tmp_path, small_biggan_dir, monkeypatch):
    model, out = str(small_biggan_dir), tmp_path / "out"
    original = discover_mod.Discovery.train_step
    fired = []

    def train_step_then_sigterm(self):
        value = original(self)
        if self.step == 2 and not fired:
            fired.append(self.step)
            os.kill(os.getpid(), signal.SIGTERM)
        return value

    monkeypatch.setattr(discover_mod.Discovery, "train_step", train_step_then_sigterm)
    before = signal.getsignal(signal.SIGTERM)
    r = batch("--classes", "1,2", "--model", model, "--out", str(out), *TINY, "--steps", "4")
    assert r.exit_code == 130 and fired == [2], r.output
    assert signal.getsignal(signal.SIGTERM) == before          # the handler is put back
    m = manifest(out, model)
    assert m[1]["status"] == "interrupted" and m[2]["status"] == "pending"
    record = json.loads((run_dir_for(out, model, 1, "goldfish") / "run.json").read_text())
    assert record["status"] == "interrupted" and record["step"] == 2


def test_ray_job_checks_the_weights_on_its_node_before_the_class(tmp_path):
    import socket

    from biggan_directions.batch import backends

    class Plan:                                   # what ray_job reads of a JobPlan
        model_source = "biggan-deep-128"
        weights_dir = str(tmp_path / "empty-store")
        main_method = "hessian"

        def new_entry(self, cls, status):
            return {"class_index": cls.index, "status": status, "error": None}

    def job(*args):
        raise AssertionError("the class ran on a node without weights")

    entry = backends.ray_job(job, Plan(), 207, "cpu").entry
    assert entry["status"] == "failed" and entry["class_index"] == 207
    assert f"host {socket.gethostname()} lacks the weights of biggan-deep-128" in entry["error"]
    assert "weights fetch biggan-deep-128" in entry["error"]


# ---------------------------------------------------------------------- several methods
def test_methods_each_in_its_own_run_folder_then_rerun_skips_both(tmp_path, small_biggan_dir):
    model, out = str(small_biggan_dir), tmp_path / "out"
    args = ["--classes", "1", "--model", model, "--out", str(out), "--methods", "hessian,sefa",
            "--render", "--render-frames", "2", "--render-seeds", "0", "--render-format", "gif",
            "--top", "2", *TINY]
    r = batch(*args)
    assert r.exit_code == 0, r.output
    hessian = run_dir_for(out, model, 1, "goldfish")
    sefa = out / model_label(model) / "sefa" / hessian.name
    for folder in (hessian, sefa):
        assert (folder / "run.json").is_file() and (folder / "directions.safetensors").is_file()
    assert json.loads((sefa / "run.json").read_text())["method"] == "sefa"
    assert (hessian / "curve.png").is_file()
    e = manifest(out, model)[1]
    assert set(e) == set(MANIFEST_FIELDS) and e["status"] == "finished" and e["error"] is None
    assert list(e["methods"]) == ["hessian", "sefa"]
    assert e["run_folder"] == e["methods"]["hessian"]["run_folder"] == "../1-goldfish"
    assert e["methods"]["sefa"]["run_folder"] == "../sefa/1-goldfish"
    assert e["step"] == 2 and e["eval_penalty"] == e["methods"]["hessian"]["eval_penalty"]
    for name, part in e["methods"].items():
        assert part["status"] == "finished" and part["error"] is None, name
        assert isinstance(part["eval_penalty"], float) and part["versus_random"], name
        assert part["top_directions"] is None and len(part["media"]) == 2, name
        assert all((out / model_label(model) / "batch" / m).is_file() for m in part["media"])
    page = (out / model_label(model) / "batch" / "index.html").read_text()
    assert 'class="methods"' in page and ">hessian</a>" in page and ">sefa</a>" in page
    assert "1-goldfish/curve.png" in page and "sefa/1-goldfish/videos/" in page
    record = json.loads((out / model_label(model) / "batch" / "batch.json").read_text())
    assert record["methods"] == ["hessian", "sefa"]
    before = {**mtimes(hessian), **{f"sefa/{k}": v for k, v in mtimes(sefa).items()}}
    r = batch(*args)
    assert r.exit_code == 0, r.output
    assert "1 already complete" in r.output
    again = manifest(out, model)[1]
    assert again["skipped"] and again["methods"]["sefa"]["eval_penalty"] == \
        e["methods"]["sefa"]["eval_penalty"]
    assert {**mtimes(hessian), **{f"sefa/{k}": v for k, v in mtimes(sefa).items()}} == before


def test_methods_option_errors_are_one_line(tmp_path, small_biggan_dir):
    from biggan_directions.batch.batch import run_batch as run

    for args, message in ((["--methods", "hessian,pca"], "--methods: unknown method 'pca'; choose "
                                                         "from hessian, sefa, ganspace."),
                          (["--methods", "sefa", "--method", "sefa"],
                           "give --method or --methods, not both"),
                          (["--methods", " , "], "--methods: empty list")):
        r = CliRunner().invoke(cli, ["batch", "--classes", "1", "--model", str(small_biggan_dir),
                                     "--out", str(tmp_path / "out"), *args, *TINY])
        assert r.exit_code == 1 and "Traceback" not in r.output, r.output
        assert r.output.strip().splitlines() == [r.output.strip()] and message in r.output
    with pytest.raises(UserError, match="methods 'pca'"):
        run(str(small_biggan_dir), [1], DiscoverConfig(steps=2), tmp_path / "out", methods=["pca"])
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------- results carried forward
_READS: list[Path] | None = None        # while a list: files opened for reading (audit hook)


def _note_reads(event: str, args: tuple) -> None:
    if _READS is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path, mode, flags = args
        writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                  else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        if not writes:
            _READS.append(Path(os.fsdecode(path)).resolve())


sys.addaudithook(_note_reads)           # an audit hook stays for the process: it records only
                                        # while _READS is a list


def test_a_fresh_class_reads_back_nothing_its_job_wrote(tmp_path, small_biggan_dir, monkeypatch):
    """Discover -> score -> render -> manifest line -> gallery card of one fresh class: each
    stage takes what the one before returned. run.json, the directions, scores.json, the
    videos, the manifest and batch.json are written, never read: run_discover's RunResult
    carries the Run it wrote, so the job opens no run folder and reads none of its files."""
    global _READS
    from biggan_directions.batch import class_job
    from biggan_directions.batch.class_job import BatchRender
    from biggan_directions.media.render import RenderConfig
    from biggan_directions.runs import layout, scores_file
    from biggan_directions.scoring.score import ScoreConfig
    from tests.support import write_backbone_checkpoint

    torch_home = tmp_path / "torch-home"                   # a stand-in LPIPS backbone, no network
    write_backbone_checkpoint(torch_home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    out = tmp_path / "out"
    opened, scores_read = [], []
    real_open, real_read = layout.open_run, scores_file.read_scores
    monkeypatch.setattr(class_job.layout, "open_run",
                        lambda path: opened.append(Path(path)) or real_open(path))
    monkeypatch.setattr(scores_file, "read_scores",
                        lambda path: scores_read.append(Path(path)) or real_read(path))
    real_discover = class_job.run_discover

    def discover_unwatched(*args, **kwargs):            # discovery's own files are its business
        global _READS
        watched, _READS = _READS, None
        try:
            return real_discover(*args, **kwargs)
        finally:
            _READS = watched

    monkeypatch.setattr(class_job, "run_discover", discover_unwatched)
    _READS = []
    try:
        result = run_batch(str(small_biggan_dir), [1], DiscoverConfig(steps=2, batch_size=1, ndirs=4, **TINY_EVAL),
                           out, score=ScoreConfig(seeds=(0, 1)), top=2, device="cpu", progress=False,
                           render=BatchRender(seeds=(0,), video=RenderConfig(frames=2, fmt="gif")))
    finally:
        reads, _READS = _READS, None
    run = run_dir_for(out, str(small_biggan_dir), 1, "goldfish").resolve()
    entry = result.entries[0]
    assert entry["status"] == "finished" and entry["top_directions"] and len(entry["media"]) == 2
    written = [p for p in reads if out.resolve() in p.parents
               and p.name != ".lock"]                  # a folder lock checks it is still ours
    assert written == [], written                        # nothing read back, run.json included
    assert opened == [] and scores_read == []            # the Run came with discovery's result
    # what was carried is what the files say
    record = json.loads((run / "scores.json").read_text())
    assert entry["top_directions"] == record["ranking"][:2]
    page = (result.folder / "index.html").read_text()
    assert f"best 4 of 4 directions, {record['n_active']} active" in page
    from biggan_directions.batch.gallery import write_gallery
    strip = lambda text: re.sub(r"Written [\d: -]+\.", "", text)  # noqa: E731
    assert strip(write_gallery(result.folder).read_text()) == strip(page)   # the card, from files
