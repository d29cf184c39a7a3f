"""Faults around run folders: a full disk mid-run, another model under the same name on resume,
a batch without its weights, locked and garbage-locked folders, counts of one class."""
from __future__ import annotations

import csv
import errno
import io
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import UserError
from biggan_directions.foundation.lock import LOCK_FILE
from biggan_directions.models.weights import BASE_URL_ENV, HUB_REPO_ENV, save_biggan
from biggan_directions.runs import files as run_files, method_run
from tests.support import build_small_biggan

NAME = "biggan-deep-128"
TINY = ["--batch-size", "1", "--ndirs", "4", "--eval-per-direction", "1", "--eval-references", "2",
        "--device", "cpu", "--threads", "1", "-q"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(result) -> str:
    """The output of a failed command: exactly one line, `Error: ...`, no traceback; returned."""
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def run_folder(out: Path, model: str | Path, method: str = "hessian") -> Path:
    label = Path(model).name.lower().replace("_", "-")
    return out / label / ("" if method == "hessian" else method) / "207-golden-retriever"


def logged_steps(folder: Path) -> list[int]:
    with open(folder / "log.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == run_files.LOG_HEADER and all(len(r) == 4 for r in rows), rows
    return [int(r[0]) for r in rows[1:]]


# ---------------------------------------------------------------------- a full disk
@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs of its own (mounted for the test, unmounted after): a disk to fill."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.name != "posix" or shutil.which("mount") is None:
        pytest.skip("needs mount(8) to make a small file system to fill")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    yield disk
    if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(disk)], check=True)   # a file still open: detach it


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the file system at `disk` to its last byte, then free `leave` bytes of it (whole
    pages when `leave` is a multiple of the page size: the filler ends on a full page)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    chunk = 1 << 16
    while chunk:
        try:
            os.write(fd, bytes(chunk))
        except OSError as e:
            assert e.errno == errno.ENOSPC
            chunk //= 2
    os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def left_behind(disk: Path) -> list[str]:
    """Temporary files and locks anywhere on the disk."""
    return [str(p) for p in disk.rglob("*") if ".tmp" in p.name or p.name == LOCK_FILE
            or p.name.startswith(".write-test")]


