"""Bad dataset and checkpoint files (issue 13: items 6 and 12 and the catalogue): corrupt, truncated,
swapped, oversized and hostile IDX files, gzip bombs, a cached download changed after it was verified,
and a malicious pickle given to ``load_pruned``. Each ends in a clear error naming the problem and
the file, within small memory and time, and no code from a file ever runs.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from data.test_data_idx import idx_images_bytes, idx_labels_bytes, write_idx_folder
from kdviz.data import load_dataset
from kdviz.data.download import VERIFIED_MANIFEST, ChecksumMismatch, download_dataset
from kdviz.data.idx import MAX_IDX_BYTES, IdxFormatError, read_idx_images, read_idx_labels
from kdviz.prune.masks import PruningMasks, load_pruned, save_pruned

MB = 1 << 20
FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def measured(call):
    """(exception raised by ``call()``, peak traced memory in bytes, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        error = exc
    else:
        error = None
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak, seconds


def zeros_members(total_bytes: int, member_bytes: int = 64 * MB) -> bytes:
    """gzip members that inflate to ``total_bytes`` zero bytes (one member compressed, then repeated)."""
    member = gzip.compress(bytes(member_bytes), compresslevel=9, mtime=0)
    return member * (total_bytes // member_bytes)


# --- the catalogue: each a clear error naming the problem and the file ------------------------------

def test_corrupt_gzip_names_the_file(tmp_path):
    write_idx_folder(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[-20:-8] = b"\x00" * 12  # damage the end of the deflate stream; the header still inflates
    path.write_bytes(bytes(data))
    with pytest.raises(IdxFormatError, match=r"t10k-images-idx3-ubyte\.gz: (corrupt|truncated) gzip file"):
        load_dataset("mnist", root=tmp_path)


def test_gzip_cut_short_is_truncated(tmp_path):
    write_idx_folder(tmp_path, n_train=50)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte\.gz: truncated"):
        load_dataset("mnist", root=tmp_path)


def test_raw_file_cut_short_says_how_many_bytes(tmp_path):
    write_idx_folder(tmp_path, gz=False, n_test=4)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    expected = 16 + 4 * 784
    with pytest.raises(IdxFormatError, match=rf"t10k-images-idx3-ubyte: truncated IDX images file.*needs {expected:,} bytes.*has {expected - 100:,}"):
        load_dataset("mnist", root=tmp_path)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_swapped_images_and_labels_files(tmp_path, gz):
    write_idx_folder(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    images, labels = tmp_path / f"train-images-idx3-ubyte{suffix}", tmp_path / f"train-labels-idx1-ubyte{suffix}"
    images_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_bytes)
    with pytest.raises(IdxFormatError, match=rf"train-images-idx3-ubyte{suffix}: wrong magic number 0x00000801.*swapped"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(IdxFormatError, match=r"wrong magic number 0x00000803.*looks like an images file.*swapped"):
        read_idx_labels(labels)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_oversized_file_with_trailing_bytes(tmp_path, gz):
    write_idx_folder(tmp_path, gz=gz)
    name = "train-labels-idx1-ubyte" + (".gz" if gz else "")
    path = tmp_path / name
    raw = idx_labels_bytes(np.arange(6) % 10) + b"trailing garbage"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(IdxFormatError, match=rf"{name}: corrupt \(extra bytes at the end\) IDX labels file.*needs 14 bytes"):
        load_dataset("mnist", root=tmp_path)


def test_wrong_magic_names_the_number_and_the_file(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04" + bytes(60))  # a zip file
    with pytest.raises(IdxFormatError, match=r"t10k-labels-idx1-ubyte: wrong magic number 0x504B0304, expected 0x00000801"):
        load_dataset("mnist", root=tmp_path)


def test_label_count_differs_from_image_count_before_any_values_are_read(tmp_path):
    """The headers disagree (6 images, 5 labels) and the image values are cut short as well: the count
    mismatch is what is reported, so the check used the headers alone."""
    write_idx_folder(tmp_path, n_train=6)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels_bytes(np.arange(5))))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images_bytes(np.zeros((6, 28, 28)))[:-1]))
    with pytest.raises(IdxFormatError, match=r"count mismatch: .*train-images-idx3-ubyte\.gz holds 6 images but .*train-labels-idx1-ubyte\.gz holds 5 labels"):
        load_dataset("mnist", root=tmp_path)


def test_an_empty_split_is_refused(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images_bytes(np.zeros((0, 28, 28)))))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels_bytes(np.zeros(0))))
    with pytest.raises(IdxFormatError, match=r"t10k-images-idx3-ubyte\[\.gz\]: holds 0 images"):
        load_dataset("mnist", root=tmp_path)


def test_wrong_image_size_is_refused_from_the_header(tmp_path):
    write_idx_folder(tmp_path, size=8)
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte\.gz: images are 8x8, MNIST images are 28x28"):
        load_dataset("mnist", root=tmp_path)


# --- gzip bombs and absurd headers (item 6) ------------------------------------------------------

