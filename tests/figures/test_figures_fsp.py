"""FSP figures carry the numbers they claim to show."""
import numpy as np
import plotly.graph_objects as go
import pytest

from kdviz.figures import fsp as figs
from kdviz.figures import theme


def test_heatmaps_share_scale_and_centre_difference():
    rng = np.random.default_rng(0)
    t, s = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)) * 3
    fig = figs.fsp_heatmaps(t, s, pair=("stage2_in", "stage2_out"))
    assert len(fig.data) == 3
    np.testing.assert_allclose(np.asarray(fig.data[0].z), t)
    np.testing.assert_allclose(np.asarray(fig.data[1].z), s)
    np.testing.assert_allclose(np.asarray(fig.data[2].z), t - s)
    assert fig.data[0].coloraxis == fig.data[1].coloraxis == "coloraxis"
    assert fig.data[2].coloraxis == "coloraxis2"
    assert fig.layout.coloraxis.cmin == pytest.approx(min(t.min(), s.min()))
    assert fig.layout.coloraxis.cmax == pytest.approx(max(t.max(), s.max()))
    # the difference is on the teacher's scale, fixed while the student trains: it fades as they match
    assert fig.layout.coloraxis2.cmin == pytest.approx(-np.abs(t).max())
    assert fig.layout.coloraxis2.cmax == pytest.approx(np.abs(t).max())
    closer = figs.fsp_heatmaps(t, t + 0.01 * (s - t))
    assert closer.layout.coloraxis2.cmax == fig.layout.coloraxis2.cmax
    assert np.abs(np.asarray(closer.data[2].z)).max() < 0.05 * closer.layout.coloraxis2.cmax
    resolved = go.Figure(layout={"coloraxis": {"colorscale": theme.SEQUENTIAL}, "coloraxis2": {"colorscale": theme.DIVERGING}})
    assert fig.layout.coloraxis.colorscale == resolved.layout.coloraxis.colorscale
    assert fig.layout.coloraxis2.colorscale == resolved.layout.coloraxis2.colorscale
    assert "stage2_in" in fig.layout.yaxis.title.text and "stage2_out" in fig.layout.xaxis.title.text
    rel = np.sqrt(((t - s) ** 2).sum()) / np.sqrt((t ** 2).sum())
    assert f"{rel:.0%}" in fig.layout.title.text