@pytest.mark.parametrize("record_fits", [True, False], ids=["run.json-written", "disk-full-to-the-byte"])
def test_full_disk_mid_run_is_one_line_keeps_the_checkpoint_and_resumes(small_disk, small_biggan_dir,
                                                                        monkeypatch, record_fits):
    real_save = run_files.save_checkpoint
    page = os.sysconf("SC_PAGESIZE")

    def save(path, state):                          # the checkpoint after step 2 finds it full
        if state["step"] > 2:
            record_pages = -(-(path.parent / "run.json").stat().st_size // page) + 1
            leave = record_pages * page if record_fits else 0     # room for run.json only
            buffer = io.BytesIO()
            torch.save(state, buffer)
            assert len(buffer.getvalue()) > leave + page         # the checkpoint cannot fit
            fill(small_disk, leave)
        real_save(path, state)

    monkeypatch.setattr(run_files, "save_checkpoint", save)
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--steps", "4",
            "--checkpoint-every", "2", *TINY, "--out", str(small_disk)]
    line = one_error_line(invoke(*args))
    folder = run_folder(small_disk, small_biggan_dir)
    assert line.startswith(f"Error: could not write {folder / 'checkpoint.pt'} "
                           f"(No space left on device)")
    assert "the last good checkpoint (step 2) is kept" in line and "--resume" in line
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["step"] == 2
    record = json.loads((folder / "run.json").read_text())
    if record_fits:
        assert "run.json says 'failed'" in line
        assert record["status"] == "failed" and "No space left on device" in record["error"]
    else:
        assert "run.json could not be updated (No space left on device)" in line
        assert record["status"] == "running" and record["step"] == 2
    assert left_behind(small_disk) == []

    (small_disk / "filler").unlink()                   # space freed: the run continues
    monkeypatch.setattr(run_files, "save_checkpoint", real_save)
    resumed = invoke(*args, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "finished at step 4" in resumed.output
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"
    steps = logged_steps(folder)
    assert steps == sorted(set(steps)) and steps[-3:] == [2, 3, 4]


@pytest.mark.parametrize("full_at", ["directions", "record"])
def test_full_disk_in_sefa_is_one_line_and_leaves_nothing(small_disk, small_biggan_dir, monkeypatch,
                                                          full_at):
    if full_at == "directions":                       # safetensors' own write finds it full
        real = method_run.find_directions

        def then_full(*a, **kw):
            found = real(*a, **kw)
            fill(small_disk)
            return found
        monkeypatch.setattr(method_run, "find_directions", then_full)
    else:                                             # the directions fit, run.json does not
        real = method_run.write_json

        def full_first(*a, **kw):
            fill(small_disk)
            return real(*a, **kw)
        monkeypatch.setattr(method_run, "write_json", full_first)
    result = invoke("discover", "-c", "207", "--model", str(small_biggan_dir), "--method", "sefa",
                    *TINY[2:], "--out", str(small_disk))      # no --batch-size: a hessian option
    line = one_error_line(result)
    folder = run_folder(small_disk, small_biggan_dir, "sefa")
    name = "directions.safetensors" if full_at == "directions" else "run.json"
    assert line.startswith(f"Error: could not write {folder / name} (No space left on device); "
                           f"no run is left in {folder}")
    assert "SafetensorError" not in result.output
    assert [p.name for p in small_disk.iterdir()] == ["filler"]    # no folder, no partial file


# ---------------------------------------------------------------------- resume on other weights
def test_resume_refuses_other_weights_under_the_same_name(tmp_path, small_biggan_dir):
    store, out = tmp_path / "store", tmp_path / "out"
    shutil.copytree(small_biggan_dir, store / NAME)
    args = ["discover", "-c", "207", "--model", NAME, "--weights-dir", str(store), *TINY,
            "--out", str(out)]
    first = invoke(*args, "--steps", "2")
    assert first.exit_code == 0, first.output
    folder = run_folder(out, NAME)
    recorded = json.loads((folder / "run.json").read_text())["meta"]["model_weights"]
    assert recorded["file"] == "model.safetensors" and len(recorded["sha256"]) == 64

    shutil.rmtree(store / NAME)                         # another model under the same name
    save_biggan(build_small_biggan(seed=1), store / NAME)
    line = one_error_line(invoke(*args, "--steps", "4", "--resume"))
    assert line.startswith(f"Error: {folder}: the run was started with {NAME} weights "
                           f"model.safetensors sha256 {recorded['sha256'][:12]}..., but {NAME} "
                           f"is now weights model.safetensors sha256 ")
    assert "--overwrite" in line
    assert json.loads((folder / "run.json").read_text())["step"] == 2          # untouched

    shutil.rmtree(store / NAME)                          # the weights it began with: continues
    shutil.copytree(small_biggan_dir, store / NAME)
    again = invoke(*args, "--steps", "3", "--resume")
    assert again.exit_code == 0 and "finished at step 3" in again.output, again.output

    record = json.loads((folder / "run.json").read_text())   # a run from before the field
    del record["meta"]["model_weights"]
    (folder / "run.json").write_text(json.dumps(record))
    old = invoke(*args, "--steps", "4", "--resume")
    assert old.exit_code == 0 and "finished at step 4" in old.output, old.output
    assert "does not record which weights the run began with" in old.output
    assert json.loads((folder / "run.json").read_text())["meta"]["model_weights"] == recorded


# ---------------------------------------------------------------------- log.csv cut mid-line
def test_resume_repairs_a_log_cut_mid_line_with_a_note(tmp_path, small_biggan_dir):
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), *TINY, "--out", str(tmp_path)]
    assert invoke(*args, "--steps", "3").exit_code == 0
    folder = run_folder(tmp_path, small_biggan_dir)
    log = folder / "log.csv"
    data = log.read_bytes()
    log.write_bytes(data[:data.rindex(b"\n", 0, len(data) - 1) + 1] + b"3,0.0")     # row 3 cut
    resumed = invoke(*args, "--steps", "5", "--resume")
    assert resumed.exit_code == 0 and "finished at step 5" in resumed.output, resumed.output
    assert (f"{log}: dropped the last row, cut mid-line ('3,0.0'); its last row is now step 3 "
            f"(the checkpoint's row of that step is written back)") in resumed.output
    steps = logged_steps(folder)                         # whole rows only, in order, none lost
    assert steps == list(range(6))


