"""Training charts fit their axes to the data, smooth like TensorBoard, draw losses on a log axis,
keep the legend off the title, and follow the app's light or dark theme."""
import math

import numpy as np
import pytest

from kdviz.figures import theme
from kdviz.figures.training import accuracy_comparison, ema_smooth, loss_curves, run_comparison


def _evals(accs):
    return [{"kind": "eval", "step": 10 * i, "epoch": float(i + 1), "test_acc": a} for i, a in enumerate(accs)]


def _steps(losses):
    return [{"kind": "step", "seq": i, "step": i, "epoch": i / 10, "loss": v} for i, v in enumerate(losses, 1)]


def test_accuracy_axis_zooms_to_a_two_point_gap_and_can_show_0_to_100():
    runs = [{"label": "KD", "colour": "#111111", "records": _evals([0.90, 0.93, 0.951])},
            {"label": "scratch", "colour": "#222222", "records": _evals([0.89, 0.92, 0.929])}]
    low, high = accuracy_comparison(runs).layout.yaxis.range
    assert 85 < low < 89 and 95.1 < high < 97  # 6 points of data fill most of the axis
    assert (high - low) < 12
    assert list(accuracy_comparison(runs, zoom=False).layout.yaxis.range) == [0, 100]
    low, high = accuracy_comparison(runs, teacher_accuracy=0.99).layout.yaxis.range
    assert high >= 99 and high <= 100 and low > 80  # the teacher line stays in view


def test_fitted_range_keeps_a_minimum_span_and_its_bounds():
    assert theme.fitted_range([99.5, 99.9], bounds=(0, 100))[1] == 100
    low, high = theme.fitted_range([99.5, 99.9], bounds=(0, 100))
    assert high - low >= 2.0 and low < 99.5
    assert theme.fitted_range([50.0, 50.0], min_span=4, pad=0) == [48.0, 52.0]
    assert theme.fitted_range([float("nan"), None]) is None
    assert theme.fitted_range([0.2, 0.5], bounds=(0, 100))[0] == 0


def test_ema_smooth_is_tensorboards_debiased_average():
    values = [1.0, 3.0, float("nan"), 2.0]
    w = 0.6
    s1 = (1 - w) * 1.0
    s2 = w * s1 + (1 - w) * 3.0
    s3 = w * s2 + (1 - w) * 2.0
    out = ema_smooth(values, w)
    assert out[0] == pytest.approx(1.0)  # debiased: the first value, not 0.4
    assert out[1] == pytest.approx(s2 / (1 - w ** 2)) and out[2] is None and out[3] == pytest.approx(s3 / (1 - w ** 3))
    assert ema_smooth(values, 0.0)[:2] == [1.0, 3.0]
    for bad in (1.0, -0.1, "0.5"):
        with pytest.raises(ValueError, match="smoothing"):
            ema_smooth(values, bad)


def test_smoothing_draws_the_raw_curve_faint_under_the_smoothed_one():
    noisy = list(2.0 / np.arange(1, 101) + 0.3 * (np.arange(100) % 2))
    fig = loss_curves(_steps(noisy), smoothing=0.9)
    raw, smooth = fig.data[0], fig.data[1]
    assert raw.showlegend is False and raw.opacity == pytest.approx(0.3) and list(raw.y) == pytest.approx(noisy)
    assert smooth.name == "total" and smooth.y[-1] == pytest.approx(ema_smooth(noisy, 0.9)[-1])
    assert np.std(np.diff(smooth.y[50:])) < 0.2 * np.std(np.diff(noisy[50:]))
    runs = [{"label": "KD", "colour": "#111111", "records": _evals([0.5, 0.9, 0.7, 0.95])}]
    acc = accuracy_comparison(runs, smoothing=0.5)
    assert [t.name for t in acc.data] == ["KD (raw)", "KD"] and list(acc.data[1].y) == pytest.approx(
        ema_smooth([50.0, 90.0, 70.0, 95.0], 0.5))


