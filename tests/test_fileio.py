"""Atomic writes: the target is replaced whole or not at all."""
from __future__ import annotations

import json
import os
import stat

import pytest

from biggan_directions.foundation.fileio import atomic_path, write_json, write_text


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "scores.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["scores.json"]


def test_success_replaces_with_umask_permissions(tmp_path):
    target = tmp_path / "deep" / "run.json"
    write_json(target, {"b": float("nan"), "a": (1, float("inf")), "c": 0.5})
    assert json.loads(target.read_text()) == {"a": [1, None], "b": None, "c": 0.5}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    write_text(target, "x\r\ny")
    assert target.read_bytes() == b"x\r\ny"
    assert sorted(os.listdir(target.parent)) == ["run.json"]


def test_the_next_write_into_a_folder_removes_temporaries_whose_writer_is_gone(tmp_path):
    """SIGKILL mid-write leaves .<name>.<host>-<pid>-<hex>.tmp.<ext>; the next write into that
    folder removes it when its process is gone, and never a live writer's or another host's."""
    import subprocess
    import sys

    from biggan_directions.foundation import fileio

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = fileio.temp_beside(tmp_path / "grid.gif")          # this process's own naming
        host = first.name.split(".")[2].split("-")[0]
        first.unlink()
        stale = tmp_path / f".grid_d0-3.{host}-{gone.pid}-163573d0.tmp.gif"
        running = tmp_path / f".grid_d0-3.{host}-{live.pid}-0badcafe.tmp.gif"
        elsewhere = tmp_path / f".grid_d0-3.abcdef-{gone.pid}-00000000.tmp.gif"
        user = tmp_path / "my.tmp.gif"
        for p in (stale, running, elsewhere, user):
            p.write_bytes(b"GIF89a")
        fileio.write_text(tmp_path / "other.txt", "x")            # any write into the folder
        assert not stale.exists()
        assert running.exists() and elsewhere.exists() and user.exists()
        assert (tmp_path / "other.txt").read_text() == "x"
    finally:
        live.kill()
        live.wait()
