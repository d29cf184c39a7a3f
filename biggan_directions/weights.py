"""The offline-first weight store: find a BigGAN in weights/, download it once, verify it, load it.

A known model lives in `<weights_dir>/<name>/` as pytorch-pretrained-biggan's own format
(config.json + pytorch_model.bin) plus checksums.json (size and sha256 of each file). When the
files are there, loading touches no network at all. When they are not, they are downloaded once
from the package's published URLs into temporary files that are renamed into place only when
complete. Every load checks sizes and sha256 against checksums.json, then builds the model from
config.json and loads the state dict strictly (no missing or unexpected key, no wrong shape).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import urlsplit

import torch
from torch import nn

from .errors import UserError, first_line
from .fileio import atomic_path

KNOWN_MODELS = ("biggan-deep-128", "biggan-deep-256", "biggan-deep-512")
WEIGHTS_NAME = "pytorch_model.bin"
CONFIG_NAME = "config.json"
CHECKSUMS_NAME = "checksums.json"
MODEL_FILES = (CONFIG_NAME, WEIGHTS_NAME)  # config first: it is small and fails fast

# The package's published files (pytorch_pretrained_biggan/model.py, PRETRAINED_*_ARCHIVE_MAP):
# <base>/<name>-config.json and <base>/<name>-pytorch_model.bin.
DEFAULT_BASE_URL = "https://s3.amazonaws.com/models.huggingface.co/biggan"
BASE_URL_ENV = "BIGGAN_DIRECTIONS_BASE_URL"  # a mirror (or a test server) with the same naming
WEIGHTS_DIR_ENV = "BIGGAN_DIRECTIONS_WEIGHTS"
TIMEOUT_S = (10.0, 30.0)  # (connect, read): no answer for this long -> give up, never hang
CHUNK_BYTES = 1 << 20


def default_weights_dir() -> Path:
    """$BIGGAN_DIRECTIONS_WEIGHTS, else ./weights."""
    return Path(os.environ.get(WEIGHTS_DIR_ENV) or "weights")


def model_urls(name: str) -> dict[str, str]:
    """{file name: URL} of a known model, from $BIGGAN_DIRECTIONS_BASE_URL or the published S3."""
    base = (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    return {fname: f"{base}/{name}-{fname}" for fname in MODEL_FILES}


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
    _atomic_write(folder / CONFIG_NAME, lambda f: f.write(model.config.to_json_string().encode()))
    _atomic_write(folder / WEIGHTS_NAME, lambda f: torch.save(model.state_dict(), f))
    return folder


def load_biggan(model: str | os.PathLike, device: torch.device | str = "cpu",
                weights_dir: str | os.PathLike | None = None, progress: bool = True) -> nn.Module:
    """Load a BigGAN by name from the store, or from a folder; eval mode, frozen, on `device`.

    model:       'biggan-deep-128' | 'biggan-deep-256' | 'biggan-deep-512' (looked up in
                 `<weights_dir>/<name>/`, downloaded there once when absent), or a folder holding
                 config.json + pytorch_model.bin (never downloaded; checked against its
                 checksums.json when it has one).
    weights_dir: the store; default $BIGGAN_DIRECTIONS_WEIGHTS, else ./weights.
    progress:    show a download progress bar.
    Returns a pytorch_pretrained_biggan.BigGAN in eval mode with requires_grad False everywhere;
    forward(z (B, z_dim), one_hot (B, 1000), truncation in (0, 1]) -> (B, 3, H, W) in [-1, 1].
    Anything missing, corrupt, truncated or not matching its config: UserError naming the file.
    """
    if isinstance(model, str) and model in KNOWN_MODELS:
        folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
        folder = folder / model
        missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
        if missing:
            download_model(model, folder, missing, progress=progress)
        had_checksums = (folder / CHECKSUMS_NAME).is_file()
        fix = f"delete {folder} and run again to download it afresh"
        verify_checksums(folder, fix=fix)
        net = _load_folder(folder, device, fix=fix)
        if not had_checksums:  # placed by hand and loads cleanly: record it, to catch later damage
            try:
                write_checksums(folder, model)
            except OSError:
                pass  # a read-only store still loads; it is just not recorded
        return net

    folder = Path(model)
    if not folder.exists():
        raise UserError(f"--model {model}: not a known model ({', '.join(KNOWN_MODELS)}) "
                        f"and no folder {folder} exists.")
    if not folder.is_dir():
        raise UserError(f"--model {model} is a file; pass the folder that holds "
                        f"{CONFIG_NAME} and {WEIGHTS_NAME}.")
    missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder} lacks {' and '.join(missing)}; a model folder holds "
                        f"{CONFIG_NAME} and {WEIGHTS_NAME} (pytorch-pretrained-biggan's format).")
    verify_checksums(folder, fix=f"replace it, or delete {folder / CHECKSUMS_NAME} if the change "
                                 f"is intended")
    return _load_folder(folder, device, fix="replace it with a good copy")


# ---------------------------------------------------------------- loading
def _load_folder(folder: Path, device: torch.device | str, fix: str) -> nn.Module:
    """Build BigGAN(config.json), load pytorch_model.bin strictly, freeze, move to `device`."""
    from pytorch_pretrained_biggan import BigGAN

    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    config = _read_config(config_path, fix)
    try:
        net = BigGAN(config)
    except Exception as e:  # wrong types or inconsistent layer sizes
        raise UserError(f"{config_path} does not describe a BigGAN ({type(e).__name__}: "
                        f"{first_line(e)}); {fix}.") from None

    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, random bytes, pickled objects: never unpickle code
        raise UserError(f"{weights_path} cannot be read as PyTorch weights (truncated or corrupt: "
                        f"{_torch_load_reason(e)}); {fix}.") from None
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{weights_path} holds a {type(state).__name__}, not a state dict of "
                        f"tensors; {fix}.")

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

    for k, v in net.state_dict().items():
        # A sum is finite iff every element is (weights are far below float overflow); fast.
        if v.is_floating_point() and not torch.isfinite(v.sum()):
            raise UserError(f"{weights_path} holds NaN or infinite values in {k}; {fix}.")

    net.eval().requires_grad_(False)
    return net.to(device)


def _read_config(path: Path, fix: str):
    """config.json -> BigGANConfig with only the fields BigGANConfig knows (values: see build)."""
    from pytorch_pretrained_biggan import BigGANConfig

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


def _torch_load_reason(e: Exception) -> str:
    text = first_line(e)
    if "Weights only load failed" in text:  # torch advises turning the safe mode off: never
        return "it holds objects other than tensors, refused since loading never runs code"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _listing(items: list[str], what: str, first: int = 3) -> str:
    shown = ", ".join(items[:first]) + (", ..." if len(items) > first else "")
    return f"{len(items)} {what}{'s' if len(items) != 1 else ''} ({shown})"




# ---------------------------------------------------------------- checksums
def write_checksums(folder: str | os.PathLike, model: str,
                    known: dict[str, dict] | None = None) -> Path:
    """Record size and sha256 of config.json and pytorch_model.bin in `folder`/checksums.json.

    `known` maps a file name to an entry already computed (e.g. while downloading, with its URL).
    """
    folder = Path(folder)
    files = {}
    for fname in MODEL_FILES:
        entry = dict((known or {}).get(fname) or {})
        if "sha256" not in entry:
            entry.update(size=(folder / fname).stat().st_size, sha256=_sha256(folder / fname))
        files[fname] = entry
    text = json.dumps({"model": model, "files": files}, indent=2, sort_keys=True) + "\n"
    _atomic_write(folder / CHECKSUMS_NAME, lambda f: f.write(text.encode()))
    return folder / CHECKSUMS_NAME


def verify_checksums(folder: str | os.PathLike, fix: str = "replace it") -> bool:
    """Check each file listed in `folder`/checksums.json: size (cheap), then sha256 (always:
    ~0.15 s for the 201 MiB biggan-deep-128 file, cheap next to loading it). False when there is
    no checksums.json; UserError naming the file on any difference."""
    folder = Path(folder)
    record_path = folder / CHECKSUMS_NAME
    if not record_path.is_file():
        return False
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        files = record["files"]
        entries = {f: (int(files[f]["size"]), str(files[f]["sha256"])) for f in MODEL_FILES
                   if f in files}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{record_path} is not a valid checksum record ({type(e).__name__}: "
                        f"{first_line(e)}); delete it to record the files afresh.") from None
    for fname, (size, sha) in entries.items():
        path = folder / fname
        if not path.is_file():
            raise UserError(f"{path} is listed in {record_path} but missing; {fix}.")
        actual_size = path.stat().st_size
        if actual_size != size:
            raise UserError(f"{path} has {actual_size} bytes but {record_path} records {size} "
                            f"(truncated or changed); {fix}.")
        actual_sha = _sha256(path)
        if actual_sha != sha:
            raise UserError(f"{path} has sha256 {actual_sha[:16]}... but {record_path} records "
                            f"{sha[:16]}... (corrupt or changed); {fix}.")
    return True


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- download
def download_model(name: str, folder: str | os.PathLike, files: Sequence[str] = MODEL_FILES,
                   progress: bool = True) -> Path:
    """Download `files` of known model `name` into `folder`, then write checksums.json.

    Each file streams into a temporary file in `folder` (sha256 computed on the way); all are
    renamed into place only once every one is complete and matches its Content-Length. Any error
    or interrupt removes the temporary files and the folders this call created (when empty):
    nothing partial is ever left under a final name. Raises UserError with the reason and where
    to put the files by hand.
    """
    folder = Path(folder)
    urls = model_urls(name)
    created = [d for d in (folder, *folder.parents) if not d.exists()]  # deepest first
    temps: dict[str, Path] = {}
    done = False
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _DownloadError(f"cannot create {folder}: {e.strerror or e}") from None
        entries = {}
        for fname in files:
            temps[fname], entries[fname] = _fetch(urls[fname], folder, fname, progress)
        for fname, tmp in temps.items():
            os.replace(tmp, folder / fname)
        done = True
        write_checksums(folder, name, entries)
    except _DownloadError as e:
        hand = " and ".join(f"{f} from {urls[f]}" for f in files)
        raise UserError(f"{name} is not in {folder} and could not be downloaded ({e}); put {hand} "
                        f"there, or pass --model DIR.") from None
    except OSError as e:  # renaming or recording failed: the store is not writable
        raise UserError(f"could not write the download into {folder} ({e.strerror or e}); "
                        f"check the folder's permissions and free space.") from None
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        if not done:
            for d in created:
                try:
                    d.rmdir()  # only succeeds when empty
                except OSError:
                    break
    return folder


class _DownloadError(Exception):
    """Why a download failed, in a few words; becomes part of a UserError."""


def _fetch(url: str, folder: Path, fname: str, progress: bool) -> tuple[Path, dict]:
    """Stream `url` into a temporary file in `folder`; returns (temp path, checksum entry)."""
    import requests
    from tqdm.auto import tqdm

    host = urlsplit(url).netloc
    try:
        response = requests.get(url, stream=True, timeout=TIMEOUT_S,
                                headers={"Accept-Encoding": "identity"})  # byte count == file size
    except requests.RequestException as e:
        raise _DownloadError(_request_reason(e, host)) from None
    with response:
        if response.status_code != 200:
            raise _DownloadError(f"HTTP {response.status_code} {response.reason or ''}".strip()
                                 + f" for {url}")
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{fname}.", suffix=".part")
        tmp = Path(tmp_name)
        h, received = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                  unit_divisor=1024, desc=f"{folder.name}/{fname}",
                                                  disable=not progress, leave=False) as bar:
                try:
                    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                        out.write(chunk)
                        h.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                except requests.RequestException as e:
                    raise _DownloadError(f"transfer of {url} broke off after {received} of "
                                         f"{total if total is not None else '?'} bytes "
                                         f"({_request_reason(e, host)})") from None
                out.flush()
                os.fsync(out.fileno())
            if total is not None and received != total:
                raise _DownloadError(f"transfer of {url} broke off after {received} of {total} "
                                     f"bytes")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp, {"size": received, "sha256": h.hexdigest(), "url": url}


def _request_reason(e: Exception, host: str) -> str:
    """A few words for a requests error, instead of its nested urllib3 repr."""
    import requests

    if isinstance(e, requests.ConnectTimeout):
        return f"no answer from {host} within {TIMEOUT_S[0]:g} s"
    if isinstance(e, requests.ReadTimeout):
        return f"{host} sent nothing for {TIMEOUT_S[1]:g} s"
    if isinstance(e, requests.exceptions.SSLError):
        return f"TLS error with {host}"
    text = repr(e)
    if "NameResolutionError" in text or "Name or service not known" in text or "resolve" in text:
        return f"cannot resolve {host}: offline?"
    if "Connection refused" in text:
        return f"connection to {host} refused"
    if isinstance(e, requests.ConnectionError) and "Read timed out" in text:
        return f"{host} sent nothing for {TIMEOUT_S[1]:g} s"
    if isinstance(e, requests.exceptions.ChunkedEncodingError):
        return "connection closed early"
    if isinstance(e, requests.ConnectionError):
        return f"cannot connect to {host}"
    return f"{type(e).__name__}: {first_line(e)}"


# ---------------------------------------------------------------- files
def _atomic_write(path: Path, write) -> None:
    """Call write(binary file) on a temporary file beside `path`, then rename it into place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
