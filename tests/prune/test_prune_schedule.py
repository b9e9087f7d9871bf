"""Zhu & Gupta's AGP schedule against a direct evaluation, and the iterative prune-retrain driver."""
import math

import pytest
import torch

from kdviz.data import load_dataset
from kdviz.models import build_model
from kdviz.prune import (
    AGPSchedule,
    OneShotSchedule,
    agp_sparsity,
    agp_targets,
    build_schedule,
    fine_tune,
    iterative_prune,
    prunable_weights,
)
from kdviz.prune.evaluate import accuracy


def direct_agp(t, s_i, s_f, t0, n, dt):
    """Zhu & Gupta 2017, eq. 1, written out for t in {t0, t0 + dt, ..., t0 + n dt}."""
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


@pytest.mark.parametrize("s_i,s_f,t0,n,dt", [(0.0, 0.9, 0, 10, 5), (0.1, 0.75, 20, 4, 25), (0.0, 0.5, 3, 7, 1)])
def test_agp_matches_the_formula_at_every_pruning_step(s_i, s_f, t0, n, dt):
    end = t0 + n * dt
    for k in range(n + 1):
        t = t0 + k * dt
        assert agp_sparsity(t, s_i, s_f, t0, end, dt) == pytest.approx(direct_agp(t, s_i, s_f, t0, n, dt), abs=1e-12)
        for between in range(t + 1, min(t + dt, end)):  # held until the next pruning step
            assert agp_sparsity(between, s_i, s_f, t0, end, dt) == pytest.approx(direct_agp(t, s_i, s_f, t0, n, dt))
    assert agp_sparsity(t0 - 1, s_i, s_f, t0, end, dt) == 0.0
    assert agp_sparsity(end + 1000, s_i, s_f, t0, end, dt) == s_f
    values = [agp_sparsity(t, s_i, s_f, t0, end, dt) for t in range(t0, end + 1)]
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_agp_reaches_final_even_when_ramp_is_not_a_multiple_of_frequency():
    sched = AGPSchedule(final=0.8, start_step=0, end_step=10, frequency=3)
    assert sched.sparsity_at(9) == pytest.approx(direct_agp(9, 0, 0.8, 0, 10 / 3, 3))
    assert sched.sparsity_at(10) == 0.8
    assert sched.pruning_steps() == [0, 3, 6, 9, 10]


def test_one_shot_schedule():
    sched = build_schedule("one-shot", 0.9, start_step=5)
    assert isinstance(sched, OneShotSchedule)
    assert [sched.sparsity_at(t) for t in (0, 4, 5, 100)] == [0.0, 0.0, 0.9, 0.9]


def test_agp_targets_follow_the_cubic_curve_and_end_at_final():
    targets = agp_targets(0.9, 4)
    assert targets == pytest.approx([0.9 * (1 - (1 - r / 4) ** 3) for r in range(1, 5)])
    per_layer = agp_targets({"fc1.weight": 0.92, "fc3.weight": 0.74}, 3)
    assert per_layer[-1] == {"fc1.weight": 0.92, "fc3.weight": 0.74}
    assert per_layer[0]["fc1.weight"] == pytest.approx(0.92 * (1 - (2 / 3) ** 3))


def test_bad_schedules_are_clear_errors():
    with pytest.raises(ValueError, match="end_step"):
        agp_sparsity(0, 0.0, 0.9, 10, 10, 1)
    with pytest.raises(ValueError, match="frequency"):
        AGPSchedule(final=0.9, start_step=0, end_step=10, frequency=0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        AGPSchedule(final=1.0)
    with pytest.raises(ValueError, match="exceeds final"):
        AGPSchedule(final=0.5, initial=0.6)
    with pytest.raises(ValueError, match="No pruning schedule 'cubic'"):
        build_schedule("cubic", 0.5)
    with pytest.raises(ValueError, match="at least one round"):
        agp_targets(0.5, 0)


def test_iterative_prune_and_fine_tune_on_digits(one_thread):
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=(64, 32))
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fine_tune(model, None, data.train_images, data.train_labels, opt, steps=150, generator=g)
    dense_acc = accuracy(model, data.test_images, data.test_labels)
    assert dense_acc > 0.85

    def retrain(m, masks):
        fine_tune(m, masks, data.train_images, data.train_labels, opt, steps=40, generator=g)
        for name, p in prunable_weights(m).items():  # held at zero through momentum updates
            assert torch.all(p.detach()[~masks[name]] == 0)

    targets = agp_targets(0.8, 3)
    masks, history = iterative_prune(model, targets, retrain, lambda m: accuracy(m, data.test_images, data.test_labels))
    assert len(history) == 3
    for record, target in zip(history, targets):
        for name, s in record.sparsity.items():
            n = masks[name].numel()
            assert s == pytest.approx(math.floor(target * n + 0.5) / n)
    assert history[-1].accuracy_retrained > 0.8
    assert history[-1].accuracy_retrained >= history[-1].accuracy_pruned - 0.02
