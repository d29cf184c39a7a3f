"""Rendering: walk frames against the walk maths, videos and strips read back, names, errors."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import imageio.v2 as imageio_v2
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from biggan_directions.cli import cli
from biggan_directions.foundation.errors import SettingError, UserError
from biggan_directions.foundation.ranges import format_int_list, parse_int_list
from biggan_directions.media.frames import label_width, strip_image, to_uint8
from biggan_directions.media.render import RenderConfig, plan_render, render_directions
from biggan_directions.core.directions import random_orthonormal, save_directions
from biggan_directions.models.generator import BigGANGenerator, latents_for_seeds
from biggan_directions.runs.layout import open_run, resolve_run_settings
from biggan_directions.runs.scores_file import SCORES_FORMAT
from tests.support import forbid

R = 32          # the small test model's resolution
LW = label_width(R)


@pytest.fixture()
def run_dir(tmp_path, small_biggan_dir) -> Path:
    """A run folder with 8 random orthonormal directions recorded for the small model."""
    q = random_orthonormal(8, 128, torch.Generator().manual_seed(1))
    meta = dict(model=str(small_biggan_dir), class_index=207, class_name="golden retriever",
                truncation=0.5, path_size=3.0)
    save_directions(tmp_path / "run" / "directions.safetensors", q, meta)
    return tmp_path / "run"


@pytest.fixture(scope="module")
def G(small_biggan):
    return BigGANGenerator(small_biggan, 207, 0.5)


def invoke(*args):
    return CliRunner().invoke(cli, ["render", *map(str, args)])


def assert_ok(result):
    assert result.exit_code == 0, result.output
    return [Path(line) for line in result.output.strip().splitlines()]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def plan_of(run=None, *, model=None, class_query=None, **kwargs):
    """The RenderPlan `render` makes of a run (a path or None) with its recorded settings."""
    r = open_run(run) if run is not None else None
    settings = resolve_run_settings(r, model=model, class_query=class_query)
    return plan_render(r, settings, **kwargs)


# ---------------------------------------------------------------- file names
def test_format_int_list_reads_back():
    for values in ([0, 1, 2, 3, 7], [3, 1], [5], [0, 2, 3, 4, 9, 10]):
        assert parse_int_list(format_int_list(values)) == values
    assert format_int_list([0, 1, 2, 3, 7]) == "0-3,7"
    assert format_int_list(list(range(0, 120, 2))).startswith("n60-")


# ---------------------------------------------------------------- files through the CLI
def test_grid_mp4_reads_back(run_dir):
    paths = assert_ok(invoke(run_dir, "--dirs", "0-2", "--seeds", "0-1", "--frames", 7,
                             "--fps", 24, "-q", "--device", "cpu"))
    assert paths == [run_dir / "videos" / "grid_dirs0-2_seeds0-1_p3.0_loop.mp4"]
    reader = imageio_v2.get_reader(paths[0])
    try:
        assert reader.count_frames() == 7
        meta = reader.get_meta_data()
        assert meta["fps"] == pytest.approx(24, abs=0.01)
        frame = reader.get_data(0)
    finally:
        reader.close()
    assert frame.shape == (3 * R, LW + 2 * R, 3)
    assert files_in(run_dir / "videos") == [paths[0].name]       # no temp file left


def test_per_direction_gif_loops_with_frame_count(run_dir):
    paths = assert_ok(invoke(run_dir, "--dirs", "1,2", "--seeds", "0-1", "--frames", 10, "--fps",
                             10, "--format", "gif", "--layout", "per-direction", "-q"))
    assert [p.name for p in paths] == ["dir001_seeds0-1_p3.0_loop.gif",
                                       "dir002_seeds0-1_p3.0_loop.gif"]
    for path in paths:
        # 10 frames although loop easing repeats positions (frames 2 and 3: t = sin 72 deg)
        frames = iio.imread(path, index=None)
        assert frames.shape == (10, R, 2 * R, 3)                 # one row, no label column
        meta = iio.immeta(path, index=0)
        assert meta["loop"] == 0 and meta["duration"] == 100
    from PIL import Image
    with Image.open(paths[1]) as im:                             # the settings travel along
        record = json.loads(im.info["comment"])
    assert record["directions"] == "2" and record["seeds"] == "0-1"     # as typed: 0-1
    assert record["class_index"] == 207 and record["truncation"] == 0.5
    assert record["config"]["frames"] == 10 and record["config"]["path_size"] == 3.0


def test_same_seeds_give_identical_frames(run_dir, G, tmp_path):
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(6))
    out = [render_directions(G, q, [3, 4], tmp_path / name, frames=4, fmt="gif", path_size=5.0,
                             progress=False)
           for name in ("a", "b")]
    assert out[0][0].name == out[1][0].name == "grid_dirs0-1_seeds3-4_p5.0_loop.gif"
    a, b = (iio.imread(p[0], index=None) for p in out)
    assert a.shape == (4, 2 * R, LW + 2 * R, 3) and np.array_equal(a, b)


def test_strip_png_size_and_centre_column(run_dir, G):
    paths = assert_ok(invoke(run_dir, "--dirs", "1-2", "--strip", "--strip-steps", 3, "-q"))
    assert paths == [run_dir / "videos" / "strip_dirs1-2_seed0_p3.0.png"]
    image = iio.imread(paths[0])
    assert image.shape == (2 * R, LW + 3 * R, 3)
    from PIL import Image
    with Image.open(paths[0]) as im:
        assert json.loads(im.info["biggan-directions"])["directions"] == "1-2"
    # the middle column (t = 0) is the projected first seed
    src = plan_of(run_dir, dirs=[1, 2])
    z = latents_for_seeds([0], 128, 0.5)[0]
    for k, q in enumerate(src.directions):
        with torch.no_grad():
            want = to_uint8(G((z - (z @ q) * q)[None]))[0].permute(1, 2, 0).numpy()
        cell = image[k * R:(k + 1) * R, LW + R:LW + 2 * R]
        assert np.abs(cell.astype(int) - want.astype(int)).max() <= 1
    direct = strip_image(G, src.directions, z, 3, 3.0, labels=["1", "2"])
    assert np.abs(direct.astype(int) - image.astype(int)).max() <= 1


@pytest.mark.parametrize("kind", ["random", "coords"])
def test_baselines_render(kind, small_biggan_dir, tmp_path):
    paths = assert_ok(invoke("--directions", kind, "--class", "golden retriever", "--model",
                             small_biggan_dir, "--dirs", "0-1", "--seeds", 0, "--frames", 4,
                             "--format", "gif", "--out", tmp_path / "b", "-q"))
    prefix = "random-seed0_" if kind == "random" else "coords_"
    assert [p.name for p in paths] == [f"{prefix}grid_dirs0-1_seeds0_p5.0_loop.gif"]
    frames = iio.imread(paths[0], index=None)
    assert frames.shape == (4, 2 * R, LW + R, 3)
    src = plan_of(baseline=kind, class_query=207, model=str(small_biggan_dir), dirs=[0, 1])
    G, q = src.load("cpu", progress=False)
    assert torch.allclose(q @ q.T, torch.eye(2), atol=1e-5)
    if kind == "coords":
        assert torch.equal(q, torch.eye(2, 128))


def test_baseline_with_a_run_takes_its_settings(run_dir):
    paths = assert_ok(invoke(run_dir, "--directions", "coords", "--dirs", 5, "--seeds", 0,
                             "--frames", 3, "--format", "gif", "-q"))
    assert paths == [run_dir / "videos" / "coords_grid_dirs5_seeds0_p3.0_loop.gif"]


def test_overrides_are_named_and_existing_files_kept(run_dir):
    args = [run_dir, "--dirs", 0, "--seeds", 0, "--frames", 3, "--format", "gif", "-q"]
    paths = assert_ok(invoke(*args, "--class", 208, "--truncation", 0.4, "--path-size", 2))
    assert paths[0].name == "c208_t0.4_grid_dirs0_seeds0_p2.0_loop.gif"
    target = paths[0]
    target.write_bytes(b"mine")
    result = invoke(*args, "--class", 208, "--truncation", 0.4, "--path-size", 2)
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert target.read_bytes() == b"mine"
    assert_ok(invoke(*args, "--class", 208, "--truncation", 0.4, "--path-size", 2, "--overwrite"))
    assert iio.imread(target, index=None).shape[0] == 3


# ---------------------------------------------------------------- --top
def test_top_without_scores_says_run_score(run_dir):
    result = invoke(run_dir, "--top", 2)
    assert result.exit_code == 1
    assert "biggan-directions score" in result.output and "Traceback" not in result.output


def test_top_follows_the_ranking(run_dir):
    (run_dir / "scores.json").write_text(json.dumps({"format": SCORES_FORMAT, "ranking": [3, 1, 0, 2]}))
    paths = assert_ok(invoke(run_dir, "--top", 2, "--seeds", 0, "--frames", 3, "--format", "gif",
                             "-q"))
    assert paths[0].name == "grid_dirs3,1_seeds0_p3.0_loop.gif"
    src = plan_of(run_dir, top=2)
    assert src.indices == [3, 1]
    assert torch.equal(src.directions, open_run(run_dir).directions[[3, 1]])


# ---------------------------------------------------------------- errors: one line, no file
def _no_ffmpeg_exe():
    raise RuntimeError("No ffmpeg exe could be found.")


@pytest.mark.parametrize("args, needle, patch", [
    (["RUN", "--dirs", "9"], "out of range", None),
    (["RUN", "--dirs", "0", "--top", "1"], "--top", None),
    (["--seeds", "0"], "RUN", None),
    (["MISSING"], "no such run", None),
    (["GARBAGE"], "unreadable", None),
    (["RUN", "--directions", "coords", "--top", "2"], "--dirs", None),
    (["--directions", "random"], "--class", None),
    (["RUN", "--truncation", "1.5"], "truncation", None),
    (["RUN", "--out", "FILE/videos"], "cannot write", None),
    (["RUN"], "pip install imageio-ffmpeg", "no-exe"),
    (["RUN"], "pip install imageio-ffmpeg", "no-module"),
])
def test_errors_are_one_line_and_write_nothing(args, needle, patch, run_dir, tmp_path, monkeypatch):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00not a safetensors file")
    (tmp_path / "file").write_text("x")
    names = {"RUN": str(run_dir), "MISSING": str(tmp_path / "nope"),
             "GARBAGE": str(tmp_path / "garbage.safetensors"), "FILE/videos": str(tmp_path / "file" / "v")}
    if patch == "no-exe":
        import imageio_ffmpeg
        monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", _no_ffmpeg_exe)
    elif patch == "no-module":
        monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    result = invoke(*[names.get(a, a) for a in args], "--frames", 2, "-q")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.output
    assert "Traceback" not in result.output
    assert not (run_dir / "videos").exists()                     # not even an empty folder


@pytest.mark.parametrize("value, needle", [("7-3", "backwards"), ("", "empty")])
def test_bad_lists_are_usage_errors(value, needle, run_dir):
    result = invoke(run_dir, "--dirs", value, "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: Invalid value for '--dirs'") and needle in last
    assert not (run_dir / "videos").exists()


def test_failure_mid_render_leaves_no_file(G, tmp_path):
    for exc in (RuntimeError("device lost"), KeyboardInterrupt()):
        calls = []

        def failing(z):
            calls.append(1)
            if len(calls) == 3:
                raise exc
            return G(z)
        failing.z_dim, failing.resolution = G.z_dim, G.resolution
        q = random_orthonormal(2, 128, torch.Generator().manual_seed(7))
        with pytest.raises(type(exc)):
            render_directions(failing, q, [0, 1], tmp_path / "new" / "out", frames=20,
                              batch_size=4, path_size=5.0, progress=False, truncation=0.5)
        assert files_in(tmp_path) == []                  # no file, no folder it made


def test_config_is_checked():
    for kwargs, field in ((dict(fps=0), "fps"), (dict(fmt="avi"), "fmt"),
                          (dict(path_size=0.0), "path_size"), (dict(frames=0), "frames")):
        with pytest.raises(SettingError) as info:
            RenderConfig(**kwargs).validate()
        assert info.value.setting == field and "--" not in str(info.value)   # no CLI flag


def test_baseline_of_a_subspace_run_stays_in_its_subspace(tmp_path, small_biggan_dir):
    q = random_orthonormal(4, 128, torch.Generator().manual_seed(0))
    q[:, 40:] = 0
    q = torch.linalg.qr(q.T)[0].T                          # orthonormal rows inside z[0:40]
    save_directions(tmp_path / "d.safetensors", q,
                    {"model": str(small_biggan_dir), "class_index": 207, "subspace": [0, 40]})
    source = plan_of(tmp_path / "d.safetensors", baseline="random", dirs=[0, 1, 2, 3])
    assert source.settings.subspace == (0, 40)
    _, directions = source.load("cpu", progress=False)
    assert directions.shape == (4, 128) and torch.count_nonzero(directions[:, 40:]) == 0


# ---------------------------------------------------------------- defects of issue 9
@pytest.mark.parametrize("fps", ["inf", "1e-9", "nan", "1000"])
def test_fps_out_of_range_is_one_clear_line(fps, run_dir):
    result = invoke(run_dir, "--fps", fps, "--frames", 2, "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --fps ") and "0.1 to 240" in lines[0]
    assert not (run_dir / "videos").exists()


def test_a_bad_recorded_value_names_its_file(tmp_path):
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(1))
    file = save_directions(tmp_path / "run" / "directions.safetensors", q,
                           dict(model="biggan-deep-128", class_index=207, path_size=0.0))
    result = invoke(file, "--frames", 2, "-q")
    assert result.exit_code == 1
    line, = result.output.strip().splitlines()
    assert "path_size 0.0" in line and f"recorded in {file}" in line and "--path-size" not in line
    assert not (tmp_path / "run" / "videos").exists()
    result = invoke(file, "--path-size", 0, "-q")                # a typed value names the option
    assert result.exit_code == 1 and "Error: --path-size 0.0:" in result.output


def test_checks_come_before_the_model_and_create_no_folder(tmp_path):
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(1))
    missing = str(tmp_path / "no-such-model")
    save_directions(tmp_path / "run" / "directions.safetensors", q,
                    dict(model=missing, class_index=207, truncation=0.5, path_size=3.0))
    (tmp_path / "file").write_text("x")
    # an unwritable --out is reported before the (missing) model is looked for
    result = invoke(tmp_path / "run", "--out", tmp_path / "file" / "v", "--format", "gif", "-q")
    assert result.exit_code == 1 and "cannot write" in result.output
    # a failure after the checks (here: the model) leaves no folder behind
    out = tmp_path / "new" / "out"
    result = invoke(tmp_path / "run", "--out", out, "--format", "gif", "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "new").exists()
    assert not (tmp_path / "run" / "videos").exists()


def test_sigterm_mid_render_leaves_no_temporary_file(run_dir):
    import os
    import signal
    import subprocess
    import time

    videos = run_dir / "videos"
    cmd = [sys.executable, "-c", "import sys; from cli import main; sys.exit(main())", "render",
           str(run_dir), "--dirs", "0", "--seeds", "0", "--frames", "100000", "--format", "gif",
           "-q", "--device", "cpu", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (videos.exists() and any(p.name.startswith(".") for p in videos.iterdir())):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the render never started writing"
            time.sleep(0.05)
        time.sleep(0.3)                                  # frames are being written
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    assert files_in(videos) == []                        # no .*.tmp.* file, no video


# ---------------------------------------------------------------- precision and compile (issue 10)
def _strip(G, q, out, **settings) -> np.ndarray:
    [path] = render_directions(G, q, [0], out, strip=True, strip_steps=3, path_size=5.0,
                               progress=False, **settings)
    return iio.imread(path)


def test_fp32_render_is_unchanged_and_auto_is_fp32_on_the_cpu(G, tmp_path):
    """The strip render_directions writes equals frames.strip_image on G itself (no wrapper),
    for precision fp32 and for auto (fp32 on the CPU), bit for bit."""
    q = random_orthonormal(2, 128, torch.Generator().manual_seed(6))
    z = latents_for_seeds([0], 128, 0.5)
    direct = strip_image(G, q, z[0], 3, 5.0, labels=["0", "1"], batch_size=16)
    for precision in ("fp32", "auto"):
        assert np.array_equal(_strip(G, q, tmp_path / precision, precision=precision), direct)


def test_bf16_on_the_cpu_renders_and_records_it(run_dir):
    """bf16 autocast runs on the CPU; frames are 8-bit and differ from fp32 by a few levels
    (measured on the small model: mean |difference| 0.17 of 255, at most 2 levels)."""
    from PIL import Image

    args = [run_dir, "--dirs", "0-1", "--strip", "--strip-steps", 3, "-q", "--device", "cpu"]
    [fp32] = assert_ok(invoke(*args, "--precision", "fp32", "--out", run_dir / "fp32"))
    [bf16] = assert_ok(invoke(*args, "--precision", "bf16", "--out", run_dir / "bf16"))
    with Image.open(bf16) as im:
        record = json.loads(im.info["biggan-directions"])
    assert record["precision"] == "bf16" and record["config"]["precision"] == "bf16"
    a, b = (iio.imread(p).astype(np.int16) for p in (fp32, bf16))
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert np.abs(a - b).mean() < 1 and np.abs(a - b).max() <= 8


def test_tf32_on_the_cpu_is_one_line_before_the_model(run_dir, monkeypatch):
    import biggan_directions.media.render as render_module

    forbid(monkeypatch, render_module.RenderPlan, "load",
           "the model was loaded before the precision was checked")
    result = invoke(run_dir, "--precision", "tf32", "--device", "cpu", "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "Error: --precision 'tf32': TF32 is a CUDA feature; on cpu use fp32 or bf16."]
    assert not (run_dir / "videos").exists()


def test_compiled_render_gives_the_eager_frames(G, tmp_path):
    """One short compiled render (CPU compilation takes tens of seconds): 3 images in batches of
    2, so the last batch is padded to the compiled size; pixels match eager within 1 level."""
    q = random_orthonormal(1, 128, torch.Generator().manual_seed(6))
    eager = _strip(G, q, tmp_path / "eager", precision="fp32", batch_size=2)
    compiled = _strip(G, q, tmp_path / "compiled", precision="fp32", batch_size=2, compile=True)
    assert compiled.shape == eager.shape
    assert np.abs(compiled.astype(np.int16) - eager.astype(np.int16)).max() <= 1


def test_batch_passes_precision_and_compile_to_render_and_score(tmp_path, monkeypatch):
    import biggan_directions.cli.batch as batch_module    # where the command looks run_batch up

    seen = {}

    def fake_run_batch(model, classes, config, out, *, score, render, **kwargs):
        seen.update(discover=config, score=score, render=render)
        raise SystemExit(0)
    monkeypatch.setattr(batch_module, "run_batch", fake_run_batch)
    CliRunner().invoke(cli, ["batch", "--classes", "207", "--score", "--render", "--precision",
                             "bf16", "--compile", "--out", str(tmp_path), "-q"])
    assert seen["discover"].precision == "bf16" and seen["discover"].compile is True
    assert seen["score"].precision == "bf16" and seen["score"].compile is True
    assert seen["render"].video.precision == "bf16" and seen["render"].video.compile is True


# ---------------------------------------------------------------- bounds (issue 17)
@pytest.mark.parametrize("frames", ["1099511627776", str(10 ** 20)])
def test_frames_beyond_the_bound_are_one_line_before_any_work(frames, run_dir):
    """Once an 8.8 TB allocation and an OverflowError: refused with the bound, nothing made."""
    result = invoke(run_dir, "--frames", frames, "-q", "--device", "cpu")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.output.strip().splitlines() == [
        f"Error: --frames {frames}: must be from 1 to 100000 (55 minutes at 30 fps), e.g. 90."]
    assert not (run_dir / "videos").exists()


@pytest.mark.parametrize("option, value, count, limit", [
    ("--seeds", "0-99999999999", 100000000000, 512),
    ("--seeds", "0-39999", 40000, 512),                 # once 'Argument list too long' (ffmpeg)
    ("--seeds", "0-400,300-700", 701, 512),
    ("--dirs", "0-99999", 100000, 1024),
])
def test_lists_longer_than_render_takes_are_refused_at_once(option, value, count, limit, run_dir):
    import time

    start = time.perf_counter()
    result = invoke(run_dir, option, value, "-q", "--device", "cpu")
    assert time.perf_counter() - start < 2                     # the range is never expanded
    assert result.exit_code == 2 and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"Error: Invalid value for '{option}': {count} values; at most {limit}")
    assert not (run_dir / "videos").exists()


def test_parsing_is_linear_and_never_expands_a_range_past_its_limit():
    import time

    start = time.perf_counter()
    assert len(parse_int_list("0-199999,5,7-9")) == 200000      # quadratic: minutes
    assert time.perf_counter() - start < 1
    assert parse_int_list("0-4,2-6,1", limit=7) == list(range(7))   # repeats cost nothing
    with pytest.raises(UserError, match=r"--seeds: 10000000000000000000000 values; at most 8"):
        parse_int_list("0-9999999999999999999999", "--seeds", limit=8)
    with pytest.raises(UserError, match=r"--seeds: 9 values; at most 8"):
        parse_int_list("0-4,5-8", "--seeds", limit=8)


def test_a_frame_larger_than_mp4_takes_is_refused_before_generating(run_dir):
    """512 seeds of 32 px: a 16416-pixel-wide frame, past libx264's 16384."""
    result = invoke(run_dir, "--dirs", "0", "--seeds", "0-511", "-q", "--device", "cpu")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line, = result.output.strip().splitlines()
    assert line == ("Error: a frame of 1 direction(s) x 512 seed(s) is 16416 x 32 pixels; MP4 "
                    "frames are at most 16384 pixels a side: render fewer seeds.")
    assert not (run_dir / "videos").exists()


