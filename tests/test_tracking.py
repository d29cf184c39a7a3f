"""TensorBoard events (and W&B) of discovery runs: read back with TensorBoard's own reader, equal to
log.csv row for row, each step once across a resume, the strip's size, and logging that fails
without costing the run."""
from __future__ import annotations

import csv
import errno
import glob
import io
import json
import os
import struct
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from biggan_directions.cli import cli
from biggan_directions.media.frames import frame_size
from biggan_directions.methods.config import DiscoverConfig
from biggan_directions.models.generator import BigGANGenerator
from biggan_directions.runs.discover import run_discover
from biggan_directions.tracking import training
from biggan_directions.tracking.config import STRIP_STEPS, TrackingConfig
from biggan_directions.tracking.training import SCALARS, STRIP_TAG, TrainingTracker
from biggan_directions.tracking.wandb_record import WandbRecord, first_free_step, init_args
from tests.support import write_backbone_checkpoint

FAST = dict(batch_size=2, eval_per_direction=1, eval_k=2, eval_references=2, ndirs=10)
BUDGET = ["--steps", "6", "--batch-size", "2", "--eval-per-direction", "1", "--eval-k", "2",
          "--eval-references", "2", "--ndirs", "10", "--eval-every", "3", "-q"]


def events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0,
                                                       "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def log_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def scalar_steps(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def assert_matches_log(acc: EventAccumulator, rows: list[dict[str, str]]) -> None:
    """penalty/train and penalty/eval hold exactly log.csv's rows (values to float32 and 6 digits)."""
    for column, tag in (("penalty", SCALARS["penalty"]), ("eval_penalty", SCALARS["eval_penalty"])):
        expected = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
        got = scalar_steps(acc, tag)
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        for (_, a), (_, b) in zip(got, expected):
            assert a == pytest.approx(b, rel=1e-5, abs=1e-12), tag


@pytest.fixture
def G(small_biggan):
    return BigGANGenerator(small_biggan, 207, 1.0)


def test_events_equal_log_csv_row_for_row_with_strips_and_hparams(G, tmp_path):
    cfg = DiscoverConfig(steps=6, eval_every=3, **FAST)
    run_discover(G, cfg, tmp_path / "run", meta={"model": "small", "class_index": 207},
                 progress=False, on_event=TrainingTracker(TrackingConfig(log_directions=8)))
    acc = events(tmp_path / "run" / "tb")
    rows = log_rows(tmp_path / "run")
    assert [int(r["step"]) for r in rows] == list(range(7))
    assert_matches_log(acc, rows)
    for name in ("best", "lr", "images_per_second", "eval_share"):
        assert SCALARS[name] in acc.Tags()["scalars"]
    assert [s for s, _ in scalar_steps(acc, SCALARS["lr"])] == list(range(1, 7))
    best = scalar_steps(acc, SCALARS["best"])
    assert [v for _, v in best] == sorted((v for _, v in best), reverse=True)   # never rises
    # one strip per evaluation (steps 0, 3, 6), 8 rows x STRIP_STEPS columns of 32 px + labels
    images = acc.Images(STRIP_TAG)
    assert [e.step for e in images] == [0, 3, 6]
    height, width = frame_size(8, STRIP_STEPS, 32, True)
    for e in images:
        decoded = Image.open(io.BytesIO(e.encoded_image_string))
        assert (decoded.height, decoded.width) == (e.height, e.width) == (height, width)
    # the hparams table's row: the run's settings and the final and test-set evaluations
    assert set(acc.PluginTagToContent("hparams")) >= {"_hparams_/session_start_info"}
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    final = scalar_steps(acc, "hparam/eval_penalty")
    assert final[0][0] == 6 and final[0][1] == pytest.approx(record["eval_penalty"], rel=1e-6)
    test = scalar_steps(acc, "hparam/test_penalty")
    assert test[0][1] == pytest.approx(record["test_eval"]["value"], rel=1e-6)


class Crash(Exception):
    """The process dying after a step was logged, past its last checkpoint."""


