"""The DML member of the distillation family: knobs, a teacherless config, and a panel whose captions
follow the numbers (recomputed here from the run's ``metrics.jsonl``)."""
from __future__ import annotations

from dataclasses import replace

import pytest

import kdviz.methods.dml  # noqa: F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig
from kdviz.methods.dml import DML
from kdviz.methods.scratch import SCRATCH
from kdviz.present import as_run_view
from kdviz.present.family import PanelFigure, family_configs, family_member, family_members
from kdviz.present.family_dml import accuracy_caption, dml_panel, kl_caption

from _support.jobs import finished_job
from _support.run_files import metric_lines

COMMON = dict(dataset="digits", model="mlp", batch_size=64, eval_train_samples=100, device="cpu", lr=0.05,
              model_options={"hidden": [16]})


def test_member_drops_the_teacher_and_keeps_the_shared_settings(tmp_path):
    member = family_member(DML.name)
    assert member.spec is DML and member in family_members() and member.defaults() == {"weight": 1.0, "T": 1.0}
    base = TrainConfig(teacher=str(tmp_path / "a-teacher"), seed=6, max_steps=30, runs_root=str(tmp_path), **COMMON)
    configs = family_configs(base, {"dml": {"weight": 2.0, "T": 3.0}})
    assert set(configs) == {SCRATCH.label, DML.label}
    dml, scratch = configs[DML.label], configs[SCRATCH.label]
    assert dml.teacher is None and dml.method == "ce" and dml.hooks == [{"name": "dml", "weight": 2.0, "T": 3.0}]
    for key in ("model", "model_options", "seed", "dataset", "batch_size", "max_steps", "lr"):
        assert getattr(dml, key) == getattr(scratch, key), key
    with pytest.raises(ValueError, match="weight of the KL terms must be a number from 0 to 10, got 11"):
        family_configs(base, {"dml": {"weight": 11}})
    with pytest.raises(ValueError, match="has no setting\\(s\\) \\['beta'\\]"):
        family_configs(base, {"dml": {"beta": 1.0}})


def test_panel_captions_follow_the_run(tmp_path, manager):
    base = TrainConfig(teacher="unused", seed=2, max_steps=30, eval_every=10, snapshot_every=0, runs_root=str(tmp_path),
                       **COMMON)
    config = family_configs(base, {"dml": {"weight": 0.5, "T": 2.0}})[DML.label]
    job = finished_job(replace(config, name="dml-family"), manager)
    view = as_run_view(job)
    view.refresh()
    assert dml_panel(replace(view, evals=[])) == []
    panel = dml_panel(view)
    assert len(panel) == 2 and all(isinstance(p, PanelFigure) for p in panel)
    evals = metric_lines(job.path, "eval")
    first, last = evals[0], evals[-1]
    gap = last["dml/peer_test_acc"] - last["test_acc"]
    if abs(gap) < 0.005:
        assert "run’s student and peer are level" in panel[0].caption
    else:
        who = "peer" if gap > 0 else "run’s student"
        assert f"the {who} leads by {100 * abs(gap):.1f} points" in panel[0].caption
    assert f"same class for {100 * last['dml/agreement']:.0f}% of test images" in panel[0].caption
    change = 100 * (last["dml/agreement"] - first["dml/agreement"])
    assert f"{'up' if change >= 0 else 'down'} {abs(change):.0f} points since step 0" in panel[0].caption
    now, before = last["dml/probe_kl"] + last["dml/probe_peer_kl"], first["dml/probe_kl"] + first["dml/probe_peer_kl"]
    assert f"T = 2: KL(peer ‖ student) = {last['dml/probe_kl']:.4f}" in panel[1].caption
    assert f"{'grew' if now > before else 'shrank'} from {before:.4f} at step 0 to {now:.4f}" in panel[1].caption
    assert "weight 0.5" in panel[1].caption
    assert [t.name for t in panel[0].figure.data][:2] == ["student", "peer"]
    assert accuracy_caption([], {}) == kl_caption([], {}, {}) == "No evaluation yet."