def test_loss_log_axis_and_odd_records_left_out():
    records = _steps([2.0, 1.0, 0.1, 0.01]) + [{"kind": "step", "step": 5, "loss": "x"}, {"kind": "step", "loss": 1.0}]
    fig = loss_curves(records, log_y=True)
    assert fig.layout.yaxis.type == "log" and "log scale" in fig.layout.yaxis.title.text
    assert list(fig.data[0].x) == [1, 2, 3, 4]
    assert loss_curves(records).layout.yaxis.type in (None, "linear", "-")
    runs = [{"label": "odd", "colour": "#111111", "records": _evals([0.5, 0.6]) + [{"kind": "eval", "epoch": 3.0, "test_acc": "x"},
                                                                              {"kind": "eval", "epoch": 4.0}]}]
    assert list(accuracy_comparison(runs).data[0].y) == pytest.approx([50.0, 60.0])


def test_many_runs_put_the_legend_under_the_plot_and_it_scrolls():
    runs = [{"label": f"KD T={t} · 20261129-0930{t:02d}", "colour": "#0072b2", "records": _evals([0.9, 0.91 + t / 1000])}
            for t in range(20)]
    fig = accuracy_comparison(runs)
    legend = fig.layout.legend
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert legend.yanchor == "top" and -fig.layout.margin.b < legend.y * plot_px <= -50  # under the x-axis title
    rows = min(theme.legend_rows([r["label"] for r in runs]), theme.LEGEND_MAX_ROWS)
    assert rows == theme.LEGEND_MAX_ROWS and legend.maxheight == theme.LEGEND_ROW_PX * rows + 8
    assert fig.layout.margin.b >= legend.maxheight + 50 and fig.layout.height - 22 * fig.layout.title.text.count("<br>") == 380 + legend.maxheight
    few = accuracy_comparison(runs[:2])
    assert few.layout.legend.maxheight is None  # two entries: no scrolling, nothing to clip
    assert "<br>" in fig.layout.title.text or len(fig.layout.title.text) < 100


def test_final_accuracy_dots_fit_the_values_and_never_pass_100():
    finals = [{"label": f"run {i}", "colour": "#0072b2", "value": v} for i, v in enumerate([95.1, 92.9, 99.8])]
    fig = run_comparison(finals, value_title="final test accuracy (%)", lower_is_better=False, value_bounds=(0, 100))
    low, high = fig.layout.xaxis.range
    assert fig.data[0].type == "scatter" and high <= 100 and 85 < low < 92.9
    bars = run_comparison([{"label": "a", "colour": "#000000", "value": 40}, {"label": "b", "colour": "#000000", "value": 20}])
    assert bars.data[0].type == "bar" and list(bars.layout.xaxis.range) == pytest.approx([0, 46])


def test_follow_theme_restyles_for_dark_and_back_keeping_run_colours():
    runs = [{"label": "KD", "colour": "#0072b2", "records": _evals([0.5, 0.9])}]
    fig = loss_curves(_steps([2.0, 1.0]))
    fig.layout.title.text = "<b>x</b><br><span style='font-size:12px;color:#555'>y</span>"
    theme.follow_theme(fig, "dark")
    dark = theme.THEME_COLOURS["dark"]
    assert fig.layout.paper_bgcolor == dark["background"] and fig.layout.font.color == dark["text"]
    assert fig.data[0].line.color == dark["text"] and f"color:{dark['muted']}" in fig.layout.title.text
    theme.follow_theme(fig, "light")
    assert fig.data[0].line.color == "#000000" and fig.layout.paper_bgcolor == "#ffffff" and "color:#555555" in fig.layout.title.text
    acc = theme.follow_theme(accuracy_comparison(runs), "dark")
    assert acc.data[0].line.color == "#0072b2"
    with pytest.raises(ValueError, match="light"):
        theme.follow_theme(acc, "sepia")
    assert not math.isnan(acc.layout.yaxis.range[0])
