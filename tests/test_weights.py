"""The weight store: strict offline loading, every broken-file case, download from a local server."""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch

from biggan_directions.foundation.errors import UserError
from biggan_directions.models.weights import (BASE_URL_ENV, CHECKSUMS_NAME, CONFIG_NAME,
                                              HUB_REPO_ENV, SAFETENSORS_NAME, WEIGHTS_NAME,
                                              WEIGHTS_DIR_ENV, default_weights_dir, load_biggan,
                                              model_urls, save_biggan)
from tests.support import build_small_biggan
from tests.weights_servers import FileServer

NAME = "biggan-deep-128"  # a known name; the small model's files are served under it


@pytest.fixture(autouse=True)
def no_hub(monkeypatch, tmp_path):
    """No test reaches the real Hub: the Hub source is off unless a test turns it on, and the
    Hub client's endpoint and cache point at nothing real."""
    monkeypatch.setenv(HUB_REPO_ENV, "")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def render(model) -> torch.Tensor:
    """(2, 3, 32, 32) images of class 207 at truncation 0.5 from fixed latents."""
    z = torch.randn(2, 128, generator=torch.Generator().manual_seed(0))
    one_hot = torch.zeros(2, 1000)
    one_hot[:, 207] = 1
    with torch.no_grad():
        return model(z, one_hot, 0.5)


@pytest.fixture(scope="module")
def original():
    """The small model in memory, never through the loader (same seed as small_biggan_dir's)."""
    return build_small_biggan()


@pytest.fixture(scope="module")
def reference(original):
    """(2, 3, 32, 32) images of the in-memory model: what every load must reproduce exactly."""
    return render(original)


@pytest.fixture
def model_dir(small_biggan_dir, tmp_path) -> Path:
    """A private copy of the small model's folder, free to break."""
    return Path(shutil.copytree(small_biggan_dir, tmp_path / "model"))


def assert_frozen_eval(model):
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------- local folders
def test_round_trip_gives_identical_images(tmp_path, original, reference):
    folder = save_biggan(original, tmp_path / "saved")
    assert sorted(os.listdir(folder)) == [CONFIG_NAME, WEIGHTS_NAME]  # no temp file left
    for spec in (str(folder), folder):  # str or Path
        model = load_biggan(spec, device="cpu")
        assert_frozen_eval(model)
        images = render(model)
        assert images.shape == (2, 3, 32, 32)
        assert torch.isfinite(images).all() and images.abs().max().item() <= 1.0
        assert torch.equal(images, reference)  # bit-identical: same weights, same buffers
    assert model.generator.gen_z.weight_orig.device.type == "cpu"


def test_save_keeps_existing_files_unless_overwrite(model_dir, original, reference):
    (model_dir / WEIGHTS_NAME).write_bytes(b"the user's file")
    with pytest.raises(UserError, match="already holds config.json and pytorch_model.bin"):
        save_biggan(original, model_dir)
    assert (model_dir / WEIGHTS_NAME).read_bytes() == b"the user's file"
    save_biggan(original, model_dir, overwrite=True)
    assert torch.equal(render(load_biggan(str(model_dir))), reference)
    assert sorted(os.listdir(model_dir)) == [CONFIG_NAME, WEIGHTS_NAME]


def test_legacy_torch_serialization_loads(model_dir, reference):
    # The published files date from 2019, before torch's zip format: the old format must load.
    state = torch.load(model_dir / WEIGHTS_NAME, weights_only=True)
    torch.save(state, model_dir / WEIGHTS_NAME, _use_new_zipfile_serialization=False)
    assert torch.equal(render(load_biggan(str(model_dir))), reference)


def test_random_bytes_are_refused(model_dir):
    size = (model_dir / WEIGHTS_NAME).stat().st_size
    (model_dir / WEIGHTS_NAME).write_bytes(os.urandom(size))
    with pytest.raises(UserError, match=r"pytorch_model.bin cannot be read as PyTorch weights"):
        load_biggan(str(model_dir))


def test_truncated_file_is_refused(model_dir):
    data = (model_dir / WEIGHTS_NAME).read_bytes()
    (model_dir / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match=r"pytorch_model.bin cannot be read .*truncated or corrupt"):
        load_biggan(str(model_dir))


def test_pickled_objects_are_refused_without_running_them(model_dir):
    torch.save({"config": Path("x")}, model_dir / WEIGHTS_NAME)  # not loadable with weights_only
    with pytest.raises(UserError, match="holds objects other than tensors") as err:
        load_biggan(str(model_dir))
    assert "weights_only" not in str(err.value)   # no advice to turn safe loading off


def edit_state(folder: Path, edit) -> None:
    state = torch.load(folder / WEIGHTS_NAME, weights_only=True)
    torch.save(edit(state), folder / WEIGHTS_NAME)