def test_resumed_run_shows_each_step_exactly_once(G, tmp_path):
    cfg = DiscoverConfig(steps=8, eval_every=3, checkpoint_every=4, **FAST)
    folder = tmp_path / "run"
    tracker = TrainingTracker(TrackingConfig(log_directions=2))

    def dies_after_step_6(kind, **fields):
        tracker(kind, **fields)
        if kind == "row" and fields["step"] == 6:
            raise Crash                                 # steps 5 and 6 logged, checkpoint at 4

    with pytest.raises(Crash):
        run_discover(G, cfg, folder, progress=False, on_event=dies_after_step_6)
    before = scalar_steps(events(folder / "tb"), SCALARS["penalty"])
    assert [s for s, _ in before] == list(range(1, 7))
    run_discover(G, cfg, folder, resume=True, progress=False,
                 on_event=TrainingTracker(TrackingConfig(log_directions=2)))
    acc = events(folder / "tb")
    rows = log_rows(folder)
    assert [int(r["step"]) for r in rows] == list(range(9))
    steps = [s for s, _ in scalar_steps(acc, SCALARS["penalty"])]
    assert steps == list(range(1, 9))                   # 5 and 6 once, from the resumed run
    assert_matches_log(acc, rows)
    assert [e.step for e in acc.Images(STRIP_TAG)] == [0, 3, 6, 8]     # the last step too


def test_cli_writes_events_and_no_tensorboard_writes_none(small_biggan_dir, tmp_path):
    runner = CliRunner()
    base = ["discover", "-c", "207", "--model", str(small_biggan_dir), *BUDGET]
    on = runner.invoke(cli, [*base, "--out", str(tmp_path / "on")])
    assert on.exit_code == 0, on.output
    off = runner.invoke(cli, [*base, "--out", str(tmp_path / "off"), "--no-tensorboard"])
    assert off.exit_code == 0, off.output
    (run_on,) = (tmp_path / "on").glob("*/207-*")
    (run_off,) = (tmp_path / "off").glob("*/207-*")
    assert_matches_log(events(run_on / "tb"), log_rows(run_on))
    assert not (run_off / "tb").exists()
    assert log_rows(run_off)[-1]["step"] == "6"


def test_unwritable_tb_is_one_line_and_training_goes_on(G, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "tb").symlink_to(tmp_path / "nowhere" / "tb")   # a dangling link: mkdir fails
    lines = []
    result = run_discover(G, DiscoverConfig(steps=3, **FAST), folder, progress=False,
                          on_event=TrainingTracker(notify=lines.append))
    assert result.status == "finished" and result.step == 3
    assert len(lines) == 1 and "TensorBoard events stopped" in lines[0] and "training goes on" in lines[0]
    assert [r["step"] for r in log_rows(folder)] == ["0", "1", "2", "3"]


def test_full_disk_while_writing_events_stops_the_events_not_the_run(G, tmp_path, monkeypatch):
    """The disk fills while an event record is written to the file."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    calls = {"n": 0}
    real = RecordWriter.write

    def fills_the_disk(self, data):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(RecordWriter, "write", fills_the_disk)
    lines = []
    folder = tmp_path / "run"
    result = run_discover(G, DiscoverConfig(steps=5, **FAST), folder, progress=False,
                          on_event=TrainingTracker(notify=lines.append))
    assert result.status == "finished" and result.step == 5
    assert lines == [f"{folder / 'tb'}: TensorBoard events stopped (No space left on device); "
                     f"{training.GOES_ON}"]
    assert [r["step"] for r in log_rows(folder)] == ["0", "1", "2", "3", "4", "5"]
    assert (folder / "checkpoint.pt").is_file()
    assert json.loads((folder / "run.json").read_text())["status"] == "finished"


def test_training_is_the_same_with_and_without_events(G, tmp_path):
    cfg = DiscoverConfig(steps=3, eval_every=2, **FAST)
    a = run_discover(G, cfg, tmp_path / "a", progress=False, on_event=TrainingTracker())
    b = run_discover(G, cfg, tmp_path / "b", progress=False)
    assert torch.equal(a.run.directions, b.run.directions)   # the strip draws from no training RNG


# ---------------------------------------------------------------------- Weights & Biases
def wandb_records(path: Path):
    """The protobuf Records of an offline W&B run file (run-*.wandb: a LevelDB-style log of
    32 KiB blocks of records after a 7-byte header)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, chunks, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind in (2, 3):
            pending += chunk
        elif kind == 4:
            chunks.append(pending + chunk)
            pending = b""
    for chunk in chunks:
        record = pb.Record()
        record.ParseFromString(chunk)
        yield record