def test_heatmaps_accept_label_and_given_difference():
    t = np.eye(3)
    fig = figs.fsp_heatmaps(t, t, difference=np.zeros((3, 3)), pair="fc1->fc2")
    assert "fc1 → fc2" in fig.layout.title.text and "0%" in fig.layout.title.text
    with pytest.raises(ValueError, match="same shape"):
        figs.fsp_heatmaps(np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="2-D"):
        figs.fsp_heatmaps(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


def test_loss_curve_log_axis_total_and_pairs():
    steps = [0, 10, 20, 30]
    total = [8.0, 4.0, 2.0, 0.0]
    fig = figs.fsp_loss_curve(steps, total, {"stage1_in->stage1_out": [5, 3, 1, 0.5], "stage2_in->stage2_out": [3, 1, 1, 1]})
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["total", "stage1_in->stage1_out", "stage2_in->stage2_out"]
    assert list(fig.data[0].y) == [8.0, 4.0, 2.0]  # the zero cannot be drawn on a log axis
    assert list(fig.data[1].y) == [5, 3, 1, 0.5]
    assert "4x" in fig.layout.title.text
    assert "step" in fig.layout.xaxis.title.text
    with pytest.raises(ValueError, match="3 values for 4 steps"):
        figs.fsp_loss_curve(steps, total, {"p": [1, 2, 3]})


def test_fast_optimisation_shifts_stage2_and_reports_reaching_baseline():
    fig = figs.fast_optimisation([100, 200, 300], [0.5, 0.8, 0.9], [50, 100, 150], [0.85, 0.92, 0.95], stage1_steps=100,
                                 stage1_iters=[0, 100], stage1_accuracy=[0.1, 0.12])
    names = [t.name for t in fig.data]
    assert names == ["scratch student", "FSP stage 1 (no classification loss)", "FSP student (stage 2)"]
    assert list(fig.data[2].x) == [150, 200, 250]
    assert list(fig.data[2].y) == pytest.approx([85, 92, 95])
    assert fig.data[0].line.color == theme.ROLE_COLORS["scratch student"]
    assert fig.data[2].line.color == theme.ROLE_COLORS["fsp student"]
    assert any(s.x0 == 100 for s in fig.layout.shapes)  # stage boundary
    assert "after 100 stage-2 iterations" in fig.layout.title.text
    plain = figs.fast_optimisation([1, 2], [0.5, 0.9], [1, 2], [0.4, 0.6], stage1_steps=10, count_stage1=False)
    assert list(plain.data[1].x) == [1, 2] and "short of scratch" in plain.layout.title.text
    with pytest.raises(ValueError, match="fractions"):
        figs.fast_optimisation([1], [90.0], [1], [0.5], stage1_steps=1)


def test_fast_optimisation_names_the_stage1_method():
    fig = figs.fast_optimisation([1, 2], [0.5, 0.9], [1, 2], [0.95, 0.97], stage1_steps=4, stage1_iters=[0, 4],
                                 stage1_accuracy=[0.1, 0.1], name="FitNets")
    assert [t.name for t in fig.data] == ["scratch student", "FitNets stage 1 (no classification loss)",
                                          "FitNets student (stage 2)"]
    assert fig.data[2].hovertemplate.startswith("FitNets stage 2") and fig.layout.title.text.startswith("<b>FitNets reaches")
    assert not any("FSP" in (t.name + t.hovertemplate) for t in fig.data)
    with pytest.raises(ValueError, match="FitNets stage 2: accuracies must be fractions"):
        figs.fast_optimisation([1], [0.5], [1], [2.0], stage1_steps=1, name="FitNets")


def records(*rows):
    return [{"kind": "eval", "step": step, **values} for step, values in rows]


def test_live_loss_curve_reads_the_given_metric_and_wording():
    from kdviz.figures import fsp_live

    recs = records((0, {"hints/probe_loss": 8.0, "test_acc": 0.1}), (5, {"hints/probe_loss": 2.0, "test_acc": 0.1}))
    recs.insert(1, {"kind": "step", "step": 1, "hints/probe_loss": 99.0})  # step records are not evaluations
    fig = fsp_live.loss_curve_from_records(recs, "hints/probe_loss", "FitNets", fall_caption="closing in",
                                           y_title="hint loss (log scale)")
    assert list(fig.data[0].x) == [0, 5] and list(fig.data[0].y) == [8.0, 2.0] and len(fig.data) == 1
    assert fig.data[0].name == "total (FitNets, probe batch)" and fig.layout.yaxis.title.text == "hint loss (log scale)"
    assert fig.layout.title.text.startswith("<b>FitNets loss fell 4x") and "closing in" in fig.layout.title.text
    assert fig.layout.legend.y < 0  # theme.compact: the legend under the plot
    assert fsp_live.loss_curve_from_records(recs, "fsp/probe_loss") is None
    pairs = records((0, {"fsp/probe_loss": 3.0, "fsp/probe_loss/a->b": 1.0, "fsp/probe_loss/c->d": 2.0}))
    assert fsp_live.loss_series(pairs, "fsp/probe_loss") == ([0.0], [3.0], {"a->b": [1.0], "c->d": [2.0]})


def test_live_heatmaps_pick_the_pair():
    from kdviz.figures import fsp_live

    pairs = [{"label": f"p{k}", "teacher": np.full((2, 3), k + 1.0), "student": np.zeros((2, 3)),
              "difference": np.full((2, 3), k + 1.0)} for k in range(2)]
    fig = fsp_live.heatmaps_from_pairs(pairs, "p1")
    np.testing.assert_allclose(np.asarray(fig.data[0].z), np.full((2, 3), 2.0))
    np.testing.assert_allclose(np.asarray(fsp_live.heatmaps_from_pairs(pairs).data[0].z), np.ones((2, 3)))
    with pytest.raises(ValueError, match="no FSP pair 'p9' in this snapshot \\(pairs: p0, p1\\)"):
        fsp_live.heatmaps_from_pairs(pairs, "p9")
    with pytest.raises(ValueError, match="no FSP pairs to draw"):
        fsp_live.heatmaps_from_pairs([])
