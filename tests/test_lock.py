"""One process per run folder: a live holder is named, a stale lock is replaced and reported."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import UserError
from biggan_directions.foundation.lock import LOCK_FILE, FolderLock
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.runs.discover import run_discover
from tests.support import TINY_EVAL_ARGS, HiddenBasis

CFG = DiscoverConfig(steps=2, batch_size=2, eval_per_direction=1, eval_k=2)


def write_lock(folder: Path, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    path.write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                "started": "2026-01-01T00:00:00+0000"}))
    return path


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_process_on_a_run_folder_is_refused_naming_the_holder(tmp_path, live_pid):
    lock = write_lock(tmp_path / "run", live_pid)
    with pytest.raises(UserError, match=rf"in use by process {live_pid} on {socket.gethostname()}"):
        run_discover(HiddenBasis(), CFG, tmp_path / "run", progress=False)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE]   # nothing written
    assert json.loads(lock.read_text())["pid"] == live_pid                      # still theirs


def test_stale_lock_is_replaced_and_reported(tmp_path, dead_pid):
    write_lock(tmp_path / "run", dead_pid)
    notes: list[str] = []
    result = run_discover(HiddenBasis(), CFG, tmp_path / "run", progress=False, notify=notes.append)
    assert result.status == "finished" and result.step == 2
    assert len(notes) == 1 and f"stale lock of process {dead_pid}" in notes[0]
    assert not (tmp_path / "run" / LOCK_FILE).exists()            # released at the end


def test_lock_is_held_during_the_run_and_released_after_an_error(tmp_path):
    seen = {}

    def G(z):
        seen.setdefault("lock", json.loads((tmp_path / LOCK_FILE).read_text()))
        return HiddenBasis()(z)
    G.z_dim = 8
    run_discover(G, CFG, tmp_path, progress=False)
    assert seen["lock"]["pid"] == __import__("os").getpid()
    assert not (tmp_path / LOCK_FILE).exists()
    with pytest.raises(UserError, match="already exists"):        # refused inside the lock
        run_discover(G, CFG, tmp_path, progress=False)
    assert not (tmp_path / LOCK_FILE).exists()


def test_cli_names_the_holder_and_reports_a_stale_lock(tmp_path, small_biggan_dir, live_pid, dead_pid):
    folder = tmp_path / Path(small_biggan_dir).name.lower().replace("_", "-") / "207-golden-retriever"
    args = ["discover", "-c", "207", "--model", str(small_biggan_dir), "--steps", "1",
            "--batch-size", "1", "--ndirs", "2", "--out", str(tmp_path), "--threads", "1", "-q",
            *TINY_EVAL_ARGS]
    write_lock(folder, live_pid)
    busy = CliRunner().invoke(cli, args)
    assert busy.exit_code == 1 and "Traceback" not in busy.output
    assert len(busy.output.strip().splitlines()) == 1
    assert f"process {live_pid}" in busy.output
    write_lock(folder, dead_pid)
    stale = CliRunner().invoke(cli, args)
    assert stale.exit_code == 0, stale.output
    assert f"stale lock of process {dead_pid}" in stale.output
    assert "finished at step 1" in stale.output


def test_folder_lock_is_reentrant_in_one_process(tmp_path):
    with FolderLock(tmp_path, "run") as outer:
        with FolderLock(tmp_path, "run"):
            assert (tmp_path / LOCK_FILE).exists()
        assert (tmp_path / LOCK_FILE).exists() and outer.stale is None
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.parametrize("garbage", [b"\x00\xff not json", b"{}", b'{"pid": "12", "host": 3}', b""])
def test_garbage_lock_file_is_reported_as_unreadable_and_replaced(tmp_path, garbage):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_FILE).write_bytes(garbage)
    notes: list[str] = []
    result = run_discover(HiddenBasis(), CFG, tmp_path / "run", progress=False, notify=notes.append)
    assert result.status == "finished" and result.step == 2
    assert notes == [f"{tmp_path / 'run'}: replaced an unreadable lock file "
                     f"{tmp_path / 'run' / LOCK_FILE} (not a lock this tool wrote, or cut short); "
                     f"treated as stale."]
    assert not (tmp_path / "run" / LOCK_FILE).exists()


def test_a_failure_inside_the_lock_removes_the_folders_it_made_while_empty(tmp_path):
    with pytest.raises(UserError):
        with FolderLock(tmp_path / "out" / "model" / "run", "run"):
            raise UserError("refused before writing")
    assert list(tmp_path.iterdir()) == []                   # no folder for a failed command
    with pytest.raises(UserError):
        with FolderLock(tmp_path / "out" / "run", "run"):
            (tmp_path / "out" / "run" / "kept.txt").write_text("work")
            raise UserError("failed after writing")
    assert (tmp_path / "out" / "run" / "kept.txt").is_file()       # work is never removed
    assert not (tmp_path / "out" / "run" / LOCK_FILE).exists()


def test_a_lock_without_its_start_time_says_the_time_is_unknown(tmp_path, live_pid):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": live_pid, "host": socket.gethostname()}))
    with pytest.raises(UserError) as caught:
        run_discover(HiddenBasis(), CFG, folder, progress=False)
    message = str(caught.value)
    assert f"in use by process {live_pid} on {socket.gethostname()} (start time unknown)" in message
    assert "None" not in message
