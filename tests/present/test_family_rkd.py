"""The RKD member of the distillation family: knobs, config, and a panel whose captions follow the numbers.

A tiny MLP teacher and an RKD student are trained on digits; the captions' correlations are
recomputed here from the snapshot's arrays with numpy.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kdviz.engine import TrainConfig
from kdviz.methods.rkd import RKD, RKDSnapshot
from kdviz.methods.scratch import SCRATCH, TEACHER
from kdviz.present import as_run_view
from kdviz.present.family import PanelFigure, family_configs, family_member, family_members
from kdviz.present.family_rkd import geometry_caption, losses_caption

from _support.jobs import finished_job

COMMON = dict(dataset="digits", model="mlp", batch_size=32, eval_train_samples=100)


@pytest.fixture(scope="module")
def base(tmp_path_factory, manager):
    teacher = finished_job(TrainConfig(model_options={"hidden": [64]}, max_steps=40, lr=0.1, snapshot_every=0,
                                       runs_root=str(tmp_path_factory.mktemp("rkd-family")), name="teacher", **COMMON),
                           manager)
    return TrainConfig(model_options={"hidden": [20]}, teacher=str(teacher.path), lr=0.1, max_steps=30, eval_every=10,
                       snapshot_every=10, seed=4, runs_root=str(Path(teacher.path).parent), **COMMON)


def test_member_knobs_and_configs(base):
    member = family_member(RKD.name)
    assert member.spec is RKD and member in family_members()
    assert member.defaults() == {"distance_weight": 25.0, "angle_weight": 50.0}
    configs = family_configs(base, {RKD.name: {"distance_weight": 5.0, "angle_weight": 0.0}})
    rkd, scratch = configs[RKD.label], configs[SCRATCH.label]
    assert rkd.hooks == [{"name": RKD.name, "distance_weight": 5.0, "angle_weight": 0.0}] and rkd.method == RKD.loss
    assert scratch.hooks == [] and scratch.teacher is None and rkd.seed == scratch.seed == 4
    with pytest.raises(ValueError, match="angle weight λ_A must be a number from 0 to 100, got 150"):
        family_configs(base, {RKD.name: {"angle_weight": 150}})
    with pytest.raises(ValueError, match="both 0"):
        family_configs(base, {RKD.name: {"distance_weight": 0.0, "angle_weight": 0.0}})
    colours = [m.spec.colour for m in family_members() if m.spec is not RKD] + [SCRATCH.colour, TEACHER.colour]
    assert RKD.colour not in colours  # its own colour beside every other member of the family


def test_panel_draws_the_latest_matrices_with_captions_from_the_numbers(base, manager):
    config = family_configs(base, {RKD.name: {"distance_weight": 10.0, "angle_weight": 20.0}})[RKD.label]
    job = finished_job(config, manager)
    view = as_run_view(job)
    assert family_member(RKD.name).panel(view) == []  # nothing read yet: no figure, no caption
    view.refresh()
    panels = family_member(RKD.name).panel(view)
    assert len(panels) == 2 and all(isinstance(p, PanelFigure) for p in panels)
    heat, curve = panels
    snap = view.snapshots[-1]
    t, s = snap.arrays["rkd/teacher_distances"], snap.arrays["rkd/student_distances"]
    np.testing.assert_array_equal(np.asarray(heat.figure.data[1].z), s)
    upper = np.triu_indices(len(t), 1)
    r_now = np.corrcoef(t[upper].astype(float), s[upper].astype(float))[0, 1]
    r_first = view.evals[0]["rkd/distance_corr"]
    assert f"r = {r_now:.2f}" in heat.caption and f"r = {r_first:.2f} at the first evaluation" in heat.caption
    assert f"Step {snap.step}." in heat.caption and "64 fixed test images" in heat.caption
    assert ("up from" if r_now > r_first + 0.02 else "down from" if r_now < r_first - 0.02 else "about the same") in heat.caption
    d = [r["rkd/probe_distance"] for r in view.evals]
    assert f"from {d[0]:.4f} to {d[-1]:.4f}" in curve.caption and "λ_D = 10, λ_A = 20" in curve.caption
    assert list(curve.figure.data[0].y) == pytest.approx(d)


def test_captions_change_with_what_the_matrices_show():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(12, 4))
    t = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
    labels = np.arange(12) // 4
    same = RKDSnapshot(t, 2 * t, labels, "fc1", "fc2", 0.0, 0.0)
    assert "r = 1.00" in geometry_caption(same, 5, first_r=0.4) and "nearly as the teacher does" in geometry_caption(same, 5)
    assert "up from r = 0.40" in geometry_caption(same, 5, first_r=0.4)
    other = RKDSnapshot(t, np.abs(rng.normal(size=(12, 12))), labels, "fc1", "fc2", 0.2, 0.1)
    text = geometry_caption(other, 5, first_r=0.9)
    assert "its own way" in text and "down from r = 0.90" in text
    flat = RKDSnapshot(t, np.ones((12, 12)), labels, "fc1", "fc2", 0.2, 0.1)
    assert "no correlation with the teacher's yet" in geometry_caption(flat, 0)
    watched = losses_caption([0, 10], {"distance loss": [0.04, 0.01], "angle loss": [0.02, 0.03]}, (5.0, 0.0))
    assert "distance loss fell from 0.0400 to 0.0100 (4x)" in watched and "angle loss rose" in watched
    assert "the angle loss is only watched (weight 0)" in watched
    assert losses_caption([], {}, (1.0, 1.0)) == "No evaluation yet."
