"""IDX parsing and the MNIST / Fashion-MNIST loaders: real files when present, bad input made in tmp_path."""
from __future__ import annotations

import gzip
import hashlib
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.data import load_dataset
from kdviz.data.idx import IdxFileNotFound, IdxFormatError, read_idx_images, read_idx_labels

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# md5 of the decompressed original files (/work/shared/data/mnist/README.md, also on LeCun's page)
RAW_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def shared_mnist_dir() -> Path | None:
    """The real MNIST files: $KDVIZ_TEST_MNIST, else ../shared/data/mnist next to the repository."""
    folder = Path(os.environ.get("KDVIZ_TEST_MNIST") or Path(__file__).parents[2].parent / "shared/data/mnist")
    return folder if (folder / "train-images-idx3-ubyte.gz").is_file() else None


@pytest.fixture(scope="module")
def real_mnist():
    folder = shared_mnist_dir()
    if folder is None:
        pytest.skip("real MNIST files not found (set KDVIZ_TEST_MNIST or provide ../shared/data/mnist)")
    start = time.perf_counter()
    bundle = load_dataset("mnist", root=folder)
    return bundle, time.perf_counter() - start


# --- IDX files written by hand with struct, independent of the parser under test ----------------

def idx_images_bytes(pixels: np.ndarray, magic: int = 0x00000803) -> bytes:
    n, rows, cols = pixels.shape
    return struct.pack(">IIII", magic, n, rows, cols) + pixels.astype(np.uint8).tobytes()


def idx_labels_bytes(labels: np.ndarray, magic: int = 0x00000801) -> bytes:
    return struct.pack(">II", magic, len(labels)) + labels.astype(np.uint8).tobytes()