# ---------------------------------------------------------------------- batch
def test_batch_without_its_weights_creates_nothing(tmp_path, monkeypatch):
    with socket.socket() as s:                           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{port}/biggan")
    monkeypatch.setenv(HUB_REPO_ENV, "")
    out = tmp_path / "out"
    result = invoke("batch", "--classes", "1", "--weights-dir", str(tmp_path / "store"), "--steps",
                    "2", *TINY, "--out", str(out))
    line = one_error_line(result)
    assert f"{NAME} is not in {tmp_path / 'store' / NAME} and could not be downloaded" in line
    assert not out.exists() and not (tmp_path / "store").exists()


# ---------------------------------------------------------------------- locks
def test_a_locked_run_names_its_holder_before_the_model_loads(tmp_path, small_biggan_dir, live_pid,
                                                             monkeypatch):
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--steps", "1", *TINY,
            "--out", str(tmp_path)]
    assert invoke(*args).exit_code == 0
    folder = run_folder(tmp_path, small_biggan_dir)
    (folder / LOCK_FILE).write_text(json.dumps({"pid": live_pid, "host": socket.gethostname(),
                                                "started": "2026-01-01T00:00:00+0000"}))
    import biggan_directions.runs.class_runs as discover    # where discover_classes looks it up

    loads = []

    def load(*a, **kw):
        loads.append(a)
        raise AssertionError("the model was loaded for a locked run")
    monkeypatch.setattr(discover, "load_biggan", load)
    for extra in ([], ["--resume"], ["--overwrite"]):
        line = one_error_line(invoke(*args, *extra))
        assert f"{folder}: this run is in use by process {live_pid} on {socket.gethostname()}" \
            in line, extra
        assert "pass --resume" not in line
    assert loads == []
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == live_pid


# ---------------------------------------------------------------------- counts of classes
def test_one_class_is_counted_as_one_class(tmp_path):
    from biggan_directions.cli.batch import format_summary
    from biggan_directions.batch.gallery import write_gallery

    entry = {"class_index": 1, "class_name": "goldfish", "wnid": "n01443537", "status": "failed",
             "error": "boom"}
    assert format_summary([entry]).splitlines()[-1] == "1 class: 1 failed"
    assert format_summary([entry, {**entry, "class_index": 2}]).splitlines()[-1] == \
        "2 classes: 2 failed"
    page = write_gallery(tmp_path, [entry]).read_text()
    assert "1 class: 1 failed" in page and "1 classes" not in page


# ---------------------------------------------------------------------- resume equals a whole run
def _rows(folder: Path) -> list[list[str]]:
    """log.csv's rows without the seconds column (timings differ between runs)."""
    with open(folder / "log.csv", newline="") as f:
        return [r[:3] for r in csv.reader(f)]


RESUME_CFG = dict(steps=30, batch_size=2, eval_every=10, checkpoint_every=25, eval_per_direction=2,
                  eval_k=2, eval_references=2, init="random", lr=0.05, seed=5)


class _Killed(BaseException):
    """Stands for SIGKILL: nothing of the run's own handling runs (no checkpoint is written)."""


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> tuple[list[list[str]], dict]:
    """The uninterrupted RESUME_CFG run the interrupted ones are compared with: (its log.csv
    rows, its run.json), run once for the module (the tests only read them)."""
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.runs.discover import run_discover
    from tests.support import HiddenBasis

    folder = tmp_path_factory.mktemp("whole") / "run"
    run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, progress=False)
    return _rows(folder), json.loads((folder / "run.json").read_text())


