"""The soft-targets page through AppTest: the temperature slider and exact box, sample pickers, chart
exports and the sidebar, with a real (tiny) teacher. Expected numbers are recomputed here (numpy
softmax of the teacher's logits), never read back from the code under test.
"""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
from streamlit.testing.v1 import AppTest


from _support.apptest import charts, lab_app, ok, values
from _support.apptest import texts as page_texts

RUNS = "kdviz/app/pages/runs.py"


def softmax(z: np.ndarray, T: float) -> np.ndarray:
    e = np.exp((z - z.max()) / T)
    return e / e.sum()


def texts(at: AppTest) -> str:
    """The page's markdown, captions and info boxes (its error boxes left out)."""
    return page_texts(at, errors=False)


def test_default_page_opens_at_once_on_digits_while_the_teacher_trains(tmp_path, monkeypatch):
    monkeypatch.setenv("KDVIZ_RUNS", str(tmp_path))  # nothing cached: the teacher must train
    at = ok(lab_app().run())
    assert at.title[0].value == "Soft targets"
    assert at.selectbox(key="kdviz_dataset").value == "digits"
    assert "teacher" in texts(at) and ("Training the teacher" in texts(at) or "waits in the queue" in texts(at)
                                       or "ready" in texts(at))
    table = at.dataframe[0].value  # the worked example, logits [2, 7, 10]
    for row, T in zip(table.itertuples(index=False), (1, 5, 10, 20)):
        assert np.allclose(row[1:4], softmax(np.array([2.0, 7.0, 10.0]), T), atol=1e-12)
    assert np.allclose(table.iloc[0, 1:4], [0.00032, 0.04741, 0.95227], atol=5e-6)
    assert "softmax-curves" in charts(at)
    from kdviz.app.sidebar import LabSettings
    from kdviz.app.teacher import teacher_job

    job = teacher_job(LabSettings())
    job.stop()
    job.wait(30)


def player(at: AppTest) -> dict:
    """The arguments the page gave the browser-side explorer: its spec (frames per stop) and stop."""
    (element,) = [e for e in at.get("component_instance") if "soft_targets_player" in e.proto.component_name]
    return json.loads(element.proto.json_args)


def drawn(at: AppTest) -> tuple[str, dict]:
    """(the T label the slider stands at, that stop's frame): what the browser draws."""
    args = player(at)
    return args["spec"]["labels"][args["index"]], args["spec"]["frames"][args["index"]]


def test_the_explorer_gets_a_frame_per_slider_stop_from_this_teacher(teacher, teacher_logits):
    at = ok(lab_app().run())
    label, frame = drawn(at)
    z = teacher_logits[0]
    assert label == "4" and at.number_input(key="st_T_exact").value == 4.0
    spec = player(at)["spec"]
    for i in (0, 9, 20, len(spec["frames"]) - 1):  # what a move in the browser shows, stop by stop
        T, f = spec["temperatures"][i], spec["frames"][i]
        p = softmax(z, T)
        assert np.allclose(f["bars"]["y"], p, rtol=1e-9) and f["bars"]["name"] == f"T = {T:g}"
        assert f["marker"]["x"] == [T] and np.isclose(f["marker"]["y"][0], -(p * np.log(p + 1e-300)).sum())
        assert f["caption"].startswith(f"Filled bars: T = {T:g};")
    assert spec["frames"][20]["bars"]["y"] != spec["frames"][9]["bars"]["y"]
    assert any(r"\frac{\exp(z_i / T)}" in element.value for element in at.get("latex"))  # the formula on one line


def test_exact_temperature_box_and_a_zero_gives_a_clear_message(teacher, teacher_logits):
    at = ok(lab_app().run())
    rev = player(at)["rev"]
    at.number_input(key="st_T_exact").set_value(2.5).run()
    label, frame = drawn(ok(at))
    assert label == "2.5" and np.allclose(frame["bars"]["y"], softmax(teacher_logits[0], 2.5))
    assert player(at)["rev"] == rev + 1  # the browser moves its slider to a T the server set
    at.number_input(key="st_T_exact").set_value(7.3).run()
    label, frame = drawn(ok(at))
    assert label == "7.3" and 7.3 in player(at)["spec"]["temperatures"]  # a typed T is a stop of its own
    assert np.allclose(frame["bars"]["y"], softmax(teacher_logits[0], 7.3))
    at.number_input(key="st_T_exact").set_value(0.0).run()
    ok(at)
    assert any("T = 0 is not allowed" in e.value for e in at.error)
    assert drawn(at)[0] == "7.3"  # T kept


def test_T_survives_two_other_pages_and_a_dataset_switch(teacher, teacher_logits):
    at = ok(lab_app().run())
    at.number_input(key="st_T_exact").set_value(100.0).run()
    for page in ("kdviz/app/pages/runs.py", "kdviz/app/pages/train_student.py", "kdviz/app/pages/soft_targets.py"):
        at.switch_page(page).run()
        ok(at)
    label, frame = drawn(at)
    assert label == "100" and at.number_input(key="st_T_exact").value == 100.0  # bug 3: slider 4, chart 100
    assert np.allclose(frame["bars"]["y"], softmax(teacher_logits[0], 100.0))
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()  # no MNIST folder here: a message, no explorer
    at.selectbox(key="kdviz_dataset").set_value("digits").run()
    assert drawn(ok(at))[0] == "100" and at.number_input(key="st_T_exact").value == 100.0


