"""A frozen BigGAN from a config.json and a weights file (.bin or .safetensors), loaded strictly.

Strict means: the config describes a BigGAN whose output size is its `output_dim`, the weights
are read without running any code, every key is there with its shape, none is extra, all are
finite. Anything else is a UserError naming the file, never a silently random model.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ...foundation.errors import UserError, first_line
from ...foundation.fileio import atomic_path, chmod_as_new
from .store import CONFIG_NAME, MODEL_FILES, WEIGHTS_NAME, file_entry

StateDict = dict[str, torch.Tensor]


def save_biggan(model: nn.Module, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Save a BigGAN in pytorch-pretrained-biggan's own format: config.json + pytorch_model.bin.

    Both files are written atomically (temporary file, then rename). Existing files are kept
    (UserError) unless overwrite=True. Returns the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not overwrite:
        present = [f for f in MODEL_FILES if (folder / f).exists()]
        if present:
            raise UserError(f"{folder} already holds {' and '.join(present)}; "
                            f"choose another folder or pass overwrite=True.")
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(model.config.to_json_string(), encoding="utf-8")
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        torch.save(model.state_dict(), tmp)
    return folder


def write_safetensors(state: StateDict, path: Path) -> dict:
    """Write `state` (the tensors as read from the weights file) to `path` as safetensors,
    atomically, with the umask's permissions like the store's other files (safetensors itself
    writes 0600); returns its checksum entry."""
    tensors = {k: v.detach().clone().contiguous() for k, v in state.items()}  # no shared storage
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))
        chmod_as_new(tmp)
    return file_entry(path, converted_from=WEIGHTS_NAME)


def load_checkpoint(config_path: Path, weights_path: Path, device: torch.device | str = "cpu",
                    fix: str = "replace it with a good copy") -> tuple[nn.Module, StateDict]:
    """Build BigGAN(config.json), load the weights strictly, freeze it (eval mode, no grad),
    move it to `device`. Returns (model, the state dict as read from the file). `fix` ends
    every error message: what the user should do."""
    from pytorch_pretrained_biggan import BigGAN   # deferred: loads boto3 (~1 s); only loading needs it

    config = read_config(config_path, fix)
    try:
        net = BigGAN(config)
    except Exception as e:  # wrong types or inconsistent layer sizes
        raise UserError(f"{config_path} does not describe a BigGAN ({type(e).__name__}: "
                        f"{first_line(e)}); {fix}.") from None
    check_output_size(config, config_path)
    state = read_state(weights_path, fix)
    _load_strict(net, state, config_path, weights_path, fix)
    for k, v in net.state_dict().items():
        # A sum is finite iff every element is (weights are far below float overflow); fast.
        if v.is_floating_point() and not torch.isfinite(v.sum()):
            raise UserError(f"{weights_path} holds NaN or infinite values in {k}; {fix}.")
    net.eval().requires_grad_(False)
    return net.to(device), state


def read_config(path: Path, fix: str):
    """config.json -> BigGANConfig with only the fields BigGANConfig knows."""
    from pytorch_pretrained_biggan import BigGANConfig   # deferred: loads boto3 (~1 s)

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not valid JSON ({first_line(e)}); {fix}.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}, not an object of BigGAN "
                        f"settings; {fix}.")
    known = set(BigGANConfig().__dict__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"{path} has unknown setting(s) {', '.join(unknown)} (a BigGAN config has "
                        f"{', '.join(sorted(known))}); {fix}.")
    return BigGANConfig.from_dict(data)


def check_output_size(config, path: Path) -> None:
    """Refuse a config whose output_dim is not the size its layers produce (4 px doubled by
    each upsampling layer): the tools would make pictures of the wrong size."""
    size = 4 * 2 ** sum(1 for layer in config.layers if layer[0])
    if int(config.output_dim) != size:
        raise UserError(f"{path} says output_dim {config.output_dim} but its layers make {size} px "
                        f"pictures (4 px, doubled by each upsampling layer); set output_dim to "
                        f"{size}, or use the config.json that came with the weights.")


def read_state(path: Path, fix: str) -> StateDict:
    """The tensors of a .safetensors or torch (zip or legacy) file; never unpickles code."""
    if path.name.endswith(".safetensors"):
        try:
            state = load_file(str(path), device="cpu")
        except Exception as e:  # SafetensorError: truncated header, bad offsets, ...
            raise UserError(f"{path} cannot be read as safetensors (truncated or corrupt: "
                            f"{type(e).__name__}: {first_line(e)}); {fix}.") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated zip, random bytes, pickled objects
            raise UserError(f"{path} cannot be read as PyTorch weights (truncated or corrupt: "
                            f"{_torch_load_reason(e)}); {fix}.") from None
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{path} holds a {type(state).__name__}, not a state dict of "
                        f"tensors; {fix}.")
    return dict(state)


def _load_strict(net: nn.Module, state: StateDict, config_path: Path, weights_path: Path,
                 fix: str) -> None:
    expected = net.state_dict()
    wrong_shapes = [f"{k}: file {tuple(v.shape)}, model {tuple(expected[k].shape)}"
                    for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if wrong_shapes:
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
    else:
        # strict=False only to collect the lists: any missing or unexpected key is an error below,
        # which is what strict=True checks. Load hooks (spectral norm) run before the comparison.
        try:
            result = net.load_state_dict(state, strict=False)
        except (RuntimeError, KeyError, ValueError) as e:
            raise UserError(f"{weights_path} does not fit {config_path} "
                            f"({first_line(e)}); {fix}.") from None
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected or wrong_shapes:
        parts = [_listing(n, what) for n, what in ((missing, "missing key"),
                                                    (unexpected, "unexpected key"),
                                                    (wrong_shapes, "wrong shape")) if n]
        raise UserError(f"{weights_path} does not match {config_path}: {'; '.join(parts)}; "
                        f"both files must come from the same model: {fix}.")


def _torch_load_reason(e: Exception) -> str:
    text = first_line(e)
    if "Weights only load failed" in text:  # torch advises turning the safe mode off: never
        return "it holds objects other than tensors, refused since loading never runs code"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _listing(items: list[str], what: str, first: int = 3) -> str:
    shown = ", ".join(items[:first]) + (", ..." if len(items) > first else "")
    return f"{len(items)} {what}{'s' if len(items) != 1 else ''} ({shown})"
