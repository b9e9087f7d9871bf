"""``kdviz.data.image_folder`` and ``torch_dataset``: your own images as a kdviz dataset (issue 19)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from kdviz.data import bundle_from_torch, load_dataset
from kdviz.data.image_folder import load_image_folder


def write_images(folder, classes=("circle", "square"), per_class=5, size=(6, 4), mode="L", seed=0):
    """PNG files with known pixels; returns {(class, index): uint8 array (H, W) or (H, W, 3)}."""
    rng = np.random.default_rng(seed)
    written = {}
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(folder / name / f"{i:03d}.png")
            written[(name, i)] = pixels
    return written


def test_a_class_per_subfolder_gives_the_pixels_and_a_deterministic_split(tmp_path):
    written = write_images(tmp_path / "shapes", per_class=10)
    data = load_image_folder(tmp_path / "shapes", test_fraction=0.2, seed=3)
    assert data.class_names == ("circle", "square") and data.input_shape == (1, 6, 4)
    assert len(data.train_labels) == 16 and len(data.test_labels) == 4
    assert sorted(data.test_labels.tolist()) == [0, 0, 1, 1]  # stratified
    every = {tuple(int(x) for x in written[k].ravel()) for k in written}
    for image in torch.cat([data.train_images, data.test_images]):
        assert tuple(int(x) for x in np.round(image.numpy().ravel() * 255)) in every
    again = load_image_folder(tmp_path / "shapes", test_fraction=0.2, seed=3)
    assert torch.equal(again.test_images, data.test_images)


def test_train_and_test_subfolders_rgb_and_resize_through_a_json_description(tmp_path):
    write_images(tmp_path / "set" / "train", ("a", "b", "c"), per_class=3, size=(10, 12), mode="RGB")
    write_images(tmp_path / "set" / "test", ("a", "b", "c"), per_class=2, size=(10, 12), mode="RGB", seed=1)
    (tmp_path / "set.json").write_text(json.dumps({"path": "set", "size": [5, 6]}))
    data = load_dataset("image-folder", root=tmp_path / "set.json")
    assert data.input_shape == (3, 5, 6) and data.num_classes == 3
    assert data.train_labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and len(data.test_labels) == 6
    grey = load_image_folder(tmp_path / "set", channels=1)
    assert grey.input_shape == (1, 10, 12)


@pytest.mark.parametrize("make, words", [
    (lambda root: None, "does not exist"),
    (lambda root: root.mkdir(), "has no class subfolders"),
    (lambda root: write_images(root, ("only",)), "has only one class (only)"),
    (lambda root: ((root / "b").mkdir(parents=True), write_images(root, ("a",))), "class folder(s) b hold no images"),
    (lambda root: (write_images(root, ("a",), size=(6, 4)), write_images(root, ("b",), size=(7, 4))),
     "images of different sizes"),
])
def test_bad_folders_are_named(tmp_path, make, words):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(ValueError) as err:
        load_image_folder(root)
    assert words in str(err.value)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    write_images(tmp_path / "d", per_class=2)
    (tmp_path / "d" / "square" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken.png: cannot be read as an image"):
        load_image_folder(tmp_path / "d")
    with pytest.raises(ValueError, match="needs data_root"):
        load_dataset("image-folder")


def test_a_torch_dataset_and_a_dataloader_become_the_same_bundle():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 5, 5, 1), dtype=torch.uint8, generator=g)  # channels-last uint8
    labels = torch.arange(40) % 4
    dataset = TensorDataset(images, labels)
    data = bundle_from_torch(dataset, test_fraction=0.25, class_names=["w", "x", "y", "z"])
    assert data.input_shape == (1, 5, 5) and data.class_names == ("w", "x", "y", "z")
    assert len(data.test_labels) == 8 and float(data.train_images.max()) <= 1.0
    loaded = bundle_from_torch(DataLoader(dataset, batch_size=7), test_fraction=0.25)
    assert torch.equal(loaded.train_images, data.train_images) and torch.equal(loaded.test_labels, data.test_labels)
    whole = torch.cat([data.train_images, data.test_images])
    assert any(torch.equal(img[0], images[0, :, :, 0].float() / 255) for img in whole)  # channels-last turned, scaled
    with pytest.raises(ValueError, match="item 0: a label must be a class index"):
        bundle_from_torch([(torch.zeros(2, 2), -1)])
    with pytest.raises(ValueError, match="item 1: image of shape"):
        bundle_from_torch([(torch.zeros(2, 2), 0), (torch.zeros(3, 3), 1)])


def test_registered_torch_data_trains_through_the_engine(tmp_path, one_thread):
    from kdviz.data.torch_dataset import register_torch_dataset
    from kdviz.engine import TrainConfig, start
    from _support.jobs import job_manager

    g = torch.Generator().manual_seed(1)
    labels = torch.arange(60) % 3
    images = torch.rand(60, 1, 6, 6, generator=g) * 0.2 + labels[:, None, None, None] * 0.4  # separable
    dataset = TensorDataset(images, labels)
    bundle = register_torch_dataset("test-torch-data", dataset, test_fraction=0.25)
    assert register_torch_dataset("test-torch-data", TensorDataset(images, labels), test_fraction=0.25) is bundle
    with pytest.raises(ValueError, match="already registered with other data"):
        register_torch_dataset("test-torch-data", TensorDataset(images + 0.1, labels), test_fraction=0.25)
    with pytest.raises(ValueError, match="is a kdviz dataset already"):
        register_torch_dataset("digits", dataset)
    with job_manager(1) as manager:
        job = start(TrainConfig(dataset="test-torch-data", model="mlp", model_options={"hidden": [8]}, max_steps=60, epochs=40,
                                lr=0.05, batch_size=15, runs_root=str(tmp_path), device="cpu"), manager)
        status = job.wait(60)
    assert status.state == "finished", status.message
    evals = job.store.metrics("eval")
    assert evals[-1]["test_acc"] >= 0.9 > evals[0]["test_acc"], evals  # three well-separated classes, learnt
