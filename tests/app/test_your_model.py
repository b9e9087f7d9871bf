"""The Your model page (issue 19): your images as the sidebar's dataset, and .safetensors weights of a
JSON-spec model imported, evaluated and offered as the teacher every page uses."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from _support.apptest import harness, ok, texts
from kdviz.app.sidebar import KEYS, LabSettings
from kdviz.data import load_dataset
from kdviz.engine.evaluation import accuracy_and_loss, predict_logits
from kdviz.models import build_model

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "your_model.py"
HARNESS = harness((PAGE, "Your model"))
SPEC = [{"conv": 4}, {"pool": 2}, {"linear": 12}]


def images(root: Path) -> Path:
    """Two classes of 9x7 grey PNGs: bright and dark, so a model can tell them apart."""
    rng = np.random.default_rng(0)
    for name, low in (("bright", 150), ("dark", 0)):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(low, low + 100, (9, 7), dtype=np.uint8), "L").save(root / name / f"{i}.png")
    return root


def button(at, label):
    (found,) = [b for b in at.button if b.label == label]
    return found


def test_your_images_become_the_sidebars_dataset_and_imported_weights_its_teacher(lab_env, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(lab_env / "cache"))  # the dataset's JSON description goes there
    folder = images(lab_env / "my-images")
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.text_input(key="ym_path").input(str(folder))
    at.number_input(key="ym_height").set_value(8)
    at.number_input(key="ym_width").set_value(8)
    ok(button(at, "Use this dataset").click().run())
    assert at.session_state[KEYS["dataset"]] == "image-folder", texts(at)
    root = at.session_state[KEYS["root"]]
    assert root.endswith(".json") and json.loads(Path(root).read_text())["size"] == [8, 8]
    assert "Every page now uses your images" in " ".join(s.value for s in at.success)
    data = load_dataset("image-folder", root=root)
    assert data.input_shape == (1, 8, 8) and data.class_names == ("bright", "dark")

    torch.manual_seed(2)
    model = build_model("spec", (1, 8, 8), 2, layers=SPEC)
    save_file(model.state_dict(), str(lab_env / "mine.safetensors"))
    at.radio(key="ym_arch").set_value("A JSON spec (layer list)").run()
    at.text_area(key="ym_spec").input(json.dumps(SPEC))
    at.text_input(key="ym_weights_path").input(str(lab_env / "mine.safetensors"))
    ok(button(at, "Import and evaluate").click().run())
    assert not at.error, [e.value for e in at.error]
    direct, _ = accuracy_and_loss(predict_logits(model, data.test_images, torch.device("cpu")), data.test_labels)
    assert f"test accuracy **{direct:.2%}**" in " ".join(s.value for s in at.success)
    ok(button(at, "Use it as the sidebar's teacher").click().run())
    label = at.session_state[KEYS["teacher"]]
    assert label.startswith("Imported: ") and label in at.sidebar.selectbox(key=KEYS["teacher"]).options

    # every page's teacher look-up (app/teacher.py) now finds the imported run, not a new training
    from kdviz.app.teacher import teacher_job

    settings = LabSettings(dataset="image-folder", data_root=root, teacher=label)
    assert settings.teacher_model.model == "spec" and settings.teacher_model.options == {"layers": SPEC}
    job = teacher_job(settings)
    assert str(job.path) == settings.teacher_model.run
    assert job is not None and job.path.name == label.removeprefix("Imported: ")
    assert job.status().state == "finished"


def test_an_uploaded_safetensors_file_is_imported_for_a_zoo_model(lab_env, monkeypatch, digits):
    monkeypatch.setenv("KDVIZ_CACHE", str(lab_env / "cache-upload"))
    torch.manual_seed(4)
    model = build_model("mlp", (1, 8, 8), 10, hidden=[24])
    path = lab_env / "upload.safetensors"
    save_file(model.state_dict(), str(path))
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.selectbox(key="ym_model").select("mlp")
    at.text_input(key="ym_options").input('{"hidden": [24]}')
    at.file_uploader(key="ym_upload").set_value(("uploaded.safetensors", path.read_bytes(), "application/octet-stream"))
    ok(button(at.run(), "Import and evaluate").click().run())
    assert not at.error, [e.value for e in at.error]
    direct, _ = accuracy_and_loss(predict_logits(model, digits.test_images, torch.device("cpu")), digits.test_labels)
    assert f"test accuracy **{direct:.2%}**" in " ".join(s.value for s in at.success)
    kept = list((lab_env / "cache-upload" / "uploads").glob("*/*"))
    assert [p.name for p in kept] == ["uploaded.safetensors"] and kept[0].read_bytes() == path.read_bytes()
    at.run()  # the sidebar, drawn before the page imported, lists it from the next run on
    assert any("-imported-uploaded" in label for label in at.sidebar.selectbox(key=KEYS["teacher"]).options)
    at.file_uploader(key="ym_upload").set_value(("other.safetensors", b"\x80\x04 a pickle", "application/octet-stream"))
    ok(button(at.run(), "Import and evaluate").click().run())
    assert "is a torch.save / pickle file" in " ".join(e.value for e in at.error)


def test_bad_paths_and_weights_are_named_on_the_page(lab_env, tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(lab_env / "cache-bad"))
    (lab_env / "empty").mkdir()
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    at.text_input(key="ym_path").input(str(lab_env / "empty"))
    ok(button(at, "Use this dataset").click().run())
    assert "has no class subfolders" in " ".join(e.value for e in at.error)
    at.text_input(key="ym_path").input(str(tmp_path))  # outside every allowed root
    ok(button(at, "Use this dataset").click().run())
    assert "is not an allowed data path" in " ".join(e.value for e in at.error)
    assert at.session_state[KEYS["dataset"]] == "digits"
    description = lab_env / "elsewhere.json"  # a description in an allowed root naming a folder outside them
    description.write_text(json.dumps({"path": str(tmp_path)}))
    from kdviz.app.sidebar import load_bundle

    with pytest.raises(ValueError, match="is not an allowed data path"):
        load_bundle(LabSettings(dataset="image-folder", data_root=str(description)))
    torch.save({"w": torch.zeros(2)}, lab_env / "pickled.safetensors")
    at.text_input(key="ym_weights_path").input(str(lab_env / "pickled.safetensors"))
    ok(button(at, "Import and evaluate").click().run())
    assert "is a torch.save / pickle file" in " ".join(e.value for e in at.error)
