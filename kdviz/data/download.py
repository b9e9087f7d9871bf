"""Downloading dataset files into the cache folder: mirrors as data, SHA-256 checks, atomic writes.

Where files come from is configuration, not code: one :class:`MirrorConfig` per dataset lists
mirror base URLs (tried in order) and the expected SHA-256 of every file. Override it with

* arguments: ``download_dataset("mnist", mirrors=[...], sha256={...} or "path/SHA256SUMS")``;
* the environment: ``KDVIZ_MNIST_MIRROR`` (``KDVIZ_FASHION_MNIST_MIRROR`` for Fashion-MNIST), one
  base URL or several separated by commas, replacing the built-in mirrors. The built-in checksums
  still apply unless explicit ones are passed, since a copy of the files may be recompressed and
  then no longer match the public ones.

Each file is streamed with ``urllib`` into a temp file in the destination folder, hashed on the way,
and moved into place with ``os.replace`` only when its SHA-256 matches, so the cache never holds a
partial or unverified file. Each verified digest is recorded in the folder's ``.kdviz-verified.sha256``
and checked again before every later use (:func:`verify_recorded_checksums`): a cached file that was
damaged or changed since is fetched again (``download=True``) or refused, never parsed. Files the user
put in a folder themselves (raw or ``.gz``, no record) are kept as they are and parsed strictly.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1 << 20
VERIFIED_MANIFEST = ".kdviz-verified.sha256"  # sha256sum format: what download_dataset verified here
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
URL_SCHEMES = ("http://", "https://", "file://")


@dataclass(frozen=True)
class MirrorConfig:
    """Where one dataset's files live: mirror base URLs (tried in order) and each file's SHA-256."""

    dataset: str
    mirrors: tuple[str, ...]
    sha256: Mapping[str, str]

    def __post_init__(self) -> None:
        if not self.mirrors:
            raise ValueError(f"{self.dataset}: at least one mirror URL is needed")
        for url in self.mirrors:
            if not isinstance(url, str) or not url.startswith(URL_SCHEMES):
                raise ValueError(f"{self.dataset}: mirror {url!r} is not an http(s):// or file:// URL")
        for name, digest in self.sha256.items():
            if not isinstance(digest, str) or not SHA256_PATTERN.match(digest.lower()):
                raise ValueError(f"{self.dataset}: checksum for {name} is not a 64-digit hex SHA-256: {digest!r}")

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(self.sha256)


MIRRORS: dict[str, MirrorConfig] = {
    # SHA-256 of the files as published (the same bytes on every public MNIST mirror).
    "mnist": MirrorConfig(
        dataset="mnist",
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    # Zalando Research's files (https://github.com/zalandoresearch/fashion-mnist).
    "fashion-mnist": MirrorConfig(
        dataset="fashion-mnist",
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
    ),
}


class DownloadError(OSError):
    """No mirror delivered a file with the expected checksum; the message lists each failure."""


class ChecksumMismatch(DownloadError):
    """A downloaded file's SHA-256 differs from the expected one (the temp file is already deleted)."""


def cache_dir(dataset: str) -> Path:
    """``$KDVIZ_CACHE/<dataset>``, or ``~/.cache/kdviz/<dataset>`` when ``KDVIZ_CACHE`` is unset."""
    base = os.environ.get("KDVIZ_CACHE") or Path.home() / ".cache" / "kdviz"
    return Path(base).expanduser() / dataset


def mirror_env_var(dataset: str) -> str:
    """The environment variable that overrides a dataset's mirrors, e.g. ``KDVIZ_MNIST_MIRROR``."""
    return "KDVIZ_" + re.sub(r"[^A-Z0-9]", "_", dataset.upper()) + "_MIRROR"


def read_sha256sums(path: str | os.PathLike) -> dict[str, str]:
    """``{file name: sha256}`` from a ``sha256sum``-style file (``<hex>  <name>`` per line)."""
    sums: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not SHA256_PATTERN.match(parts[0].lower()):
            raise ValueError(f"{path}, line {number}: expected '<sha256>  <file name>', got {line!r}")
        sums[Path(parts[1].strip().lstrip("*")).name] = parts[0].lower()
    return sums


def resolve_mirrors(
    dataset: str,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | str | os.PathLike | None = None,
) -> MirrorConfig:
    """The mirror configuration for ``dataset``: explicit arguments first, then the environment
    variable (see :func:`mirror_env_var`), then the built-in :data:`MIRRORS` entry."""
    if dataset not in MIRRORS:
        raise ValueError(f"No download mirrors configured for {dataset!r} (known: {', '.join(sorted(MIRRORS))})")
    default = MIRRORS[dataset]
    if mirrors is None:
        env = os.environ.get(mirror_env_var(dataset), "").strip()
        mirrors = [url.strip() for url in env.split(",") if url.strip()] if env else default.mirrors
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    if sha256 is None:
        sums = dict(default.sha256)
    else:
        sums = read_sha256sums(sha256) if isinstance(sha256, (str, os.PathLike)) else dict(sha256)
        missing = [name for name in default.files if name not in sums]
        if missing:
            raise ValueError(f"{dataset}: the checksums given lack {', '.join(missing)}")
        sums = {name: sums[name].lower() for name in default.files}
    return MirrorConfig(dataset=dataset, mirrors=tuple(mirrors), sha256=sums)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """``{file name: sha256}`` of the files :func:`download_dataset` verified into ``folder``."""
    manifest = Path(folder) / VERIFIED_MANIFEST
    return read_sha256sums(manifest) if manifest.is_file() else {}


