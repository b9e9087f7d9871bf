"""One RunView for both UIs: a run's method, label and colour come from its config, live or reopened."""
from pathlib import Path

import pytest

from kdviz.engine import JobManager, RunReader, TrainConfig, open_run, start
from kdviz.methods import get_method
from kdviz.present import as_run_view, run_label, run_views, teacher_accuracy

TINY = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, epochs=1, max_steps=12, eval_every=4,
            snapshot_every=6, lr=0.05)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A teacher, a KD student of it and a cross-entropy run with a prune hook (a few steps each)."""
    root = str(tmp_path_factory.mktemp("present-runs"))
    manager = JobManager(max_concurrent=1, cpu_threads=1)
    teacher = start(TrainConfig(**TINY, name="big", runs_root=root), manager)
    assert teacher.wait(60).state == "finished"
    kd = start(TrainConfig(**TINY, method="kd", teacher=str(teacher.path), T=3.0, name="distilled", runs_root=root), manager)
    pruned = start(TrainConfig(**TINY, hooks=[{"name": "prune", "sparsity": 0.5}], name="", runs_root=root), manager)
    assert kd.wait(60).state == pruned.wait(60).state == "finished"
    yield teacher, kd, pruned
    manager.stop_all(wait=True, timeout=10)


def test_a_pruned_cross_entropy_run_is_a_pruned_fine_tune_not_scratch(runs):
    _, _, pruned = runs
    for run in (pruned, str(pruned.path), open_run(pruned.path)):
        view = as_run_view(run)
        assert view.method is get_method("prune") and view.colour == get_method("prune").colour
        assert view.role == "pruned fine-tune" and view.label == "pruned to 50%"  # no name: the method's run label
        assert view.colour != get_method("scratch").colour
    assert run_label(view.config, view.method, pruned.path.name).startswith("pruned to 50% · ")


def test_views_read_incrementally_and_agree_live_or_reopened(runs):
    _, kd, _ = runs
    live, reopened = as_run_view(kd, label="KD live"), as_run_view(Path(kd.path))
    assert live.refresh() and reopened.refresh()
    assert not live.refresh()  # nothing new since the last read
    assert live.label == "KD live" and reopened.label == "distilled"
    assert [r["test_acc"] for r in live.evals] == [r["test_acc"] for r in reopened.evals] and len(live.evals) >= 3
    assert live.eval_series("test_acc")[1] == [r["test_acc"] for r in kd.store.metrics("eval")]
    assert live.controllable and not reopened.controllable and live.done and reopened.status()["state"] == "finished"
    with pytest.raises(ValueError, match="no 'prune' hook"):
        live.read(get_method("prune"))


def test_run_views_mark_the_teacher_and_make_labels_unique(runs):
    teacher, kd, _ = runs
    views = run_views([teacher, kd, RunReader(kd.path)])
    assert [v.method.name for v in views] == ["teacher", "kd", "kd"]
    assert [v.label for v in views] == ["big", "distilled", "distilled (2)"]
    expected = [r["test_acc"] for r in teacher.store.metrics("eval")][-1]
    assert teacher_accuracy(views) == pytest.approx(expected) == teacher_accuracy(views[1:])
    named = run_views({"the teacher": teacher.path, "the student": kd.path})
    assert [(v.label, v.colour) for v in named] == [("the teacher", get_method("teacher").colour),
                                                    ("the student", get_method("kd").colour)]


def test_bad_runs_are_named(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        as_run_view(tmp_path / "missing")
    with pytest.raises(ValueError, match="no config.json"):
        as_run_view(tmp_path)
    with pytest.raises(TypeError, match="run folder path"):
        as_run_view(42)
    with pytest.raises(ValueError, match="at least one run"):
        run_views([])
