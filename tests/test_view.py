"""`view`: the viewer's state and images, its HTTP API (TestClient), the CLI, and the page in
headless Chromium (skipped, with the reason, when Playwright or /usr/bin/chromium is absent)."""
from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="view needs the optional extra: pip install '.[view]'")

from biggan_directions.media.walks import walk_latents  # noqa: E402
from biggan_directions.core.directions import random_orthonormal  # noqa: E402
from biggan_directions.models.generator import BigGANGenerator, latents_for_seeds  # noqa: E402
from biggan_directions.view.view import (SEED_MAX, ViewError, Viewer, format_amounts, parse_amounts,
                                         view_image, view_latent)
from tests import support  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PATH_SIZE = 5.0
# `make screenshots` sets this to refresh the README's picture; a plain test run leaves it alone.
SCREENSHOT = os.environ.get("BIGGAN_DIRECTIONS_SCREENSHOT")


def make_run(folder: Path, model_dir: Path, class_index=207, class_name="golden retriever",
             ndirs=6, seed=0) -> Path:
    return support.make_run(folder, model_dir, ndirs=ndirs, seed=seed, truncation=0.5,
                            path_size=PATH_SIZE, class_index=class_index,
                            class_name=class_name).parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, small_biggan_dir):
    return make_run(tmp_path_factory.mktemp("run"), small_biggan_dir)


@pytest.fixture(scope="module")
def viewer(run_dir):
    return Viewer(run_dir, device="cpu", progress=False)


@pytest.fixture(scope="module")
def client(viewer):
    from starlette.testclient import TestClient

    from biggan_directions.view.view_app import create_app
    return TestClient(create_app(viewer))


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


# ---------------------------------------------------------------- the library
def test_view_latent_matches_the_walk_of_render_for_one_direction():
    q = random_orthonormal(3, 128, torch.Generator().manual_seed(1))
    z = latents_for_seeds([4], 128, 0.7)                                      # (1, D)
    walked = walk_latents(z, q[1:2], torch.tensor([0.4]), PATH_SIZE)[0, 0, 0]  # t=0.4 -> a=2
    assert torch.allclose(view_latent(z[0], q[1:2], torch.tensor([2.0])), walked, atol=1e-5)
    both = view_latent(z[0], q[:2], torch.tensor([1.0, -3.0]))
    assert torch.allclose(q[:2] @ both, torch.tensor([1.0, -3.0]), atol=1e-5)   # set exactly
    assert torch.allclose(q[2] @ both, q[2] @ z[0], atol=1e-5)                  # others kept
    assert torch.equal(view_latent(z[0], q[:0], torch.zeros(0)), z[0])


def test_parse_amounts_reads_back_and_rejects_bad_values():
    assert parse_amounts("12:2.5, 3:-1,4:0", 20, 5.0) == {3: -1.0, 12: 2.5}
    assert parse_amounts(format_amounts({3: -1.0, 12: 2.5}), 20, 5.0) == {3: -1.0, 12: 2.5}
    for bad, words in [("20:1", "0-19"), ("x:1", "DIRECTION:AMOUNT"), ("3", "DIRECTION:AMOUNT"),
                       ("3:nan", "[-5, 5]"), ("3:inf", "[-5, 5]"), ("3:5.1", "[-5, 5]"),
                       ("3:1,3:2", "twice"), ("-1:1", "0-19")]:
        with pytest.raises(ViewError, match=re.escape(words)):
            parse_amounts(bad, 20, 5.0)


def test_parse_state_validates_every_value(viewer):
    s = viewer.parse_state({"seed": "7", "trunc": "0.25", "a": "1:2"})
    assert (s.seed, s.truncation, s.amounts, s.class_index) == (7, 0.25, ((1, 2.0),), 207)
    assert viewer.parse_state({}).truncation == 0.5                     # the run's
    for query, words in [({"seed": "-1"}, "seed"), ({"seed": str(SEED_MAX + 1)}, "seed"),
                         ({"seed": "1.5"}, "seed"), ({"trunc": "0"}, "truncation"),
                         ({"trunc": "1.5"}, "truncation"), ({"trunc": "nan"}, "truncation"),
                         ({"a": "6:1"}, "0-5"), ({"cls": "208"}, "class 208")]:
        with pytest.raises(ViewError, match=words):
            viewer.parse_state(query)


