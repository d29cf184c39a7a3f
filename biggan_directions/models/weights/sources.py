"""Where a model missing from the store comes from: the package's URLs, then the Hugging Face Hub.

Each source fetches files into a staging folder and raises SourceError (a few words) on any
failure; the loader tries them in order and verifies what arrives before placing it. Downloads
use pooch (plain URLs) and huggingface_hub (the Hub: its cache, tokens, HF_HUB_OFFLINE,
resumable transfers); every host name is resolved first with a deadline, since the system's
resolver has none.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from ...foundation.errors import first_line
from .store import MODEL_FILES, copy_file, file_entry

# The package's published files (pytorch_pretrained_biggan/model.py, PRETRAINED_*_ARCHIVE_MAP):
# <base>/<name>-config.json and <base>/<name>-pytorch_model.bin.
DEFAULT_BASE_URL = "https://s3.amazonaws.com/models.huggingface.co/biggan"
BASE_URL_ENV = "BIGGAN_DIRECTIONS_BASE_URL"   # a mirror (or a test server) with the same naming
HUB_REPO_ENV = "BIGGAN_DIRECTIONS_HUB_REPO"   # "owner/repo[@revision]"; empty: skip the Hub
TIMEOUT_ENV = "BIGGAN_DIRECTIONS_TIMEOUT"     # seconds for DNS, connect and each read
# Hub repositories known to mirror the package's files (config.json + pytorch_model.bin).
HUB_MIRRORS = {"biggan-deep-128": "osanseviero/BigGAN-deep-128"}
TIMEOUT_S = (10.0, 30.0)  # (DNS and connect, read): no answer for this long -> give up, never hang


class SourceError(Exception):
    """Why a source could not deliver, in a few words (one line)."""


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds: $BIGGAN_DIRECTIONS_TIMEOUT for both, else TIMEOUT_S."""
    text = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(text) if text else None
    except ValueError:
        value = None
    return (value, value) if value and value > 0 else TIMEOUT_S


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (read now, not when huggingface_hub was imported)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Source:
    """A place that publishes a model's files: kind 'url' (base URL) or 'hub' (repository)."""
    kind: str
    where: str

    def describe(self, name: str) -> str:
        return f"{self.where}/{name}-*" if self.kind == "url" else f"Hub {self.where}"

    def file_url(self, name: str, fname: str) -> str:
        if self.kind == "url":
            return f"{self.where}/{name}-{fname}"
        endpoint = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        repo, revision = _split_revision(self.where)
        return f"{endpoint}/{repo}/resolve/{revision}/{fname}"

    def fetch(self, name: str, files: Sequence[str], staging: Path,
              progress: bool = True) -> dict[str, dict]:
        """Download `files` of model `name` into `staging`; {file: checksum entry with source}."""
        if hub_offline():
            if self.kind == "url":
                raise SourceError("skipped: HF_HUB_OFFLINE is set")
        else:
            check_resolves(self.file_url(name, files[0]), timeouts()[0])
        fetch_one = _fetch_url if self.kind == "url" else _fetch_hub
        return {fname: fetch_one(self, name, fname, staging, progress) for fname in files}


def sources_for(name: str, hub_repo: str | None = None) -> list[Source]:
    """The sources of model `name`, in order: the package's URLs ($BIGGAN_DIRECTIONS_BASE_URL
    or the published S3), then its Hub repository (`hub_repo`, else $BIGGAN_DIRECTIONS_HUB_REPO,
    else the known mirror; an empty value skips the Hub)."""
    base = (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    found = [Source("url", base)]
    repo = hub_repo if hub_repo is not None else os.environ.get(HUB_REPO_ENV)
    if repo is None:
        repo = HUB_MIRRORS.get(name, "")
    repo = repo.strip().replace("{name}", name)
    if repo and repo.lower() != "none":
        found.append(Source("hub", repo))
    return found


def check_resolves(url: str, timeout: float) -> None:
    """Resolve the host that a request to `url` first contacts (its proxy, when one is set)
    within `timeout` s, in a daemon thread: a hung lookup is abandoned, not waited for."""
    import requests                 # deferred: only a download needs it

    proxy = requests.utils.get_environ_proxies(url).get(urlsplit(url).scheme)
    parts = urlsplit(proxy if proxy else url)
    host = parts.hostname
    if not host or _is_ip(host):
        return
    outcome: dict[str, BaseException | None] = {}

    def look():
        try:
            socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
            outcome["error"] = None
        except OSError as e:
            outcome["error"] = e

    thread = threading.Thread(target=look, daemon=True, name=f"resolve {host}")
    thread.start()
    thread.join(timeout)
    if "error" not in outcome:
        raise SourceError(f"no answer resolving {host} within {timeout:g} s (offline?)")
    if outcome["error"] is not None:
        raise SourceError(f"cannot resolve {host} (offline?)")


# ---------------------------------------------------------------- plain URLs (pooch)
def _fetch_url(source: Source, name: str, fname: str, staging: Path, progress: bool) -> dict:
    import pooch                    # deferred: only a download needs it
    import requests

    url = source.file_url(name, fname)
    pooch.get_logger().setLevel(logging.WARNING)  # its INFO lines repeat our report
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeouts(),
                                      headers={"Accept-Encoding": "identity"})  # bytes == file
    try:
        path = pooch.retrieve(url, known_hash=None, fname=fname, path=staging,
                              downloader=downloader)
    except requests.HTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        reason = (e.response.reason or "") if e.response is not None else ""
        raise SourceError(f"HTTP {status} {reason}".rstrip() + f" for {url}") from None
    except requests.RequestException as e:
        raise SourceError(f"{fname}: {_request_reason(e, urlsplit(url).netloc)}") from None
    return file_entry(Path(path), url=url)


