"""Integration: the engine really trains (digits), KD with cached teacher logits, snapshots, hooks."""
import numpy as np
import pytest
import torch

from kdviz.distill import kd_loss, soften
from kdviz.engine import HOOKS, TrainConfig, TrainingHook, load_checkpoint, load_teacher, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.engine.setup import dataset_for
from kdviz.engine.teacher_cache import TeacherLogitCache, memoized_teacher_logits

SMALL = {"hidden": [64]}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, manager):
    root = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [128]}, epochs=6, lr=0.1,
                      runs_root=str(root), name="teacher", snapshot_every=40, probe_count=12)
    job = start(cfg, manager)
    status = job.wait(120)
    assert status.state == "finished", status
    return job


def test_a_teacher_trains_well_above_chance(teacher):
    evals = teacher.store.metrics("eval")
    assert evals[0]["step"] == 0 and evals[0]["test_acc"] < 0.3  # chance is 0.1
    assert evals[-1]["test_acc"] > 0.9
    assert evals[-1]["step"] == teacher.status().total_steps == 6 * 22
    steps = teacher.store.metrics("step")
    assert len(steps) == 132 and all(r["soft"] == 0 and r["hard"] == r["loss"] for r in steps)
    assert np.mean([r["loss"] for r in steps[-10:]]) < 0.5 * np.mean([r["loss"] for r in steps[:10]])
    assert teacher.status().test_acc == pytest.approx(evals[-1]["test_acc"])


def test_snapshots_hold_probe_soft_targets_and_weight_histograms(teacher):
    ref = teacher.store.reference()
    labels = ref["probe/labels"]
    assert len(labels) == 12 and sorted(labels[:10].tolist()) == list(range(10))  # stratified by class
    data = dataset_for(teacher.config)
    assert np.array_equal(data.test_labels[ref["probe/indices"]].numpy(), labels)
    snaps, _ = teacher.store.snapshots_since(0)
    assert [s.step for s in snaps] == [0, 40, 80, 120, 132]
    last = snaps[-1]
    model = load_teacher(teacher.path)
    logits = model(data.test_images[ref["probe/indices"]]).double()
    np.testing.assert_allclose(last.arrays["probe/logits"], logits.numpy(), rtol=1e-4, atol=1e-4)
    for i, T in enumerate(ref["probe/temperatures"]):  # softmax(z / T) recomputed with numpy
        z = logits.numpy() / T
        expected = np.exp(z - z.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)
        np.testing.assert_allclose(last.arrays["probe/soft"][i], expected, atol=1e-4)
    w = model.fc1.weight.detach().numpy().ravel()
    edges = ref["edges/fc1"]
    expected_hist, _ = np.histogram(np.clip(w, edges[0], edges[-1]), bins=edges)
    assert np.abs(last.arrays["weights/fc1"] - expected_hist).sum() <= 2  # float32 vs float64 bin edges
    assert last.arrays["weights/fc1"].sum() == w.size


def _kd_config(teacher, **kw):
    base = dict(dataset="digits", model="mlp", model_options=SMALL, method="kd", teacher=str(teacher.path), T=4.0,
                alpha=0.9, epochs=2, lr=0.1, runs_root=str(teacher.path.parent), snapshot_every=0)
    return TrainConfig(**{**base, **kw})