def _record_checksum(folder: Path, name: str, sha256: str) -> None:
    """Add (or replace) ``name``'s digest in the folder's manifest, written atomically."""
    sums = {**recorded_checksums(folder), name: sha256.lower()}
    text = "".join(f"{digest}  {file}\n" for file, digest in sorted(sums.items()))
    fd, tmp = tempfile.mkstemp(prefix=f"{VERIFIED_MANIFEST}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, folder / VERIFIED_MANIFEST)
    finally:
        Path(tmp).unlink(missing_ok=True)


def damaged_downloads(folder: str | os.PathLike) -> list[str]:
    """Names of the files in ``folder`` whose SHA-256 no longer equals the one recorded when they
    were downloaded and verified (missing files are not listed)."""
    folder = Path(folder)
    return [name for name, digest in recorded_checksums(folder).items()
            if (folder / name).is_file() and file_sha256(folder / name) != digest]


def verify_recorded_checksums(folder: str | os.PathLike) -> None:
    """Raise :class:`ChecksumMismatch` naming each downloaded file in ``folder`` that changed since
    it was verified (a damaged disk, an interrupted copy, someone else's edit)."""
    damaged = damaged_downloads(folder)
    if damaged:
        names = ", ".join(str(Path(folder) / name) for name in damaged)
        raise ChecksumMismatch(
            f"{names}: no longer match(es) the SHA-256 recorded when downloaded, so the cached copy is damaged "
            "or was changed and was not loaded. Delete it, or load with download=True to fetch it again."
        )


def _progress_bar(total: int | None, name: str, enabled: bool):
    """A tqdm bar on stderr (bytes), or a plain one-line notice when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is optional: fall back to a single line
        if enabled:
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"downloading {name}{size} ...", file=sys.stderr, flush=True)
        return _NullBar()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                disable=not enabled, leave=False)


class _NullBar:
    def update(self, n: int) -> None: ...
    def close(self) -> None: ...


def fetch_file(url: str, dest: str | os.PathLike, sha256: str, *, progress: bool = True, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` through a temp file in the same folder; move it into place
    (``os.replace``, atomic) only when its SHA-256 equals ``sha256``. On any failure the temp file
    is deleted and ``dest`` is left untouched; a mismatch raises :class:`ChecksumMismatch`."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar, received = _progress_bar(total, dest.name, progress), 0
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
            finally:
                bar.close()
        if total is not None and received != total:
            raise DownloadError(f"connection closed after {received:,} of {total:,} bytes")
        got = digest.hexdigest()
        if got != sha256.lower():
            raise ChecksumMismatch(f"checksum mismatch for {dest.name}: expected sha256 {sha256.lower()}, got {got}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"cannot connect ({err.reason})"
    if isinstance(err, DownloadError):  # our own messages already say what went wrong
        return str(err)
    return f"{type(err).__name__}: {err}"


def fetch_from_mirrors(config: MirrorConfig, name: str, dest_dir: Path, *, progress: bool, timeout: float) -> Path:
    """Fetch file ``name`` from the first mirror that delivers it with the right checksum."""
    failures = []
    for base in config.mirrors:
        url = base.rstrip("/") + "/" + name
        try:
            return fetch_file(url, dest_dir / name, config.sha256[name], progress=progress, timeout=timeout)
        except (OSError, ValueError, http.client.HTTPException) as err:  # network, disk, checksum, cut short
            failures.append(f"  - {url}: {_describe(err)}")
    raise DownloadError(
        f"could not download {name} for {config.dataset} from any of {len(config.mirrors)} mirror(s):\n"
        + "\n".join(failures)
        + f"\nSet {mirror_env_var(config.dataset)} to a working base URL (with matching checksums), "
        "or pass root= to a folder holding the IDX files."
    )


def download_dataset(
    dataset: str,
    dest: str | os.PathLike | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    sha256: Mapping[str, str] | str | os.PathLike | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Make sure ``dest`` (default :func:`cache_dir`) holds every file of ``dataset``; returns ``dest``.

    Files already there, gzip-compressed or raw, are kept as they are, except a file this function
    downloaded earlier whose SHA-256 has changed since (it is fetched again); the others are
    downloaded, verified, and their digests recorded for :func:`verify_recorded_checksums`.
    """
    config = resolve_mirrors(dataset, mirrors, sha256)
    folder = Path(dest) if dest is not None else cache_dir(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    damaged = set(damaged_downloads(folder))
    for name in config.files:
        stem = name.removesuffix(".gz")
        if name not in damaged and ((folder / name).is_file() or (folder / stem).is_file()):
            continue
        fetch_from_mirrors(config, name, folder, progress=progress, timeout=timeout)
        _record_checksum(folder, name, config.sha256[name])
    return folder
