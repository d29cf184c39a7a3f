"""Media files on a full disk: render (MP4, GIF, PNG strip) and compare fail with one line and leave nothing.

The disk is a real one: a 32 KiB tmpfs mounted for the test (ffmpeg is a subprocess, so a
patched Python write would not reach it). Without the right to mount, the tests are skipped.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from biggan_directions.cli import cli
from tests import support

FULL = "No space left on device"


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 32 KiB tmpfs: room for a few small files, not for a video, a strip or a comparison."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(folder)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"a full disk needs a small tmpfs, and mount could not run ({e})")
    if done.returncode != 0:
        pytest.skip(f"a full disk needs a small tmpfs, and mounting one is not permitted here "
                    f"({done.stderr.strip() or done.returncode})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


def make_run(folder: Path, model_dir: Path, seed: int = 1, ndirs: int = 8) -> Path:
    return support.make_run(folder, model_dir, ndirs=ndirs, seed=seed, truncation=0.5,
                            path_size=3.0).parent


def one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert isinstance(result.exception, (SystemExit, type(None))), repr(result.exception)  # a traceback
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def render(*args):
    return CliRunner().invoke(cli, ["render", *map(str, args), "--device", "cpu", "-q"])


def test_mp4_on_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, small_disk, small_biggan_dir):
    """ffmpeg fails on the trailer (its exit status), or while frames go in: either way one
    line naming the file and the cause, no temporary file, and the folder it made is gone."""
    run = make_run(tmp_path / "run", small_biggan_dir)
    out = small_disk / "videos"
    result = render(run, "--out", out, "--dirs", "0-7", "--seeds", "0-3", "--frames", 30)
    line = one_error_line(result)
    target = out / "grid_dirs0-7_seeds0-3_p3.0_loop.mp4"
    assert str(target) in line and FULL in line and "could not write the video" in line
    assert not out.exists()
    assert list(small_disk.iterdir()) == []


def test_mp4_on_a_full_disk_keeps_the_users_file(tmp_path, small_disk, small_biggan_dir):
    run = make_run(tmp_path / "run", small_biggan_dir)
    target = small_disk / "grid_dirs0-7_seeds0-3_p3.0_loop.mp4"
    target.write_bytes(b"the user's video")
    result = render(run, "--out", small_disk, "--dirs", "0-7", "--seeds", "0-3", "--frames", 30,
                    "--overwrite")
    line = one_error_line(result)
    assert str(target) in line and FULL in line
    assert [p.name for p in small_disk.iterdir()] == [target.name]      # no temporary file
    assert target.read_bytes() == b"the user's video"


def test_gif_on_a_full_disk_is_one_line_and_leaves_no_file(tmp_path, small_disk, small_biggan_dir):
    run = make_run(tmp_path / "run", small_biggan_dir)
    out = small_disk / "videos"
    line = one_error_line(render(run, "--out", out, "--format", "gif", "--frames", 30))
    assert "grid_dirs0-7_seeds0-5_p3.0_loop.gif" in line and FULL in line
    assert list(small_disk.iterdir()) == []


def test_strip_on_a_full_disk_is_one_line_and_leaves_no_folder(tmp_path, small_disk,
                                                               small_biggan_dir):
    run = make_run(tmp_path / "run", small_biggan_dir)
    out = small_disk / "new" / "strips"
    line = one_error_line(render(run, "--out", out, "--strip", "--strip-steps", 9))
    assert str(out / "strip_dirs0-7_seed0_p3.0.png") in line and FULL in line
    assert list(small_disk.iterdir()) == []                             # neither folder stays


def test_compare_on_a_full_disk_is_one_line_and_leaves_no_folder(tmp_path, small_disk,
                                                                 small_biggan_dir, monkeypatch):
    from biggan_directions.cli import COMMANDS

    monkeypatch.setitem(COMMANDS, "compare", "compare")
    runs = [make_run(tmp_path / f"run{i}", small_biggan_dir, seed=i, ndirs=2) for i in (1, 2)]
    out = small_disk / "cmp"
    result = CliRunner().invoke(cli, ["compare", *map(str, runs), "--out", str(out), "--top", "2",
                                      "--device", "cpu", "-q"])
    line = one_error_line(result)
    assert str(out) in line and FULL in line
    assert list(small_disk.iterdir()) == []                             # no empty folder left
