"""The soft-targets page through AppTest: the temperature slider and exact box, sample pickers, chart
exports and the sidebar, with a real (tiny) teacher. Expected numbers are recomputed here (numpy
softmax of the teacher's logits), never read back from the code under test.
"""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
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


def test_temperature_slider_moves_the_bars_and_the_entropy_marker(teacher, teacher_logits):
    at = ok(lab_app().run())
    before = charts(at)
    z = teacher_logits[0]
    assert np.allclose(values(before["soft-targets"]["data"][0]["y"]), softmax(z, 4.0))
    at.select_slider(key="st_T_slider").set_value(20.0).run()
    after = charts(ok(at))
    p = softmax(z, 20.0)
    assert np.allclose(values(after["soft-targets"]["data"][0]["y"]), p)
    assert not np.allclose(values(after["soft-targets"]["data"][0]["y"]), values(before["soft-targets"]["data"][0]["y"]))
    marker = after["entropy-vs-temperature"]["data"][-1]
    assert values(marker["x"])[0] == 20.0 and np.isclose(values(marker["y"])[0], -(p * np.log(p)).sum())
    assert at.number_input(key="st_T_exact").value == 20.0


def test_exact_temperature_box_and_a_zero_gives_a_clear_message(teacher, teacher_logits):
    at = ok(lab_app().run())
    at.number_input(key="st_T_exact").set_value(2.5).run()
    assert np.allclose(values(charts(ok(at))["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[0], 2.5))
    assert at.select_slider(key="st_T_slider").value == 2.5
    at.number_input(key="st_T_exact").set_value(0.0).run()
    ok(at)
    assert any("T = 0 is not allowed" in e.value for e in at.error)
    assert np.allclose(values(charts(at)["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[0], 2.5))  # T kept


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
    assert np.allclose(values(charts(ok(at))["soft-targets"]["data"][0]["y"]), softmax(teacher_logits[order[1]], 4.0))
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


def test_every_chart_exports_png_or_svg_and_csv(teacher):
    at = ok(lab_app().run())
    exported = [c for c in at.get("plotly_chart") if "chart-sample" not in c.proto.id]
    assert len(exported) == 3
    for c in exported:
        assert json.loads(c.proto.config)["toImageButtonOptions"]["format"] == "png"
    csv = [d for d in at.get("download_button") if d.proto.label == "Download CSV"]
    assert len(csv) == len(exported) + 1  # one per chart and one for the worked-example table
    at.radio(key="kdviz_image_format").set_value("svg").run()
    for c in ok(at).get("plotly_chart"):
        if "chart-sample" not in c.proto.id:
            assert json.loads(c.proto.config)["toImageButtonOptions"]["format"] == "svg"


def test_figure_frame_is_the_traces_data_in_long_form():
    from kdviz.app.charts import figure_frame

    fig = go.Figure([go.Scatter(x=[1, 2], y=[0.5, 0.25], name="a"), go.Bar(x=["p", "q", "r"], y=[3, 4, 5], name="b")])
    frame = figure_frame(fig)
    assert frame.values.tolist() == [["a", 1, 0.5], ["a", 2, 0.25], ["b", "p", 3], ["b", "q", 4], ["b", "r", 5]]
    heat = figure_frame(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]], name="h")))
    assert heat[["row", "column", "value"]].values.tolist() == [[0, 0, 1], [0, 1, 2], [1, 0, 3], [1, 1, 4]]


def test_fast_temperature_view_draws_what_the_figure_functions_draw():
    from kdviz.app.temperature import TEMPERATURES, TemperatureView, temperature_figures

    z = np.random.default_rng(3).uniform(-8, 8, size=10)
    names = [str(i) for i in range(10)]
    view = TemperatureView(z, names)
    for T in (*TEMPERATURES[::3], 1.0, 3.7, 1000.0):  # from-scratch figures are slow: a spread of values
        fast = [json.loads(pio.to_json(f, validate=False)) for f in view.figures(T)]
        slow = [json.loads(pio.to_json(f, validate=False)) for f in temperature_figures(z, T, names)]
        assert fast == slow, f"TemperatureView differs from kdviz.figures.soft_targets at T = {T}"


def test_sidebar_mnist_without_a_folder_gives_a_clear_message(teacher):
    at = ok(lab_app().run())
    at.selectbox(key="kdviz_dataset").set_value("mnist").run()
    assert any("IDX files" in e.value for e in ok(at).error)
    at.text_input(key="kdviz_data_root").input("/no/such/folder").run()
    assert any("/no/such/folder" in e.value and "does not exist" in e.value for e in ok(at).error)
    at.selectbox(key="kdviz_dataset").set_value("digits").run()
    assert not ok(at).error
    at.selectbox(key="kdviz_student").set_value("MLP 64-64").run()
    n = 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10  # 64 inputs -> 64 -> 64 -> 10
    assert any(f"{n:,} parameters" in c.value for c in ok(at).sidebar.caption)
