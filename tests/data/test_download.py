"""Downloads against a real HTTP server on 127.0.0.1 serving ../shared/data/mnist (no internet needed).

Without that folder the server serves tiny IDX files made in a temp folder, so these tests always run.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading
from pathlib import Path

import pytest
import torch

from kdviz.data import load_dataset
from kdviz.data.download import (
    MIRRORS,
    VERIFIED_MANIFEST,
    ChecksumMismatch,
    DownloadError,
    cache_dir,
    download_dataset,
    fetch_file,
    fetch_from_mirrors,
    mirror_env_var,
    read_sha256sums,
    resolve_mirrors,
)

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def write_tiny_mirror(folder: Path) -> list[int]:
    """Four tiny gzip IDX files plus SHA256SUMS (hashed here with hashlib); returns the train class counts."""
    train_labels = bytes([3, 1, 4, 1, 5, 9, 2, 6])
    contents = {
        "train-images-idx3-ubyte.gz": struct.pack(">IIII", 0x803, 8, 28, 28) + bytes(range(256)) * 24 + bytes(8 * 784 - 256 * 24),
        "train-labels-idx1-ubyte.gz": struct.pack(">II", 0x801, 8) + train_labels,
        "t10k-images-idx3-ubyte.gz": struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(2 * 784),
        "t10k-labels-idx1-ubyte.gz": struct.pack(">II", 0x801, 2) + bytes([0, 7]),
    }
    lines = []
    for name, raw in contents.items():
        data = gzip.compress(raw, mtime=0)
        (folder / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return [train_labels.count(k) for k in range(10)]


@pytest.fixture(scope="module")
def mirror_folder(tmp_path_factory) -> tuple[Path, list[int]]:
    """The folder the local server serves, and its train class counts: the real MNIST files
    ($KDVIZ_TEST_MNIST, else ../shared/data/mnist next to the repository) when present, so the
    download path runs on real data; otherwise tiny files made here, so it is tested anyway."""
    folder = Path(os.environ.get("KDVIZ_TEST_MNIST") or Path(__file__).parents[2].parent / "shared/data/mnist")
    if all((folder / name).is_file() for name in [*FILES, "SHA256SUMS"]):
        return folder, TRAIN_COUNTS
    tiny = tmp_path_factory.mktemp("tiny_mirror")
    return tiny, write_tiny_mirror(tiny)


@pytest.fixture(scope="module")
def mnist_dir(mirror_folder) -> Path:
    return mirror_folder[0]


@pytest.fixture(scope="module")
def server(mnist_dir):
    """A threading HTTP server on 127.0.0.1 (free port) serving the MNIST folder; records request paths."""
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def send_head(self):
            requests.append(self.path)
            if self.path.startswith("/short/"):  # promise 1,000 bytes, send 10, hang up
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                self.close_connection = True
                return None
            return super().send_head()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(mnist_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.requests = requests
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sums(mnist_dir) -> dict[str, str]:
    return read_sha256sums(mnist_dir / "SHA256SUMS")


def dead_url() -> str:
    """A URL on a port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_and_caches(server, sums, mirror_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(tmp_path))
    server.requests.clear()
    folder = download_dataset("mnist", mirrors=[server.url], sha256=sums, progress=False)
    assert folder == tmp_path / "mnist" == cache_dir("mnist")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, VERIFIED_MANIFEST])  # no temp files left behind
    assert read_sha256sums(folder / VERIFIED_MANIFEST) == {name: sums[name] for name in FILES}
    for name in FILES:
        assert sha256_of(folder / name) == sums[name]
    assert sorted(server.requests) == sorted("/" + name for name in FILES)

    # a second call (and a load with download=True) finds the cache and asks the server for nothing
    server.requests.clear()
    download_dataset("mnist", mirrors=[server.url], sha256=sums, progress=False)
    bundle = load_dataset("mnist", download=True)
    assert server.requests == []
    assert torch.bincount(bundle.train_labels, minlength=10).tolist() == mirror_folder[1]
    assert torch.equal(load_dataset("mnist").test_labels, bundle.test_labels)  # no root, no download: cache


def test_checksums_from_a_sha256sums_path(server, mnist_dir, tmp_path):
    download_dataset("mnist", tmp_path, mirrors=[server.url], sha256=mnist_dir / "SHA256SUMS", progress=False)
    assert len(list(tmp_path.glob("*.gz"))) == 4


