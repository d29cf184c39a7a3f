"""Gallery: relative links to files that exist, self-contained page, every image and video loads in Chromium."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from biggan_directions.batch.gallery import write_gallery
from biggan_directions.batch.manifest import read_manifest
from biggan_directions.cli import cli
from biggan_directions.runs.layout import model_label, run_dir_for
from tests.support import write_backbone_checkpoint

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--virtual-time-budget=10000"]

# Appended to a copy of index.html (same folder, so the same relative paths): writes the load
# state of every <img> and <video> into <pre id="load-status"> whenever anything changes.
LOAD_CHECK = """<script>
(function () {
  var out = document.createElement('pre'); out.id = 'load-status'; document.body.appendChild(out);
  var items = [];
  document.querySelectorAll('img, video').forEach(function (el) { items.push(el); });
  function state(el) {
    if (el.tagName === 'IMG') return el.complete ? (el.naturalWidth > 0 ? 'ok' : 'error') : 'pending';
    if (el.error) return 'error';
    return el.readyState >= 1 ? 'ok' : 'pending';
  }
  function update() {
    out.textContent = JSON.stringify(items.map(function (el) {
      return {tag: el.tagName.toLowerCase(), src: el.getAttribute('src'), state: state(el),
              width: el.tagName === 'IMG' ? el.naturalWidth : el.videoWidth};
    }));
  }
  items.forEach(function (el) {
    ['load', 'error', 'loadedmetadata', 'loadeddata'].forEach(function (ev) { el.addEventListener(ev, update); });
  });
  window.addEventListener('load', update);
  setInterval(update, 100);
  update();
})();
</script>"""


class Refs(HTMLParser):
    """Every src and href on the page, and the tags seen."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href"):
                self.refs.append((tag, value))


@pytest.fixture(scope="module")
def galleries(tmp_path_factory, small_biggan_dir, one_thread):
    """Two batches over classes 1, 2 and a failing 3: scored and rendered as MP4 + PNG strip
    (default batch folder), then the same runs rendered as GIF (batch folder batch-gif)."""
    out = tmp_path_factory.mktemp("gallery") / "out"
    model = str(small_biggan_dir)
    bad = run_dir_for(out, model, 3, "tiger shark")
    bad.mkdir(parents=True)
    (bad / "checkpoint.pt").write_bytes(b"<b>not</b> a checkpoint")
    torch_home = out.parent / "torch-home"                   # a stand-in LPIPS backbone, no network
    write_backbone_checkpoint(torch_home / "hub" / "checkpoints")
    common = ["--classes", "1,2,3", "--model", model, "--out", str(out), "--steps", "2",
              "--batch-size", "1", "--ndirs", "4", "--device", "cpu", "-q", "--eval-per-direction", "1", "--eval-references", "2", "--eval-k", "2", "--score",
              "--score-seeds", "2", "--render", "--render-frames", "4",
              "--render-seeds", "0-1", "--top", "3"]
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(torch_home))
        r = runner.invoke(cli, ["batch", *common])
        assert r.exit_code == 1 and "1 of 3 classes failed" in r.output, r.output
        r = runner.invoke(cli, ["batch", *common, "--render-format", "gif", "--batch-name", "gif"])
        assert r.exit_code == 1, r.output
    root = out / model_label(model)
    return {"mp4": root / "batch", "gif": root / "batch-gif", "model": model, "out": out}


