"""`biggan-directions weights list | fetch | verify | import` through click's CliRunner."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from biggan_directions.models.weights import (BASE_URL_ENV, CHECKSUMS_NAME, CONFIG_NAME,
                                              HUB_REPO_ENV, SAFETENSORS_NAME, WEIGHTS_NAME)
from tests.weights_servers import FileServer

NAME = "biggan-deep-128"


@pytest.fixture
def cli(monkeypatch, tmp_path):
    from biggan_directions.cli import cli as group
    from biggan_directions.cli.weights import weights

    if "weights" not in group.commands:
        group.add_command(weights)
    monkeypatch.setenv(HUB_REPO_ENV, "")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("BIGGAN_DIRECTIONS_WEIGHTS", str(tmp_path / "store"))

    def run(*args):
        return CliRunner().invoke(group, ["weights", *args])
    return run


@pytest.fixture
def stored(tmp_path, small_biggan_dir):
    from biggan_directions.models.weights import load_biggan

    shutil.copytree(small_biggan_dir, tmp_path / "store" / NAME)
    load_biggan(NAME, weights_dir=tmp_path / "store")  # records checksums, writes safetensors
    return tmp_path / "store" / NAME


def test_list_shows_files_sizes_and_status(cli, stored):
    result = cli("list")
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith(f"{NAME}  verified  (config.json ")
    assert f"{WEIGHTS_NAME} " in line and f"{SAFETENSORS_NAME} " in line and "MiB" in line


def test_list_of_an_empty_store(cli):
    result = cli("list")
    assert result.exit_code == 0 and "no models" in result.output


def test_verify_catches_a_flipped_byte(cli, stored):
    assert cli("verify").exit_code == 0
    assert cli("verify", NAME).output.strip() == f"{NAME}: ok"
    path = stored / WEIGHTS_NAME  # the .bin: not used by loads any more, still checked
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))
    result = cli("verify", NAME)
    assert result.exit_code == 1
    assert f"Error: 1 of 1 model(s) failed verification: damaged: {path} has sha256" in result.output
    assert cli("verify", "biggan-deep-512").exit_code == 1


def test_fetch_downloads_ahead_of_time(cli, tmp_path, small_biggan_dir, monkeypatch):
    srv = FileServer({f"/biggan/{NAME}-{f}": (small_biggan_dir / f).read_bytes()
                      for f in (CONFIG_NAME, WEIGHTS_NAME)})
    monkeypatch.setenv(BASE_URL_ENV, srv.base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    try:
        result = cli("fetch", NAME, "--quiet")
    finally:
        srv.stop()
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{NAME}: ready in {tmp_path / 'store' / NAME}"
    assert (tmp_path / "store" / NAME / SAFETENSORS_NAME).is_file()
    assert cli("fetch", "biggan-deep-1024").exit_code == 1


@pytest.mark.parametrize("kind", ["bin", "safetensors"])
def test_import_a_file_downloaded_by_hand(cli, tmp_path, stored, kind, small_biggan):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    source = stored / (WEIGHTS_NAME if kind == "bin" else SAFETENSORS_NAME)
    shutil.copy(source, downloads / source.name)
    shutil.copy(stored / CONFIG_NAME, downloads / CONFIG_NAME)
    store2 = tmp_path / "store2"
    result = cli("import", str(downloads / source.name), "--name", NAME, "--weights-dir", str(store2))
    assert result.exit_code == 0, result.output
    folder = store2 / NAME
    record = json.loads((folder / CHECKSUMS_NAME).read_text())["files"]
    assert record[source.name]["imported_from"] == str(downloads / source.name)
    assert (folder / SAFETENSORS_NAME).is_file()
    from biggan_directions.models.weights import load_biggan
    a = load_biggan(NAME, weights_dir=store2)
    z = torch.randn(1, 128)
    one_hot = torch.zeros(1, 1000)
    one_hot[0, 1] = 1
    with torch.no_grad():
        assert torch.equal(a(z, one_hot, 0.4), small_biggan(z, one_hot, 0.4))
    again = cli("import", str(downloads / source.name), "--name", NAME, "--weights-dir", str(store2))
    assert again.exit_code == 1 and "already holds" in again.output


def test_import_of_a_wrong_shaped_file_is_refused(cli, tmp_path, stored):
    state = torch.load(stored / WEIGHTS_NAME, weights_only=True)
    state["embeddings.weight"] = torch.zeros(128, 10)
    bad = tmp_path / "wrong.bin"
    torch.save(state, bad)
    result = cli("import", str(bad), "--name", NAME, "--config", str(stored / CONFIG_NAME),
                 "--weights-dir", str(tmp_path / "store2"))
    assert result.exit_code == 1
    assert f"Error: {bad} does not match {stored / CONFIG_NAME}: 1 wrong shape (embeddings.weight" \
           in result.output
    assert not (tmp_path / "store2" / NAME).exists()


@pytest.mark.parametrize("kind", ["bin", "safetensors"])
def test_import_copies_the_users_file_and_store_files_get_the_umask_mode(cli, tmp_path, stored,
                                                                         kind):
    import os
    import stat

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    source = stored / (WEIGHTS_NAME if kind == "bin" else SAFETENSORS_NAME)
    mine = downloads / source.name
    shutil.copy(source, mine)
    shutil.copy(stored / CONFIG_NAME, downloads / CONFIG_NAME)
    original = mine.read_bytes()
    old = os.umask(0o022)
    try:
        result = cli("import", str(mine), "--name", NAME, "--weights-dir", str(tmp_path / "store2"))
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "store2" / NAME
    copy = folder / source.name
    assert mine.stat().st_nlink == 1 and copy.stat().st_ino != mine.stat().st_ino
    data = bytearray(copy.read_bytes())                     # damage the store's copy:
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert mine.read_bytes() == original                    # the user's file is untouched
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {name: 0o644 for name in (CONFIG_NAME, source.name, SAFETENSORS_NAME,
                                              CHECKSUMS_NAME)}


def test_the_store_writes_model_safetensors_with_the_umask_mode(tmp_path, small_biggan_dir):
    import os
    import stat

    from biggan_directions.models.weights import load_biggan

    shutil.copytree(small_biggan_dir, tmp_path / "store" / NAME)
    old = os.umask(0o022)
    try:
        load_biggan(NAME, weights_dir=tmp_path / "store", progress=False)   # converts the .bin
    finally:
        os.umask(old)
    converted = tmp_path / "store" / NAME / SAFETENSORS_NAME
    assert stat.S_IMODE(converted.stat().st_mode) == 0o644
