"""Importing a weights file that a user downloaded by hand into the store, checked first."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...foundation.errors import UserError
from .checkpoint import load_checkpoint, write_safetensors
from .store import (CONFIG_NAME, KNOWN_MODELS, SAFETENSORS_NAME, WEIGHTS_NAME, copy_file,
                    file_entry, place, staging_dir, store_folder, weights_file, write_checksums)


def import_weights(path: str | os.PathLike, name: str, weights_dir: str | os.PathLike | None = None,
                   *, config: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Copy a .bin or .safetensors file (or a folder holding one and config.json) into
    `<weights_dir>/<name>/` after loading it strictly against its config; record checksums and
    write model.safetensors. The config is `config`, else config.json beside the file (or
    `<name>-config.json`, the published naming), else the one the store already holds.
    A file that does not fit is refused with its name; the store is then unchanged.
    Returns the store folder."""
    if name not in KNOWN_MODELS:
        raise UserError(f"{name!r} is not a model the store knows ({', '.join(KNOWN_MODELS)}); "
                        f"a folder of your own works as --model DIR.")
    path = Path(path)
    folder = store_folder(name, weights_dir)
    weights = weights_file(path) if path.is_dir() else path
    if weights is None or not weights.is_file():
        raise UserError(f"{path} is not a file, nor a folder holding {WEIGHTS_NAME} or "
                        f"{SAFETENSORS_NAME}.")
    if not weights.name.endswith((".bin", ".pt", ".pth", ".safetensors")):
        raise UserError(f"{weights} is neither a PyTorch (.bin, .pt, .pth) nor a .safetensors "
                        f"file.")
    config_path = _find_config(weights, folder, config)
    if (folder / CONFIG_NAME).is_file() and weights_file(folder) is not None and not overwrite:
        raise UserError(f"{folder} already holds {name}; pass overwrite to replace it.")

    _, state = load_checkpoint(config_path, weights, "cpu",
                               fix=f"import the weights that belong to {config_path.name}, or "
                                   f"pass the matching config")
    staging = staging_dir(folder)
    try:
        staged = {CONFIG_NAME: staging / CONFIG_NAME}
        shutil.copyfile(config_path, staged[CONFIG_NAME])
        stored_as = SAFETENSORS_NAME if weights.name.endswith(".safetensors") else WEIGHTS_NAME
        staged[stored_as] = staging / stored_as
        copy_file(weights, staged[stored_as])         # a copy: never the user's own file
        entries = {CONFIG_NAME: file_entry(staged[CONFIG_NAME], imported_from=str(config_path)),
                   stored_as: file_entry(staged[stored_as], imported_from=str(weights))}
        if stored_as == WEIGHTS_NAME:
            staged[SAFETENSORS_NAME] = staging / SAFETENSORS_NAME
            entries[SAFETENSORS_NAME] = write_safetensors(state, staged[SAFETENSORS_NAME])
        place(staged, folder, remove=(WEIGHTS_NAME, SAFETENSORS_NAME))
        write_checksums(folder, name, entries)
    except OSError as e:
        raise UserError(f"could not write into {folder} ({e.strerror or e}); check the folder's "
                        f"permissions and free space.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _find_config(weights: Path, folder: Path, config: str | os.PathLike | None) -> Path:
    if config is not None:
        if not Path(config).is_file():
            raise UserError(f"config {config} is not a file.")
        return Path(config)
    candidates = [weights.parent / CONFIG_NAME, folder / CONFIG_NAME]
    if weights.name.endswith(f"-{WEIGHTS_NAME}"):  # published naming: <name>-pytorch_model.bin
        candidates.insert(1, weights.parent / weights.name.replace(WEIGHTS_NAME, CONFIG_NAME))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserError(f"no config.json for {weights}: none beside it and none in {folder}; "
                    f"pass the config that came with it.")
