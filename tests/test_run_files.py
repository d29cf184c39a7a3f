"""Run-folder files: permissions, the recorded version, strict run.json reading, log writes."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from biggan_directions.foundation.errors import UserError
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.runs import files as run_files
from biggan_directions.runs.discover import run_discover
from tests.support import HiddenBasis

ROOT = Path(__file__).resolve().parents[1]
CFG = DiscoverConfig(steps=2, batch_size=2, eval_per_direction=1, eval_k=2, checkpoint_every=1)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_every_run_file_gets_the_umask_permissions(tmp_path):
    """directions.safetensors included: safetensors writes its own file 0600."""
    old = os.umask(0o022)
    try:
        run_discover(HiddenBasis(), CFG, tmp_path / "run", progress=False)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").iterdir()}
    assert set(modes) == {"directions.safetensors", "last.safetensors", "run.json", "log.csv",
                          "checkpoint.pt", "curve.png"}
    assert modes == {name: 0o644 for name in modes}


def test_run_json_records_the_checkout_version(tmp_path):
    import tomllib

    run_discover(HiddenBasis(), CFG, tmp_path, progress=False)
    record = json.loads((tmp_path / "run.json").read_text())
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert record["version"] == expected != "unknown"
    assert record["versions"]["biggan-directions"] == expected
    assert record["tool"] == "biggan-directions"


def test_version_falls_back_to_the_installed_metadata(tmp_path, monkeypatch):
    other = tmp_path / "pyproject.toml"
    other.write_text('[project]\nname = "something-else"\nversion = "9.9"\n')
    assert run_files.source_version(other) is None               # another project's file
    assert run_files.source_version(tmp_path / "missing.toml") is None
    monkeypatch.setattr(run_files, "source_version", lambda path: None)
    monkeypatch.setattr(run_files, "version", lambda name: "1.2.3")   # importlib.metadata's
    assert run_files.package_version() == "1.2.3"


def test_pyproject_version_without_tomllib(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the [project] name and version are still read."""
    import builtins

    real_import = builtins.__import__

    def no_tomllib(name, *args, **kwargs):
        if name == "tomllib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tomllib)
    path = tmp_path / "pyproject.toml"
    path.write_text('[build-system]\nrequires = ["x"]\n\n[project]\nname = "biggan-directions"\n'
                    'version = "0.4.2"\n\n[tool.x]\nversion = "7"\n')
    assert run_files.source_version(path) == "0.4.2"


@pytest.mark.parametrize("text", ['{"status": "runn', "[1, 2]", "\udcff"])
def test_corrupt_record_is_an_error_not_an_empty_record(tmp_path, text):
    path = tmp_path / "run.json"
    path.write_text(text, errors="surrogateescape")
    with pytest.raises(UserError, match="run.json: (unreadable run record|not a run record)"):
        run_files.read_record(path)
    assert run_files.read_record(tmp_path / "absent.json") == {}


def test_resume_over_a_corrupt_record_keeps_it(tmp_path):
    run_discover(HiddenBasis(), CFG, tmp_path, progress=False)
    (tmp_path / "run.json").write_text("{oops")
    more = DiscoverConfig(**{**CFG.__dict__, "steps": 3})
    with pytest.raises(UserError, match="unreadable run record"):
        run_discover(HiddenBasis(), more, tmp_path, resume=True, progress=False)
    assert (tmp_path / "run.json").read_text() == "{oops"
    assert run_files.checkpoint_step(tmp_path / "checkpoint.pt") == 2
    assert not (tmp_path / ".lock").exists()


def test_log_rows_truncate_to_the_checkpoint_and_write_errors_are_one_line(tmp_path):
    log = run_files.StepLog(tmp_path / "log.csv")
    for step in (1, 2, 3):
        log.append(step, 0.5 * step, 0.25 if step == 3 else None, step / 10)
    log.close()
    lines = (tmp_path / "log.csv").read_text().splitlines()
    assert lines == ["step,penalty,eval_penalty,seconds", "1,0.5,,0.100", "2,1,,0.200",
                     "3,1.5,0.25,0.300"]
    assert run_files.recent_penalties(tmp_path / "log.csv") == [0.5, 1.0, 1.5]
    run_files.truncate_log(tmp_path / "log.csv", 2)
    assert run_files.recent_penalties(tmp_path / "log.csv") == [0.5, 1.0]
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(UserError, match="could not write .*dir.csv"):
        run_files.StepLog(tmp_path / "dir.csv").append(1, 0.5, None, 0.1)


def test_a_log_cut_mid_line_loses_the_cut_row_with_a_note(tmp_path):
    """Killed (or out of space) while a row was written: "1" of "13,..." is not step 1."""
    path = tmp_path / "log.csv"
    log = run_files.StepLog(path)
    for step in range(1, 13):
        log.append(step, 0.5, 0.25 if step == 10 else None, step / 10)
    log.close()
    with open(path, "a", newline="") as f:
        f.write("1")
    notes: list[str] = []
    run_files.truncate_log(path, 10, notes.append)
    lines = path.read_text().splitlines()
    assert lines[0] == "step,penalty,eval_penalty,seconds" and len(lines) == 11
    assert [line.split(",")[0] for line in lines[1:]] == [str(s) for s in range(1, 11)]
    assert notes == [f"{path}: dropped the last row, cut mid-line ('1'); its last row is now "
                     f"step 10."]
    run_files.truncate_log(path, 10, notes.append)          # a whole log: kept, nothing to say
    assert len(path.read_text().splitlines()) == 11 and len(notes) == 1


def test_one_builder_of_the_run_record_and_the_directions_metadata():
    """run.json's common part and the directions file's metadata, for hessian and sefa alike."""
    import torch

    from biggan_directions.runs.record import directions_meta, run_record

    meta = {"model": "m", "class_index": 1}
    record = run_record(CFG, meta, torch.device("cpu"), status="running", started="t0")
    assert {k: record[k] for k in ("status", "method", "config", "meta", "device", "started")} == {
        "status": "running", "method": "hessian", "config": CFG.to_json(), "meta": meta,
        "device": "cpu", "started": "t0"}
    assert record["method_settings"]["steps"] == 2 and record["tool"] == "biggan-directions"
    sefa = DiscoverConfig(method="sefa")
    assert run_record(sefa, meta, torch.device("cpu"), status="finished", started="t0",
                      settings={"sefa_layers": "all"})["method_settings"] == {"sefa_layers": "all"}
    file_meta = directions_meta(CFG, meta, step=1, steps=2, init="random")
    assert file_meta == {**meta, "method": "hessian", "method_settings": record["method_settings"],
                         "init": "random", "truncation": CFG.truncation,
                         "path_size": CFG.path_size, "subspace": None, "seed": CFG.seed,
                         "step": 1, "steps": 2, "settings": CFG.to_json()}