def wandb_segments(folder: Path) -> list[dict]:
    """Each offline W&B run folder under RUN/wandb/ (one per process that logged: the first
    part of a run, its resumed part, a score...), oldest first: its run id, whether it resumes
    that id, and its history rows."""
    segments = []
    for path in glob.glob(str(folder / "wandb" / "offline-run-*" / "run-*.wandb")):
        segment = {"id": None, "resume": False, "start": 0.0, "rows": []}
        for record in wandb_records(Path(path)):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                segment.update(id=record.run.run_id, resume=bool(record.run.resume),
                               start=record.run.start_time.ToNanoseconds())
            elif kind == "history":
                segment["rows"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                                        for i in record.history.item})
        segments.append(segment)
    return sorted(segments, key=lambda s: s["start"])


def wandb_history(folder: Path, parts: int = 1, rows: int = 0) -> list[dict]:
    """The history rows of the offline W&B run(s) in `folder`, in the order logged, once its
    `parts` run folders hold `rows` rows together (W&B's service process writes the file on its
    own, after finish()); at most 60 s."""
    deadline = time.time() + 60
    while True:
        segments = wandb_segments(folder)
        history = [row for s in segments for row in s["rows"]]
        if (len(segments) >= parts and len(history) >= rows) or time.time() > deadline:
            return history
        time.sleep(0.5)


def test_offline_wandb_writes_the_same_scalars(G, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install "
                                        "'biggan-directions[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    folder = tmp_path / "run"
    run_discover(G, DiscoverConfig(steps=4, eval_every=2, **FAST), folder, progress=False,
                 on_event=TrainingTracker(TrackingConfig(tensorboard=False, wandb="tests",
                                                         log_directions=3)))
    assert not (folder / "tb").exists()
    rows = log_rows(folder)
    history = wandb_history(folder, rows=len(rows))
    for column in ("penalty", "eval_penalty"):
        expected = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
        got = [(h["_step"], h[SCALARS[column]]) for h in history if SCALARS[column] in h]
        assert [s for s, _ in got] == [s for s, _ in expected]
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-5)
    strips = [h for h in history if f"{STRIP_TAG}/width" in h]
    assert [h["_step"] for h in strips] == [0, 2, 4]
    assert (strips[0][f"{STRIP_TAG}/height"], strips[0][f"{STRIP_TAG}/width"]) == \
        frame_size(3, STRIP_STEPS, 32, True)


def test_wandb_that_fails_to_start_is_one_line_and_training_goes_on(G, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb is not installed")

    def no_login(*args, **kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=...)")

    monkeypatch.setattr(wandb, "init", no_login)
    lines = []
    result = run_discover(G, DiscoverConfig(steps=2, **FAST), tmp_path / "run", progress=False,
                          on_event=TrainingTracker(TrackingConfig(wandb="p"), notify=lines.append))
    assert result.status == "finished"
    assert len(lines) == 1 and "Weights & Biases could not start (api_key not configured" in lines[0]
    assert (tmp_path / "run" / "tb").is_dir()                   # TensorBoard goes on


def test_wandb_without_the_package_is_refused_before_anything(small_biggan_dir, tmp_path,
                                                              monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)              # import wandb -> ImportError
    result = CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                      "--out", str(tmp_path), "--wandb", "proj", *BUDGET])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: --wandb 'proj': needs the wandb package; install it with "
        "pip install 'biggan-directions[wandb]', or drop the option."]
    assert list(tmp_path.iterdir()) == []


def test_wandb_entity_needs_a_project(small_biggan_dir, tmp_path):
    result = CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(small_biggan_dir),
                                      "--out", str(tmp_path), "--wandb-entity", "me", *BUDGET])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.output.strip().startswith("Error: --wandb-entity 'me'")


