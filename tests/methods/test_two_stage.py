"""Yim et al.'s two stages as engine configs, and a short FSP stage 1 + stage 2 through the engine."""
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kdviz.methods.fsp import fsp_snapshot_pairs
import kdviz.engine.experiment as experiment
import kdviz.methods.two_stage as two_stage
from kdviz.data import load_dataset
from kdviz.methods import get_method
from kdviz.methods.two_stage import (
    LAYERS, PAIRS, Stage1Choice, Stage1Method, TwoStageFSP, fsp_stage1_config, fsp_stage2_config,
    hints_stage1_config, latest_reading, probe_loss_key, role_of, scratch_config, stage1_method_of, stage1_methods,
    two_stage_configs,
)
from kdviz.engine import TrainConfig, open_run, start

STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": [8, 16, 32]}


def base_config(tmp_path, teacher="some/teacher"):
    return TrainConfig(dataset="digits", model="resnet", model_options=STUDENT, teacher=teacher, lr=1e-4,
                       hooks=[{"name": "prune", "sparsity": 0.5}], runs_root=str(tmp_path), name="s", device="cpu")


def test_stage_configs(tmp_path):
    base = base_config(tmp_path)
    one, two = two_stage_configs(base, tmp_path / "stage1", pairs=[["stage1_in", "stage1_out"]], weights=[2.0],
                                 stage1_steps=30, stage2_steps=10)
    assert one.method == "none" and one.teacher == "some/teacher" and one.max_steps == 30
    assert one.hooks == [{"name": "prune", "sparsity": 0.5},
                         {"name": "fsp", "pairs": [["stage1_in", "stage1_out"]], "weights": [2.0]}]
    assert two.method == "ce" and two.teacher is None and two.init_from == str(tmp_path / "stage1")
    assert two.hooks == [{"name": "prune", "sparsity": 0.5}] and two.max_steps == 10
    assert (one.model, one.model_options, two.model, two.model_options) == ("resnet", STUDENT, "resnet", STUDENT)
    assert one.name == "s fsp stage 1" and two.name == "s fsp stage 2"
    scratch = scratch_config(base.to_dict())
    assert scratch.method == "ce" and scratch.init_from is None and scratch.teacher is None
    assert fsp_stage1_config(base, lr=1e-3, name="x").lr == 1e-3
    assert base.method == "ce" and len(base.hooks) == 1  # the base is not modified


