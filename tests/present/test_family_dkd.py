"""The DKD member of the distillation family: knobs, config, and a panel whose captions follow the numbers.

A tiny MLP teacher and a DKD student are trained on digits; the captions' numbers are recomputed here
from the run's metrics and snapshot arrays with numpy.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import kdviz.methods.dkd  # noqa: F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig
from kdviz.methods.dkd import DKD, DKDSnapshot
from kdviz.methods.scratch import SCRATCH, TEACHER
from kdviz.present import as_run_view
from kdviz.present.family import PanelFigure, family_configs, family_member, family_members
from kdviz.present.family_dkd import dkd_panel, parts_caption, suppression_caption

from _support.jobs import finished_job
from _support.run_files import metric_lines, snapshot_array

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=100, device="cpu")
KNOBS = {"alpha": 0.5, "beta": 2.0, "T": 3.0, "warmup": 2}


@pytest.fixture(scope="module")
def base(tmp_path_factory, manager):
    teacher = finished_job(TrainConfig(model_options={"hidden": [64]}, max_steps=60, lr=0.1, snapshot_every=0,
                                       runs_root=str(tmp_path_factory.mktemp("dkd-family")), name="teacher", **COMMON),
                           manager)
    return TrainConfig(model_options={"hidden": [16]}, teacher=str(teacher.path), lr=0.05, max_steps=30, eval_every=10,
                       snapshot_every=10, seed=4, runs_root=str(Path(teacher.path).parent), **COMMON)


def test_member_knobs_and_configs(base):
    member = family_member(DKD.name)
    assert member.spec is DKD and member in family_members()
    assert member.defaults() == {"alpha": 1.0, "beta": 2.0, "T": 4.0, "warmup": 0}
    configs = family_configs(base, {DKD.name: KNOBS})
    dkd, scratch = configs[DKD.label], configs[SCRATCH.label]
    assert dkd.hooks == [{"name": DKD.name, "alpha": 0.5, "beta": 2.0, "T": 3.0, "warmup_epochs": 2}]
    assert dkd.method == DKD.loss == "ce" and dkd.teacher == base.teacher and DKD.run_label(dkd) == "DKD α=0.5 β=2"
    assert scratch.hooks == [] and scratch.teacher is None and dkd.seed == scratch.seed == 4
    with pytest.raises(ValueError, match=r"beta \(weight of NCKD\) must be a number from 0 to 20, got 30"):
        family_configs(base, {DKD.name: {"beta": 30}})
    with pytest.raises(ValueError, match="warm-up epochs must be a whole number from 0 to 20, got 1.5"):
        family_configs(base, {DKD.name: {"warmup": 1.5}})
    colours = [m.spec.colour for m in family_members() if m.spec is not DKD] + [SCRATCH.colour, TEACHER.colour]
    assert DKD.colour not in colours  # its own colour beside every other member of the family


def test_panel_captions_read_the_run_now(base, manager):
    config = family_configs(base, {DKD.name: KNOBS})[DKD.label]
    job = finished_job(replace(config, name="dkd-family-student"), manager)
    view = as_run_view(job)
    assert dkd_panel(view) == []  # nothing read yet: nothing to draw
    view.refresh()
    panel = dkd_panel(view)
    assert len(panel) == 2 and all(isinstance(p, PanelFigure) for p in panel)
    parts, suppression = panel
    evals = metric_lines(job.path, "eval")
    last = evals[-1]
    assert [t.name for t in parts.figure.data][:3] == ["TCKD (target vs rest)", "NCKD (among the wrong classes)",
                                                       "Hinton's KD"]
    assert list(parts.figure.data[1].y) == pytest.approx([r["dkd/nckd"] for r in evals])
    assert parts.caption.startswith("Step 30, probe batch, T = 3: ")
    assert f"= {last['dkd/tckd']:.3f} + {last['dkd/nckd_in_kd']:.3f} = {last['dkd/hinton_kd']:.3f}" in parts.caption
    kept = 100 * last["dkd/nckd_in_kd"] / last["dkd/nckd"]
    assert f"KD passes on {kept:.0f}% of NCKD" in parts.caption and "α = 0.5 and NCKD by β = 2 " in parts.caption

    p = snapshot_array(job.path, 30, "dkd/teacher_target_prob").astype(float)
    n = snapshot_array(job.path, 30, "dkd/nckd").astype(float)
    share = 1 - ((1 - p) * n).sum() / n.sum()
    assert suppression.caption.startswith(f"Step 30: on 64 probe images at T = 3, the teacher gives the right class "
                                          f"p_t = {p.mean():.2f} on average and is sure (p_t > 0.9) of "
                                          f"{(p > 0.9).sum()}.")
    assert f"so it drops {100 * share:.0f}% of the NCKD on this batch" in suppression.caption
    np.testing.assert_allclose(np.asarray(suppression.figure.data[3].y), n, rtol=1e-6)
    assert f"hides {100 * share:.0f}% of NCKD" in suppression.figure.layout.title.text


def test_captions_follow_the_numbers_given():
    options = {"alpha": 1.0, "beta": 8.0, "T": 4.0}
    series = {"tckd": [2.0, 3.0], "nckd": [1.0, 0.5], "hinton": [2.5, 3.25], "nckd_in_kd": [0.5, 0.25],
              "p_t": [0.5, 0.5]}
    text = parts_caption([0.0, 20.0], series, options)
    assert text.startswith("Step 20, probe batch, T = 4: TCKD (3.000) is 6x larger than NCKD (0.500).")
    assert "KD passes on 50% of NCKD" in text and "Since step 0: TCKD rose to 150% and NCKD fell to 50%" in text
    same = parts_caption([5.0], {**series, "tckd": [1.05], "nckd": [1.0]}, options)
    assert "are about the same size" in same and "Since step" not in same
    assert parts_caption([], {}, options) == "No evaluation yet."
    snap = DKDSnapshot(teacher_target_prob=np.array([0.95, 0.5, 0.2]), nckd_weight=np.array([0.05, 0.5, 0.8]),
                       tckd=np.zeros(3), nckd=np.array([2.0, 1.0, 1.0]), kd=np.zeros(3), labels=np.arange(3), T=2.0)
    text = suppression_caption(snap, 7, 8.0)  # dropped: 0.95*2 + 0.5 + 0.2 = 2.6 of 4; 1.9 of it on the sure image
    assert text.startswith("Step 7: on 3 probe images at T = 2, the teacher gives the right class p_t = 0.55 on "
                           "average and is sure (p_t > 0.9) of 1.")
    assert "so it drops 65% of the NCKD on this batch, 73% of that on the images the teacher is sure of" in text