def test_gallery_links_are_relative_and_exist(galleries):
    for fmt in ("mp4", "gif"):
        folder = galleries[fmt]
        page = (folder / "index.html").read_text()
        parser = Refs()
        parser.feed(page)
        assert "script" not in parser.tags and "link" not in parser.tags and "<style>" in page
        assert "http:" not in page and "https:" not in page and "file:" not in page
        for tag, ref in parser.refs:
            assert not ref.startswith("/") and "://" not in ref, ref
            assert (folder / unquote(ref)).exists(), f"{fmt}: {tag} -> {ref} does not exist"
        media = [(t, r) for t, r in parser.refs if t in ("img", "video")]
        suffixes = sorted(Path(unquote(r)).suffix for _, r in media)
        assert suffixes == ([".mp4", ".mp4", ".png", ".png", ".png", ".png"] if fmt == "mp4" else
                            [".gif", ".gif", ".png", ".png", ".png", ".png"])  # strips, curves
        curves = [unquote(r) for t, r in media if r.endswith("curve.png")]
        assert curves == ["../1-goldfish/curve.png", "../2-great-white-shark/curve.png"]
        links = [unquote(r) for t, r in parser.refs if t == "a"]
        assert "../1-goldfish/" in links and "../1-goldfish/scores.csv" in links
        assert "../3-tiger-shark/" in links                    # the failed run's folder exists
        # the failed card shows its error, escaped
        assert "unreadable checkpoint" in page and "<b>not</b>" not in page

        entries = {e["class_index"]: e for e in read_manifest(folder)}
        assert entries[3]["status"] == "failed" and entries[3]["media"] == []
        for i in (1, 2):
            e = entries[i]
            assert [Path(m).suffix for m in e["media"]] == [f".{fmt}", ".png"]
            scores = json.loads((folder / e["run_folder"] / "scores.json").read_text())
            assert e["top_directions"] == scores["ranking"][:3]
            # the card's first score row: the best direction and its effect (4 significant digits)
            best = scores["directions"][scores["ranking"][0]]
            card = page.split(f'id="c{i}"')[1].split("</section>")[0]
            row = re.search(r"<tr><td>1</td><td>(\d+)</td><td>([^<]+)</td>", card)
            assert int(row.group(1)) == scores["ranking"][0]
            assert float(row.group(2)) == pytest.approx(best["effect"], rel=5e-4)


def test_write_gallery_from_a_script_matches_the_batch(galleries):
    folder = galleries["mp4"]
    written = (folder / "index.html").read_text()
    path = write_gallery(folder)                            # reads the manifest itself
    assert path == folder / "index.html"
    strip = lambda text: re.sub(r"Written [\d: -]+\.", "", text)  # noqa: E731
    assert strip(path.read_text()) == strip(written)
    assert not list(folder.glob("*.tmp"))


def test_failed_card_shows_no_leftover_media(tmp_path):
    """A failed class's videos/ may hold files of an earlier run: its card shows none of them,
    while a finished class without listed media still shows what its videos/ holds."""
    folder = tmp_path / "out" / "m" / "batch"
    folder.mkdir(parents=True)
    for name in ("1-goldfish", "3-tiger-shark"):
        (tmp_path / "out" / "m" / name / "videos").mkdir(parents=True)
        (tmp_path / "out" / "m" / name / "videos" / "grid_dirs0-2_old.gif").write_bytes(b"GIF89a")
    entries = [{"class_index": 1, "class_name": "goldfish", "status": "finished",
                "run_folder": "../1-goldfish", "media": []},
               {"class_index": 3, "class_name": "tiger shark", "status": "failed",
                "run_folder": "../3-tiger-shark", "media": [], "error": "it broke"}]
    page = write_gallery(folder, entries).read_text()
    failed = page.split('id="c3"')[1].split("</section>")[0]
    finished = page.split('id="c1"')[1].split("</section>")[0]
    assert "it broke" in failed and "<img" not in failed and "<video" not in failed
    assert '<img src="../1-goldfish/videos/grid_dirs0-2_old.gif"' in finished