def _extra(state):
    state["extra.weight"] = torch.zeros(3)
    return state


def _missing(state):
    del state["generator.bn.bias"]
    return state


def _wrong_shape(state):
    state["embeddings.weight"] = torch.zeros(128, 10)
    return state


def _nested(state):
    return {"model": state}


def _nan(state):
    state["generator.conv_to_rgb.weight_orig"][0, 0, 0, 0] = float("nan")
    return state


@pytest.mark.parametrize("edit, message", [
    (_extra, r"does not match .*config.json: 1 unexpected key \(extra.weight\)"),
    (_missing, r"does not match .*config.json: 1 missing key \(generator.bn.bias\)"),
    (_wrong_shape, r"1 wrong shape \(embeddings.weight: file \(128, 10\), model \(128, 1000\)\)"),
    (_nested, r"holds a dict, not a state dict of tensors"),
    (_nan, r"NaN or infinite values in generator.conv_to_rgb.weight_orig"),
])
def test_weights_that_do_not_fit_are_refused(model_dir, edit, message):
    edit_state(model_dir, edit)
    with pytest.raises(UserError, match=message) as err:
        load_biggan(str(model_dir))
    text = str(err.value)
    assert str(model_dir / WEIGHTS_NAME) in text and "\n" not in text


def test_config_from_another_model_is_refused(model_dir):
    config = json.loads((model_dir / CONFIG_NAME).read_text())
    config["channel_width"] = 8
    (model_dir / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"wrong shapes \(.*both files must come from the same model"):
        load_biggan(str(model_dir))


@pytest.mark.parametrize("text, message", [
    ('{"z_dim": 128,', r"config.json is not valid JSON \(Expecting"),
    ("\xff\xfe garbage", r"config.json is not valid JSON"),
    ("[1, 2]", r"config.json holds a JSON list, not an object"),
    ('{"channel_widht": 4}', r"config.json has unknown setting\(s\) channel_widht"),
    ('{"layers": "abc"}', r"config.json does not describe a BigGAN"),
])
def test_bad_config_is_refused(model_dir, text, message):
    (model_dir / CONFIG_NAME).write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError, match=message):
        load_biggan(str(model_dir))


def test_missing_folder_file_or_files(tmp_path, model_dir):
    with pytest.raises(UserError, match=r"--model .*nowhere: not a known model \(biggan-deep-128"):
        load_biggan(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"pytorch_model.bin is a file; pass the folder"):
        load_biggan(str(model_dir / WEIGHTS_NAME))
    (model_dir / WEIGHTS_NAME).unlink()
    with pytest.raises(UserError, match=r"model lacks pytorch_model.bin"):
        load_biggan(str(model_dir))


def test_default_weights_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    assert default_weights_dir() == Path("weights")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path))
    assert default_weights_dir() == tmp_path


# ---------------------------------------------------------------- download
@pytest.fixture
def server(small_biggan_dir, monkeypatch):
    files = {f"/biggan/{NAME}-{f}": (small_biggan_dir / f).read_bytes() for f in (CONFIG_NAME, WEIGHTS_NAME)}
    srv = FileServer(files)
    monkeypatch.setenv(BASE_URL_ENV, srv.base)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield srv
    srv.stop()


def forbid_network(monkeypatch):
    import requests

    def refuse(*args, **kwargs):
        raise AssertionError("the store went to the network although the files are there")
    monkeypatch.setattr(requests.Session, "send", refuse)


def test_urls_follow_published_naming(monkeypatch):
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert model_urls(NAME) == {
        CONFIG_NAME: "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-128-config.json",
        WEIGHTS_NAME: "https://s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-128-pytorch_model.bin"}