def test_gzip_bomb_after_a_small_header_is_refused_in_little_memory_and_time(tmp_path):
    """About 2 MB on disk that inflate to 2 GB: 10 real images, then zeros. Reading whole (the old
    code) took ~2 GB and ~15 s; streamed with the header's byte limit, it stops one byte past 7,856."""
    write_idx_folder(tmp_path, n_train=10)
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    header_member = gzip.compress(idx_images_bytes(np.full((10, 28, 28), 7)), mtime=0)
    bomb.write_bytes(header_member + zeros_members(2048 * MB))
    assert bomb.stat().st_size < 4 * MB
    error, peak, seconds = measured(lambda: load_dataset("mnist", root=tmp_path))
    assert isinstance(error, IdxFormatError), error
    assert "train-images-idx3-ubyte.gz: corrupt (extra bytes at the end)" in str(error)
    assert peak < 32 * MB, f"peak {peak / MB:.1f} MB"
    assert seconds < 5, f"{seconds:.1f} s"


def test_header_declaring_billions_of_images_is_refused_before_allocating(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28)) + zeros_members(256 * MB))
    error, peak, seconds = measured(lambda: read_idx_images(path))
    assert isinstance(error, IdxFormatError), error
    assert f"more than the {MAX_IDX_BYTES:,} kdviz reads from one file" in str(error) and str(path) in str(error)
    assert peak < 4 * MB and seconds < 2


def test_header_declaring_more_than_the_file_can_inflate_to_is_refused_without_inflating(tmp_path):
    """200 MB declared (under the cap) in a 1 kB gzip file: deflate cannot expand 1 kB that far."""
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(struct.pack(">IIII", 0x803, 255_000, 28, 28) + bytes(1000)))
    error, peak, seconds = measured(lambda: read_idx_images(path))
    assert isinstance(error, IdxFormatError), error
    assert "truncated IDX images file" in str(error) and "gzip file can hold at most" in str(error)
    assert peak < 4 * MB and seconds < 2


def test_real_mnist_still_loads_within_the_limits():
    folder = Path(os.environ.get("KDVIZ_TEST_MNIST") or Path(__file__).parents[2].parent / "shared/data/mnist")
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("real MNIST files not found (set KDVIZ_TEST_MNIST)")
    bundle = load_dataset("mnist", root=folder)
    assert bundle.train_images.shape == (60000, 1, 28, 28) and len(bundle.test_labels) == 10000


# --- a cached download is checked again before use (item 6) -----------------------------------------

@pytest.fixture
def cached_download(tmp_path, monkeypatch) -> tuple[Path, dict[str, str]]:
    """A file:// mirror of tiny IDX files, downloaded into a temp cache with their checksums."""
    mirror = tmp_path / "mirror"
    write_idx_folder(mirror, n_train=12, n_test=10)
    sums = {name: hashlib.sha256((mirror / name).read_bytes()).hexdigest() for name in FILES}
    monkeypatch.setenv("KDVIZ_CACHE", str(tmp_path / "cache"))
    folder = download_dataset("mnist", mirrors=[mirror.as_uri() + "/"], sha256=sums, progress=False)
    return folder, sums


def test_cached_download_changed_after_verification_is_refused(cached_download, tmp_path):
    folder, sums = cached_download
    assert load_dataset("mnist").train_images.shape == (12, 1, 28, 28)
    write_idx_folder(tmp_path / "other", n_train=12, n_test=10, seed=5)  # well-formed, but not what was verified
    (folder / "train-images-idx3-ubyte.gz").write_bytes((tmp_path / "other" / "train-images-idx3-ubyte.gz").read_bytes())
    with pytest.raises(ChecksumMismatch, match=r"train-images-idx3-ubyte\.gz: no longer match.*download=True"):
        load_dataset("mnist")


def test_damaged_cached_download_is_fetched_again_with_download(cached_download, tmp_path):
    folder, sums = cached_download
    path = folder / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-4])
    mirror = tmp_path / "mirror"
    download_dataset("mnist", mirrors=[mirror.as_uri() + "/"], sha256=sums, progress=False)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sums["t10k-labels-idx1-ubyte.gz"]
    assert (folder / VERIFIED_MANIFEST).is_file()
    assert len(load_dataset("mnist").test_labels) == 10


# --- load_pruned and hostile checkpoints (item 12) ---------------------------------------------------

class CodeOnLoad:
    """Pickles to a call of os.system: loading it with plain pickle would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_pruned_refuses_a_malicious_pickle_and_runs_nothing(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "pruned.pt"
    torch.save({"model": CodeOnLoad(marker), "masks": {}}, path)
    with pytest.raises(ValueError) as info:
        load_pruned(nn.Linear(4, 2), path)
    assert str(info.value) == f"{path} is not a plain-tensor checkpoint and was not loaded"
    assert "weights_only" not in str(info.value) and "\x1b" not in str(info.value)
    assert not marker.exists()


def test_load_pruned_on_a_damaged_or_foreign_file(tmp_path):
    model = nn.Linear(4, 2)
    good = tmp_path / "good.pt"
    save_pruned(model, PruningMasks({"weight": torch.rand(2, 4) > 0.5}), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.pt is not a readable checkpoint \(damaged or truncated\) and was not loaded"):
        load_pruned(model, cut)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.pt is not a (plain-tensor|readable) checkpoint.* and was not loaded"):
        load_pruned(model, text)
    masks = load_pruned(nn.Linear(4, 2), good)  # the intact file still loads
    assert masks.names() == ["weight"]