def test_batch_writes_one_event_folder_per_class_and_method(small_biggan_dir, tmp_path):
    result = CliRunner().invoke(cli, ["batch", "--classes", "207,1", "--methods", "hessian,sefa",
                                      "--model", str(small_biggan_dir), "--out", str(tmp_path),
                                      *BUDGET])
    assert result.exit_code == 0, result.output
    folders = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("tb"))
    model = folders[0].split("/")[0]
    assert folders == [f"{model}/1-goldfish", f"{model}/207-golden-retriever",
                       f"{model}/sefa/1-goldfish", f"{model}/sefa/207-golden-retriever"]
    sefa = events(tmp_path / model / "sefa" / "207-golden-retriever" / "tb")
    record = json.loads((tmp_path / model / "sefa" / "207-golden-retriever" / "run.json").read_text())
    ((step, value),) = scalar_steps(sefa, SCALARS["eval_penalty"])
    assert step == 0 and value == pytest.approx(record["eval_penalty"], rel=1e-6)


# ---------------------------------------------------------------------- W&B across resume, score, compare
@pytest.fixture
def offline_wandb(monkeypatch):
    pytest.importorskip("wandb", reason="wandb is not installed (pip install "
                                        "'biggan-directions[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def test_wandb_record_reads_back_only_what_this_tool_wrote(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    assert WandbRecord.read(folder) is None                        # no folder, no record
    record = WandbRecord("abc123", "proj", None, offline=True, step=6)
    record.write(folder)
    assert WandbRecord.read(folder) == record
    assert record.logged(4) == record and record.logged(9).step == 9
    assert record.matches("proj", None) and record.matches("proj", "me") is False
    assert not record.matches("other", None)
    for text in ("{", "[]", '{"id": 3, "project": "p"}', '{"id": "x"}', '{"id": "", "project": "p"}'):
        (folder / "wandb.json").write_text(text)
        assert WandbRecord.read(folder) is None, text
    (folder / "wandb.json").write_text('{"id": "x", "project": "p", "step": true, "entity": ""}')
    assert WandbRecord.read(folder) == WandbRecord("x", "p", None, offline=False, step=None)
    # an offline run stays offline unless WANDB_MODE says otherwise; never forced online
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert init_args(record) == {"id": "abc123", "resume": "allow", "project": "proj",
                                 "entity": None, "mode": "offline"}
    monkeypatch.setenv("WANDB_MODE", "online")
    assert "mode" not in init_args(record)
    assert "mode" not in init_args(WandbRecord("abc123", "proj", None, offline=False))

    class Resumed:                                                  # the server holds 0..9
        starting_step = 10
    assert first_free_step(Resumed(), record, floor=5) == 10
    assert first_free_step(object(), record, floor=5) == 7          # offline: the record's
    assert first_free_step(object(), None, floor=5) == 5


def test_resumed_run_continues_the_same_offline_wandb_run(G, tmp_path, offline_wandb):
    """Interrupted after step 6 (checkpoint at 4), resumed to 8: one W&B run id, each step in
    its history once, the steps the interrupted process logged (5, 6) not logged again."""
    cfg = DiscoverConfig(steps=8, eval_every=3, checkpoint_every=4, **FAST)
    folder = tmp_path / "run"
    tracking = TrackingConfig(wandb="tests", log_directions=2)
    tracker = TrainingTracker(tracking)

    def dies_after_step_6(kind, **fields):
        tracker(kind, **fields)
        if kind == "row" and fields["step"] == 6:
            raise Crash

    with pytest.raises(Crash):
        run_discover(G, cfg, folder, progress=False, on_event=dies_after_step_6)
    first = WandbRecord.read(folder)
    assert (first.project, first.entity, first.offline, first.step) == ("tests", None, True, 6)
    lines = []
    run_discover(G, cfg, folder, resume=True, progress=False,
                 on_event=TrainingTracker(tracking, notify=lines.append))
    assert lines == []
    assert WandbRecord.read(folder) == first.logged(8)              # the same W&B run
    rows = log_rows(folder)
    assert [int(r["step"]) for r in rows] == list(range(9))
    history = wandb_history(folder, parts=2, rows=9)
    segments = wandb_segments(folder)
    assert [(s["id"], s["resume"]) for s in segments] == [(first.id, False), (first.id, True)]
    assert sorted({h["_step"] for h in segments[1]["rows"]}) == [7, 8]  # 5, 6 not again
    for column in ("penalty", "eval_penalty"):
        expected = [(int(r["step"]), float(r[column])) for r in rows if r[column]]
        got = [(h["_step"], h[SCALARS[column]]) for h in history if SCALARS[column] in h]
        assert [s for s, _ in got] == [s for s, _ in expected], column   # each step once
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-5)
    assert [h["_step"] for h in history if f"{STRIP_TAG}/width" in h] == [0, 3, 6, 8]
    # TensorBoard, beside it, shows each step once too (its purge at the checkpoint's step)
    assert [s for s, _ in scalar_steps(events(folder / "tb"), SCALARS["penalty"])] == \
        list(range(1, 9))


