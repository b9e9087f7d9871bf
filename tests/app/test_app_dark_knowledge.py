"""The Reproduce page's dark-knowledge section (Hinton et al. 2015, section 3) through AppTest.

A real student is distilled on the bundled digits with every 3 removed from its transfer set
(``TrainConfig.train_classes``), measured by the ``hinton-dark-knowledge`` reproduction's own
``measure`` and written as a finished result with the runner's ``write_result`` (a few seconds,
no MNIST needed). Reopened on the page, the per-class error bars and the caption follow the bias
slider, and both agree with a recount from the saved model."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from _support.apptest import charts, harness, ok, texts, values
from _support.jobs import finished_job
from kdviz.engine import TrainConfig, load_trained_model
from kdviz.engine.evaluation import predict_logits
from kdviz.engine.run_folder import read_config
from kdviz.engine.setup import dataset_for
from kdviz.figures.per_class import per_class_error_bars
from kdviz.reproduce import REPRODUCTIONS, FinishedRun, ReproductionResult, write_result
from kdviz.reproduce.dark_knowledge import NO_THREES

PAGE = Path(__file__).resolve().parents[2] / "kdviz" / "app" / "pages" / "reproduce.py"
SLIDER = f"rp_dk_shift_{NO_THREES.name}"
CHART = "dark-knowledge-opened"


@pytest.fixture(scope="module")
def dark_result(lab_env, manager):
    """A finished hinton-dark-knowledge result whose one student (digits, no 3s) really trained."""
    base = dict(dataset="digits", runs_root=str(lab_env), snapshot_every=0, batch_size=32, seed=0)
    teacher = finished_job(TrainConfig(**base, epochs=3, name="dk-teacher"), manager)
    student = finished_job(TrainConfig(**base, epochs=3, method="kd", teacher=str(teacher.path), T=4.0,
                                       train_classes=list(NO_THREES.kept), name="dk-student"), manager)
    reproduction = REPRODUCTIONS.get(NO_THREES.name)
    plan = reproduction.plan([0], quick=True)
    result = ReproductionResult(reproduction.name, reproduction.title, reproduction.citation, [0], True,
                                reproduction.settings(True), reproduction.measure([FinishedRun(plan[1], student.path)], plan),
                                state="finished", started="2026-11-29T12:00:00+0000", planned=[r.key for r in plan],
                                path=lab_env / "reproductions" / "hinton-dark-knowledge-digits")
    result.path.mkdir(parents=True)
    write_result(result)
    return result, student.path


def recount(run: Path, shift: float) -> list[int]:
    """Per-class test errors of the saved model with ``shift`` added to the logit of class 3."""
    data = dataset_for(read_config(run))
    logits = predict_logits(load_trained_model(run), data.test_images, torch.device("cpu")).numpy().astype(np.float64)
    logits[:, 3] += shift
    wrong = logits.argmax(1) != data.test_labels.numpy()
    return np.bincount(data.test_labels.numpy()[wrong], minlength=10).tolist()


def bars(at: AppTest) -> tuple[list[int], list[int]]:
    before, after = charts(at)[CHART]["data"]
    return values(before["y"]).astype(int).tolist(), values(after["y"]).astype(int).tolist()


def caption_numbers(at: AppTest) -> tuple[int, int, int, int]:
    """(test errors after, as trained, 3s wrong after, as trained) read from the section's caption."""
    (line,) = [line for line in texts(at).splitlines() if line.startswith("Bias of 3 shifted by")]
    found = re.search(r"\*\*(\d+) test errors\*\* \([\d.]+ % of \d+; (\d+) as trained\), \*\*(\d+) of the \d+ test 3s "
                      r"wrong\*\* \((\d+) as trained\)", line)
    assert found, line
    return tuple(int(g) for g in found.groups())


def test_the_bias_slider_moves_the_bars_and_the_caption_together(dark_result, monkeypatch):
    result, student = dark_result
    monkeypatch.delenv("KDVIZ_DATA", raising=False)
    at = AppTest.from_string(harness((PAGE, "Reproduce")), default_timeout=60)
    at.session_state["kdviz_dataset"] = "digits"
    ok(at.run())
    ok(at.selectbox(key="rp_pick").set_value(str(result.path)).run())
    ok(next(b for b in at.button if b.key == "rp-open").click().run())
    assert at.slider(key=SLIDER).value == 3.5  # the paper's shift first
    # the student's run feeds every row: its accuracy line is named after its own (first) row
    (line,) = charts(at)["reproduce-opened"]["data"]
    own_row = next(row for row in result.rows if row.values)  # the distilled row (the teacher has no run here)
    assert line["name"] == f"{own_row.label} s0" and own_row.label.startswith("distilled")
    before = recount(student, 0.0)
    seen = {}
    for shift in (3.5, 0.0, 8.0, -2.0):
        ok(at.slider(key=SLIDER).set_value(shift).run())
        shown_before, shown_after = bars(at)
        assert shown_before == before and shown_after == recount(student, shift), shift
        assert caption_numbers(at) == (sum(shown_after), sum(before), shown_after[3], before[3]), shift
        seen[shift] = shown_after
    assert seen[0.0] == before  # no shift, no change
    assert seen[8.0][3] <= seen[3.5][3] <= before[3] <= seen[-2.0][3]  # a higher bias of 3: fewer 3s missed
    assert seen[8.0] != seen[-2.0]
    # the table's rows were measured from the same logits as the bars
    assert result.row(NO_THREES.class_rows[0]).values == [before[3]]
    assert result.row(NO_THREES.shifted_row).values == [sum(recount(student, 3.5))]


def test_the_bar_figure_names_both_totals_and_refuses_mismatched_counts():
    fig = per_class_error_bars(list("0123"), [1, 2, 30, 4], [1, 3, 2, 5], highlight=[2])
    assert "37 as trained, 11 with the bias shifted" in fig.layout.title.text
    assert list(fig.data[0].x)[2] == "<b>2</b>" and [t.name for t in fig.data] == ["as trained (37 errors)",
                                                                               "bias shifted (11 errors)"]
    with pytest.raises(ValueError, match="4 classes but 3 'before'"):
        per_class_error_bars(list("0123"), [1, 2, 3], [1, 2, 3, 4])
