"""load_biggan: a model from the store (or fetched into it from its sources), verified before use.

A named model is looked up in `<weights_dir>/<name>/`; when files are missing, each source is
tried in order (the package's URLs, then the Hub), with one report line per try. What a
source delivers is loaded strictly from a staging folder and only then renamed into the store,
with its checksums; nothing partial or refused is ever left there. After the first clean load
of pytorch_model.bin, model.safetensors is written beside it and loaded from then on.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ...foundation.errors import UserError
from .checkpoint import StateDict, load_checkpoint, write_safetensors
from .sources import SourceError, sources_for
from .store import (CHECKSUMS_NAME, CONFIG_NAME, KNOWN_MODELS, MODEL_FILES, SAFETENSORS_NAME,
                    WEIGHTS_NAME, WEIGHT_FILES, place, read_checksums, sha256, staging_dir,
                    store_folder, verify_checksums, weights_file, write_checksums)

Report = Callable[[str], None]


def load_biggan(model: str | os.PathLike, device: torch.device | str = "cpu",
                weights_dir: str | os.PathLike | None = None, progress: bool = True, *,
                hub_repo: str | None = None, report: Report | None = None) -> nn.Module:
    """Load a BigGAN by name from the store, or from a folder; eval mode, frozen, on `device`.

    model:       'biggan-deep-128' | 'biggan-deep-256' | 'biggan-deep-512' (looked up in
                 `<weights_dir>/<name>/`, fetched there once when absent), or a folder holding
                 config.json + model.safetensors or pytorch_model.bin (never downloaded; checked
                 against its checksums.json when it has one).
    weights_dir: the store; default $BIGGAN_DIRECTIONS_WEIGHTS, else ./weights.
    progress:    show download progress bars and print the source reports on stderr.
    hub_repo:    the Hub repository to try ('owner/repo[@revision]', '' to skip the Hub);
                 default $BIGGAN_DIRECTIONS_HUB_REPO, else the known mirror.
    report:      called with each one-line source report (default: stderr when progress).
    Returns a pytorch_pretrained_biggan.BigGAN in eval mode with requires_grad False everywhere;
    forward(z (B, z_dim), one_hot (B, 1000), truncation in (0, 1]) -> (B, 3, H, W) in [-1, 1].
    Anything missing, corrupt, truncated or not matching its config: UserError naming the file.
    """
    if isinstance(model, str) and model in KNOWN_MODELS:
        return _from_store(model, weights_dir, device, progress, hub_repo, report)
    folder = _model_folder(model)
    verify_checksums(folder, fix=f"replace it, or delete {folder / CHECKSUMS_NAME} if the change "
                                 f"is intended")
    net, _ = load_checkpoint(folder / CONFIG_NAME, weights_file(folder), device,
                             fix="replace it with a good copy")
    return net


def fetch_model(name: str, weights_dir: str | os.PathLike | None = None, *,
                hub_repo: str | None = None, progress: bool = True,
                report: Report | None = None) -> Path:
    """Make `<weights_dir>/<name>/` complete ahead of time: fetched when absent, loaded strictly
    once (on the CPU), checksums recorded, model.safetensors written. Returns the folder."""
    _known(name)
    _from_store(name, weights_dir, "cpu", progress, hub_repo, report)
    return store_folder(name, weights_dir)


def verify_available(model: str | os.PathLike, weights_dir: str | os.PathLike | None = None) -> None:
    """Check, without any download, that this machine holds `model`'s files and that they match
    their checksums; UserError naming this host (socket.gethostname()) otherwise. Meant for each
    node of a cluster before it starts work."""
    host = socket.gethostname()
    if isinstance(model, str) and model in KNOWN_MODELS:
        folder = store_folder(model, weights_dir)
        if not (folder / CONFIG_NAME).is_file() or weights_file(folder) is None:
            raise UserError(f"host {host} lacks the weights of {model} in {folder.resolve()}; run "
                            f"`biggan-directions weights fetch {model}` there, or put the store "
                            f"on a folder every node shares.")
    else:
        try:
            folder = _model_folder(model)
        except UserError as e:
            raise UserError(f"host {host}: {e}") from None
    try:
        verify_checksums(folder, fix="fetch or copy it again on that host",
                         only=(CONFIG_NAME, weights_file(folder).name))
    except UserError as e:
        raise UserError(f"host {host}: {e}") from None


def ensure_available(model: str | os.PathLike, weights_dir: str | os.PathLike | None = None, *,
                     hub_repo: str | None = None, progress: bool = True,
                     report: Report | None = None) -> None:
    """Before a command creates anything: `model`'s files are on this machine and match their
    checksums. A store model that lacks files is fetched now (fetch_model), so that a failed
    download is a UserError before any output exists; a folder is checked as load_biggan would.
    The model itself is loaded later, where it is used."""
    if isinstance(model, str) and model in KNOWN_MODELS:
        folder = store_folder(model, weights_dir)
        if not (folder / CONFIG_NAME).is_file() or weights_file(folder) is None:
            fetch_model(model, weights_dir, hub_repo=hub_repo, progress=progress, report=report)
            return
        fix = f"delete {folder} and run again to download it afresh"
    else:
        folder = _model_folder(model)
        fix = f"replace it, or delete {folder / CHECKSUMS_NAME} if the change is intended"
    verify_checksums(folder, fix=fix, only=(CONFIG_NAME, weights_file(folder).name))


def weights_identity(model: str | os.PathLike,
                     weights_dir: str | os.PathLike | None = None) -> dict[str, object]:
    """Which weights `model` (a store name or a folder) is, for a run to record and compare on
    resume: {"file": the weights file load_biggan loads, "sha256": its sha256, "files": {name:
    sha256} of every weights file there (.bin and .safetensors hold the same tensors)}. The
    sha256 comes from checksums.json, which load_biggan verifies, for a file it records at its
    current size; other files are hashed (~1 s per GB). UserError when there are no weights."""
    if isinstance(model, str) and model in KNOWN_MODELS:
        folder = store_folder(model, weights_dir)
    else:
        folder = _model_folder(model)
    loaded = weights_file(folder)
    if loaded is None:
        raise UserError(f"{folder} holds no weights ({' or '.join(WEIGHT_FILES)}).")
    recorded = read_checksums(folder) or {}
    files = {}
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            entry = recorded.get(name)
            same_size = entry is not None and int(entry["size"]) == path.stat().st_size
            files[name] = str(entry["sha256"]) if same_size else sha256(path)
    return {"file": loaded.name, "sha256": files[loaded.name], "files": files}


# ---------------------------------------------------------------- the store, then the sources
def _from_store(name: str, weights_dir, device, progress: bool, hub_repo: str | None,
                report: Report | None) -> nn.Module:
    folder = store_folder(name, weights_dir)
    fix = f"delete {folder} and run again to download it afresh"
    complete = (folder / CONFIG_NAME).is_file() and weights_file(folder) is not None
    if complete:
        weights = weights_file(folder)
        verify_checksums(folder, fix=fix, only=(CONFIG_NAME, weights.name))
        net, state = load_checkpoint(folder / CONFIG_NAME, weights, device, fix)
        _settle(folder, name, state, weights)
        return net

    say = report or (_to_stderr if progress else (lambda line: None))
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    say(f"{name}: store {folder}: lacks {' and '.join(missing)}")
    created = [d for d in (folder.parent, *folder.parent.parents) if not d.exists()]
    reasons = []
    for source in sources_for(name, hub_repo):
        try:
            staging = staging_dir(folder)
        except OSError as e:
            raise UserError(f"cannot create {folder} ({e.strerror or e}); check the folder's "
                            f"permissions, or choose another weights folder.") from None
        try:
            entries = source.fetch(name, missing, staging, progress)
            where = {f: (staging if f in missing else folder) / f for f in MODEL_FILES}
            net, state = load_checkpoint(where[CONFIG_NAME], where[WEIGHTS_NAME], device,
                                         fix="it was not kept")
            place({f: staging / f for f in missing}, folder)
            write_checksums(folder, name, entries)
        except SourceError as e:
            reason = str(e)
        except UserError as e:  # delivered, but not loadable: refused
            reason = "refused: " + str(e).replace(f"{staging}{os.sep}", "")
        except OSError as e:  # placing or recording failed: the store is not writable
            raise UserError(f"could not write the download into {folder} ({e.strerror or e}); "
                            f"check the folder's permissions and free space.") from None
        else:
            size = sum(e["size"] for e in entries.values()) / 2**20
            say(f"{name}: {source.kind} {source.describe(name)}: got {' and '.join(missing)} "
                f"({size:.1f} MiB)")
            _settle(folder, name, state, folder / WEIGHTS_NAME)
            return net
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        say(f"{name}: {source.kind} {source.describe(name)}: {reason}")
        reasons.append(f"{source.kind}: {reason}")
    for d in created:  # deepest first; only empty ones go
        try:
            d.rmdir()
        except OSError:
            break
    first = sources_for(name, hub_repo)[0]
    hand = " and ".join(f"{f} from {first.file_url(name, f)}" for f in missing)
    raise UserError(f"{name} is not in {folder} and could not be downloaded "
                    f"({'; '.join(reasons)}); put {hand} there, or pass --model DIR.")


def _settle(folder: Path, name: str, state: StateDict, loaded: Path) -> None:
    """After a clean load from the store: write model.safetensors when the .bin was loaded,
    and record checksums of files not yet recorded. A read-only store is left as it is."""
    try:
        known = {}
        if loaded.name == WEIGHTS_NAME and not (folder / SAFETENSORS_NAME).is_file():
            known[SAFETENSORS_NAME] = write_safetensors(state, folder / SAFETENSORS_NAME)
        recorded = read_checksums(folder) or {}
        present = [f for f in (CONFIG_NAME, WEIGHTS_NAME, SAFETENSORS_NAME)
                   if (folder / f).is_file()]
        if known or any(f not in recorded for f in present):
            write_checksums(folder, name, known)
    except OSError:
        pass  # still loads; just not converted or recorded


def _model_folder(model: str | os.PathLike) -> Path:
    """A --model folder that holds config.json and a weights file, else UserError."""
    folder = Path(model)
    if not folder.exists():
        raise UserError(f"--model {model}: not a known model ({', '.join(KNOWN_MODELS)}) "
                        f"and no folder {folder} exists.")
    if not folder.is_dir():
        raise UserError(f"--model {model} is a file; pass the folder that holds "
                        f"{CONFIG_NAME} and {WEIGHTS_NAME}.")
    missing = [f for f in (CONFIG_NAME,) if not (folder / f).is_file()]
    if weights_file(folder) is None:
        missing.append(f"{WEIGHTS_NAME} (or {SAFETENSORS_NAME})")
    if missing:
        raise UserError(f"{folder} lacks {' and '.join(missing)}; a model folder holds "
                        f"{CONFIG_NAME} and {WEIGHTS_NAME} (pytorch-pretrained-biggan's format).")
    return folder


def _known(name: str) -> None:
    if name not in KNOWN_MODELS:
        raise UserError(f"{name!r} is not a model the store knows ({', '.join(KNOWN_MODELS)}); "
                        f"a folder of your own works as --model DIR.")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
