"""Exports: the generated code really reproduces the runs; the report holds settings, charts, code."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import plotly.graph_objects as go
import pytest

from kdviz.engine import TrainConfig
from kdviz.present.export import changed_settings, reproduce_code, session_report


def test_changed_settings_lists_only_what_differs_from_the_defaults():
    config = TrainConfig(T=7.5, alpha=0.3, epochs=3, runs_root="/somewhere", name="x")
    assert changed_settings(config) == {"T": 7.5, "alpha": 0.3, "epochs": 3}


def test_generated_code_trains_the_same_config(tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [24]}, epochs=1, max_steps=6,
                         lr=0.021, seed=3, snapshot_every=0, eval_every=3)
    code = reproduce_code([("scratch student (T=7)", config)])
    assert "scratch_student_t_7 = start(TrainConfig(" in code and "lr=0.021" in code
    script = tmp_path / "again.py"
    script.write_text(code)
    env = {**os.environ, "KDVIZ_RUNS": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "'state': 'finished'" in out.stdout
    (folder,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    written = json.loads((folder / "config.json").read_text())
    for key, value in changed_settings(config).items():
        assert written[key] == value, key


def test_a_teacher_path_is_named_once_and_shared():
    teacher = "runs/20260101-teacher"
    code = reproduce_code([("KD student", TrainConfig(method="kd", teacher=teacher, T=6.0)),
                           ("KD student", TrainConfig(method="kd", teacher=teacher, T=2.0))])
    assert code.count(repr(teacher)) == 1
    assert "teacher=teacher_run" in code and "kd_student_2 = start(" in code
    compile(code, "<export>", "exec")


def test_nothing_to_export_is_a_clear_error():
    with pytest.raises(ValueError, match="start a run first"):
        reproduce_code([])


def test_report_holds_settings_charts_and_code_and_escapes_text():
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], name="kd"))
    page = session_report("Train <a> student", {"T": 4.0, "alpha": "<0.9>"}, [("accuracy", fig), ("loss", fig)],
                          code="print('hi')")
    assert page.startswith("<!DOCTYPE html>") and "Train &lt;a&gt; student" in page
    assert "&lt;0.9&gt;" in page and "print(&#x27;hi&#x27;)" in page
    assert page.count("<figure>") == 2
    one_chart = session_report("t", {"T": 4.0}, [("accuracy", fig)])
    assert page.count("* plotly.js v") == 1  # embedded once (the file opens offline), not once per chart
    assert len(page) - len(one_chart) < 50_000
    with pytest.raises(ValueError, match="nothing to report"):
        session_report("empty", {}, [])
