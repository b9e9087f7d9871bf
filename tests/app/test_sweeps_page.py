"""The Sweeps page through AppTest: without Ray it shows the install command; with Ray (one local Ray
for the module) Start runs a real 2-trial T sweep of KD students in the background, the heatmap fills in
from the trials' reports while the page keeps answering, and the sweep reopens under "Earlier sweeps"."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from _support.ray_dirs import short_ray_dir
from _support.apptest import charts, harness, ok, texts, values, wait_until

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "sweeps.py"
HARNESS = harness((PAGE, "Sweeps"))


def test_without_ray_the_page_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does when ray is missing
    at = ok(AppTest.from_string(HARNESS, default_timeout=60).run())
    assert "pip install 'kdviz[sweep]'" in texts(at)
    assert not [b for b in at.button if b.key == "sw-start"]


@pytest.fixture(scope="module")
def ray_session(request):
    pytest.importorskip("ray")
    from kdviz.sweep import connect_ray, shutdown_ray

    connect_ray(num_cpus=2, temp_dir=str(short_ray_dir(request)))  # Ray's socket paths must stay short
    yield
    shutdown_ray()


def heatmap_z(at: AppTest, where: str) -> list[float]:
    figure = charts(at).get(f"sweep-heatmap-{where}")
    return [] if figure is None else [float(v) for v in values(figure["data"][0]["z"]).ravel()]


@pytest.mark.slow
def test_start_runs_the_sweep_in_the_background_and_the_heatmap_fills_in(ray_session, teacher):
    at = ok(AppTest.from_string(HARNESS, default_timeout=120).run())
    at.text_input(key="sw_x_values").set_value("1, 4")
    at.selectbox(key="sw_y").set_value("(none)")
    at.slider(key="sw_seeds").set_value(1)
    at.slider(key="sw_steps").set_value(20)
    ok(at.run())
    start = next(b for b in at.button if b.key == "sw-start")
    assert not start.disabled
    ok(start.click().run(timeout=30))  # returns at once: the trials run on Ray in the background
    sweeping = at.session_state["sw_sweeping"]
    assert not sweeping.done and len(sweeping.record.trials) == 2
    wait_until(at, lambda a: any(math.isfinite(v) for v in heatmap_z(a, "live")), timeout=150)
    sweeping.wait(150)
    ok(at.run())
    ok(at.run())
    record = sweeping.record
    assert record.state == "finished", record.message
    by_t = {t.values["T"]: 100 * t.test_acc for t in record.trials.values()}
    assert heatmap_z(at, "live") == pytest.approx([by_t[1.0], by_t[4.0]])
    assert all(Path(t.run, "config.json").is_file() and t.config["teacher"] == str(teacher.path)
               for t in record.trials.values())
    at.selectbox(key="sw_pick").set_value(str(record.path))
    ok(next(b for b in at.button if b.key == "sw-open").click().run())
    assert heatmap_z(at, "opened") == pytest.approx([by_t[1.0], by_t[4.0]])
