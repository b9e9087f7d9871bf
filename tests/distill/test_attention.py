"""Activation-based attention transfer (Zagoruyko & Komodakis, ICLR 2017, section 3.1, eq. 2).

Expected values come from independent numpy computations: eq. 2 with an explicit loop over
channels and samples, and the peer implementations' formula (the authors' code, RepDistiller,
torchdistill's "code" mode: normalize(mean_c A_c^2), then the mean of the squared difference),
whose exact relation to eq. 2 is asserted on random tensors.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.distill.attention import (
    at_distances, at_loss, at_pair_loss, at_pair_losses, attention_map, attention_vector, resolve_at_pairs,
    shared_spatial_features,
)
from kdviz.models import build_model


def rand(*shape, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape)).to(torch.float64)


def eq2_numpy(students, teachers, beta: float) -> float:
    """beta/2 * sum_j mean_b || Q_S/||Q_S||_2 - Q_T/||Q_T||_2 ||_2 with Q = vec(sum_c |A_c|^2), by loops."""
    total = 0.0
    for s, t in zip(students, teachers):
        s, t = s.numpy(), t.numpy()
        per_sample = []
        for b in range(s.shape[0]):
            qs = sum(np.abs(s[b, c]) ** 2 for c in range(s.shape[1])).ravel()
            qt = sum(np.abs(t[b, c]) ** 2 for c in range(t.shape[1])).ravel()
            d = qs / np.sqrt((qs ** 2).sum()) - qt / np.sqrt((qt ** 2).sum())
            per_sample.append(np.sqrt((d ** 2).sum()))
        total += np.mean(per_sample)
    return beta / 2.0 * total


def peer_numpy(s: torch.Tensor, t: torch.Tensor) -> float:
    """The peers' per-pair loss: at(f) = normalize(mean_c f^2 flattened), loss = mean((at_s - at_t)^2)."""
    def at(f):
        q = (f.numpy() ** 2).mean(axis=1).reshape(f.shape[0], -1)
        return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return float(((at(s) - at(t)) ** 2).mean())


def test_eq2_matches_numpy_with_different_channel_counts_and_two_pairs():
    students = [rand(5, 3, 4, 6, seed=1), rand(5, 6, 2, 3, seed=2)]
    teachers = [rand(5, 7, 4, 6, seed=3), rand(5, 12, 2, 3, seed=4)]
    got = at_loss(students, teachers, beta=3.0)
    assert got.ndim == 0
    assert float(got) == pytest.approx(eq2_numpy(students, teachers, 3.0), rel=1e-10)
    per_pair = at_pair_losses(students, teachers)
    assert per_pair.shape == (2,)
    assert float(per_pair.sum()) * 1.5 == pytest.approx(float(got), rel=1e-12)
    assert float(at_loss(students, teachers, beta=0.0)) == 0.0


def test_peer_formula_is_mean_squared_distance_over_hw():
    """Exact relation: peer = mean_b(d_b^2) / (H W), d_b the per-sample distance of eq. 2. The mean over
    channels cancels in the normalisation; the square does not, so for B > 1 it is no constant factor."""
    s, t = rand(6, 5, 3, 4, seed=10), rand(6, 9, 3, 4, seed=11)
    d = at_distances(s, t).numpy()
    hw = 3 * 4
    assert peer_numpy(s, t) == pytest.approx(float((d ** 2).mean()) / hw, rel=1e-10)
    one_s, one_t = s[:1], t[:1]  # one sample: peer = (eq. 2 pair term)^2 / (H W)
    assert peer_numpy(one_s, one_t) == pytest.approx(float(at_pair_loss(one_s, one_t)) ** 2 / hw, rel=1e-10)
    # Jensen: with unequal per-sample distances the squared mean is strictly below the mean square
    assert float(at_pair_loss(s, t)) ** 2 / hw < peer_numpy(s, t) * (1 - 1e-3)


