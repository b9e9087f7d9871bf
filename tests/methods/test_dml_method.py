"""The "dml" hook and method (Zhang et al., "Deep Mutual Learning", CVPR 2018, eqs. 1-4) through the real
engine: two students on digits, no teacher.

Expected values are recomputed here with numpy from the initial weights (seeded as the engine seeds them),
the first batch of the seeded data order, and the run folders' checkpoints (the peer's weights are in the
checkpoint's hook state), never through ``kdviz.distill.mutual``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import kdviz.methods.dml  # noqa: F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig, load_checkpoint, load_trained_model, open_run, resume, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.engine.hooks import TrainContext
from kdviz.methods import get_method, method_of
from kdviz.methods.dml import DML, DMLHook, dml_config, read_dml_snapshot
from kdviz.models import build_model

COMMON = dict(dataset="digits", model="mlp", device="cpu", eval_train_samples=100, batch_size=64, lr=0.05,
              model_options={"hidden": [16]}, seed=3)
PROBE = 48


def dml_config_for(root, name: str, epochs: int = 2, max_steps: int | None = None, **options) -> TrainConfig:
    return TrainConfig(epochs=epochs, max_steps=max_steps, eval_every=11, snapshot_every=22, runs_root=str(root),
                       name=name, hooks=[{"name": "dml", "probe_size": PROBE, **options}], **COMMON)


def finished(config) -> object:
    job = start(config)
    assert job.wait(120).state == "finished", job.status().message
    return job


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("dml-runs")


@pytest.fixture(scope="module")
def default(root):
    return finished(dml_config_for(root, "dml-default"))


def np_log_softmax(z: np.ndarray, T: float) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64) / T
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def np_kl(target_logits, logits, T: float) -> float:
    """T^2 mean_b sum_m q_m log(q_m / p_m), q from ``target_logits`` (eq. 2 as a batch mean)."""
    log_q, log_p = np_log_softmax(target_logits, T), np_log_softmax(logits, T)
    return float(T * T * (np.exp(log_q) * (log_q - log_p)).sum(axis=1).mean())


def np_ce(logits, labels) -> float:
    return float(-np_log_softmax(logits, 1.0)[np.arange(len(labels)), np.asarray(labels)].mean())


def initial_models(digits, peer_seed: int):
    with torch.random.fork_rng():
        torch.manual_seed(3)
        student = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16])
        torch.manual_seed(peer_seed)
        peer = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16])
    return student, peer


def final_peer(run, digits):
    state = load_checkpoint(run.path)["hooks"]["dml"]
    peer = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[16])
    peer.load_state_dict({k[len("peer/"):]: v for k, v in state.items()})
    return peer.eval()


def test_both_students_learn_and_the_step_terms_add_up(default):
    evals = open_run(default.path).metrics("eval")
    assert [r["step"] for r in evals] == [0, 11, 22, 33, 44]
    first, last = evals[0], evals[-1]
    assert first["dml/peer_test_acc"] < 0.25 and last["dml/peer_test_acc"] > 0.6  # chance is 0.1
    assert last["test_acc"] > 0.6 and last["dml/agreement"] > first["dml/agreement"] + 0.3
    for r in open_run(default.path).metrics("step"):  # eq. 3 for the student plus eq. 4 for the peer
        assert r["loss"] == pytest.approx(r["hard"] + r["dml/kl"] + r["dml/peer_ce"] + r["dml/peer_kl"], rel=1e-5)
        assert r["soft"] == 0.0 and r["dml/kl"] > 0 and r["dml/peer_kl"] > 0


def test_step_one_terms_match_a_recomputation_and_follow_weight_and_T(default, root, digits):
    """Step 1: the seeded initial student (seed 3) and peer (seed 4 = seed + 1, or ``peer_seed``) on the
    first batch of the seeded order; a weight of 2.5 scales both KLs, T = 3 changes them, CE does not move."""
    runs = {"default": default,
            "weighted": finished(dml_config_for(root, "dml-weighted", max_steps=2, weight=2.5)),
            "hot": finished(dml_config_for(root, "dml-hot", max_steps=2, T=3.0, peer_seed=8))}
    batch = next(BatchFeed(digits.train_images, digits.train_labels, 64, seed=3).epoch(0))
    for name, weight, T, peer_seed in (("default", 1.0, 1.0, 4), ("weighted", 2.5, 1.0, 4), ("hot", 1.0, 3.0, 8)):
        student, peer = initial_models(digits, peer_seed)
        with torch.no_grad():
            z, z_peer = student(batch.images).numpy(), peer(batch.images).numpy()
        logged = open_run(runs[name].path).metrics("step")[0]
        assert logged["hard"] == pytest.approx(np_ce(z, batch.labels), rel=1e-5)
        assert logged["dml/peer_ce"] == pytest.approx(np_ce(z_peer, batch.labels), rel=1e-5)
        assert logged["dml/kl"] == pytest.approx(weight * np_kl(z_peer, z, T), rel=1e-4)
        assert logged["dml/peer_kl"] == pytest.approx(weight * np_kl(z, z_peer, T), rel=1e-4)
    step1 = {name: open_run(run.path).metrics("step")[0] for name, run in runs.items()}
    assert step1["weighted"]["dml/kl"] == pytest.approx(2.5 * step1["default"]["dml/kl"], rel=1e-5)
    assert step1["hot"]["dml/peer_ce"] != pytest.approx(step1["default"]["dml/peer_ce"], rel=1e-3)  # another peer


def test_evaluation_metrics_match_the_checkpointed_students(default, digits):
    last = open_run(default.path).metrics("eval")[-1]
    student, peer = load_trained_model(default.path).eval(), final_peer(default, digits)
    with torch.no_grad():
        z, z_peer = student(digits.test_images).numpy(), peer(digits.test_images).numpy()
    labels = digits.test_labels.numpy()
    assert last["dml/peer_test_acc"] == pytest.approx(float((z_peer.argmax(1) == labels).mean()), abs=1e-6)
    assert last["dml/peer_test_loss"] == pytest.approx(np_ce(z_peer, labels), rel=1e-5)
    assert last["dml/agreement"] == pytest.approx(float((z.argmax(1) == z_peer.argmax(1)).mean()), abs=1e-6)
    assert last["dml/probe_kl"] == pytest.approx(np_kl(z_peer[:PROBE], z[:PROBE], 1.0), rel=1e-4)
    assert last["dml/probe_peer_kl"] == pytest.approx(np_kl(z[:PROBE], z_peer[:PROBE], 1.0), rel=1e-4)
    assert last["dml/peer_test_acc"] != last["test_acc"] or last["dml/agreement"] < 1.0  # two different networks


def test_snapshot_read_through_the_spec(default, digits):
    snapshot = open_run(default.path).latest_snapshot()
    snap = DML.read_snapshot(snapshot.arrays, default.config)
    student, peer = load_trained_model(default.path).eval(), final_peer(default, digits)
    x = digits.test_images[:PROBE]
    with torch.no_grad():
        p, p_peer = torch.softmax(student(x), 1).numpy(), torch.softmax(peer(x), 1).numpy()
    assert snapshot.step == 44 and snap.T == 1.0 and snap.probs.shape == (PROBE, 10)
    np.testing.assert_allclose(snap.probs, p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(snap.peer_probs, p_peer, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(snap.labels, digits.test_labels[:PROBE].numpy())
    assert snap.agreement == pytest.approx(float((p.argmax(1) == p_peer.argmax(1)).mean()))
    assert snap.kl.mean() == pytest.approx(open_run(default.path).metrics("eval")[-1]["dml/probe_kl"], rel=1e-4)
    with pytest.raises(ValueError, match="no mutual-learning peer under 'prune/'"):
        read_dml_snapshot(snapshot.arrays, "prune")


def test_resume_continues_with_the_same_peer(default, root):
    """One epoch, then resumed to two: the same numbers as the uninterrupted run, peer included."""
    half = finished(dml_config_for(root, "dml-half", epochs=1))
    assert any(k.startswith("peer/") for k in load_checkpoint(half.path)["hooks"]["dml"])
    again = resume(half.path, epochs=2)
    assert again.wait(120).state == "finished", again.status().message
    resumed, whole = open_run(half.path).metrics("eval")[-1], open_run(default.path).metrics("eval")[-1]
    assert resumed["step"] == whole["step"] == 44
    for key in ("test_acc", "dml/peer_test_acc", "dml/agreement", "dml/probe_kl", "dml/probe_peer_kl"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key


def test_a_checkpoint_without_the_peer_is_refused(digits):
    hook = DMLHook()
    with pytest.raises(ValueError, match="holds no peer network.*not resumed"):
        hook.load_state_dict({})
    ctx = TrainContext(model=build_model("mlp", hidden=[16]), teacher=None, config=TrainConfig(**COMMON),
                       dataset=digits, device=torch.device("cpu"))
    other = DMLHook(peer_model_options={"hidden": [8]})
    other.setup(ctx)
    saved = other.state_dict()
    hook.load_state_dict(saved)  # a peer of another size: refused when it meets the built peer
    with pytest.raises(ValueError, match="peer network does not fit"):
        hook.setup(ctx)


def test_bad_options_are_rejected_by_start_before_any_folder(tmp_path):
    config = {**COMMON, "runs_root": str(tmp_path)}
    cases = [({"wieght": 2.0}, "hook 'dml' has no option.*'wieght'.*known: weight, T, peer_model"),
             ({"weight": -1.0}, "dml: mutual learning: weight must be finite and >= 0, got -1.0"),
             ({"T": 0.0}, "dml: temperature T must be a positive finite number"),
             ({"T": "hot"}, "option 'T' must be float"),
             ({"peer_model": "vgg99"}, "dml: peer_model 'vgg99' is not a model \\(known: .*mlp"),
             ({"peer_seed": -1}, "dml: peer_seed must be a whole number >= 0, got -1"),
             ({"probe_size": 0}, "dml: probe_size .* must be a whole number >= 1, got 0")]
    for options, message in cases:
        with pytest.raises(ValueError, match=message):
            start({**config, "hooks": [{"name": "dml", **options}]})
    assert list(tmp_path.iterdir()) == []
    job = start({**config, "max_steps": 2, "hooks": [{"name": "dml", "peer_model_options": {"hiddn": [4]}}]})
    status = job.wait(60)
    assert status.state == "failed" and "dml: cannot build the peer model 'mlp'" in status.message


def test_method_of_labels_and_config(default):
    assert method_of(default.config) is DML is get_method("dml")
    assert DML.run_label(default.config) == "DML w=1 T=1"
    assert DML.colour not in {get_method(n).colour for n in ("kd", "scratch", "teacher", "attention", "dkd")}
    assert set(DML.options()) == {"weight", "T", "peer_model", "peer_model_options", "peer_seed", "probe_size"}
    base = TrainConfig(teacher="some-teacher", method="kd", T=4.0, model_options={"hidden": [16]}, seed=5)
    config = dml_config(base, weight=0.5, T=2.0, peer_seed=9).validate()
    assert config.teacher is None and config.method == "ce" and config.T == TrainConfig.T
    assert config.hooks == [{"name": "dml", "weight": 0.5, "T": 2.0, "peer_seed": 9}]
    assert method_of(config) is DML and DML.run_label(config) == "DML w=0.5 T=2"