def test_cached_teacher_logits_give_the_same_losses_as_calling_the_teacher(teacher, manager):
    data = dataset_for(teacher.config)
    model = load_teacher(teacher.path)
    cache = TeacherLogitCache(model, data.train_images, torch.device("cpu"))
    batch = next(BatchFeed(data.train_images, data.train_labels, 64, seed=0).epoch(0))
    student_logits = torch.randn(len(batch.labels), 10)
    with torch.no_grad():
        live = model(batch.images)
    assert torch.allclose(cache[batch.indices], live, atol=1e-5)
    once = memoized_teacher_logits(teacher.path, model, data.train_images, torch.device("cpu"), ("digits", None, "train"))
    assert memoized_teacher_logits(teacher.path, model, data.train_images, torch.device("cpu"), ("digits", None, "train")) is once
    assert torch.allclose(once, cache.logits, atol=1e-6)
    a = kd_loss(student_logits, cache[batch.indices], batch.labels, T=4, alpha=0.9)
    b = kd_loss(student_logits, live, batch.labels, T=4, alpha=0.9)
    assert a.total.item() == pytest.approx(b.total.item(), rel=1e-5)
    # end to end: two KD runs, one with the cache and one calling the teacher every step
    cached = start(_kd_config(teacher, max_steps=30, name="cached"), manager)
    called = start(_kd_config(teacher, max_steps=30, name="called", cache_teacher_logits=False), manager)
    assert cached.wait(60).state == called.wait(60).state == "finished"
    la = [r["loss"] for r in cached.store.metrics("step")]
    lb = [r["loss"] for r in called.store.metrics("step")]
    assert len(la) == 30 and np.allclose(la, lb, rtol=1e-4, atol=1e-5)
    sa = [r["soft"] for r in cached.store.metrics("step")]
    assert all(s > 0 for s in sa)


def test_kd_student_learns_and_tracks_agreement_with_the_teacher(teacher, manager):
    job = start(_kd_config(teacher, name="kd", epochs=4), manager)
    assert job.wait(60).state == "finished"
    evals = job.store.metrics("eval")
    assert evals[-1]["test_acc"] > 0.85
    assert evals[-1]["agreement_test"] > 0.85 and evals[0]["agreement_test"] < 0.5
    ref = job.store.reference()
    t_logits = load_teacher(teacher.path)(torch.from_numpy(ref["probe/images"])).double()
    np.testing.assert_allclose(ref["teacher/soft"][1], soften(t_logits, 4.0).numpy(), atol=1e-4)
    assert 0 <= job.store.latest_snapshot().meta["agreement_probe"] <= 1


class RecordingHook(TrainingHook):
    """A test hook: an L2 loss term, a step counter (after_step), a snapshot array and a state."""

    def __init__(self, weight: float = 0.01) -> None:
        self.weight, self.count, self.loaded = weight, torch.zeros((), dtype=torch.long), None

    def setup(self, ctx):
        self.model = ctx.model
        self.setup_had_optimizer = ctx.optimizer is not None

    def loss_terms(self, ctx, batch):
        return {"l2": self.weight * sum((p ** 2).sum() for p in self.model.parameters())}

    def after_step(self, ctx):
        self.count += 1
        self.last_step = ctx.step

    def metrics(self, ctx):
        return {"count": float(self.count)}

    def snapshot(self, ctx):
        return {"count": self.count.numpy().copy()}

    def state_dict(self):
        return {"count": self.count.clone()}

    def load_state_dict(self, state):
        self.loaded = state
        if "count" in state:
            self.count = state["count"].clone()


INSTANCES = []


def _make_recording_hook(**options):
    hook = RecordingHook(**options)
    INSTANCES.append(hook)
    return hook


if "test-recording" not in HOOKS:
    HOOKS.register("test-recording")(_make_recording_hook)


def test_a_hook_adds_a_loss_term_acts_after_steps_snapshots_and_checkpoints(teacher, manager):
    cfg = TrainConfig(dataset="digits", model="mlp", model_options=SMALL, epochs=2, max_steps=25, runs_root=str(teacher.path.parent),
                      hooks=[{"name": "test-recording", "weight": 0.001}], snapshot_every=10, name="hooked")
    job = start(cfg, manager)
    assert job.wait(60).state == "finished", job.status()
    hook = INSTANCES[-1]
    assert hook.setup_had_optimizer and int(hook.count) == 25 and hook.last_step == 25
    steps = job.store.metrics("step")
    for r in steps:  # the hook's term is logged and included in the total
        assert r["test-recording/l2"] > 0
        assert r["loss"] == pytest.approx(r["hard"] + r["test-recording/l2"], rel=1e-6)
    assert job.store.metrics("eval")[-1]["test-recording/count"] == 25.0
    snaps, _ = job.store.snapshots_since(0)
    assert [int(s.arrays["test-recording/count"]) for s in snaps] == [0, 10, 20, 25]
    state = load_checkpoint(job.path)
    assert int(state["hooks"]["test-recording"]["count"]) == 25