def test_resume_into_another_project_starts_a_new_wandb_run_and_says_so(G, tmp_path,
                                                                        offline_wandb):
    folder = tmp_path / "run"
    run_discover(G, DiscoverConfig(steps=2, **FAST), folder, progress=False,
                 on_event=TrainingTracker(TrackingConfig(tensorboard=False, wandb="first",
                                                         log_directions=0)))
    first = WandbRecord.read(folder)
    lines = []
    run_discover(G, DiscoverConfig(steps=4, **FAST), folder, resume=True, progress=False,
                 on_event=TrainingTracker(TrackingConfig(tensorboard=False, wandb="second",
                                                         log_directions=0), notify=lines.append))
    second = WandbRecord.read(folder)
    assert lines == [f"{folder}: logged to the W&B run first/{first.id} so far; --wandb second "
                     f"starts a new W&B run for its steps from 3 (RUN/wandb.json then names it)."]
    assert second.project == "second" and second.id != first.id and second.step == 4
    wandb_history(folder, parts=2, rows=5)
    (new,) = [s for s in wandb_segments(folder) if s["id"] == second.id]
    assert [h["_step"] for h in new["rows"]] == [3, 4] and not new["resume"]


def test_resume_keeps_the_record_when_wandb_cannot_start(G, tmp_path, offline_wandb,
                                                         monkeypatch):
    import wandb

    folder = tmp_path / "run"
    tracking = TrackingConfig(tensorboard=False, wandb="tests", log_directions=0)
    run_discover(G, DiscoverConfig(steps=2, **FAST), folder, progress=False,
                 on_event=TrainingTracker(tracking))
    recorded = (folder / "wandb.json").read_bytes()

    def no_login(*args, **kwargs):
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=...)")

    monkeypatch.setattr(wandb, "init", no_login)
    lines = []
    result = run_discover(G, DiscoverConfig(steps=3, **FAST), folder, resume=True,
                          progress=False, on_event=TrainingTracker(tracking, notify=lines.append))
    assert result.status == "finished" and result.step == 3
    assert len(lines) == 1 and "Weights & Biases could not start (api_key" in lines[0]
    assert (folder / "wandb.json").read_bytes() == recorded       # resumed later, it continues


def discover_cli(model_dir: Path, out: Path, *extra: str):
    return CliRunner().invoke(cli, ["discover", "-c", "207", "--model", str(model_dir),
                                    "--out", str(out), *BUDGET, *extra])