def test_download_once_then_offline(server, tmp_path, monkeypatch, reference, small_biggan_dir):
    store = tmp_path / "store"
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(store))  # weights_dir from the environment
    model = load_biggan(NAME, progress=False)
    assert_frozen_eval(model)
    assert torch.equal(render(model), reference)
    folder = store / NAME
    assert sorted(os.listdir(folder)) == [CHECKSUMS_NAME, CONFIG_NAME, SAFETENSORS_NAME,
                                          WEIGHTS_NAME]  # no temp files
    assert sorted(server.requests) == sorted(f"GET /biggan/{NAME}-{f}" for f in (CONFIG_NAME, WEIGHTS_NAME))
    record = json.loads((folder / CHECKSUMS_NAME).read_text())
    import hashlib
    for f in (CONFIG_NAME, WEIGHTS_NAME):
        data = (small_biggan_dir / f).read_bytes()
        assert (folder / f).read_bytes() == data
        assert record["files"][f]["size"] == len(data)
        assert record["files"][f]["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["files"][f]["url"] == f"{server.base}/{NAME}-{f}"

    server.stop()
    server.stop = lambda: None
    forbid_network(monkeypatch)
    again = load_biggan(NAME, progress=False)
    assert torch.equal(render(again), reference)


def test_interrupted_transfer_leaves_nothing(server, tmp_path):
    path = f"/biggan/{NAME}-{WEIGHTS_NAME}"
    server.cut[path] = len(server.files[path]) // 3  # config arrives whole, weights break off
    with pytest.raises(UserError, match=r"could not be downloaded \(url: pytorch_model.bin: the transfer from .* broke off"):
        load_biggan(NAME, weights_dir=tmp_path, progress=False)
    folder = tmp_path / NAME
    assert not folder.exists() or list(folder.iterdir()) == []
    assert [p for p in tmp_path.iterdir() if p.name != "hf-cache"] in ([], [folder])

    server.cut.clear()  # the next try starts afresh and succeeds
    load_biggan(NAME, weights_dir=tmp_path, progress=False)
    assert (folder / WEIGHTS_NAME).read_bytes() == server.files[path]


def test_http_error_names_status(server, tmp_path):
    server.files.pop(f"/biggan/{NAME}-{CONFIG_NAME}")
    with pytest.raises(UserError, match=r"could not be downloaded \(url: HTTP 404"):
        load_biggan(NAME, weights_dir=tmp_path, progress=False)
    assert not (tmp_path / NAME).exists()


def test_unreachable_server_fails_fast_with_placement_hint(tmp_path, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{port}/biggan")
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        load_biggan(NAME, weights_dir=tmp_path, progress=False)
    assert time.monotonic() - start < 30
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"{NAME} is not in {tmp_path / NAME} and could not be downloaded (")
    assert f"put config.json from http://127.0.0.1:{port}/biggan/{NAME}-config.json" in text
    assert f"pytorch_model.bin from http://127.0.0.1:{port}/biggan/{NAME}-pytorch_model.bin" in text
    assert text.endswith("there, or pass --model DIR.")
    assert not (tmp_path / NAME).exists()


def test_only_missing_files_are_downloaded(server, tmp_path, small_biggan_dir, reference):
    folder = tmp_path / NAME
    folder.mkdir()
    shutil.copy(small_biggan_dir / CONFIG_NAME, folder / CONFIG_NAME)
    assert torch.equal(render(load_biggan(NAME, weights_dir=tmp_path, progress=False)), reference)
    assert server.requests == [f"GET /biggan/{NAME}-{WEIGHTS_NAME}"]
    record = json.loads((folder / CHECKSUMS_NAME).read_text())
    assert set(record["files"]) == {CONFIG_NAME, WEIGHTS_NAME, SAFETENSORS_NAME}


def test_files_placed_by_hand_load_offline_and_get_recorded(tmp_path, small_biggan_dir, monkeypatch,
                                                             reference):
    forbid_network(monkeypatch)
    shutil.copytree(small_biggan_dir, tmp_path / NAME)
    assert torch.equal(render(load_biggan(NAME, weights_dir=tmp_path)), reference)
    record = json.loads((tmp_path / NAME / CHECKSUMS_NAME).read_text())
    assert record["files"][WEIGHTS_NAME]["size"] == (small_biggan_dir / WEIGHTS_NAME).stat().st_size


@pytest.fixture
def downloaded(server, tmp_path) -> Path:
    load_biggan(NAME, weights_dir=tmp_path, progress=False)
    return tmp_path / NAME


def test_tampered_file_fails_checksum(downloaded, tmp_path, monkeypatch):
    forbid_network(monkeypatch)
    path = downloaded / SAFETENSORS_NAME  # the file loads use once converted
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"model.safetensors has sha256 \w{16}\.\.\. but .*checksums.json "
                                        r"records \w{16}\.\.\. \(corrupt or changed\); delete "):
        load_biggan(NAME, weights_dir=tmp_path)


def test_resized_file_fails_size_check(downloaded, tmp_path):
    path = downloaded / CONFIG_NAME
    path.write_text(path.read_text() + " ")
    with pytest.raises(UserError, match=r"config.json has \d+ bytes but .*checksums.json records \d+"):
        load_biggan(NAME, weights_dir=tmp_path)


def test_checksums_are_checked_in_a_model_folder_too(downloaded):
    (downloaded / WEIGHTS_NAME).write_bytes(b"x")
    with pytest.raises(UserError, match=r"pytorch_model.bin has 1 bytes .*; replace it, or delete"):
        load_biggan(str(downloaded))


def test_bad_checksum_record_is_refused(downloaded, tmp_path):
    (downloaded / CHECKSUMS_NAME).write_text("{}")
    with pytest.raises(UserError, match=r"checksums.json is not a valid checksum record"):
        load_biggan(NAME, weights_dir=tmp_path)
