"""The scores files: written both or neither, read back by the one reader, checked before work."""
from __future__ import annotations

import json
import math

import pytest
import torch

from biggan_directions.foundation.errors import UserError
from biggan_directions.runs.layout import Run
from biggan_directions.runs.scores_file import (check_scores_writable, read_ranking, read_scores,
                                                run_scores, write_run_scores, write_scores)
from biggan_directions.scoring.score import ScoreResult, rank_directions


@pytest.fixture
def result() -> ScoreResult:
    """3 directions over 2 seeds; direction 1 inactive (its smoothness / consistency undefined)."""
    endpoint = torch.tensor([[0.20, 0.30], [0.0, 0.001], [0.50, 0.40]], dtype=torch.float64)
    effect = endpoint.mean(1)
    inactive = effect < 0.01
    nan = torch.full_like(effect, math.nan)
    return ScoreResult(endpoint=endpoint, centre=endpoint / 4, path=endpoint / 4, effect=effect,
                       effect_centre=effect / 4,
                       smoothness=torch.where(inactive, nan, torch.tensor([1.5, 0.0, 1.2], dtype=torch.float64)),
                       consistency=torch.where(inactive, nan, endpoint.std(1) / effect),
                       inactive=inactive, ranking=rank_directions(effect, inactive),
                       threshold=0.01, seeds=[0, 1], steps=9, path_size=6.0)


def test_write_and_read_back(tmp_path, result):
    assert result.ranking == [2, 0, 1]
    js, cs = write_scores(tmp_path / "scores.json", tmp_path / "scores.csv", result, {"steps": 9})
    rec = read_scores(tmp_path)
    json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert rec["ranking"] == [2, 0, 1] and rec["n_inactive"] == 1 and "meaningful" not in rec
    assert rec["directions"][1]["smoothness"] is None and rec["directions"][1]["inactive"] is True
    assert rec["directions"][0]["effect"] == pytest.approx(0.25, rel=1e-12)
    assert rec["summary"]["effect"]["max"] == pytest.approx(0.45, rel=1e-12)
    assert rec["summary"]["smoothness"]["min"] == pytest.approx(1.2, rel=1e-12)  # active only
    rows = cs.read_text().splitlines()
    assert rows[0].startswith("rank,direction,effect")
    assert [int(line.split(",")[1]) for line in rows[1:]] == [2, 0, 1]
    assert rows[3].split(",")[4] == ""                       # undefined smoothness: empty cell
    assert oct(js.stat().st_mode & 0o777) == oct(cs.stat().st_mode & 0o777)
    with pytest.raises(UserError, match="--overwrite"):
        write_scores(js, cs, result, {})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a biggan-directions scores file"):
        read_scores(tmp_path / "bad.json")


def test_read_ranking_checks_it_fits_the_run(tmp_path, result):
    run = Run(tmp_path, tmp_path / "directions.safetensors", torch.zeros(3, 8), {})
    write_scores(*run.scores_paths, result, {})
    assert read_ranking(run) == [2, 0, 1] and read_ranking(run, top=2) == [2, 0]
    with pytest.raises(UserError, match="ranks only 3"):
        read_ranking(run, top=4)
    bigger = Run(tmp_path, run.directions_path, torch.zeros(2, 8), {})
    with pytest.raises(UserError, match="does not match"):
        read_ranking(bigger)


def test_a_run_holds_its_scores_once_written_or_read(tmp_path, result, monkeypatch):
    """A Run knows whether it is scored; the scores it wrote or read once are held, not re-read."""
    from biggan_directions.runs import scores_file
    run = Run(tmp_path, tmp_path / "directions.safetensors", torch.zeros(3, 8), {})
    assert not run.scored and run.scores_paths == (tmp_path / "scores.json", tmp_path / "scores.csv")
    assert write_run_scores(run, result, {"steps": 9}) == run.scores_paths
    assert run.scored and run.scores == read_scores(tmp_path)     # held as the file reads back
    assert run.scores["directions_file"] == str(run.directions_path)
    reads = []
    real = scores_file.read_scores
    monkeypatch.setattr(scores_file, "read_scores", lambda path: reads.append(path) or real(path))
    assert read_ranking(run, top=2) == [2, 0] and reads == []
    again = Run(tmp_path, run.directions_path, torch.zeros(3, 8), {})     # a run opened anew
    assert again.scored and again.scores is None
    assert read_ranking(again) == [2, 0, 1] and run_scores(again)["n_active"] == 2
    assert reads == [tmp_path / "scores.json"]                 # read once, then held
    bare = Run(None, tmp_path / "mine.safetensors", torch.zeros(3, 8), {})
    assert bare.scores_paths == (tmp_path / "mine.scores.json", tmp_path / "mine.scores.csv")


def test_unwritable_targets_are_refused_before_work(tmp_path, monkeypatch):
    js, cs = tmp_path / "scores.json", tmp_path / "scores.csv"
    js.mkdir()                                               # a folder where the file goes
    with pytest.raises(UserError, match="is not a file") as e:
        check_scores_writable(js, cs, overwrite=True)
    assert "\n" not in str(e.value)
    js.rmdir()
    check_scores_writable(js, cs, overwrite=False)           # nothing there: fine
    import tempfile

    def refused(*args, **kwargs):                            # what a read-only folder answers
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(UserError, match="Permission denied") as e:
        check_scores_writable(js, cs, overwrite=False)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_write_failing_midway_leaves_both_old_files(tmp_path, result, monkeypatch):
    js, cs = write_scores(tmp_path / "scores.json", tmp_path / "scores.csv", result, {"old": 1})
    before = js.read_bytes(), cs.read_bytes()
    real_open = open

    def full_disk_on_csv(file, mode="r", *args, **kwargs):   # the CSV's temp file hits ENOSPC
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and str(file).endswith(".csv"):
            handle.close()
            raise OSError(28, "No space left on device")
        return handle
    monkeypatch.setattr("builtins.open", full_disk_on_csv)
    with pytest.raises(UserError, match="No space left on device") as e:
        write_scores(js, cs, result, {"new": 1}, overwrite=True)
    monkeypatch.undo()
    assert "\n" not in str(e.value) and str(js) in str(e.value)
    assert (js.read_bytes(), cs.read_bytes()) == before      # neither file replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "scores.json"]  # no temp left
    assert read_scores(js)["settings"] == {"old": 1}