def test_resume_of_a_wandb_run_without_the_package(small_biggan_dir, tmp_path, monkeypatch):
    """The run recorded a W&B run; wandb is not installed now. --resume --wandb: refused in
    one line before anything is touched. --resume alone: resumes, one line says the W&B run is
    not continued."""
    out = tmp_path / "out"
    assert discover_cli(small_biggan_dir, out, "--steps", "3").exit_code == 0
    (folder,) = out.glob("*/207-*")
    WandbRecord("abc123", "proj", None, offline=True, step=3).write(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    monkeypatch.setitem(sys.modules, "wandb", None)                # import wandb -> ImportError
    refused = discover_cli(small_biggan_dir, out, "--steps", "5", "--resume", "--wandb", "proj")
    assert refused.exit_code != 0
    assert refused.output.strip().splitlines() == [
        "Error: --wandb 'proj': needs the wandb package; install it with "
        "pip install 'biggan-directions[wandb]', or drop the option."]
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    resumed = discover_cli(small_biggan_dir, out, "--steps", "5", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"{folder}: its W&B run proj/abc123 is not continued (add --wandb proj to continue " \
           f"it)." in resumed.stderr.splitlines()
    assert "Traceback" not in resumed.output
    assert log_rows(folder)[-1]["step"] == "5"
    assert WandbRecord.read(folder).step == 3                       # untouched


def test_overwrite_forgets_the_wandb_run(small_biggan_dir, tmp_path):
    out = tmp_path / "out"
    assert discover_cli(small_biggan_dir, out, "--steps", "2").exit_code == 0
    (folder,) = out.glob("*/207-*")
    WandbRecord("abc123", "proj", None, offline=True, step=2).write(folder)
    assert discover_cli(small_biggan_dir, out, "--steps", "2", "--overwrite").exit_code == 0
    assert not (folder / "wandb.json").exists()                     # a new run: a new W&B run


def test_score_and_compare_add_their_results_to_the_recorded_wandb_run(
        small_biggan_dir, tmp_path, offline_wandb, monkeypatch):
    home = tmp_path / "torch-home"
    write_backbone_checkpoint(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    out = tmp_path / "out"
    trained = discover_cli(small_biggan_dir, out, "--wandb", "tests", "--log-directions", "0")
    assert trained.exit_code == 0, trained.output
    (folder,) = out.glob("*/207-*")
    record = WandbRecord.read(folder)
    assert record.step == 6
    runner = CliRunner()
    scored = runner.invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3", "-q"])
    assert scored.exit_code == 0, scored.output
    effect = [r["effect"] for r in json.loads((folder / "scores.json").read_text())["directions"]]
    inactive = sum(r["inactive"] for r in json.loads((folder / "scores.json").read_text())
                   ["directions"])
    compared = runner.invoke(cli, ["compare", str(folder), "--out", str(tmp_path / "cmp"),
                                   "--top", "2", "-q"])
    assert compared.exit_code == 0, compared.output
    (row,) = json.loads((tmp_path / "cmp" / "compare.json").read_text())["runs"]
    again = runner.invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3", "-q",
                                "--overwrite", "--no-wandb"])
    assert again.exit_code == 0, again.output
    assert WandbRecord.read(folder) == record.logged(8)
    wandb_history(folder, parts=3, rows=9)
    segments = wandb_segments(folder)
    assert [(s["id"], s["resume"]) for s in segments] == \
        [(record.id, False), (record.id, True), (record.id, True)]   # --no-wandb: none more
    (score_row,) = segments[1]["rows"]
    assert score_row["_step"] == 7                                   # past the training's steps
    assert score_row["score/effect_mean"] == pytest.approx(sum(effect) / len(effect), rel=1e-6)
    assert score_row["score/inactive"] == inactive
    assert score_row["score/active"] == len(effect) - inactive
    assert score_row["score/effect/_type"] == "histogram"
    assert sum(score_row["score/effect/values"]) == len(effect)
    assert min(score_row["score/effect/bins"]) == pytest.approx(min(effect), rel=1e-6)
    (compare_row,) = segments[2]["rows"]
    assert compare_row["_step"] == 8
    assert compare_row["compare/eval_penalty"] == pytest.approx(row["eval_penalty"], rel=1e-6)
    assert compare_row["compare/vs_random_mean"] == pytest.approx(row["vs_random_mean"], rel=1e-6)
    # TensorBoard has them too, at the run's last step
    acc = events(folder / "tb")
    assert [(s, v) for s, v in scalar_steps(acc, "score/inactive")] == \
        [(6, inactive), (6, inactive)]                               # both scores: tb always


def recorded_run(small_biggan_dir, tmp_path, monkeypatch, offline: bool) -> Path:
    """A 2-step run whose folder records the W&B run proj/abc123 (offline or not), with an
    offline LPIPS backbone under TORCH_HOME for `score`."""
    home = tmp_path / "torch-home"
    write_backbone_checkpoint(home / "hub" / "checkpoints")
    monkeypatch.setenv("TORCH_HOME", str(home))
    out = tmp_path / "out"
    assert discover_cli(small_biggan_dir, out, "--steps", "2").exit_code == 0
    (folder,) = out.glob("*/207-*")
    WandbRecord("abc123", "proj", None, offline=offline, step=2).write(folder)
    return folder


def test_score_of_a_wandb_run_without_the_package_says_so_first(small_biggan_dir, tmp_path,
                                                                monkeypatch):
    folder = recorded_run(small_biggan_dir, tmp_path, monkeypatch, offline=True)
    monkeypatch.setitem(sys.modules, "wandb", None)
    scored = CliRunner().invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3",
                                      "-q"])
    assert scored.exit_code == 0, scored.output
    assert "Traceback" not in scored.output
    assert scored.stderr.splitlines() == [
        f"{folder} (proj/abc123): the score is not added to the W&B run recorded there: the "
        f"wandb package is not installed (pip install 'biggan-directions[wandb]'; --no-wandb "
        f"skips this); the scores files are written all the same."]
    assert (folder / "scores.json").is_file()
    quiet = CliRunner().invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3",
                                     "-q", "--overwrite", "--no-wandb"])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_score_of_a_wandb_run_that_cannot_log_in_says_so_before_the_work(
        small_biggan_dir, tmp_path, offline_wandb, monkeypatch):
    import wandb

    from biggan_directions.scoring import score_run

    folder = recorded_run(small_biggan_dir, tmp_path, monkeypatch, offline=False)
    order = []

    def no_login(*args, **kwargs):
        order.append("wandb.init")
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=...)")

    real_lpips = score_run.load_lpips
    monkeypatch.setattr(wandb, "init", no_login)
    monkeypatch.setattr(score_run, "load_lpips",
                        lambda *a, **k: order.append("lpips") or real_lpips(*a, **k))
    scored = CliRunner().invoke(cli, ["score", str(folder), "--num-seeds", "2", "--steps", "3",
                                      "-q"])
    assert scored.exit_code == 0 and "Traceback" not in scored.output, scored.output
    assert order == ["wandb.init", "lpips"]                          # the line came first
    (line,) = scored.stderr.splitlines()
    assert line.startswith(f"{folder / 'wandb'}: Weights & Biases could not start (api_key")
    assert line.endswith("the scores files are written all the same.")
    assert (folder / "scores.json").is_file()
    assert WandbRecord.read(folder).step == 2