@pytest.mark.parametrize("steps", [1, 22, 23, 24, 100, 1000])
def test_a_stage_gets_the_epochs_that_cover_its_steps(tmp_path, steps):
    """A stage longer than the base's epochs is not cut short (the trainer stops at
    min(epochs x steps per epoch, max_steps)); a shorter one does not claim extra epochs."""
    base = base_config(tmp_path)  # 1 epoch
    per_epoch = -(-len(load_dataset("digits").train_labels) // base.batch_size)
    one, two = two_stage_configs(base, tmp_path / "stage1", stage1_steps=steps, stage2_steps=steps)
    for config in (one, two, scratch_config(base, max_steps=steps), hints_stage1_config(base, "stage2_out", "stage2_out", steps)):
        assert config.max_steps == steps
        assert config.epochs * per_epoch >= steps > (config.epochs - 1) * per_epoch
    assert scratch_config(base).epochs == base.epochs and scratch_config(base).max_steps is None
    with pytest.raises(ValueError, match="max_steps"):
        fsp_stage1_config(base, max_steps=0)


def test_hints_stage1_config(tmp_path):
    base = base_config(tmp_path)
    one = hints_stage1_config(base, "stage2_out", "stage3_out", max_steps=40, lr=1e-3)
    assert one.method == "none" and one.teacher == base.teacher and one.lr == 1e-3 and one.name == "s hints stage 1"
    assert one.hooks == [{"name": "prune", "sparsity": 0.5},
                         {"name": "hints", "student_layer": "stage2_out", "teacher_layer": "stage3_out"}]
    two = fsp_stage2_config(one, tmp_path / "stage1")  # stage 2 drops the hint (and any fsp) hook
    assert two.hooks == [{"name": "prune", "sparsity": 0.5}] and two.method == "ce" and two.teacher is None
    with pytest.raises(ValueError, match="needs a teacher"):
        hints_stage1_config(base_config(tmp_path, teacher=None), "stage2_out", "stage2_out")


def test_poll_from_many_threads_starts_exactly_one_stage2(tmp_path, monkeypatch):
    """A widget timer, a watcher thread and a cell's wait() may all poll when stage 1 ends."""
    started = []

    def fake_start(config, manager=None):
        time.sleep(0.02)  # widen the window in which a second poll could also start a stage 2
        job = SimpleNamespace(config=config, path=tmp_path / f"run{len(started)}", done=True,
                              status=lambda: SimpleNamespace(state="finished", message=""))
        started.append(job)
        return job

    monkeypatch.setattr(experiment, "start", fake_start)
    monkeypatch.setattr(two_stage, "_length", lambda base, steps: {"max_steps": steps})
    stages = TwoStageFSP(base_config(tmp_path), stage1_steps=5, stage2_steps=3)
    barrier = threading.Barrier(8)
    seen = []

    def poll():
        barrier.wait()
        stages.poll()
        seen.append(stages.stage2)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == 2  # stage 1, then one stage 2
    assert all(job is started[1] for job in seen) and started[1].config.init_from == str(started[0].path)


def test_two_stage_takes_a_ready_stage1_config(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "start", lambda config, manager=None: SimpleNamespace(config=config, done=False))
    base = base_config(tmp_path)
    hints = hints_stage1_config(base, "stage2_out", "stage2_out", max_steps=5)
    assert TwoStageFSP(base, stage1=hints).stage1.config is hints
    with pytest.raises(ValueError, match="stage-1 TrainConfig"):
        TwoStageFSP(base, stage1=base)


def test_stage1_needs_teacher(tmp_path):
    with pytest.raises(ValueError, match="needs a teacher"):
        fsp_stage1_config(base_config(tmp_path, teacher=None))
    with pytest.raises(TypeError, match="TrainConfig or a dict"):
        fsp_stage2_config("config", "run")


def test_stage1_specs_build_their_configs_from_a_choice(tmp_path):
    """The fsp and hints specs declare how they serve as stage 1; their builders honour every field."""
    fsp, hints = get_method("fsp"), get_method("hints")
    assert stage1_methods()[:2] == [fsp, hints]
    assert (fsp.stage1.short, fsp.stage1.inputs, fsp.stage1.default_lr) == ("FSP", PAIRS, 1e-4)
    assert (hints.stage1.short, hints.stage1.inputs, hints.stage1.default_lr) == ("FitNets", LAYERS, 1e-3)
    assert fsp.reader is not None and hints.reader is None  # only FSP has matrices to draw
    base = base_config(tmp_path)
    choice = Stage1Choice(steps=37, lr=3e-5, pairs=(("stage2_in", "stage2_out"),), layers=("stage1_out", "stage3_out"))
    one = fsp.stage1.build(base, choice)
    assert (one.method, one.max_steps, one.lr) == ("none", 37, 3e-5)
    assert one.hooks[-1] == {"name": "fsp", "pairs": [["stage2_in", "stage2_out"]]}
    assert fsp.stage1.build(base, Stage1Choice(5, 1e-4)).hooks[-1]["pairs"] == "auto"
    two = hints.stage1.build(base, choice)
    assert (two.method, two.max_steps, two.lr) == ("none", 37, 3e-5)
    assert two.hooks[-1] == {"name": "hints", "student_layer": "stage1_out", "teacher_layer": "stage3_out"}
    assert probe_loss_key(fsp, one) == "fsp/probe_loss" and probe_loss_key(hints, two) == "hints/probe_loss"
    with pytest.raises(ValueError, match="no 'fsp' hook"):
        probe_loss_key(fsp, two)
    with pytest.raises(ValueError, match="not a stage-1 method"):
        probe_loss_key(get_method("kd"), one)
    with pytest.raises(ValueError, match="inputs must be"):
        Stage1Method("X", "x", "probe_loss", 1e-3, "layers please", build=fsp.stage1.build)
    with pytest.raises(ValueError, match="default_lr must be positive"):
        Stage1Method("X", "x", "probe_loss", 0.0, LAYERS, build=fsp.stage1.build)


def test_roles_of_the_runs_come_from_their_methods(tmp_path):
    pruned = base_config(tmp_path)
    base = replace(pruned, hooks=[])
    one = fsp_stage1_config(base)
    hints = hints_stage1_config(base, "stage2_out", "stage2_out")
    two = fsp_stage2_config(base, tmp_path / "stage1")
    assert [role_of(c) for c in (one, hints, two, scratch_config(base))] == ["stage 1", "stage 1", "stage 2", "scratch"]
    assert stage1_method_of(one) is get_method("fsp") and stage1_method_of(hints) is get_method("hints")
    assert stage1_method_of(two) is None
    assert role_of(fsp_stage1_config(pruned)) == "stage 1"  # a prune hook beside it does not hide stage 1
    kd_with_fsp = TrainConfig(method="kd", teacher="t", hooks=[{"name": "fsp"}])  # not a stage 1: it has a base loss
    assert stage1_method_of(kd_with_fsp) is None
    for config in (kd_with_fsp, TrainConfig(method="kd", teacher="t"), pruned):  # pruned: a pruned fine-tune
        with pytest.raises(ValueError, match="is not a stage 1 \\(base loss 'none' with one of the hooks fsp, hints\\)"):
            role_of(config)


def test_latest_reading_skips_snapshots_without_the_method(tmp_path):
    config = fsp_stage1_config(base_config(tmp_path))
    arrays = {"fsp/pairs": ["a->b"], "fsp/pair_loss": [0.5], "fsp/teacher_0": [[1.0]], "fsp/student_0": [[0.25]],
              "fsp/difference_0": [[0.75]]}
    with_fsp, without = SimpleNamespace(step=3, arrays=arrays), SimpleNamespace(step=6, arrays={"probe/soft": [0]})
    snap, reading = latest_reading([with_fsp, without], get_method("fsp"), config)
    assert snap is with_fsp and reading.labels == ["a->b"] and reading.pair("a->b")["student"].tolist() == [[0.25]]
    assert latest_reading([without], get_method("fsp"), config) is None
    assert latest_reading([with_fsp], get_method("hints"), config) is None  # hints has no reader


@pytest.mark.slow
def test_fsp_stage1_lowers_the_loss_and_stage2_starts_from_it(tmp_path):
    common = {"dataset": "digits", "model": "resnet", "batch_size": 32, "eval_train_samples": 200,
              "runs_root": str(tmp_path), "device": "cpu"}
    teacher = start(TrainConfig(model_options={"blocks_per_stage": [2, 2, 2], "channels": [4, 8, 16]},
                                max_steps=15, lr=0.05, snapshot_every=0, name="teacher", **common))
    assert teacher.wait(120).state == "finished"
    base = TrainConfig(model_options={"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}, teacher=str(teacher.path),
                       lr=1e-4, snapshot_every=10, eval_every=10, name="student", **common)
    stages = TwoStageFSP(base, stage1_steps=20, stage2_steps=2)
    assert stages.stage1.config.method == "none"
    status = stages.wait(120)["stage 2"]
    assert status.state == "finished", status.message
    run = open_run(stages.stage1.path)
    steps = [m["fsp/fsp"] for m in run.metrics("step")]
    assert len(steps) == 20 and sum(steps[-3:]) / 3 < 0.7 * steps[0]
    probe = [m["fsp/probe_loss"] for m in run.metrics("eval")]
    assert len(probe) == 3 and probe[-1] < 0.7 * probe[0]
    snaps = run.snapshots_since(0)[0]
    first, last = fsp_snapshot_pairs(snaps[0].arrays), fsp_snapshot_pairs(snaps[-1].arrays)
    assert [p["label"] for p in last] == ["stage1_in->stage1_out", "stage2_in->stage2_out", "stage3_in->stage3_out"]
    assert sum(p["loss"] for p in last) < sum(p["loss"] for p in first)
    stage2 = stages.stage2
    assert stage2.config.init_from == str(stages.stage1.path) and stage2.config.max_steps == 2
    # stage 2 starts from the stage-1 weights: its step-0 evaluation equals stage 1's last one
    s1_last = run.metrics("eval")[-1]
    s2_first = open_run(stage2.path).metrics("eval")[0]
    assert s2_first["step"] == 0 and s2_first["test_loss"] == pytest.approx(s1_last["test_loss"], rel=1e-5)