def test_methods_side_by_side_with_the_hessian_curve(tmp_path):
    """A class run with several methods: one table row per method (random-spreads, verdict, its own
    strip), the hessian run's curve.png; a one-method line keeps the old card."""
    root = tmp_path / "out" / "m"
    folder = root / "batch"
    folder.mkdir(parents=True)
    for rel in ("1-goldfish", "sefa/1-goldfish", "2-white-shark"):
        (root / rel / "videos").mkdir(parents=True)
        (root / rel / "videos" / "strip.png").write_bytes(b"\x89PNG")
    for rel in ("1-goldfish", "2-white-shark"):
        (root / rel / "curve.png").write_bytes(b"\x89PNG")
    part = {"status": "finished", "top_directions": None, "error": None}
    methods = {"hessian": {**part, "run_folder": "../1-goldfish", "eval_penalty": 1.25,
                           "random_spreads": -2.4, "versus_random": "below random (2.1 sd)",
                           "media": ["../1-goldfish/videos/strip.png"]},
               "sefa": {**part, "run_folder": "../sefa/1-goldfish", "eval_penalty": 3.5,
                        "random_spreads": 1.0, "versus_random": "within random spread",
                        "media": ["../sefa/1-goldfish/videos/strip.png"]}}
    entries = [{"class_index": 1, "class_name": "goldfish", "status": "finished",
                "run_folder": "../1-goldfish", "media": ["../1-goldfish/videos/strip.png"],
                "methods": methods},
               {"class_index": 2, "class_name": "white shark", "status": "finished",
                "run_folder": "../2-white-shark", "media": ["../2-white-shark/videos/strip.png"]}]
    page = write_gallery(folder, entries).read_text()
    card = page.split('id="c1"')[1].split("</section>")[0]
    table = card.split('<table class="methods">')[1].split("</table>")[0]
    rows = table.split("<tr>")[2:]
    assert [r.split("</a>")[0].rsplit(">", 1)[1] for r in rows] == ["hessian", "sefa"]
    # each run against its own random band, never raw penalties of different draws (issue 28)
    assert "-2.4" in rows[0] and "below random (2.1 sd)" in rows[0]
    assert "+1.0" in rows[1] and "within random spread" in rows[1]
    assert "1.25" not in table and "3.5" not in table and "random-spreads" in table
    assert '<img src="../sefa/1-goldfish/videos/strip.png"' in rows[1]
    assert card.count("videos/strip.png\"") == 2               # each strip once, in its row
    assert '<img src="../1-goldfish/curve.png"' in card
    old = page.split('id="c2"')[1].split("</section>")[0]
    assert 'class="methods"' not in old and '<img src="../2-white-shark/curve.png"' in old
    assert '<img src="../2-white-shark/videos/strip.png"' in old


def test_gallery_does_not_import_batch():
    """No cycle: the gallery reads the manifest module, never the batch runner."""
    code = ("import sys, biggan_directions.batch.gallery; "
            "print('biggan_directions.batch.batch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def load_states(page: Path, profile: Path) -> list[dict]:
    """Open `page` (file://) in headless Chromium and return the LOAD_CHECK states."""
    binary = _chromium()
    result = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                             page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="load-status">(.*?)</pre>', result.stdout, re.S)
    assert found, f"no load status in Chromium's DOM (rc {result.returncode}): {result.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (Debian: apt-get install chromium)")
def test_every_image_and_video_loads_in_headless_chromium(galleries, tmp_path):
    for fmt in ("mp4", "gif"):
        folder = galleries[fmt]
        page = folder / "_load_check.html"
        text = (folder / "index.html").read_text()
        # a control that must fail, so a checker that reports 'ok' for everything is caught
        control = '<img src="no-such-file.png" alt="control">'
        page.write_text(text.replace("</body>", f"{control}\n{LOAD_CHECK}\n</body>"))
        try:
            states = load_states(page, tmp_path / f"profile-{fmt}")
        finally:
            page.unlink()
        by_src = {s["src"]: s for s in states}
        assert by_src.pop("no-such-file.png")["state"] == "error"
        tags = sorted(s["tag"] for s in by_src.values())
        assert tags == (["img"] * 4 + ["video", "video"] if fmt == "mp4" else ["img"] * 6)
        for s in by_src.values():
            assert s["state"] == "ok" and s["width"] > 0, (fmt, s)
        # the strip is 3 directions x 9 steps of 32 px plus the label column (its captions,
        # "5 zoom", set its width): shown at the file's own width
        from urllib.parse import unquote

        from PIL import Image

        strips = [s for s in by_src.values() if s["src"].endswith(".png")
                  and not s["src"].endswith("curve.png")]
        assert len(strips) == 2
        for s in strips:
            with Image.open(folder / unquote(s["src"])) as im:
                assert s["width"] == im.width >= 9 * 32 + 32


def test_batch_renders_what_render_top_k_renders(galleries, tmp_path):
    """The batch's strip is the file `render RUN --top 3 --strip` writes: same name, same pixels."""
    import imageio.v3 as iio

    folder = run_dir_for(galleries["out"], galleries["model"], 1, "goldfish")
    r = CliRunner().invoke(cli, ["render", str(folder), "--top", "3", "--strip", "--seeds", "0-1",
                                 "--out", str(tmp_path), "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    [single] = tmp_path.glob("strip_*.png")
    from_batch = folder / "videos" / single.name
    assert from_batch.is_file()
    assert (iio.imread(single) == iio.imread(from_batch)).all()
