"""Training figures: data in, plotly Figure out, colours and labels given as data, axis titles, clear errors."""
import numpy as np
import plotly.graph_objects as go
import pytest

from kdviz.engine.store import Snapshot
from kdviz.figures import theme
from kdviz.figures.training import (
    accuracy_comparison,
    loss_curves,
    probe_soft_targets,
    probe_soft_targets_from_snapshot,
    run_comparison,
)


def _steps(n=30, soft=True, hook=False):
    out = []
    for s in range(1, n + 1):
        r = {"kind": "step", "seq": s, "step": s, "epoch": s / 10, "loss": 2.0 / s, "soft": 1.5 / s if soft else 0.0,
             "hard": 0.5 / s if soft else 2.0 / s, "lr": 0.1}
        if hook:
            r["prune/l1"] = 0.01
        out.append(r)
    return out


def _evals(accs):
    return [{"kind": "eval", "step": 10 * i, "epoch": float(i), "test_acc": a} for i, a in enumerate(accs)]


def test_loss_curves_draw_total_soft_hard_and_hook_terms():
    fig = loss_curves(_steps(hook=True) + _evals([0.1, 0.5]))
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names[0] == "total" and any("soft" in n for n in names) and any("hard" in n for n in names) and "prune/l1" in names
    assert list(fig.data[0].x) == list(range(1, 31)) and fig.data[0].y[0] == pytest.approx(2.0)
    assert fig.layout.xaxis.title.text.startswith("training step") and "nats" in fig.layout.yaxis.title.text
    assert "fell" in fig.layout.title.text


def test_loss_curves_leave_out_an_all_zero_soft_part_and_reject_empty_input():
    names = [t.name for t in loss_curves(_steps(soft=False)).data]
    assert not any("soft" in n for n in names)
    with pytest.raises(ValueError, match="no step records"):
        loss_curves(_evals([0.1]))
    with pytest.raises(TypeError):
        loss_curves("not records")


def test_accuracy_comparison_draws_each_run_in_its_given_colour_and_a_teacher_line():
    runs = [
        {"label": "KD student", "colour": "#123456", "records": _evals([0.1, 0.8, 0.95])},
        {"label": "scratch student", "colour": "#abcdef", "records": _evals([0.1, 0.7, 0.9])},
    ]
    fig = accuracy_comparison(runs, teacher_accuracy=0.97, teacher_colour="#010203")
    assert [t.line.color for t in fig.data] == ["#123456", "#abcdef"]
    assert list(fig.data[0].y) == pytest.approx([10.0, 80.0, 95.0])
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == pytest.approx(97.0) and line.line.color == "#010203"
    assert accuracy_comparison(runs, teacher_accuracy=0.5).layout.shapes[0].line.color == theme.ROLE_COLORS["teacher"]
    uncoloured = accuracy_comparison([{"label": f"run {i}", "records": _evals([0.5])} for i in range(3)])
    assert [t.line.color for t in uncoloured.data] == theme.SERIES[:3]  # no colour given: the series cycle
    assert "KD student is 5.00 points above scratch student at the last evaluation" == fig.layout.title.text.replace("<b>", "").replace("</b>", "")
    assert fig.layout.yaxis.title.text == "test accuracy (%)" and fig.layout.xaxis.title.text == "epoch"
    with pytest.raises(ValueError, match="fraction"):
        accuracy_comparison(runs, teacher_accuracy=97)
    with pytest.raises(ValueError, match="label"):
        accuracy_comparison([{"records": []}])


def test_probe_soft_targets_student_beside_teacher():
    teacher = [0.7, 0.2, 0.1]
    student = [0.5, 0.3, 0.2]
    fig = probe_soft_targets(student, teacher, ["a", "b", "c"], T=4, true_class=0)
    assert [t.name for t in fig.data] == ["teacher", "student"]
    assert list(fig.data[1].y) == student and fig.data[0].marker.color == theme.ROLE_COLORS["teacher"]
    named = probe_soft_targets(student, teacher, ["a", "b", "c"], T=4, student_label="KD T=4", student_colour="#0a0b0c")
    assert named.data[1].name == "KD T=4" and named.data[1].marker.color == "#0a0b0c" and "KD T=4" in named.data[1].hovertemplate
    assert "0.200" in fig.layout.title.text  # total variation 0.5 * (0.2 + 0.1 + 0.1)
    assert "T = 4" in fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="one probability per class"):
        probe_soft_targets([0.5, 0.5], teacher, ["a", "b", "c"], T=4)
    with pytest.raises(ValueError, match="differs"):
        probe_soft_targets(student, [1.0, 0.0], ["a", "b", "c"], T=4)


def test_probe_soft_targets_from_an_engine_snapshot():
    soft = np.random.default_rng(0).dirichlet(np.ones(3), size=(2, 4))  # (nT, P, K)
    teacher = np.random.default_rng(1).dirichlet(np.ones(3), size=(2, 4))
    snap = Snapshot(1, 10, 1.0, {}, {"probe/soft": soft})
    ref = {"probe/temperatures": np.array([1.0, 4.0]), "teacher/soft": teacher, "probe/labels": np.array([2, 0, 1, 2])}
    fig = probe_soft_targets_from_snapshot(snap, ref, sample=3, temperature_index=1, class_names=["x", "y", "z"])
    np.testing.assert_allclose(fig.data[1].y, soft[1, 3])
    np.testing.assert_allclose(fig.data[0].y, teacher[1, 3])
    with pytest.raises(ValueError, match="temperature_index"):
        probe_soft_targets_from_snapshot(snap, ref, sample=0, temperature_index=2, class_names=["x", "y", "z"])


def test_run_comparison_bars_with_paper_reference():
    runs = [
        {"label": "teacher", "colour": "#111111", "value": 60, "reference": 67},
        {"label": "scratch", "colour": "#222222", "value": 140, "reference": 146},
        {"label": "distilled", "colour": "#333333", "value": 80, "reference": 74},
    ]
    fig = run_comparison(runs)
    bars, paper = fig.data
    assert list(bars.x) == [60, 140, 80] and list(paper.x) == [67, 146, 74] and paper.name == "paper"
    assert list(bars.marker.color) == ["#111111", "#222222", "#333333"]
    assert "teacher with 60" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "test errors (count)"
    with pytest.raises(ValueError):
        run_comparison([])