def test_select_directions_follows_scores_top_and_dirs(tmp_path, small_biggan_dir):
    from biggan_directions.runs.layout import open_run
    from biggan_directions.view.view import select_directions

    run = open_run(make_run(tmp_path, small_biggan_dir))
    assert select_directions(run) == ([0, 1, 2, 3, 4, 5], False)          # unscored: all
    assert select_directions(run, dirs=[4, 1]) == ([4, 1], False)
    from biggan_directions.foundation.errors import UserError
    with pytest.raises(UserError, match="0-5"):
        select_directions(run, dirs=[9])
    with pytest.raises(UserError):
        select_directions(run, top=2)                                     # not scored


# ---------------------------------------------------------------- the HTTP API
def test_image_changes_with_an_amount_and_a_url_reproduces_it(client):
    base = client.get("/api/image?seed=3&trunc=0.5")
    moved = client.get("/api/image?seed=3&trunc=0.5&a=2:4.5")
    assert base.status_code == moved.status_code == 200
    assert base.headers["content-type"] == "image/png"
    assert pixels(base.content).shape == (32, 32, 3)
    assert np.abs(pixels(base.content) - pixels(moved.content)).mean() > 1.0
    again = client.get("/api/image?a=2:4.5&trunc=0.5&seed=3")
    assert again.content == moved.content                                  # same bytes


def test_bad_values_answer_400_with_a_message_and_the_server_goes_on(client):
    for query, words in [("seed=abc", "seed 'abc'"), ("seed=-5", "seed -5"),
                         ("trunc=2", "truncation"), ("a=99:1", "0-5"), ("a=1:1e400", "[-5")]:
        r = client.get("/api/image?" + query)
        assert r.status_code == 400 and words in r.json()["error"], (query, r.text)
        assert "Traceback" not in r.text
    assert client.get("/api/image?seed=1").status_code == 200
    r = client.get("/api/walk?seed=1&dir=77&format=gif")
    assert r.status_code == 400 and "0-5" in r.json()["error"]
    assert client.get("/api/walk?seed=1&dir=1&format=avi").status_code == 400


def test_info_lists_the_directions_and_defaults(client, run_dir):
    info = client.get("/api/info").json()
    assert info["class_index"] == 207 and info["batch"] is False
    assert [d["index"] for d in info["directions"]] == list(range(6))
    assert info["path_size"] == PATH_SIZE and info["truncation"] == 0.5 and info["resolution"] == 32


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "<script>" in r.text
    assert "http://" not in r.text and "https://" not in r.text and "src=\"//" not in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_saved_png_settings_regenerate_its_pixels_through_the_python_api(client, small_biggan):
    from PIL import Image

    r = client.get("/api/save?seed=11&trunc=0.8&a=0:-3,4:2.25")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    record = json.loads(Image.open(io.BytesIO(r.content)).text["biggan-directions"])
    assert record["seed"] == 11 and record["amounts"] == {"0": -3.0, "4": 2.25}
    assert "--amounts 0:-3,4:2.25" in record["command"] and "--save" in record["command"]
    from biggan_directions.runs.layout import open_run
    q = open_run(Path(record["run"])).directions
    G = BigGANGenerator(small_biggan, record["class_index"], record["truncation"])
    image = view_image(G, q, record["seed"], {int(k): v for k, v in record["amounts"].items()})
    assert np.array_equal(image.astype(np.int16), pixels(r.content))


def test_walk_renders_a_gif_of_the_direction(client):
    import imageio.v3 as iio

    r = client.get("/api/walk?seed=2&trunc=0.5&a=1:2&dir=3&format=gif")
    assert r.status_code == 200, r.text
    frames = iio.imread(r.content, index=None)
    assert frames.shape[0] == 48 and frames.shape[1:3] == (32, 32)
    # Frame 0 is the walk's centre: direction 3 at 0, direction 1 kept at 2 (GIF palette: close).
    centre = client.get("/api/image?seed=2&trunc=0.5&a=1:2").content
    assert np.abs(frames[0][..., :3].astype(np.int16) - pixels(centre)).mean() < 12