def _request_reason(e: Exception, host: str) -> str:
    """A few words for a requests error, instead of its nested urllib3 repr."""
    import requests                 # deferred: only a download needs it

    connect, read = timeouts()
    text = repr(e)
    if isinstance(e, requests.ConnectTimeout):
        return f"no answer from {host} within {connect:g} s"
    if isinstance(e, requests.ReadTimeout) or "Read timed out" in text:
        return f"{host} sent nothing for {read:g} s"
    if isinstance(e, requests.exceptions.SSLError):
        return f"TLS error with {host}"
    if "IncompleteRead" in text or isinstance(e, requests.exceptions.ChunkedEncodingError):
        return f"the transfer from {host} broke off before the end (truncated)"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot resolve {host} (offline?)"
    if "Connection refused" in text:
        return f"connection to {host} refused"
    if isinstance(e, requests.ConnectionError):
        return f"cannot connect to {host}"
    return f"{type(e).__name__}: {first_line(e)}"


# ---------------------------------------------------------------- the Hub (huggingface_hub)
def _fetch_hub(source: Source, name: str, fname: str, staging: Path, progress: bool) -> dict:
    """hf_hub_download into the Hub's cache, then copy it (a reflink where possible) into
    `staging`. Online, the file's size and sha256 (the Hub's ETag of a large file) are checked
    against the Hub's."""
    # deferred: the Hub client is slow to import and only a download needs it
    from huggingface_hub import get_hf_file_metadata, hf_hub_download

    repo, revision = _split_revision(source.where)
    endpoint = os.environ.get("HF_ENDPOINT") or None
    offline = hub_offline()
    connect, _ = timeouts()
    try:
        meta = None if offline else get_hf_file_metadata(
            source.file_url(name, fname), timeout=connect, endpoint=endpoint)
        cached = Path(hf_hub_download(
            repo, fname, revision=revision, endpoint=endpoint, etag_timeout=connect,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None, local_files_only=offline,
            tqdm_class=None if progress else _silent_tqdm()))
    except Exception as e:  # the client's errors: HTTP status, offline, timeouts, consistency
        raise SourceError(f"{fname}: {_hub_reason(e, offline)}") from None
    target = staging / fname
    copy_file(cached.resolve(), target)
    commit = getattr(meta, "commit_hash", None)
    entry = file_entry(target, hub=f"{repo}@{commit or revision}")
    if meta is not None:
        expected_sha = (meta.etag or "").strip('"')
        wrong_size = meta.size is not None and meta.size != entry["size"]
        wrong_sha = re.fullmatch(r"[0-9a-f]{64}", expected_sha) and expected_sha != entry["sha256"]
        if wrong_size or wrong_sha:
            cached.resolve().unlink(missing_ok=True)  # never serve the bad copy again
            cached.unlink(missing_ok=True)
            what = (f"{entry['size']} bytes, the Hub lists {meta.size}" if wrong_size else
                    f"sha256 {entry['sha256'][:16]}..., the Hub lists {expected_sha[:16]}...")
            raise SourceError(f"{fname} arrived damaged ({what})")
    return entry


def _hub_reason(e: Exception, offline: bool) -> str:
    kind = type(e).__name__
    if offline and kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        return "HF_HUB_OFFLINE is set and the Hub's cache lacks it"
    status = getattr(getattr(e, "response", None), "status_code", None)
    if kind in ("RepositoryNotFoundError", "GatedRepoError"):
        return f"no such repository, or it needs a token (HTTP {status})"
    if "Timeout" in kind or "timed out" in str(e).lower():
        return f"no answer within {timeouts()[0]:g} s"
    if status is not None:
        return f"HTTP {status} ({kind})"
    return f"{kind}: {first_line(e)}"


def _silent_tqdm():
    class Silent(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
    return Silent


def _split_revision(repo: str) -> tuple[str, str]:
    """'owner/repo@rev' -> ('owner/repo', 'rev'); no '@': revision 'main'."""
    name, _, revision = repo.partition("@")
    return name, revision or "main"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def model_urls(name: str) -> dict[str, str]:
    """{file name: URL} of a known model at its first source (the package's URLs)."""
    source = sources_for(name, hub_repo="")[0]
    return {fname: source.file_url(name, fname) for fname in MODEL_FILES}
