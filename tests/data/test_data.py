"""The bundled datasets (digits, synthetic), the bundle contract and the dataset registry."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from kdviz.data import DatasetBundle, list_datasets, load_dataset
from kdviz.data.synthetic import make_synthetic


def _check_bundle_contract(bundle: DatasetBundle) -> None:
    for images, labels in ((bundle.train_images, bundle.train_labels), (bundle.test_images, bundle.test_labels)):
        assert images.dtype == torch.float32 and images.ndim == 4
        assert labels.dtype == torch.int64 and labels.shape == (len(images),)
        assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
        assert int(labels.min()) >= 0 and int(labels.max()) < bundle.num_classes
    assert bundle.input_shape == tuple(bundle.train_images.shape[1:]) == tuple(bundle.test_images.shape[1:])


@pytest.fixture(scope="module")
def digits() -> DatasetBundle:
    return load_dataset("digits")


def test_digits_shapes_dtypes_and_range(digits):
    _check_bundle_contract(digits)
    assert digits.input_shape == (1, 8, 8)
    assert digits.num_classes == 10 and digits.class_names == tuple("0123456789")
    assert len(digits.train_labels) + len(digits.test_labels) == 1797
    assert float(digits.train_images.max()) == 1.0  # pixel value 16 maps to exactly 1


def test_digits_split_is_a_partition_of_the_sklearn_images(digits):
    from sklearn.datasets import load_digits

    raw = load_digits()
    expected = np.concatenate([raw.images.reshape(len(raw.images), -1) / 16.0, raw.target[:, None]], axis=1)
    got = np.concatenate(
        [
            torch.cat([digits.train_images, digits.test_images]).reshape(1797, -1).double().numpy(),
            torch.cat([digits.train_labels, digits.test_labels]).double().numpy()[:, None],
        ],
        axis=1,
    )
    # the same multiset of (image, label) rows: nothing lost, nothing duplicated, labels kept with images
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(got), order(expected), atol=1e-7)


def test_digits_split_is_stratified(digits):
    from sklearn.datasets import load_digits

    per_class = np.bincount(load_digits().target, minlength=10)
    test_counts = np.bincount(digits.test_labels.numpy(), minlength=10)
    train_counts = np.bincount(digits.train_labels.numpy(), minlength=10)
    np.testing.assert_array_equal(train_counts + test_counts, per_class)
    # each class contributes a quarter of its images to the test set, up to rounding
    assert np.all(np.abs(test_counts - per_class * 0.25) <= 0.5 + 1e-9)


def test_digits_split_is_deterministic(digits):
    again = load_dataset("digits")
    assert torch.equal(again.train_images, digits.train_images)
    assert torch.equal(again.test_labels, digits.test_labels)


def test_digits_loads_under_one_second(digits):
    # the module fixture already paid the one-off scikit-learn import; this times the load itself
    start = time.perf_counter()
    load_dataset("digits")
    assert time.perf_counter() - start < 1.0


def test_synthetic_contract_and_seeding():
    bundle = load_dataset("synthetic")
    _check_bundle_contract(bundle)
    assert bundle.input_shape == (1, 8, 8) and bundle.num_classes == 4
    assert len(bundle.train_labels) == 512 and len(bundle.test_labels) == 256
    assert torch.equal(bundle.train_images, load_dataset("synthetic").train_images)
    other = make_synthetic(seed=1)
    assert not torch.equal(other.train_images, bundle.train_images)
    # balanced classes: labels are arange(n) % K, shuffled
    assert np.bincount(bundle.train_labels.numpy()).tolist() == [128] * 4


def test_synthetic_classes_differ_more_than_noise():
    bundle = make_synthetic(n_train=400, num_classes=4, noise=0.05, seed=3)
    x, y = bundle.train_images.reshape(400, -1), bundle.train_labels
    means = torch.stack([x[y == k].mean(0) for k in range(4)])
    within = torch.stack([(x[y == k] - means[k]).norm(dim=1).mean() for k in range(4)]).mean()
    between = torch.cdist(means, means)[~torch.eye(4, dtype=torch.bool)].min()
    assert between > within


@pytest.mark.parametrize(
    "kwargs", [{"num_classes": 1}, {"size": 3}, {"n_train": 2, "num_classes": 4}, {"n_test": 0}]
)
def test_synthetic_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        make_synthetic(**kwargs)


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ValueError, match=r"No dataset 'cifar' registered \(known: .*digits.*fashion-mnist.*mnist"):
        load_dataset("cifar")
    assert {"digits", "synthetic", "mnist", "fashion-mnist"} <= set(list_datasets())


def test_bundle_rejects_inconsistent_tensors():
    images, labels = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.int64)
    ok = dict(name="t", train_images=images, train_labels=labels, test_images=images, test_labels=labels,
              class_names=("a", "b"), description="test")
    DatasetBundle(**ok)
    with pytest.raises(ValueError, match="4 train images but 3 train labels"):
        DatasetBundle(**{**ok, "train_labels": labels[:3]})
    with pytest.raises(ValueError, match="float32"):
        DatasetBundle(**{**ok, "test_images": images.double()})
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        DatasetBundle(**{**ok, "train_images": images[:, 0]})


def test_digits_file_reader_matches_sklearn_api():
    from sklearn.datasets import load_digits as sklearn_digits

    from kdviz.data.digits import read_sklearn_digits

    pixels, targets = read_sklearn_digits()
    raw = sklearn_digits()
    np.testing.assert_array_equal(pixels, raw.data)
    np.testing.assert_array_equal(targets, raw.target)