def test_sample_pickers_by_index_most_confused_and_random(teacher, teacher_logits):
    at = ok(lab_app().run())
    at.number_input(key="st_index").set_value(7).run()
    assert charts(ok(at))["sample"]["layout"]["title"]["text"].startswith("<b>#7:")
    p = np.exp(teacher_logits - teacher_logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top2 = np.sort(p, 1)[:, -2:]
    order = np.argsort(top2[:, 1] - top2[:, 0], kind="stable")
    for rank in (0, 1):
        at.button[[b.label for b in at.button].index("Most confused")].click().run()
        assert at.number_input(key="st_index").value == order[rank]
    assert np.allclose(drawn(ok(at))[1]["bars"]["y"], softmax(teacher_logits[order[1]], 4.0))
    seen = {at.number_input(key="st_index").value}
    for _ in range(5):
        at.button[[b.label for b in at.button].index("Random sample")].click().run()
        seen.add(at.number_input(key="st_index").value)
    assert len(seen) > 1 and all(0 <= i < len(teacher_logits) for i in seen)


def test_new_random_logits_redraw_the_softmax_curves(teacher):
    at = ok(lab_app().run())
    before = charts(at)["softmax-curves"]["data"][0]["x"]
    at.button[[b.label for b in at.button].index("New random logits")].click().run()
    after = charts(ok(at))["softmax-curves"]["data"][0]["x"]
    assert not np.allclose(values(before), values(after))


def test_every_chart_exports_png_or_svg_and_csv(teacher, teacher_logits):
    at = ok(lab_app().run())
    exported = [c for c in at.get("plotly_chart") if "chart-sample" not in c.proto.id]
    assert len(exported) == 1  # the softmax curves; the explorer's two charts draw in the browser
    assert json.loads(exported[0].proto.config)["toImageButtonOptions"]["format"] == "png"
    assert player(at)["image_format"] == "png"
    csv = [d for d in at.get("download_button") if d.proto.label == "Download CSV"]
    assert len(csv) == 4  # the bars, the entropy curve, the softmax curves and the worked-example table
    at.radio(key="kdviz_image_format").set_value("svg").run()
    assert player(ok(at))["image_format"] == "svg"
    for c in at.get("plotly_chart"):
        if "chart-sample" not in c.proto.id:
            assert json.loads(c.proto.config)["toImageButtonOptions"]["format"] == "svg"


def test_figure_frame_is_the_traces_data_in_long_form():
    from kdviz.app.charts import figure_frame

    fig = go.Figure([go.Scatter(x=[1, 2], y=[0.5, 0.25], name="a"), go.Bar(x=["p", "q", "r"], y=[3, 4, 5], name="b")])
    frame = figure_frame(fig)
    assert frame.values.tolist() == [["a", 1, 0.5], ["a", 2, 0.25], ["b", "p", 3], ["b", "q", 4], ["b", "r", 5]]
    heat = figure_frame(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], name="h")))
    assert heat[["row", "column", "value"]].values.tolist() == [[0, 0, 1], [0, 1, 2], [1, 0, 3], [1, 1, 4]]


def test_sidebar_mnist_without_a_folder_gives_a_clear_message(teacher):
    at = ok(lab_app().run())
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()
    assert any("IDX files" in e.value for e in ok(at).error)
    from kdviz.paths import runs_root

    missing = str(runs_root() / "no-such-mnist-folder")  # inside an allowed root (kdviz.paths.confine), but missing
    at.text_input(key="kdviz_data_root").input(missing).run()
    assert any(missing in e.value and "does not exist" in e.value for e in ok(at).error)  # named, and why
    at.selectbox(key="kdviz_dataset").set_value("digits").run()
    assert not ok(at).error
    at.selectbox(key="kdviz_student").set_value("MLP 64-64").run()
    n = 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10  # 64 inputs -> 64 -> 64 -> 10
    assert any(f"{n:,} parameters" in c.value for c in ok(at).sidebar.caption)


def test_writing_the_component_removes_only_its_own_stale_versions(tmp_path):
    """Earlier player folders older than a day go (bar the newest); everything else stays."""
    import os
    import time
    from pathlib import Path

    from kdviz.app.temperature import KEEP_NEWEST, component_folder

    parent = tmp_path / "streamlit-components"
    parent.mkdir()
    day_ago = time.time() - 25 * 3600

    def old_version(name: str, age_s: float) -> Path:
        folder = parent / name
        folder.mkdir()
        (folder / "index.html").write_text("old")
        os.utime(folder, (time.time() - age_s,) * 2)
        return folder

    stale = [old_version(f"soft-targets-{i:012x}", 30 * 3600 + i * 3600) for i in range(4)]
    recent = old_version("soft-targets-aaaaaaaaaaaa", 600)  # written minutes ago: another server may use it
    others = [old_version("soft-targets-notes", 90 * 3600), old_version("soft-targets-ABCDEF123456", 90 * 3600),
              old_version("other-component-0123456789ab", 90 * 3600)]
    (parent / "soft-targets-bbbbbbbbbbbb").write_text("a file, not ours")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (parent / "soft-targets-cccccccccccc").symlink_to(target)
    os.utime(parent / "soft-targets-cccccccccccc", (day_ago,) * 2, follow_symlinks=False)

    current = component_folder(tmp_path)
    assert (current / "index.html").is_file() and (current / "plotly.min.js").stat().st_size > 1_000_000
    left = {p.name for p in parent.iterdir()}
    # the newest KEEP_NEWEST - 1 earlier versions stay; the stale older ones are gone
    assert recent.name in left and KEEP_NEWEST == 3 and stale[0].name in left
    assert not any(p.exists() for p in stale[1:]), left
    assert all(p.is_dir() for p in others) and (parent / "soft-targets-bbbbbbbbbbbb").is_file()
    assert (parent / "soft-targets-cccccccccccc").is_symlink() and target.is_dir()
    # a second process finding the folder written keeps it and removes nothing more
    assert component_folder(tmp_path) == current and {p.name for p in parent.iterdir()} == left
