"""The "projection" hook and method (Ravi 2017, ProjectionNet, eq. 1) through the real engine on digits.

Expected values are recomputed with numpy from the seeded initial networks (the projection net from the
run's seed, the trainer from seed + 1, as the engine and the hook seed them), the first batch of the
seeded data order and the run folders' checkpoints (the trainer's weights are in the hook's state).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import kdviz.methods.projection  # noqa: F401  (registers the hook until kdviz.methods imports it)
from kdviz.engine import TrainConfig, load_checkpoint, load_trained_model, open_run, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.engine.hooks import TrainContext
from kdviz.methods import method_of
from kdviz.methods.projection import (
    PROJECTION, ProjectionHook, bits_of, projection_config, read_projection_snapshot,
)
from kdviz.models import build_model

SEED = 3
TRAINER = {"trainer_model_options": {"hidden": [32]}, "probe_size": 6}
BASE = dict(dataset="digits", device="cpu", eval_train_samples=100, batch_size=64, lr=0.05, seed=SEED)


def run(root, name: str, t: int = 4, d: int = 6, lambdas=(1.0, 1.0, 1.0), max_steps: int | None = None):
    base = TrainConfig(epochs=2, max_steps=max_steps, eval_every=11, snapshot_every=11, runs_root=str(root),
                       name=name, **BASE)
    config = projection_config(base, num_hashes=t, bits_per_hash=d, hidden=[16], lambda1=lambdas[0],
                               lambda2=lambdas[1], lambda3=lambdas[2], **TRAINER)
    job = start(config)
    assert job.wait(120).state == "finished", job.status().message
    return job


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("projection-runs")


@pytest.fixture(scope="module")
def default(root):
    return run(root, "projection-default")


def np_log_softmax(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def initial_networks(digits, t: int, d: int):
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        net = build_model("projection_net", input_shape=digits.input_shape, num_classes=10, num_hashes=t,
                          bits_per_hash=d, hidden=[16], projection_seed=SEED)
        torch.manual_seed(SEED + 1)
        trainer = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32])
    return net, trainer


def test_config_model_and_label():
    config = projection_config(TrainConfig(**BASE), num_hashes=5, bits_per_hash=3)
    assert config.model == "projection_net" and config.method == "none" and config.teacher is None
    assert bits_of(config) == (5, 3) and method_of(config) is PROJECTION
    assert PROJECTION.run_label(config) == "ProjectionNet 5x3 bits" and PROJECTION.pages[0].module == "projection"


def test_step_one_terms_are_eq_1_and_follow_lambdas_t_and_d(default, root, digits):
    """Wiring: lambda1..3 scale their own term, and T and d change the bits the projection net reads."""
    runs = {"default": (default, 4, 6, (1.0, 1.0, 1.0)),
            "weighted": (run(root, "projection-weighted", lambdas=(2.0, 0.5, 3.0), max_steps=2), 4, 6, (2.0, 0.5, 3.0)),
            "wide": (run(root, "projection-wide", t=7, d=3, max_steps=2), 7, 3, (1.0, 1.0, 1.0))}
    batch = next(BatchFeed(digits.train_images, digits.train_labels, 64, seed=SEED).epoch(0))
    labels, rows = batch.labels.numpy(), np.arange(len(batch.labels))
    step1 = {}
    for name, (job, t, d, (l1, l2, l3)) in runs.items():
        net, trainer = initial_networks(digits, t, d)
        with torch.no_grad():
            z_p, z_t = net(batch.images).numpy(), trainer(batch.images).numpy()
        log_p, log_t = np_log_softmax(z_p), np_log_softmax(z_t)
        logged = step1[name] = open_run(job.path).metrics("step")[0]
        assert logged["projection/trainer_ce"] == pytest.approx(l1 * -log_t[rows, labels].mean(), rel=1e-5)
        assert logged["projection/distill"] == pytest.approx(l2 * -(np.exp(log_t) * log_p).sum(1).mean(), rel=1e-5)
        assert logged["projection/label"] == pytest.approx(l3 * -log_p[rows, labels].mean(), rel=1e-5)
        assert logged["loss"] == pytest.approx(logged["projection/trainer_ce"] + logged["projection/distill"]
                                               + logged["projection/label"], rel=1e-5)
        bits = open_run(job.path).latest_snapshot().arrays["projection/bits"]
        assert bits.shape == (6, t * d)
    assert step1["wide"]["projection/label"] != pytest.approx(step1["default"]["projection/label"], rel=1e-3)


def test_both_networks_learn_and_evaluations_match_the_checkpoint(default, digits):
    evals = open_run(default.path).metrics("eval")
    assert [r["step"] for r in evals] == [0, 11, 22, 33, 44]
    assert evals[0]["test_acc"] < 0.3 and evals[-1]["test_acc"] > 0.5  # chance is 0.1
    assert evals[-1]["projection/trainer_test_acc"] > 0.7
    state = load_checkpoint(default.path)["hooks"]["projection"]
    trainer = build_model("mlp", input_shape=digits.input_shape, num_classes=10, hidden=[32])
    trainer.load_state_dict({k[len("trainer/"):]: v for k, v in state.items()})
    net = load_trained_model(default.path).eval()
    with torch.no_grad():
        z_t, z_p = trainer.eval()(digits.test_images).numpy(), net(digits.test_images).numpy()
    y = digits.test_labels.numpy()
    assert evals[-1]["projection/trainer_test_acc"] == pytest.approx(float((z_t.argmax(1) == y).mean()), abs=1e-6)
    assert evals[-1]["projection/agreement"] == pytest.approx(float((z_t.argmax(1) == z_p.argmax(1)).mean()), abs=1e-6)
    assert evals[-1]["test_acc"] == pytest.approx(float((z_p.argmax(1) == y).mean()), abs=1e-6)


def test_snapshot_holds_the_probe_bits_and_every_steps_loss_parts(default, digits):
    reader = open_run(default.path)
    snapshots, _ = reader.snapshots_since(0)
    last = PROJECTION.read_snapshot(snapshots[-1].arrays, default.config)
    w = torch.Generator().manual_seed(SEED)
    planes = torch.randn(24, 64, generator=w).numpy()
    x = digits.test_images[:6].reshape(6, 64).numpy()
    np.testing.assert_array_equal(last.bits, (x @ planes.T > 0).astype(np.uint8))
    assert (last.num_hashes, last.bits_per_hash) == (4, 6) and last.hash_codes().shape == (6, 4)
    assert last.hash_codes()[0, 0] == int("".join(str(b) for b in last.bits[0, :6]), 2)
    net = load_trained_model(default.path).eval()
    with torch.no_grad():
        np.testing.assert_allclose(last.probs, torch.softmax(net(digits.test_images[:6]), 1).numpy(), rtol=1e-4, atol=1e-6)
    steps = reader.metrics("step")
    parts = np.concatenate([PROJECTION.read_snapshot(s.arrays, default.config).loss_parts for s in snapshots])
    logged = np.array([[r[f"projection/{k}"] for k in ("trainer_ce", "distill", "label")] for r in steps])
    np.testing.assert_allclose(parts, logged, rtol=1e-5)  # lambdas are 1: unweighted = weighted
    with pytest.raises(ValueError, match="no projection bits under 'prune/'"):
        read_projection_snapshot(snapshots[-1].arrays, "prune")


@pytest.mark.parametrize("options, match", [
    (dict(lambda1=-1.0), "lambda1 \\(weight of the trainer's loss\\)"),
    (dict(lambda2=0.0, lambda3=0.0), "would learn nothing"),
    (dict(trainer_model="projection_net"), "not a full network"),
    (dict(probe_size=0), "probe_size"),
])
def test_bad_options_are_named(options, match):
    with pytest.raises(ValueError, match=match):
        ProjectionHook(**options)


def test_a_run_whose_model_is_not_a_projection_net_is_refused(digits):
    hook = ProjectionHook()
    model = build_model("mlp", input_shape=digits.input_shape, hidden=[8])
    ctx = TrainContext(model=model, teacher=None, config=TrainConfig(), dataset=digits, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="must be 'projection_net'"):
        hook.setup(ctx)
    with pytest.raises(ValueError, match="holds no trainer network"):
        hook.load_state_dict({"peer/x": torch.zeros(1)})
