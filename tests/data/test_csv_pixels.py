"""``kdviz.data.csv_pixels``: a CSV of pixels as a kdviz dataset (issue 19)."""
import json

import numpy as np
import pytest

from kdviz.data import load_dataset
from kdviz.data.csv_pixels import load_csv_pixels


def write_csv(path, rows=30, pixels=16, header=True, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 256, (rows, pixels))
    labels = labels or [i % 3 for i in range(rows)]
    lines = (["label," + ",".join(f"pixel{i}" for i in range(pixels))] if header else [])
    lines += [f"{label}," + ",".join(map(str, row)) for label, row in zip(labels, values)]
    path.write_text("\n".join(lines) + "\n")
    return values


def test_a_csv_with_a_header_gives_square_images_and_a_stratified_split(tmp_path):
    values = write_csv(tmp_path / "px.csv")
    data = load_csv_pixels(tmp_path / "px.csv", test_fraction=0.2)
    assert data.input_shape == (1, 4, 4) and data.class_names == ("0", "1", "2")
    assert len(data.test_labels) == 6 and sorted(data.test_labels.tolist()) == [0, 0, 1, 1, 2, 2]
    rows = {tuple(int(x) for x in v) for v in values}
    assert all(tuple(int(x) for x in np.round(img.numpy().ravel() * 255)) in rows for img in data.train_images)


def test_shape_label_column_and_names_through_a_json_description(tmp_path):
    rng = np.random.default_rng(1)
    lines = ["a,kind,b,c,d,e,f"] + [f"{rng.random():.3f},{name},{rng.random():.3f},0.5,0.25,0,1"
                                     for name in ["cat", "dog"] * 5]
    (tmp_path / "pets.csv").write_text("\n".join(lines))
    (tmp_path / "pets.json").write_text(json.dumps({"path": "pets.csv", "shape": [3, 1, 2], "label_column": "kind"}))
    data = load_dataset("csv-pixels", root=tmp_path / "pets.json")
    assert data.input_shape == (3, 1, 2) and data.class_names == ("cat", "dog")
    assert float(data.train_images.max()) <= 1.0  # pixels already in [0, 1] are kept


def test_a_folder_with_train_and_test_csv_and_no_header(tmp_path):
    write_csv(tmp_path / "train.csv", rows=12, pixels=27, header=False)
    write_csv(tmp_path / "test.csv", rows=6, pixels=27, header=False, seed=2)
    data = load_dataset("csv-pixels", root=tmp_path)
    assert data.input_shape == (3, 3, 3) and len(data.train_labels) == 12 and len(data.test_labels) == 6


@pytest.mark.parametrize("text, words", [
    ("label,p0,p1,p2,p3\n1,0,0,0,0\n0,1,2,x,4\n", "px.csv, row 3, column 'p2': 'x' is not a number"),
    ("label,p0,p1,p2,p3\n1,0,0,0,0\n0,1,2,3\n", "px.csv, row 3: 4 columns, but the first row has 5"),
    ("label,a,b,c,d,e\n1,0,0,0,0,0\n0,1,2,3,4,5\n", "5 pixel columns are neither a square image"),
    ("label,p0,p1,p2,p3\n1,0,0,0,0\n1,1,2,3,4\n", "every row has the label '1'"),
    ("y,p0,p1,p2,p3\n1,0,0,0,0\n0,1,2,3,4\n", "no column named 'label'"),
    ("", "px.csv is empty"),
    ("label,p0,p1,p2,p3\n1,0,0,0,0\n0,1,2,3,999\n", "pixel values go up to 999"),
    ("label,p0,p1,p2,p3\n1,0,0,0,0\n0,1,2,3,-4\n", "row 3: pixel -4.0 is negative"),
])
def test_bad_csv_input_is_named_by_file_row_and_column(tmp_path, text, words):
    (tmp_path / "px.csv").write_text(text)
    with pytest.raises(ValueError) as err:
        load_csv_pixels(tmp_path / "px.csv")
    assert words in str(err.value)