def write_idx_folder(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True, size: int = 28, seed: int = 0):
    """Four small IDX files; returns the arrays written: {stem: array}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size)),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10,
    }
    for stem, array in arrays.items():
        data = idx_images_bytes(array) if "images" in stem else idx_labels_bytes(array)
        path = folder / (stem + ".gz" if gz else stem)
        path.write_bytes(gzip.compress(data) if gz else data)
    return arrays


# --- real MNIST -------------------------------------------------------------------------------------

def test_real_mnist_shapes_dtypes_range_and_counts(real_mnist):
    bundle, _ = real_mnist
    assert bundle.train_images.shape == (60000, 1, 28, 28) and bundle.test_images.shape == (10000, 1, 28, 28)
    assert bundle.train_images.dtype == torch.float32 and bundle.train_labels.dtype == torch.int64
    assert float(bundle.train_images.min()) == 0.0 and float(bundle.train_images.max()) == 1.0
    assert torch.bincount(bundle.train_labels).tolist() == TRAIN_COUNTS
    assert torch.bincount(bundle.test_labels).tolist() == TEST_COUNTS
    assert bundle.class_names == tuple("0123456789") and bundle.input_shape == (1, 28, 28)


def test_real_mnist_round_trips_to_the_original_bytes(real_mnist):
    """Rebuilding each IDX file from the parsed tensors reproduces the published md5 exactly."""
    bundle, _ = real_mnist
    rebuilt = {
        "train-images-idx3-ubyte": idx_images_bytes((bundle.train_images[:, 0] * 255).round().numpy()),
        "train-labels-idx1-ubyte": idx_labels_bytes(bundle.train_labels.numpy()),
        "t10k-images-idx3-ubyte": idx_images_bytes((bundle.test_images[:, 0] * 255).round().numpy()),
        "t10k-labels-idx1-ubyte": idx_labels_bytes(bundle.test_labels.numpy()),
    }
    for stem, data in rebuilt.items():
        assert hashlib.md5(data).hexdigest() == RAW_MD5[stem], stem


def test_real_mnist_loads_quickly(real_mnist):
    _, seconds = real_mnist
    assert seconds < 10.0  # target < 3 s (bench/load_speed.py); loose here because the machine is shared


# --- small files made in tmp_path ---------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_small_folder_parses_exactly(tmp_path, gz):
    arrays = write_idx_folder(tmp_path, gz=gz)
    bundle = load_dataset("mnist", root=tmp_path)
    np.testing.assert_allclose(bundle.train_images[:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(bundle.test_labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert bundle.train_images.shape == (6, 1, 28, 28) and bundle.test_images.shape == (4, 1, 28, 28)


def test_mixed_raw_and_gzip_files(tmp_path):
    arrays = write_idx_folder(tmp_path, gz=True)
    raw = tmp_path / "t10k-images-idx3-ubyte"
    raw.write_bytes(gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()))
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    bundle = load_dataset("mnist", root=str(tmp_path))
    np.testing.assert_allclose(bundle.test_images[:, 0].numpy() * 255, arrays["t10k-images-idx3-ubyte"], atol=1e-4)


def test_fashion_mnist_class_names(tmp_path):
    write_idx_folder(tmp_path)
    bundle = load_dataset("fashion-mnist", root=tmp_path)
    assert bundle.name == "fashion-mnist"
    assert bundle.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(IdxFileNotFound, match=r"nowhere does not exist"):
        load_dataset("mnist", root=missing)
    with pytest.raises(ValueError):  # also a ValueError, as every bad-input error is
        load_dataset("fashion-mnist", root=missing)


def test_missing_file_names_it_and_never_lists_the_folder(tmp_path):
    write_idx_folder(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "id_rsa").write_text("secret")
    with pytest.raises(FileNotFoundError, match=r"no train-labels-idx1-ubyte or train-labels-idx1-ubyte\.gz") as info:
        load_dataset("mnist", root=tmp_path)
    assert "id_rsa" not in str(info.value) and "t10k" not in str(info.value)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_truncated_file(tmp_path, gz):
    write_idx_folder(tmp_path, gz=gz)
    path = tmp_path / ("train-images-idx3-ubyte.gz" if gz else "train-images-idx3-ubyte")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", root=tmp_path)


def test_truncated_payload_inside_valid_gzip(tmp_path):
    write_idx_folder(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(IdxFormatError, match=r"t10k-labels-idx1-ubyte\.gz: truncated IDX labels file.*needs 12 bytes.*has 11"):
        load_dataset("mnist", root=tmp_path)


def test_extra_bytes_are_reported(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    with pytest.raises(IdxFormatError, match=r"train-labels-idx1-ubyte: corrupt \(extra bytes"):
        load_dataset("mnist", root=tmp_path)
    write_idx_folder(tmp_path / "gz", gz=True)
    path = tmp_path / "gz" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()) + b"\x07"))
    with pytest.raises(IdxFormatError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt \(extra bytes.*needs 12 bytes"):
        load_dataset("mnist", root=tmp_path / "gz")


def test_corrupt_gzip(tmp_path):
    write_idx_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[20:40] = b"\xff" * 20  # scramble the deflate stream, keep the gzip signature
    path.write_bytes(bytes(data))
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte\.gz: ((corrupt|truncated) gzip|.*damaged)"):
        load_dataset("mnist", root=tmp_path)


def test_wrong_magic_number(tmp_path):
    write_idx_folder(tmp_path, gz=False)
    labels = np.zeros(6, dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_labels_bytes(labels))  # a labels file in the images slot
    with pytest.raises(IdxFormatError, match=r"train-images-idx3-ubyte: wrong magic number 0x00000801, expected 0x00000803.*labels file"):
        load_dataset("mnist", root=tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(IdxFormatError, match=r"wrong magic number 0x89504E47"):
        read_idx_images(tmp_path / "train-images-idx3-ubyte")


def test_image_and_label_counts_disagree(tmp_path):
    write_idx_folder(tmp_path, n_train=6)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels_bytes(np.arange(5))))
    with pytest.raises(IdxFormatError, match=r"count mismatch: .*train-images-idx3-ubyte\.gz holds 6 images but .*train-labels-idx1-ubyte\.gz holds 5 labels"):
        load_dataset("mnist", root=tmp_path)


def test_wrong_image_size_and_label_range(tmp_path):
    write_idx_folder(tmp_path / "small", size=8)
    with pytest.raises(IdxFormatError, match=r"images are 8x8, MNIST images are 28x28"):
        load_dataset("mnist", root=tmp_path / "small")
    write_idx_folder(tmp_path / "labels")
    (tmp_path / "labels" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels_bytes(np.array([1, 2, 12, 3]))))
    with pytest.raises(IdxFormatError, match=r"t10k-labels-idx1-ubyte.*label 12 is out of range"):
        load_dataset("mnist", root=tmp_path / "labels")


def test_readers_on_single_files(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx_labels_bytes(np.array([7, 0, 255])))
    assert read_idx_labels(path).tolist() == [7, 0, 255]
    with pytest.raises(IdxFileNotFound, match="file not found"):
        read_idx_labels(tmp_path / "absent")


def test_no_root_no_download_and_empty_cache_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=r"not in the cache folder .*cache.mnist.*root=.*download=True"):
        load_dataset("mnist")


def test_cache_folder_is_used_when_filled(tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(tmp_path))
    arrays = write_idx_folder(tmp_path / "fashion-mnist", gz=False)
    bundle = load_dataset("fashion-mnist")
    np.testing.assert_array_equal(bundle.train_labels.numpy(), arrays["train-labels-idx1-ubyte"])