def test_wrong_checksum_raises_and_leaves_no_partial_file(server, sums, tmp_path):
    wrong = {**sums, "train-labels-idx1-ubyte.gz": "0" * 64}
    with pytest.raises(DownloadError) as info:
        download_dataset("mnist", tmp_path, mirrors=[server.url], sha256=wrong, progress=False)
    message = str(info.value)
    assert "checksum mismatch for train-labels-idx1-ubyte.gz" in message
    assert f"expected sha256 {'0' * 64}, got {sums['train-labels-idx1-ubyte.gz']}" in message
    assert not (tmp_path / "train-labels-idx1-ubyte.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_fetch_file_mismatch_deletes_temp_and_keeps_old_file(server, tmp_path):
    dest = tmp_path / "t10k-labels-idx1-ubyte.gz"
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumMismatch, match="expected sha256 f{64}, got"):
        fetch_file(server.url + dest.name, dest, "f" * 64, progress=False)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]


def test_dead_first_mirror_falls_back_to_second(server, sums, tmp_path):
    server.requests.clear()
    download_dataset("mnist", tmp_path, mirrors=[dead_url(), server.url], sha256=sums, progress=False, timeout=5)
    assert all(sha256_of(tmp_path / name) == sums[name] for name in FILES)
    assert len(server.requests) == 4


def test_every_mirror_failing_lists_each_failure(server, sums, tmp_path):
    dead = dead_url()
    with pytest.raises(DownloadError) as info:
        download_dataset("mnist", tmp_path, mirrors=[dead, server.url + "missing/"], sha256=sums, progress=False, timeout=5)
    message = str(info.value)
    assert "could not download train-images-idx3-ubyte.gz for mnist from any of 2 mirror(s)" in message
    assert f"{dead}train-images-idx3-ubyte.gz: cannot connect" in message
    assert f"{server.url}missing/train-images-idx3-ubyte.gz: HTTP 404" in message
    assert "KDVIZ_MNIST_MIRROR" in message
    assert list(tmp_path.iterdir()) == []


def test_env_var_mirror_with_explicit_checksums(server, sums, tmp_path, monkeypatch):
    dead = dead_url()
    monkeypatch.setenv("KDVIZ_MNIST_MIRROR", f"{dead}, {server.url}")
    assert resolve_mirrors("mnist", sha256=sums).mirrors == (dead, server.url)
    download_dataset("mnist", tmp_path, sha256=sums, progress=False, timeout=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FILES, VERIFIED_MANIFEST])


def test_env_var_mirror_with_default_checksums_reports_the_mismatch(server, tmp_path, monkeypatch):
    """The shared files were recompressed, so the public checksums must reject them."""
    monkeypatch.setenv("KDVIZ_MNIST_MIRROR", server.url)
    with pytest.raises(DownloadError, match=rf"expected sha256 {MIRRORS['mnist'].sha256['train-images-idx3-ubyte.gz']}"):
        download_dataset("mnist", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_goes_to_stderr(server, sums, tmp_path, capsys):
    fetch_file(server.url + "t10k-labels-idx1-ubyte.gz", tmp_path / "l.gz", sums["t10k-labels-idx1-ubyte.gz"], progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "l.gz" in captured.err


def test_mirror_configuration_is_validated():
    sums = dict(MIRRORS["mnist"].sha256)
    assert mirror_env_var("fashion-mnist") == "KDVIZ_FASHION_MNIST_MIRROR"
    assert set(MIRRORS) == {"mnist", "fashion-mnist"}
    with pytest.raises(ValueError, match="not an http"):
        resolve_mirrors("mnist", mirrors=["ftp://example.org/"])
    with pytest.raises(ValueError, match="lack t10k-labels-idx1-ubyte.gz"):
        resolve_mirrors("mnist", sha256={k: v for k, v in sums.items() if k != "t10k-labels-idx1-ubyte.gz"})
    with pytest.raises(ValueError, match="not a 64-digit hex"):
        resolve_mirrors("mnist", sha256={**sums, "train-images-idx3-ubyte.gz": "abc"})
    with pytest.raises(ValueError, match="No download mirrors configured for 'digits'"):
        resolve_mirrors("digits")


def test_connection_cut_short_falls_back_and_is_reported(server, sums, tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DownloadError, match=rf"{server.url}short/{name}: connection closed after 10 of 1,000 bytes"):
        fetch_from_mirrors(resolve_mirrors("mnist", [server.url + "short/"], sums), name, tmp_path, progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []
    fetch_from_mirrors(resolve_mirrors("mnist", [server.url + "short/", server.url], sums), name, tmp_path, progress=False, timeout=5)
    assert sha256_of(tmp_path / name) == sums[name]
