"""Per-layer quantization noise (kdviz.quant.layer_noise) against an independent numpy forward pass.

A small MLP is trained on digits; each number the evaluator reports (accuracy with some layers
quantized, a layer's output SQNR) is recomputed here in numpy: float32 quantizers written out from
Jacob et al.'s eq. 1, the calibration inputs found by a plain numpy forward pass.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from _support.models import trained_digits_mlp
from kdviz.quant import SliderEvaluator
from kdviz.quant.layer_noise import (
    LayerNoise, PTQEvaluator, compare_ranges, layer_noise, sensitivity_sweep, sqnr_db, worst_layer,
)
from kdviz.quant.ranges import RangeSpec

LAYERS = ("fc1", "fc2", "fc3")


@pytest.fixture(scope="module")
def model(digits):
    return trained_digits_mlp(digits, hidden=[32, 16], seed=0)


@pytest.fixture(scope="module")
def evaluator(model, digits):
    return PTQEvaluator(model, digits.test_images, digits.test_labels, digits.train_images[:100], calibration_batch=40)


def np_weights(model):
    return {n: (getattr(model, n).weight.detach().numpy().astype(np.float32),
                getattr(model, n).bias.detach().numpy().astype(np.float32)) for n in LAYERS}


def qdq_symmetric(w: np.ndarray, bits: int) -> np.ndarray:
    qmax = 2 ** (bits - 1) - 1
    scale = np.float32(np.abs(w).max() / np.float32(qmax))
    return (np.clip(np.round(w / scale), -qmax, qmax) * scale).astype(np.float32)


def qdq_asymmetric(x: np.ndarray, lo: float, hi: float, bits: int) -> np.ndarray:
    qmax = 2**bits - 1
    lo, hi = np.float32(min(lo, 0.0)), np.float32(max(hi, 0.0))
    scale = np.float32((hi - lo) / np.float32(qmax))
    zp = np.clip(np.round(-lo / scale), 0, qmax)
    return ((np.clip(np.round(x / scale) + zp, 0, qmax) - zp) * scale).astype(np.float32)


def forward(weights, images, quantized=None, act_bits=8, ranges=None, outputs=None):
    """numpy forward of the MLP: ``quantized`` {layer: bits} get a min-max symmetric weight and, at
    ``act_bits``, an asymmetric input quantized over ``ranges[layer]``; ``outputs`` collects each layer's output."""
    x = images.reshape(len(images), -1).astype(np.float32)
    quantized = quantized or {}
    for i, name in enumerate(LAYERS):
        w, b = weights[name]
        if name in quantized:
            w = qdq_symmetric(w, quantized[name])
            if act_bits is not None:
                x = qdq_asymmetric(x, *ranges[name], act_bits)
        y = x @ w.T + b
        if outputs is not None:
            outputs[name] = y
        x = np.maximum(y, 0) if i < len(LAYERS) - 1 else y
    return x


def input_ranges(weights, calibration):
    inputs, x = {}, calibration.reshape(len(calibration), -1).astype(np.float32)
    for i, name in enumerate(LAYERS):
        inputs[name] = (float(x.min()), float(x.max()))
        x = x @ weights[name][0].T + weights[name][1]
        x = np.maximum(x, 0) if i < len(LAYERS) - 1 else x
    return inputs


def test_sqnr_is_ten_log_signal_over_noise():
    y, yq = np.array([3.0, -4.0]), np.array([3.0, -3.0])
    assert sqnr_db(torch.tensor(y), torch.tensor(yq)) == pytest.approx(10 * np.log10(25 / 1))
    assert sqnr_db(torch.tensor(y), torch.tensor(y)) == float("inf")