def test_mp4_record_is_compact_ranges(run_dir):
    """The settings travel in the MP4's comment with lists as ranges, so the ffmpeg command
    line stays short whatever the number of seeds."""
    from biggan_directions.media.video import ffmpeg_exe

    [path] = assert_ok(invoke(run_dir, "--dirs", "0-2,5", "--seeds", "0-9,12", "--frames", 2,
                              "-q", "--device", "cpu"))
    meta = subprocess_output([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"])
    comment = next(line for line in meta.splitlines() if line.startswith("comment="))
    record = json.loads(comment[len("comment="):].replace("\\=", "=").replace("\\;", ";")
                        .replace("\\#", "#").replace("\\\\", "\\"))
    assert record["directions"] == "0-2,5" and record["seeds"] == "0-9,12"
    assert parse_int_list(record["seeds"]) == [*range(10), 12]
    assert len(comment) < 1500


def subprocess_output(cmd: list[str]) -> str:
    import subprocess

    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def test_a_render_removes_the_temporary_file_a_killed_render_left(run_dir):
    """SIGKILL during `render --format gif` leaves its temporary GIF; the next render into the
    folder removes it (its writer is gone) and writes its own file."""
    import subprocess

    from biggan_directions.foundation import fileio

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    videos = run_dir / "videos"
    videos.mkdir(exist_ok=True)
    probe = fileio.temp_beside(videos / "x.gif")                 # this host's naming
    host = probe.name.split(".")[2].split("-")[0]
    probe.unlink()
    stale = videos / f".grid_dirs0_seeds0_p3.0_loop.{host}-{gone.pid}-163573d0.tmp.gif"
    stale.write_bytes(b"GIF89a" + bytes(1000))
    paths = assert_ok(invoke(run_dir, "--dirs", 0, "--seeds", 0, "--frames", 2, "--format", "gif",
                             "-q", "--device", "cpu"))
    assert not stale.exists()
    assert paths[0].exists() and not [p for p in videos.iterdir() if ".tmp" in p.name]