def test_no_wandb_with_a_transfer_table_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["compare", "--transfer", "--no-wandb", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: --no-wandb: a transfer table adds nothing to the runs' events or W&B runs; "
        "drop it."]


def test_an_offline_run_killed_outright_resumes_past_the_steps_its_record_followed(
        G, tmp_path, offline_wandb, monkeypatch):
    """No close, no finally: the process dies after step 6 (checkpoint at 4). With the record
    following every step (RECORD_SECONDS 0), its resumed part logs only steps 7 and 8; with
    the default throttle, at most RECORD_SECONDS of steps past the record come again."""
    from biggan_directions.tracking.sinks import WandbSink

    monkeypatch.setattr(WandbSink, "RECORD_SECONDS", 0.0)
    cfg = DiscoverConfig(steps=8, eval_every=3, checkpoint_every=4, **FAST)
    folder = tmp_path / "run"
    tracking = TrackingConfig(tensorboard=False, wandb="tests", log_directions=0)
    tracker = TrainingTracker(tracking)

    def killed_after_step_6(kind, **fields):
        if kind == "close":                    # a killed process runs no cleanup: W&B's own
            for sink in tracker.sinks:         # service still writes what it was sent
                sink.run.finish()
            return
        tracker(kind, **fields)
        if kind == "row" and fields["step"] == 6:
            raise Crash

    with pytest.raises(Crash):
        run_discover(G, cfg, folder, progress=False, on_event=killed_after_step_6)
    assert WandbRecord.read(folder).step == 6
    run_discover(G, cfg, folder, resume=True, progress=False, on_event=TrainingTracker(tracking))
    wandb_history(folder, parts=2, rows=9)
    first, resumed = wandb_segments(folder)
    assert [h["_step"] for h in first["rows"]] == list(range(7))
    assert [h["_step"] for h in resumed["rows"]] == [7, 8] and resumed["id"] == first["id"]


def test_disabled_wandb_records_no_wandb_run(G, tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", reason="wandb is not installed")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    wandb.teardown()            # W&B reads WANDB_MODE once per process setup: set up anew
    lines = []
    try:
        result = run_discover(G, DiscoverConfig(steps=2, **FAST), tmp_path / "run",
                              progress=False, on_event=TrainingTracker(
                                  TrackingConfig(wandb="p", log_directions=0),
                                  notify=lines.append))
    finally:
        wandb.teardown()        # the next test's WANDB_MODE is read again
    assert result.status == "finished" and lines == []
    assert not (tmp_path / "run" / "wandb.json").exists()     # nothing to continue later