def test_killed_before_the_first_checkpoint_resumes_into_the_whole_runs_log(tmp_path, monkeypatch,
                                                                            whole_run):
    """SIGKILL at step 17 (checkpoints every 25: only step 0's exists): the resumed log keeps
    the start's row (step 0) and equals an uninterrupted run's, row for row."""
    from biggan_directions.methods import hessian
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.runs.discover import run_discover
    from tests.support import HiddenBasis

    whole, whole_record = whole_run
    real_step = hessian.Discovery.train_step

    def killed_at_17(self):
        if self.step == 17:
            raise _Killed
        return real_step(self)

    monkeypatch.setattr(hessian.Discovery, "train_step", killed_at_17)
    folder = tmp_path / "killed"
    with pytest.raises(_Killed):
        run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, progress=False)
    assert [r[0] for r in _rows(folder)[1:]] == [str(s) for s in range(18)]   # rows 0..17 logged
    monkeypatch.setattr(hessian.Discovery, "train_step", real_step)
    run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, resume=True, progress=False)
    assert _rows(folder) == whole
    record = json.loads((folder / "run.json").read_text())
    for key in ("final_penalty", "eval_penalty", "best_step", "last_eval_penalty", "test_eval"):
        assert record[key] == whole_record[key], key


def test_sigterm_with_the_log_row_cut_resumes_into_the_whole_runs_log_and_record(tmp_path,
                                                                                monkeypatch,
                                                                                whole_run):
    """SIGTERM at step 15 and log.csv's row 15 cut mid-line: the checkpoint keeps that row and
    the recent penalties, so the resumed log and run.json equal an uninterrupted run's."""
    import threading
    from contextlib import contextmanager

    from biggan_directions.methods import hessian
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.runs import discover as discover_module
    from biggan_directions.runs.discover import run_discover
    from tests.support import HiddenBasis

    whole, whole_record = whole_run
    event = threading.Event()

    @contextmanager
    def flag():
        yield event

    real_step = hessian.Discovery.train_step

    def term_after_15(self):
        value = real_step(self)
        if self.step == 15:
            event.set()                                # SIGTERM arrives during step 15
        return value

    monkeypatch.setattr(discover_module, "stop_flag", flag)
    monkeypatch.setattr(hessian.Discovery, "train_step", term_after_15)
    folder = tmp_path / "term"
    with pytest.raises(hessian.DiscoveryInterrupted):
        run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, progress=False)
    log = folder / "log.csv"
    data = log.read_bytes()
    log.write_bytes(data[:-6])                          # row 15 cut mid-line
    monkeypatch.setattr(hessian.Discovery, "train_step", real_step)
    event.clear()
    run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, resume=True, progress=False)
    assert _rows(folder) == whole
    record = json.loads((folder / "run.json").read_text())
    assert record["final_penalty"] == whole_record["final_penalty"]
    assert record["test_eval"] == whole_record["test_eval"]


def test_resume_writes_only_the_tools_own_keys_into_run_json(tmp_path, monkeypatch, whole_run):
    """run.json edited by hand (junk keys added) before --resume: the resumed record holds the
    tool's keys only, the same keys an uninterrupted run writes (resumed_at_steps aside)."""
    from biggan_directions.methods import hessian
    from biggan_directions.methods.config import DiscoverConfig
    from biggan_directions.runs.discover import run_discover
    from tests.support import HiddenBasis

    _, whole_record = whole_run
    cfg = DiscoverConfig(**{**RESUME_CFG, "steps": 26})
    folder = tmp_path / "edited"
    run_discover(HiddenBasis(), cfg, folder, progress=False)          # checkpoint at 25 and 26
    record = json.loads((folder / "run.json").read_text())
    record.update(junk=1, **{"my note": "keep me?"})
    (folder / "run.json").write_text(json.dumps(record))
    run_discover(HiddenBasis(), DiscoverConfig(**RESUME_CFG), folder, resume=True, progress=False)
    resumed = json.loads((folder / "run.json").read_text())
    assert "junk" not in resumed and "my note" not in resumed
    assert set(resumed) == set(whole_record)
    assert resumed["resumed_at_steps"] == [26] and resumed["started"] == record["started"]


def test_a_log_that_cannot_be_written_leaves_no_empty_file(small_disk):
    """The disk full before the first row (a batch's next class): no 0-byte log.csv is left."""
    fill(small_disk)
    log = run_files.StepLog(small_disk / "log.csv")
    with pytest.raises(UserError, match="No space left on device"):
        log.append(0, None, 1.0, 0.0)
    log.close()
    assert not (small_disk / "log.csv").exists()
