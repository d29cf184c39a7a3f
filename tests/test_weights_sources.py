"""Sources in order (store, URLs, Hub) with their reports, offline and hung sources, damaged
downloads, the safetensors conversion, the output-size check and the per-node check."""
from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

from biggan_directions.foundation.errors import UserError
from biggan_directions.models.weights import (BASE_URL_ENV, CHECKSUMS_NAME, CONFIG_NAME,
                                              HUB_MIRRORS, HUB_REPO_ENV, SAFETENSORS_NAME,
                                              TIMEOUT_ENV, WEIGHTS_NAME, load_biggan, sources_for,
                                              verify_available)
from tests.weights_servers import COMMIT, FileServer, HubServer

NAME = "biggan-deep-128"
REPO = "someone/BigGAN-deep-128"


def render(model) -> torch.Tensor:
    z = torch.randn(2, 128, generator=torch.Generator().manual_seed(0))
    one_hot = torch.zeros(2, 1000)
    one_hot[:, 207] = 1
    with torch.no_grad():
        return model(z, one_hot, 0.5)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Short timeouts; the Hub client's endpoint and cache point at nothing real."""
    monkeypatch.setenv(TIMEOUT_ENV, "2")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(HUB_REPO_ENV, "")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture(scope="module")
def reference():
    """Images of the small model built in memory, never through the loader."""
    from tests.support import build_small_biggan
    return render(build_small_biggan())


@pytest.fixture
def files(small_biggan_dir) -> dict[str, bytes]:
    return {f: (small_biggan_dir / f).read_bytes() for f in (CONFIG_NAME, WEIGHTS_NAME)}


@pytest.fixture
def url_server(files, monkeypatch):
    srv = FileServer({f"/biggan/{NAME}-{f}": b for f, b in files.items()})
    monkeypatch.setenv(BASE_URL_ENV, srv.base)
    yield srv
    srv.stop()