def test_one_layer_quantized_matches_numpy(evaluator, model, digits):
    """fc2 alone at 3-bit weights and 5-bit inputs: accuracy and output SQNR as the numpy forward gives them."""
    weights = np_weights(model)
    ranges = input_ranges(weights, digits.train_images[:100].numpy())
    spec = RangeSpec("minmax", act_bits=5)
    logits = forward(weights, digits.test_images.numpy(), {"fc2": 3}, 5, ranges)
    expected_acc = float((logits.argmax(1) == digits.test_labels.numpy()).mean())
    noise = evaluator.layer_noise("fc2", 3, spec)
    assert noise.accuracy == pytest.approx(expected_acc, abs=1e-12)
    assert noise.drop == pytest.approx(evaluator.float_accuracy - expected_acc, abs=1e-12)
    clean, noisy = {}, {}
    forward(weights, digits.train_images[:100].numpy(), outputs=clean)
    forward(weights, digits.train_images[:100].numpy(), {"fc2": 3}, 5, ranges, outputs=noisy)
    expected_sqnr = 10 * np.log10((clean["fc2"].astype(np.float64) ** 2).sum()
                                  / ((clean["fc2"].astype(np.float64) - noisy["fc2"]) ** 2).sum())
    assert noise.sqnr_db == pytest.approx(expected_sqnr, abs=1e-3)


def test_mixed_bits_without_activation_quantization_match_numpy(evaluator, model, digits):
    weights = np_weights(model)
    bits = {"fc1": 2, "fc3": 4}
    logits = forward(weights, digits.test_images.numpy(), bits, act_bits=None)
    expected = float((logits.argmax(1) == digits.test_labels.numpy()).mean())
    assert evaluator.accuracy(bits, RangeSpec(act_bits=None)) == pytest.approx(expected, abs=1e-12)


def test_minmax_weights_only_agree_with_the_slider_evaluator(evaluator, model, digits):
    """Our min-max per-channel asymmetric weights, float activations, equal the Quantization page's uniform quantizer."""
    slider = SliderEvaluator(model, digits.test_images, digits.test_labels)
    spec = RangeSpec("minmax", symmetric=False, per_channel=True, act_bits=None)
    for bits in (2, 4):
        assert evaluator.uniform_accuracy(bits, spec) == slider.uniform(bits, symmetric=False, per_channel=True)


def test_the_callers_model_and_the_float_weights_are_untouched(evaluator, model):
    before = copy.deepcopy(model.state_dict())
    evaluator.accuracy({"fc1": 2, "fc2": 2, "fc3": 2}, RangeSpec("mse", act_bits=4))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name])
    for name in LAYERS:
        assert torch.equal(evaluator.layers[name].weight, evaluator.original[name])
    assert all(not m._forward_pre_hooks for m in evaluator.layers.values())


def test_sweep_and_worst_layer(evaluator):
    spec = RangeSpec("percentile", percentile=99.9, act_bits=6)
    sweep = sensitivity_sweep(evaluator, (2, 6), spec)
    assert list(sweep) == list(LAYERS) and all(set(by) == {2, 6} for by in sweep.values())
    for name in LAYERS:  # more bits: a quieter output
        assert sweep[name][6].sqnr_db > sweep[name][2].sqnr_db
    at2 = layer_noise(evaluator, 2, spec)
    assert at2 == [sweep[n][2] for n in LAYERS]
    worst = worst_layer(at2)
    assert worst.drop == max(n.drop for n in at2)
    tied = [LayerNoise("a", 2, 10.0, 0.5, 0.1), LayerNoise("b", 2, 4.0, 0.5, 0.1), LayerNoise("c", 2, 1.0, 0.9, 0.0)]
    assert worst_layer(tied).layer == "b"  # equal drops: the noisier output


def test_compare_ranges_rows(evaluator):
    rows = compare_ranges(evaluator, (4, 3), RangeSpec(act_bits=None), methods=("minmax", "mse"))
    assert [(r["range"], r["bits"]) for r in rows] == [("minmax", 4), ("minmax", 3), ("mse", 4), ("mse", 3)]
    assert rows[0]["accuracy"] == evaluator.uniform_accuracy(4, RangeSpec("minmax", act_bits=None))
    both = compare_ranges(evaluator, (3,), RangeSpec(act_bits=8), methods=("mse",), activations_at_bits=True)
    assert both[0]["accuracy"] == evaluator.uniform_accuracy(3, RangeSpec("mse", act_bits=3))


def test_bad_requests_are_named(evaluator, digits):
    with pytest.raises(ValueError, match="unknown layers \\['fc9'\\]"):
        evaluator.accuracy({"fc9": 4})
    with pytest.raises(ValueError, match="bits must be in"):
        evaluator.accuracy({"fc1": 0})
    with pytest.raises(ValueError, match="calibration image"):
        PTQEvaluator(torch.nn.Linear(64, 10), digits.test_images.reshape(-1, 64), digits.test_labels,
                     digits.train_images[:0])
