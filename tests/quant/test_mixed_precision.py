"""Mixed precision (kdviz.quant.mixed_precision): the knapsack against brute force, sizes counted by
hand, and mixed against uniform at equal size measured by an independent torch forward pass."""
from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

from _support.models import trained_digits_mlp
from kdviz.quant.layer_noise import LayerNoise, PTQEvaluator, sensitivity_sweep
from kdviz.quant.mixed_precision import (
    NOISE_WEIGHT, choose_bits, layer_size_bits, mixed_precision, mixed_vs_uniform, option_cost, size_curve,
    sweep_tables, uniform_config,
)
from kdviz.quant.ranges import RangeSpec


def brute_force(costs, sizes, budget):
    layers = list(costs)
    best = None
    for combo in itertools.product(*(sorted(costs[n]) for n in layers)):
        size = sum(sizes[n][b] for n, b in zip(layers, combo))
        cost = sum(costs[n][b] for n, b in zip(layers, combo))
        if size <= budget and (best is None or cost < best[0] - 1e-15):
            best = (cost, dict(zip(layers, combo)))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_choose_bits_is_the_exact_knapsack_optimum(seed):
    rng = np.random.default_rng(seed)
    layers = [f"l{i}" for i in range(4)]
    options = (2, 3, 4, 6, 8)
    n = {name: int(rng.integers(50, 5000)) for name in layers}
    sizes = {name: {b: b * n[name] + 32 for b in options} for name in layers}
    costs = {name: {b: float(rng.random() * 2.0 ** (-b)) for b in options} for name in layers}
    smallest, largest = sum(sizes[m][2] for m in layers), sum(sizes[m][8] for m in layers)
    budget = smallest + rng.random() * (largest - smallest)
    chosen = choose_bits(costs, sizes, budget)
    expected_cost, _ = brute_force(costs, sizes, budget)
    assert sum(sizes[m][b] for m, b in chosen.items()) <= budget
    assert sum(costs[m][b] for m, b in chosen.items()) == pytest.approx(expected_cost, abs=1e-12)


def test_budget_below_the_smallest_configuration_is_named():
    sizes = {"a": {2: 200, 4: 400}, "b": {2: 100, 4: 200}}
    costs = {"a": {2: 1.0, 4: 0.0}, "b": {2: 0.5, 4: 0.0}}
    with pytest.raises(ValueError, match="below the smallest configuration \\(300 bits\\)"):
        choose_bits(costs, sizes, 299)
    assert choose_bits(costs, sizes, 300) == {"a": 2, "b": 2}
    assert choose_bits(costs, sizes, 500) == {"a": 4, "b": 2}  # the big layer's drop costs more
    assert choose_bits(costs, sizes, 499) == {"a": 2, "b": 4}  # it no longer fits: the small one gets the bits
    assert choose_bits({"a": {2: 1.0, 4: 0.0}, "b": {2: 1.0, 4: 0.0}}, sizes, 500) == {"a": 2, "b": 4}  # a tie: smaller


def test_option_cost_adds_the_noise_ratio():
    noise = LayerNoise("fc1", 3, 20.0, 0.9, 0.02)
    assert option_cost(noise) == pytest.approx(0.02 + NOISE_WEIGHT * 0.01)
    assert option_cost(LayerNoise("fc1", 8, float("inf"), 0.9, -0.01)) == 0.0  # a gain is not a negative cost


@pytest.fixture(scope="module")
def model(digits):
    return trained_digits_mlp(digits, hidden=[48, 24], seed=1)


@pytest.fixture(scope="module")
def evaluator(model, digits):
    return PTQEvaluator(model, digits.test_images, digits.test_labels, digits.train_images[:128])


def test_layer_sizes_count_bits_and_scales(evaluator):
    assert layer_size_bits(evaluator, "fc2", 3, RangeSpec()) == 3 * 48 * 24 + 32
    assert layer_size_bits(evaluator, "fc2", 5, RangeSpec(symmetric=False, per_channel=True)) == 5 * 48 * 24 + 64 * 24


def torch_accuracy(model, digits, bits, spec_per_channel=True):
    """Weights only, per-channel symmetric min-max, written out with torch ops (no kdviz quantizer)."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for name, b in bits.items():
            w = getattr(m, name).weight
            qmax = 2 ** (b - 1) - 1
            scale = w.abs().amax(dim=1, keepdim=True) / qmax
            w.copy_(torch.clamp(torch.round(w / scale), -qmax, qmax) * scale)
        return float((m(digits.test_images).argmax(1) == digits.test_labels).double().mean())


def test_mixed_against_uniform_at_equal_size(evaluator, model, digits):
    spec = RangeSpec("minmax", per_channel=True, act_bits=None)
    sweep = sensitivity_sweep(evaluator, (2, 3, 4, 6), spec)
    rows = mixed_vs_uniform(evaluator, sweep, (2, 3), spec)
    costs, sizes = sweep_tables(evaluator, sweep, spec)
    for row in rows:
        assert row.mixed.size_bits <= row.uniform.size_bits
        assert row.uniform.accuracy == pytest.approx(torch_accuracy(model, digits, row.uniform.bits), abs=1e-12)
        assert row.mixed.accuracy == pytest.approx(torch_accuracy(model, digits, row.mixed.bits), abs=1e-12)
        predicted_uniform = sum(costs[n][b] for n, b in row.uniform.bits.items())
        assert sum(costs[n][b] for n, b in row.mixed.bits.items()) <= predicted_uniform + 1e-12
    assert rows[0].mixed.bits == {"fc1": 2, "fc2": 2, "fc3": 2}  # nothing smaller exists at 2 bits
    assert rows[1].mixed.average_bits({n: evaluator.n_weights(n) for n in evaluator.names}) <= 3.0


def test_size_curve_grows_with_the_budget(evaluator):
    spec = RangeSpec("mse", act_bits=8)
    sweep = sensitivity_sweep(evaluator, (2, 4, 8), spec)
    low, high = uniform_config(evaluator, 2, spec).size_bits, uniform_config(evaluator, 8, spec).size_bits
    curve = size_curve(evaluator, sweep, [low - 1, low, (low + high) / 2, high], spec)
    assert len(curve) == 3  # the budget below all-2-bit is skipped
    assert [c.size_bits for c in curve] == sorted(c.size_bits for c in curve)
    costs, _ = sweep_tables(evaluator, sweep, spec)
    assert sum(costs[n][b] for n, b in curve[-1].bits.items()) <= sum(costs[n][8] for n in evaluator.names) + 1e-12
    picked = mixed_precision(evaluator, sweep, (low + high) / 2, spec)
    assert picked == curve[1] and picked.accuracy == evaluator.accuracy(picked.bits, spec)