@pytest.fixture
def dead_url(monkeypatch):
    """The package's URLs point at a port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{port}/biggan")


@pytest.fixture
def hub(files, monkeypatch):
    srv = HubServer(REPO, files)
    monkeypatch.setenv("HF_ENDPOINT", srv.root)
    monkeypatch.setenv(HUB_REPO_ENV, REPO)
    yield srv
    srv.stop()


def fetch(tmp_path, **kwargs):
    lines = []
    model = load_biggan(NAME, weights_dir=tmp_path / "store", progress=False,
                        report=lines.append, **kwargs)
    return model, lines


def store_is_clean(tmp_path) -> bool:
    store = tmp_path / "store"
    return not store.exists() or all(
        p.name == NAME and not any(p.iterdir()) for p in store.iterdir())


# ---------------------------------------------------------------- which sources
def test_default_sources_are_the_package_urls_then_the_known_mirror(monkeypatch):
    monkeypatch.delenv(HUB_REPO_ENV)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert [(s.kind, s.where) for s in sources_for(NAME)] == [
        ("url", "https://s3.amazonaws.com/models.huggingface.co/biggan"),
        ("hub", "osanseviero/BigGAN-deep-128")]
    assert HUB_MIRRORS == {NAME: "osanseviero/BigGAN-deep-128"}
    assert [s.kind for s in sources_for("biggan-deep-256")] == ["url"]  # no known mirror
    assert sources_for(NAME, hub_repo="me/{name}@v1")[1].where == f"me/{NAME}@v1"
    monkeypatch.setenv(HUB_REPO_ENV, "")
    assert [s.kind for s in sources_for(NAME)] == ["url"]


# ---------------------------------------------------------------- the Hub
def test_hub_after_a_failing_url_source_with_one_report_each(tmp_path, dead_url, hub, reference):
    model, lines = fetch(tmp_path)
    assert torch.equal(render(model), reference)
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert lines[0] == f"{NAME}: store {tmp_path / 'store' / NAME}: lacks config.json and pytorch_model.bin"
    assert lines[1].startswith(f"{NAME}: url ") and "connection to 127.0.0.1" in lines[1]
    assert lines[2].startswith(f"{NAME}: hub Hub {REPO}: got config.json and pytorch_model.bin (")
    for f in (CONFIG_NAME, WEIGHTS_NAME):
        assert f"HEAD /{REPO}/resolve/main/{f}" in hub.requests
        assert f"GET /{REPO}/resolve/main/{f}" in hub.requests
    folder = tmp_path / "store" / NAME
    record = json.loads((folder / CHECKSUMS_NAME).read_text())["files"]
    assert record[WEIGHTS_NAME]["hub"] == f"{REPO}@{COMMIT}"
    assert sorted(os.listdir(folder)) == [CHECKSUMS_NAME, CONFIG_NAME, SAFETENSORS_NAME, WEIGHTS_NAME]
    assert sorted(os.listdir(tmp_path / "store")) == [NAME]  # no staging folder left

    hub.stop()  # from now on, the store alone: no source is asked
    lines.clear()
    again = load_biggan(NAME, weights_dir=tmp_path / "store", report=lines.append)
    assert torch.equal(render(again), reference) and lines == []


def test_url_source_comes_before_the_hub(tmp_path, url_server, hub):
    _, lines = fetch(tmp_path)
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["store", "url"]
    assert hub.requests == []


def test_hub_offline_with_an_empty_store_is_one_line_at_once(tmp_path, monkeypatch, hub):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(BASE_URL_ENV, "http://hangs.invalid/biggan")
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        fetch(tmp_path)
    assert time.monotonic() - start < 5
    text = str(err.value)
    assert "\n" not in text
    assert "(url: skipped: HF_HUB_OFFLINE is set; hub: config.json: HF_HUB_OFFLINE is set and " \
           "the Hub's cache lacks it)" in text
    assert hub.requests == [] and store_is_clean(tmp_path)


def test_hub_offline_uses_the_hub_cache(tmp_path, monkeypatch, dead_url, hub, reference):
    fetch(tmp_path)  # fills the Hub's cache
    shutil.rmtree(tmp_path / "store")
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, lines = fetch(tmp_path)
    assert torch.equal(render(model), reference)
    assert lines[-1].startswith(f"{NAME}: hub Hub {REPO}: got ")


def test_a_hanging_source_times_out(tmp_path, monkeypatch, dead_url, hub):
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")                  # the wait is the test's whole time
    hub.hang = threading.Event()
    start = time.monotonic()
    with pytest.raises(UserError, match=r"hub: config.json: no answer within 0.5 s"):
        fetch(tmp_path)
    assert time.monotonic() - start < 15
    assert store_is_clean(tmp_path)


def test_a_hung_name_lookup_times_out(tmp_path, monkeypatch):
    release = threading.Event()
    real = socket.getaddrinfo

    def hang(host, *args, **kwargs):
        if host == "hangs.example":
            release.wait(60)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    monkeypatch.setenv(BASE_URL_ENV, "http://hangs.example/biggan")
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")                  # the wait is the test's whole time
    start = time.monotonic()
    try:
        with pytest.raises(UserError, match=r"url: no answer resolving hangs.example within 0.5 s"):
            fetch(tmp_path)
        assert time.monotonic() - start < 10
    finally:
        release.set()
    assert store_is_clean(tmp_path)


def test_corrupted_hub_download_is_refused_and_not_kept(tmp_path, dead_url, hub, files):
    path = f"/{REPO}/resolve/main/{WEIGHTS_NAME}"
    data = bytearray(files[WEIGHTS_NAME])
    data[len(data) // 2] ^= 0xFF
    hub.files[path] = bytes(data)
    hub.etags[path] = __import__("hashlib").sha256(files[WEIGHTS_NAME]).hexdigest()
    with pytest.raises(UserError, match=r"hub: pytorch_model.bin arrived damaged \(sha256 \w{16}\.\.\., "
                                        r"the Hub lists \w{16}\.\.\.\)"):
        fetch(tmp_path)
    assert store_is_clean(tmp_path)
    hub.files[path] = files[WEIGHTS_NAME]  # the next try downloads afresh, not the bad cached copy
    fetch(tmp_path)


def test_truncated_url_download_then_a_good_hub(tmp_path, url_server, hub, files, reference):
    path = f"/biggan/{NAME}-{WEIGHTS_NAME}"
    url_server.cut[path] = len(files[WEIGHTS_NAME]) // 2
    model, lines = fetch(tmp_path)
    assert "url" in lines[1] and "broke off before the end (truncated)" in lines[1]
    assert torch.equal(render(model), reference)


def test_garbage_from_every_source_is_refused_and_nothing_kept(tmp_path, url_server, files):
    url_server.files[f"/biggan/{NAME}-{WEIGHTS_NAME}"] = os.urandom(len(files[WEIGHTS_NAME]))
    with pytest.raises(UserError, match=r"url: refused: pytorch_model.bin cannot be read as "
                                        r"PyTorch weights .*; it was not kept"):
        fetch(tmp_path)
    assert store_is_clean(tmp_path)


# ---------------------------------------------------------------- safetensors
def test_safetensors_written_after_first_load_then_used(tmp_path, small_biggan_dir, reference,
                                                        monkeypatch):
    store = tmp_path / "store"
    shutil.copytree(small_biggan_dir, store / NAME)
    first = load_biggan(NAME, weights_dir=store)  # from the .bin, placed by hand
    folder = store / NAME
    record = json.loads((folder / CHECKSUMS_NAME).read_text())["files"]
    assert set(record) == {CONFIG_NAME, WEIGHTS_NAME, SAFETENSORS_NAME}
    assert record[SAFETENSORS_NAME]["size"] == (folder / SAFETENSORS_NAME).stat().st_size

    from safetensors.torch import load_file
    bin_state = torch.load(folder / WEIGHTS_NAME, weights_only=True)
    st_state = load_file(str(folder / SAFETENSORS_NAME))
    assert bin_state.keys() == st_state.keys()
    assert all(torch.equal(bin_state[k], st_state[k]) and bin_state[k].dtype == st_state[k].dtype
               for k in bin_state)

    def no_bin(path, *args, **kwargs):
        raise AssertionError(f"torch.load({path}) although model.safetensors is there")
    monkeypatch.setattr(torch, "load", no_bin)
    second = load_biggan(NAME, weights_dir=store)
    assert torch.equal(render(first), reference) and torch.equal(render(second), reference)


def test_folder_with_only_safetensors_loads(tmp_path, small_biggan_dir, reference):
    store = tmp_path / "store"
    shutil.copytree(small_biggan_dir, store / NAME)
    load_biggan(NAME, weights_dir=store)
    (store / NAME / WEIGHTS_NAME).unlink()
    (store / NAME / CHECKSUMS_NAME).unlink()
    assert torch.equal(render(load_biggan(str(store / NAME))), reference)
    (store / NAME / SAFETENSORS_NAME).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(UserError, match=r"model.safetensors cannot be read as safetensors"):
        load_biggan(str(store / NAME))


# ---------------------------------------------------------------- output size (issue 9, defect 6)
def test_output_dim_that_does_not_match_the_layers_is_refused(tmp_path, small_biggan_dir):
    folder = Path(shutil.copytree(small_biggan_dir, tmp_path / "model"))
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["output_dim"] = 128  # the weights and layers make 32 px
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(UserError) as err:
        load_biggan(str(folder))
    assert str(err.value) == (f"{folder / CONFIG_NAME} says output_dim 128 but its layers make 32 px "
                              f"pictures (4 px, doubled by each upsampling layer); set output_dim "
                              f"to 32, or use the config.json that came with the weights.")


# ---------------------------------------------------------------- each node's check
def test_verify_available_names_the_host(tmp_path, small_biggan_dir):
    host = socket.gethostname()
    store = tmp_path / "store"
    with pytest.raises(UserError, match=rf"^host {host} lacks the weights of {NAME} in .*weights "
                                        rf"fetch {NAME}"):
        verify_available(NAME, store)
    shutil.copytree(small_biggan_dir, store / NAME)
    load_biggan(NAME, weights_dir=store)
    verify_available(NAME, store)  # complete and matching: no error
    path = store / NAME / SAFETENSORS_NAME
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=rf"^host {host}: .*model.safetensors has sha256"):
        verify_available(NAME, store)
    with pytest.raises(UserError, match=rf"^host {host}: --model .*nowhere: not a known model"):
        verify_available(str(tmp_path / "nowhere"))
