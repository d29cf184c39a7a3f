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
