"""The ``qat`` and ``lsq`` hooks and methods through the real engine: a trained LeNet-5 on digits is
fine-tuned with fake-quantized weights and activations (``init_from``), its steps read back through
the spec, the quantized weights checked to lie on the snapshot's grid, and bad options named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, load_trained_model, start, train_teacher_cached
from kdviz.engine.run_folder import load_checkpoint
from kdviz.methods import method_of
from kdviz.methods.qat import LSQ, QAT, qat_hook, read_qat_snapshot, step_size_series
from kdviz.present import as_run_view
from kdviz.quant.qat_model import attach_quantizers, post_training_quantize

SMALL = {"channels": [6, 12], "hidden": 32}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("qat-runs")
    job = train_teacher_cached("digits", "lenet5", model_options=SMALL, epochs=2, lr=0.05, runs_root=str(root),
                               name="lenet5-float")
    assert job.wait(120).state == "finished", job.status().message
    return job


def _fine_tune(baseline, hook: dict, name: str, steps: int = 30):
    config = TrainConfig(dataset="digits", model="lenet5", model_options=SMALL, init_from=str(baseline.path),
                         lr=0.01, epochs=1, max_steps=steps, eval_every=10, snapshot_every=10, eval_train_samples=200,
                         runs_root=str(Path(baseline.path).parent), name=name, hooks=[hook])
    job = start(config)
    assert job.wait(120).state == "finished", job.status().message
    return job


@pytest.fixture(scope="module")
def lsq_run(baseline):
    return _fine_tune(baseline, qat_hook("lsq", 3, first_last_bits=None, calibration=64), "lsq-3")


def test_lsq_steps_move_and_weights_lie_on_the_grid(lsq_run):
    run = as_run_view(lsq_run.path)
    run.refresh()
    config = run.config
    assert method_of(config) is LSQ and LSQ.run_label(config) == "LSQ 3 bits"
    series = step_size_series(run.evals, LSQ, config)
    assert set(series) == {"conv1", "conv2", "fc1", "fc2"}
    steps, sizes = series["fc1"]
    assert len(steps) >= 3 and sizes[-1] != sizes[0]  # the learned step changed while training
    snaps = run.snapshots
    first, last = (run.read(LSQ, s) for s in (snaps[0], snaps[-1]))
    assert first.bits == {n: 3 for n in first.layers}
    assert last.weight_step["fc1"] == pytest.approx(sizes[-1], rel=1e-5)
    # the grid is k * s for k = -4..3 (3 bits, signed) and the checkpointed weights quantize onto it
    grid = last.grids["conv2"]
    assert len(grid) == 8 and grid[0] == pytest.approx(-4 * last.weight_step["conv2"], rel=1e-5)
    state = load_checkpoint(Path(lsq_run.path))
    step = float(state["hooks"]["lsq"]["conv2.weight.step"])
    latent = state["model"]["conv2.parametrizations.weight.original"]
    quantized = torch.clamp(torch.round(latent / step), -4, 3) * step
    assert np.isin(np.round(quantized.numpy() / step).astype(int), np.arange(-4, 4)).all()
    counts, edges = last.histograms["fc1"]
    assert counts.sum() > 0 and len(edges) == len(counts) + 1


def test_qat_four_bits_keeps_accuracy_and_ptq_two_bits_loses_it(baseline, digits):
    job = _fine_tune(baseline, qat_hook("qat", 4, calibration=64), "qat-4", steps=20)
    run = as_run_view(job.path)
    run.refresh()
    assert method_of(run.config) is QAT and QAT.run_label(run.config) == "QAT 4 bits"
    snap = run.read(QAT)
    assert snap.bits == {"conv1": 8, "conv2": 4, "fc1": 4, "fc2": 8}  # first and last layers keep 8 bits
    float_acc = baseline.status().test_acc
    assert run.evals[-1]["test_acc"] > float_acc - 0.05
    model = load_trained_model(baseline.path).eval()
    x, y = torch.as_tensor(digits.test_images), torch.as_tensor(digits.test_labels)
    ptq2, _ = post_training_quantize(model, x[:64], 2, first_last_bits=None)
    with torch.no_grad():
        acc2 = float((ptq2(x).argmax(1) == y).float().mean())
    assert acc2 < float_acc - 0.1  # 2 bits everywhere, untrained: far below float


def test_quantizer_state_round_trips(digits):
    from kdviz.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", input_shape=(1, 8, 8), num_classes=10, **SMALL)
    x = torch.as_tensor(digits.test_images[:32])
    q = attach_quantizers(model, "lsq", 2, x, first_last_bits=None)
    with torch.no_grad():
        q.weight["fc1"].step.mul_(1.7)
    state = q.state_dict()
    other = build_model("lenet5", input_shape=(1, 8, 8), num_classes=10, **SMALL)
    q2 = attach_quantizers(other, "lsq", 2, x, first_last_bits=None)
    q2.load_state_dict(state)
    assert float(q2.weight["fc1"].step.detach()) == pytest.approx(float(q.weight["fc1"].step.detach()))
    with pytest.raises(ValueError, match="no weight quantizer state"):
        q2.load_state_dict({})
    q.remove()
    assert not hasattr(model.fc1, "parametrizations")


def test_bad_options_are_named_before_any_run(tmp_path):
    config = {"dataset": "digits", "model": "lenet5", "runs_root": str(tmp_path), "max_steps": 2}
    with pytest.raises(ValueError, match="bits must be a whole number from 2 to 8"):
        start({**config, "hooks": [{"name": "qat", "bits": 16}]})
    with pytest.raises(ValueError, match="first_last_bits"):
        start({**config, "hooks": [{"name": "lsq", "bits": 2, "first_last_bits": 1}]})
    with pytest.raises(ValueError, match="momentum"):
        start({**config, "hooks": [{"name": "qat", "momentum": 0.0}]})
    with pytest.raises(ValueError, match="has no option"):
        start({**config, "hooks": [{"name": "lsq", "symmetric": True}]})
    with pytest.raises(ValueError, match="kind must be"):
        qat_hook("ptq", 4)
    assert not any(tmp_path.iterdir())


def test_reader_names_what_is_missing():
    with pytest.raises(ValueError, match="no quantization-aware training data"):
        read_qat_snapshot({"other/layers": np.array(["fc1"])}, "qat")


def test_a_resumed_hook_takes_its_steps_from_the_checkpoint_not_the_data(digits):
    """``load_state_dict`` runs before ``setup`` when a run resumes: setup must keep the saved steps."""
    from kdviz.engine.hooks import TrainContext, build_hook
    from kdviz.models import build_model

    def context():
        torch.manual_seed(0)
        model = build_model("lenet5", input_shape=(1, 8, 8), num_classes=10, **SMALL)
        return TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu"))

    first = build_hook(qat_hook("lsq", 2, calibration=32))
    first.setup(context())
    with torch.no_grad():
        first.quantized.weight["conv2"].step.mul_(3.0)
        first.quantized.activation["fc1"].step.mul_(0.5)
    saved = first.state_dict()
    resumed = build_hook(qat_hook("lsq", 2, calibration=32))
    resumed.load_state_dict(saved)
    resumed.setup(context())
    for role in ("weight", "activation"):
        for layer in ("conv2", "fc1"):
            got = getattr(resumed.quantized, role)[layer].step.detach()
            assert float(got) == pytest.approx(float(getattr(first.quantized, role)[layer].step.detach()))
    assert resumed.metrics(None)["w_step/conv2"] == pytest.approx(first.metrics(None)["w_step/conv2"])
    assert len(resumed.extra_parameters()) == 8  # a weight step and an input step per layer


def test_lsq_per_channel_learns_one_step_per_output_channel(digits):
    from kdviz.engine.hooks import TrainContext, build_hook
    from kdviz.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", input_shape=(1, 8, 8), num_classes=10, **SMALL)
    hook = build_hook(qat_hook("lsq", 3, per_channel=True, first_last_bits=None, calibration=32))
    hook.setup(TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu")))
    steps = hook.quantized.weight_step("conv2")
    w = hook.quantized.latent_weight("conv2")
    assert steps.shape == (12,)
    torch.testing.assert_close(steps, 2 * w.abs().mean(dim=(1, 2, 3)) / 3 ** 0.5)
    assert hook.metrics(None)["w_step/conv2"] == pytest.approx(float(steps.mean()))
    snap = hook.snapshot(None)
    assert snap["grid/conv2"][0] == pytest.approx(-4 * float(steps[0]))  # the first channel's grid


def test_lsq_init_minmax_starts_the_engine_run_at_ptq(baseline, digits):
    """``init="minmax"`` through ``TrainConfig``: the run's first evaluation (step 0, before any update)
    has PTQ's weight scales and PTQ's test accuracy; the default (the paper's init) starts elsewhere."""
    job = _fine_tune(baseline, qat_hook("lsq", 3, per_channel=True, first_last_bits=None, calibration=64,
                                        init="minmax"), "lsq-3-minmax", steps=2)
    paper = _fine_tune(baseline, qat_hook("lsq", 3, per_channel=True, first_last_bits=None, calibration=64),
                       "lsq-3-paper", steps=2)
    model = load_trained_model(baseline.path).eval()
    calib = torch.as_tensor(digits.train_images[:64])
    ptq, ptq_q = post_training_quantize(model, calib, 3, first_last_bits=None, per_channel=True)
    x, y = torch.as_tensor(digits.test_images), torch.as_tensor(digits.test_labels)
    with torch.no_grad():
        ptq_acc = float((ptq(x).argmax(1) == y).float().mean())
    starts = {}
    for name, run_job in (("minmax", job), ("paper", paper)):
        run = as_run_view(run_job.path)
        run.refresh()
        first = run.evals[0]
        assert first["step"] == 0
        starts[name] = first
        series = step_size_series(run.evals, LSQ, run.config)
        starts[name + "_steps"] = {n: series[n][1][0] for n in series}
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert starts["minmax_steps"][layer] == pytest.approx(float(ptq_q.weight_step(layer).mean()), rel=1e-5)
        assert starts["paper_steps"][layer] != pytest.approx(starts["minmax_steps"][layer], rel=1e-2)
    assert starts["minmax"]["test_acc"] == pytest.approx(ptq_acc, abs=2 / len(y))  # ties aside, PTQ itself


def test_lsq_init_mse_reaches_the_quantizers_and_bad_init_is_named(digits):
    from kdviz.engine.hooks import TrainContext, build_hook
    from kdviz.models import build_model
    from kdviz.quant.lsq import lsq_range, mse_steps

    torch.manual_seed(0)
    model = build_model("lenet5", input_shape=(1, 8, 8), num_classes=10, **SMALL)
    hook = build_hook(qat_hook("lsq", 2, first_last_bits=None, calibration=32, init="mse"))
    hook.setup(TrainContext(model=model, teacher=None, config=None, dataset=digits, device=torch.device("cpu")))
    w = hook.quantized.latent_weight("fc1")
    q_n, q_p = lsq_range(2, True)
    assert float(hook.quantized.weight_step("fc1")) == pytest.approx(float(mse_steps(w.reshape(1, -1), q_n, q_p)[0]))
    assert float(hook.quantized.weight_step("fc1")) != pytest.approx(2 * float(w.abs().mean()) / q_p ** 0.5, rel=1e-2)
    with pytest.raises(ValueError, match="init .*must be one of paper, minmax, mse, got 'best'"):
        qat_hook("lsq", 2, init="best")
    with pytest.raises(ValueError, match="has no option"):
        qat_hook("qat", 4, init="mse")  # QAT's min/max ranges have no step to start