def test_batch_folder_serves_a_class_picker(tmp_path, small_biggan_dir):
    from starlette.testclient import TestClient

    from biggan_directions.view.view_app import create_app

    batch = tmp_path / "batch"
    batch.mkdir()
    lines = []
    for index, name, seed in [(207, "golden retriever", 0), (1, "goldfish", 1)]:
        folder = tmp_path / f"{index}-run"
        folder.mkdir()
        make_run(folder, small_biggan_dir, index, name, seed=seed)
        lines.append(json.dumps({"class_index": index, "class_name": name,
                                 "run_folder": f"../{index}-run"}))
    lines.append(json.dumps({"class_index": 5, "class_name": "not run", "run_folder": "../none"}))
    (batch / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    client = TestClient(create_app(Viewer(batch, progress=False)))
    assert client.get("/api/info").json()["batch"]
    support.check_class_switching(client, "not a class of this batch")


# ---------------------------------------------------------------- the CLI
def _cli():
    from biggan_directions.cli import cli
    from biggan_directions.cli.view import view

    if "view" not in cli.commands:
        cli.add_command(view)
    return cli


def test_cli_save_writes_the_png_the_server_shows(client, run_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    r = client.get("/api/command?seed=5&trunc=0.5&a=2:-1.5")
    command = r.json()["command"].split()
    assert command[:3] == ["biggan-directions", "view", str(run_dir)]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(_cli(), command[1:] + ["--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    saved = (tmp_path / command[-1]).read_bytes()
    shown = client.get("/api/image?seed=5&trunc=0.5&a=2:-1.5").content
    assert np.array_equal(pixels(saved), pixels(shown))


def test_cli_errors_are_one_line(run_dir, tmp_path):
    from click.testing import CliRunner

    for args, words in [(["--amounts", "9:1"], "0-5"), (["--truncation", "3"], "truncation"),
                        (["--top", "2", "--dirs", "1"], "both given"), (["--dirs", "7"], "0-5")]:
        result = CliRunner().invoke(_cli(), ["view", str(run_dir), "--save",
                                             str(tmp_path / "x.png"), "--quiet"] + args)
        assert result.exit_code == 1 and words in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_requests_from_several_tabs_never_run_the_model_at_once(client, viewer, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    forward = viewer.model.generator.forward
    inside, most = [0], [0]

    def counting(*args, **kwargs):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.02)                                       # widen any race
        try:
            return forward(*args, **kwargs)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(viewer.model.generator, "forward", counting)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: client.get(f"/api/image?seed={i % 2}&a=1:{i / 2}"),
                                range(8)))
    assert [r.status_code for r in answers] == [200] * 8 and most[0] == 1
    assert answers[0].content == client.get("/api/image?seed=0&a=1:0").content


def test_walk_mp4_is_a_video(client):
    r = client.get("/api/walk?seed=2&dir=0&format=mp4")
    assert r.status_code == 200 and r.content[4:8] == b"ftyp", r.text[:200]
    assert r.headers["content-type"] == "video/mp4"


def test_serve_warns_when_others_can_reach_it(viewer, monkeypatch):
    import uvicorn

    from biggan_directions.view.view_app import serve

    ran = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: ran.append(sockets))
    lines: list[str] = []
    serve(viewer, "0.0.0.0", 0, query="seed=3", echo=lines.append)
    assert "Warning" in lines[0] and "network" in lines[0]
    assert lines[1].startswith("Serving") and "?seed=3" in lines[1] and ran
    ran[0][0].close()
    lines.clear()
    serve(viewer, "127.0.0.1", 0, echo=lines.append)
    assert len(lines) == 1 and "http://127.0.0.1:" in lines[0]
    ran[1][0].close()


def test_cli_serves_on_a_free_port_and_refuses_foreign_host_names(run_dir, monkeypatch):
    """view --port 0 prints its URL (with the first view's query) and serves it; a request that
    names another host is refused (DNS rebinding). Served in this process (support.serve_once);
    the real process, stopped by its signals, is the next test."""
    import httpx

    monkeypatch.setenv("BIGGAN_DIRECTIONS_THREADS", "1")

    def visit(printed: str):
        line = printed.splitlines()[0]
        assert "Serving" in line and "http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        base = url.split("?")[0]
        info = httpx.get(base + "api/info", timeout=30)
        foreign = httpx.get(base + "api/info", headers={"Host": "attacker.example"}, timeout=30)
        return url, info.json()["class_index"], foreign.status_code

    result, visited = support.serve_once(_cli(), ["view", str(run_dir), "--port", "0", "--device",
                                                  "cpu", "--quiet", "--seed", "9"], visit)
    assert result.exit_code == 0, result.output
    [(url, class_index, foreign)] = visited
    assert "seed=9" in url
    assert class_index == 207
    assert foreign == 400                                   # DNS rebinding: refused


@pytest.fixture(scope="module")
def view_processes(run_dir):
    """One real `view` process per signal, started together (on two cores they start in the
    time of one): signal name -> (the process, the first line it printed)."""
    import subprocess
    import sys

    from tests.support import default_hangup

    code = ("from biggan_directions.cli import cli; from biggan_directions.cli.view import view; "
            "cli.add_command(view); cli.main()")
    procs = {sig: subprocess.Popen([sys.executable, "-c", code, "view", str(run_dir), "--port", "0",
                                    "--device", "cpu", "--quiet"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "BIGGAN_DIRECTIONS_THREADS": "1"},
                                   preexec_fn=default_hangup)
             for sig in ("SIGHUP", "SIGTERM")}
    try:
        yield {sig: (proc, proc.stdout.readline()) for sig, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("sig", ["SIGHUP", "SIGTERM"])
def test_a_hangup_or_sigterm_stops_view_as_ctrl_c_does(view_processes, sig):
    """The terminal closed (SIGHUP) or `timeout` (SIGTERM): "Interrupted.", exit 130, no
    traceback (uvicorn handles SIGTERM itself; SIGHUP used to interrupt its event loop)."""
    import signal
    import subprocess

    import httpx

    proc, line = view_processes[sig]
    assert "Serving" in line, line
    base = line.split(" at ")[1].split()[0].split("?")[0]
    assert httpx.get(base + "api/info", timeout=30).status_code == 200   # the loop runs
    proc.send_signal(getattr(signal, sig))
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    assert proc.returncode == 130, output
    assert "Interrupted." in output and "Traceback" not in output
    assert "CancelledError" not in output


# ---------------------------------------------------------------- the page in Chromium
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(viewer):
    import uvicorn

    from biggan_directions.view.view_app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(viewer, allowed_hosts=["127.0.0.1"]), host="127.0.0.1",
                            port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1100, "height": 640})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, errors