def test_maps_are_p2_sums_over_channels_and_vectors_are_unit_length():
    a = rand(2, 3, 4, 5, seed=5)
    f = attention_map(a)
    assert f.shape == (2, 4, 5)
    np.testing.assert_allclose(f.numpy(), (a.numpy() ** 2).sum(axis=1), rtol=1e-12)
    assert torch.equal(attention_map(-a), f)  # |A|^p: the sign of an activation does not matter
    q = attention_vector(a)
    assert q.shape == (2, 20)
    np.testing.assert_allclose(q.norm(dim=1).numpy(), 1.0, rtol=1e-12)
    # sum or mean over channels, one channel or the same channels twice: the normalised map is the same
    np.testing.assert_allclose(attention_vector(torch.cat([a, a], dim=1)).numpy(), q.numpy(), rtol=1e-12)
    hot = torch.zeros(1, 2, 3, 3, dtype=torch.float64)
    hot[0, 1, 2, 0] = -4.0
    assert attention_vector(hot).view(3, 3)[2, 0] == 1.0 and attention_vector(hot).sum() == 1.0
    assert torch.equal(attention_vector(torch.zeros(1, 2, 3, 3)), torch.zeros(1, 9))  # no division by zero


def test_gradients_reach_the_student_only():
    s = rand(4, 3, 4, 4, seed=6).requires_grad_()
    t = rand(4, 8, 4, 4, seed=7).requires_grad_()
    at_loss([s], [t], beta=2.0).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    same = rand(2, 3, 4, 4, seed=8).requires_grad_()
    zero = at_pair_loss(same, same.detach().clone())
    zero.backward()
    assert float(zero.detach()) == 0.0 and torch.isfinite(same.grad).all()


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="4-D conv feature map.*got shape \\(4, 10\\)"):
        attention_map(torch.zeros(4, 10))
    with pytest.raises(TypeError, match="torch.Tensor"):
        attention_map(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="spatial size"):
        at_pair_loss(torch.ones(2, 3, 4, 4), torch.ones(2, 3, 2, 2))
    with pytest.raises(ValueError, match="batch"):
        at_pair_loss(torch.ones(2, 3, 4, 4), torch.ones(3, 3, 4, 4))
    with pytest.raises(ValueError, match="1 student maps but 2 teacher maps"):
        at_pair_losses([torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 2, 2)] * 2)
    with pytest.raises(TypeError, match="lists"):
        at_pair_losses(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    with pytest.raises(ValueError, match="beta must be finite and non-negative, got -1"):
        at_loss([torch.ones(1, 1, 2, 2)], [torch.ones(1, 1, 2, 2)], beta=-1)


def resnet_features(channels, blocks=(1, 1, 1)):
    model = build_model("resnet", input_shape=(1, 8, 8), blocks_per_stage=blocks, channels=channels).eval()
    with torch.no_grad():
        return model.forward_with_features(torch.rand(2, 1, 8, 8))[1]


def test_auto_pairs_skip_aliases_vectors_and_other_sizes():
    student, teacher = resnet_features((4, 8, 16)), resnet_features((8, 16, 32), blocks=(2, 2, 2))
    # stage2_in is the very tensor of stage1_out (and stage3_in of stage2_out); "pool" is (B, C)
    assert shared_spatial_features(student, teacher) == [
        ("stage1_in", "stage1_in"), ("stage1_out", "stage1_out"), ("stage2_out", "stage2_out"), ("stage3_out", "stage3_out")]
    assert resolve_at_pairs("auto", student, teacher) == shared_spatial_features(student, teacher)
    assert resolve_at_pairs([["stage3_out", "stage3_out"]], student, teacher) == [("stage3_out", "stage3_out")]
    with pytest.raises(ValueError, match="the teacher has no feature 'fc1'"):
        resolve_at_pairs([["stage3_out", "fc1"]], student, teacher)
    with pytest.raises(ValueError, match="must be 'auto' or a list"):
        resolve_at_pairs("all", student, teacher)
    with pytest.raises(ValueError, match="\\[student_layer, teacher_layer\\]"):
        resolve_at_pairs(["stage1_out"], student, teacher)
    with pytest.raises(ValueError, match="no conv feature map of the same name"):
        resolve_at_pairs("auto", {"fc1": torch.zeros(2, 3)}, {"fc1": torch.zeros(2, 3)})