def _settled(page, query_part: str | None = None):
    """Wait until no request runs and the image shown answers a query containing query_part.
    (Polled from Python: the page's CSP forbids the eval that wait_for_function needs.)"""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = page.locator("body").get_attribute("data-busy")
        shown = page.locator("#view").get_attribute("data-query")
        if busy == "0" and shown is not None and (query_part is None or query_part in shown):
            return
        time.sleep(0.05)
    raise AssertionError(f"the page did not settle on {query_part!r} (busy={busy}, shown={shown})")


def _shown(page) -> np.ndarray:
    return pixels(page.locator("#view").screenshot())


def test_page_slider_changes_the_image_and_the_url_reproduces_it(browser, server):
    page, errors = _open(browser, server + "?seed=3")
    _settled(page)
    before = _shown(page)
    page.locator("#dir2").fill("4.5")                    # sets the value and fires input
    _settled(page, "a=2:4.5")
    after = _shown(page)
    assert np.abs(before - after).mean() > 1.0
    url = page.url
    assert "a=2:4.5" in url and "seed=3" in url
    if SCREENSHOT:
        Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOT)
    again, errors2 = _open(browser, url)
    _settled(again, "a=2:4.5")
    assert np.array_equal(_shown(again), after)
    assert again.locator("#dir2").input_value() == "4.5"
    assert errors == [] and errors2 == [], errors + errors2
    page.close(), again.close()


def test_page_shows_a_message_for_a_bad_seed(browser, server):
    page, errors = _open(browser, server)
    _settled(page)
    page.locator("#seed").fill("-4")
    page.locator("#seed").dispatch_event("change")
    page.wait_for_selector("#error.shown")
    assert "seed -4" in page.locator("#error").inner_text()
    page.locator("#seed").fill("8")
    page.locator("#seed").dispatch_event("change")
    _settled(page, "seed=8")
    assert not page.locator("#error").is_visible()
    page.close()
    assert all("400" in e for e in errors), errors         # only the 400 response itself


def test_page_save_downloads_the_png_and_shows_its_command(browser, server, small_biggan):
    page, errors = _open(browser, server + "?seed=4&a=1:-2")
    _settled(page, "a=1:-2")
    with page.expect_download() as download:
        page.locator("#save").click()
    data = Path(download.value.path()).read_bytes()
    assert "--seed 4" in page.locator("#command").inner_text()
    from PIL import Image
    record = json.loads(Image.open(io.BytesIO(data)).text["biggan-directions"])
    from biggan_directions.runs.layout import open_run
    G = BigGANGenerator(small_biggan, record["class_index"], record["truncation"])
    image = view_image(G, open_run(Path(record["run"])).directions, record["seed"],
                       {int(k): v for k, v in record["amounts"].items()})
    assert np.array_equal(image.astype(np.int16), pixels(data))
    assert errors == [], errors
    page.close()

