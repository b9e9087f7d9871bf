"""Issue 13, item 9: silent wrong results from the maths layer under bad input.

Each case feeds the input a careless caller (or a slider at its end) would give and asserts the
outcome: a correct number where one exists (re-derived here, not read back from the code), or a
``ValueError``/``TypeError`` whose message names the offending value, never NaN or a quietly wrong
result.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.distill.attention import at_loss, attention_map
from kdviz.distill.fsp import fsp_loss, fsp_matrix
from kdviz.distill.hints import hint_loss
from kdviz.distill.kd_loss import kd_loss, soft_target_loss
from kdviz.distill.soft_targets import MIN_TEMPERATURE, check_temperature, entropy, log_soften, soften, temperature_table
from kdviz.prune.magnitude import global_magnitude_masks, layers_emptied, magnitude_masks, threshold_masks
from kdviz.prune.schedule import AGPSchedule, agp_sparsity
from kdviz.quant.histograms import index_map
from kdviz.quant.kmeans import kmeans_quantize
from kdviz.quant.lowrank import energy_kept
from kdviz.quant.product import product_quantize
from kdviz.quant.size import model_size
from kdviz.quant.uniform import fake_quantize, quant_params, quantize_dequantize

HINTON = [2.0, 7.0, 10.0]


# -- soft targets: tiny T ------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1e-300, 1e-308, MIN_TEMPERATURE])
def test_soften_at_tiny_T_is_the_one_hot_limit_not_nan(T):
    probs = soften(HINTON, T)
    assert probs == [0.0, 0.0, 1.0]


def test_soften_at_tiny_T_splits_ties_evenly():
    assert soften([2.0, 10.0, 10.0, -5.0], 1e-300) == [0.0, 0.5, 0.5, 0.0]


@pytest.mark.parametrize("T", [1e-320, 5e-324, MIN_TEMPERATURE / 2])
def test_temperature_whose_reciprocal_overflows_is_refused_naming_T(T):
    with pytest.raises(ValueError, match=r"T = .*too small: 1/T overflows"):
        soften(HINTON, T)
    with pytest.raises(ValueError, match="1/T overflows"):
        check_temperature(T)


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf"), -float("inf"), True, "hot", None])
def test_every_temperature_helper_refuses_bad_T(bad):
    logits = torch.tensor([HINTON], dtype=torch.float64)
    for call in (lambda: soften(HINTON, bad), lambda: log_soften(logits, bad),
                 lambda: soft_target_loss(logits, logits, bad), lambda: temperature_table(HINTON, [1.0, bad]),
                 lambda: kd_loss(logits, logits, torch.tensor([2]), bad, 0.5)):
        with pytest.raises(ValueError, match="temperature T"):
            call()


def test_float32_tensor_with_T_below_float32_range_is_exact():
    # 1e-46 rounds to 0 in float32: 0 / T would be 0 / 0 = NaN without the float64 fallback
    z = torch.tensor([[2.0, 7.0, 10.0], [1.0, -1.0, 0.5]], dtype=torch.float32)
    probs = soften(z, 1e-46)
    assert probs.dtype == torch.float32
    assert probs.tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    assert log_soften(z, 1e-46)[0].tolist() == [-math.inf, -math.inf, 0.0]


def test_log_soften_at_tiny_T_is_finite_where_it_should_be():
    z = torch.tensor([[2.0, 7.0, 10.0]], dtype=torch.float64)
    out = log_soften(z, 1e-300)
    # (z - max) / T: -8e300 and -3e300 are finite floats; the max entry is log 1 = 0
    assert out[0].tolist() == pytest.approx([-8e300, -3e300, 0.0], rel=1e-12)


@pytest.mark.parametrize("logits", [[1.0, float("nan"), 2.0], [float("inf"), 1.0], [-float("inf"), 0.0]])
def test_soften_refuses_non_finite_logits(logits):
    with pytest.raises(ValueError, match="finite"):
        soften(logits, 2.0)


@pytest.mark.parametrize("probs", [[0.5, float("nan")], [1.2, -0.2], []])
def test_entropy_refuses_what_is_not_a_distribution(probs):
    with pytest.raises(ValueError, match="probabilities"):
        entropy(probs)


# -- the KD loss ---------------------------------------------------------------------------------

def _np_kl(p, q):
    return float(np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - np.log(q)), 0.0)))


def test_kd_loss_refuses_1d_logits_that_used_to_shrink_the_soft_part():
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(10, generator=g), torch.randn(10, generator=g)
    with pytest.raises(ValueError, match=r"student logits must be 2-D \(batch, classes\), got shape \(10,\)"):
        kd_loss(s, t, torch.tensor(3), T=4.0, alpha=0.5)
    # the same sample as a batch of one gives the full soft part, K = 10 times what 1-D gave
    parts = kd_loss(s[None], t[None], torch.tensor([3]), T=4.0, alpha=1.0)
    p, q = torch.softmax(t / 4, -1).double().numpy(), torch.softmax(s / 4, -1).double().numpy()
    assert parts.soft.item() == pytest.approx(16.0 * _np_kl(p, q), rel=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_kd_loss_refuses_an_empty_batch_instead_of_nan(alpha):
    empty = torch.zeros(0, 10)
    with pytest.raises(ValueError, match="batch is empty"):
        kd_loss(empty, empty, torch.zeros(0, dtype=torch.long), T=3.0, alpha=alpha)


@pytest.mark.parametrize("shape", [(4, 10, 1), (10,), ()])
def test_soft_target_loss_refuses_other_ranks(shape):
    x = torch.zeros(shape)
    with pytest.raises(ValueError, match="2-D"):
        soft_target_loss(x, x, 2.0)


def test_kd_loss_refuses_mismatched_shapes_and_labels():
    s = torch.randn(4, 10)
    with pytest.raises(ValueError, match=r"teacher logits \(4, 9\) must have the same shape"):
        kd_loss(s, torch.randn(4, 9), torch.zeros(4, dtype=torch.long), 2.0, 0.5)
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\)"):
        kd_loss(s, s, torch.zeros(3, dtype=torch.long), 2.0, 0.5)
    with pytest.raises(ValueError, match=r"class indices in 0..9, got values from 0 to 10"):
        kd_loss(s, s, torch.tensor([0, 1, 10, 2]), 2.0, 0.5)
    with pytest.raises(ValueError, match="integer class indices"):
        kd_loss(s, s, torch.zeros(4), 2.0, 0.5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kd_soft_part_at_tiny_T_is_finite_and_has_finite_gradient(dtype):
    s = torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.5, -1.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([[0.0, 4.0, 1.0], [2.0, 0.0, 0.0]], dtype=dtype)
    loss = soft_target_loss(s, t, 1e-30)
    # both argmaxes agree in row 0 (KL 0) and disagree in row 1: T^2 KL = T^2 * (log 1 - log q) with
    # log q = (0 - 0.5) / T, so T^2 * 0.5 / T / B = 0.5 * T / 2
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(0.5 * 1e-30 / 2, rel=1e-5)
    loss.backward()
    assert torch.isfinite(s.grad).all()


# -- feature losses: empty batches, wrong ranks ----------------------------------------------------

def test_fsp_refuses_empty_batch_and_bad_ranks():
    with pytest.raises(ValueError, match=r"fsp_matrix: a is empty \(shape \(0, 3, 4, 4\)\)"):
        fsp_matrix(torch.zeros(0, 3, 4, 4), torch.zeros(0, 2, 4, 4))
    with pytest.raises(ValueError, match="4-D conv feature map"):
        fsp_matrix(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="empty batch"):
        fsp_loss([torch.zeros(0, 3, 2)], [torch.zeros(0, 3, 2)])
    with pytest.raises(ValueError, match=r"\(B, C1, C2\) FSP matrix, got \(3, 2\)"):
        fsp_loss([torch.zeros(3, 2)], [torch.zeros(3, 2)])


def test_fsp_loss_of_one_sample_batch_is_the_frobenius_distance():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 1, 3, 3), 2.0)
    gs = fsp_matrix(a, b)  # every entry: sum of 9 products 1*2, / 9 = 2
    assert gs.tolist() == [[[2.0], [2.0]]]
    assert fsp_loss([gs], [torch.zeros_like(gs)]).item() == pytest.approx(8.0)


def test_hint_loss_refuses_empty_batch_and_1d():
    with pytest.raises(ValueError, match="B >= 1"):
        hint_loss(torch.zeros(0, 5), torch.zeros(0, 5))
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        hint_loss(torch.zeros(5), torch.ones(5))
    assert hint_loss(torch.zeros(2, 5), torch.ones(2, 5)).item() == pytest.approx(0.5 * 5)


def test_attention_refuses_empty_batch():
    with pytest.raises(ValueError, match=r"student is empty \(shape \(0, 2, 3, 3\)\)"):
        at_loss([torch.zeros(0, 2, 3, 3)], [torch.zeros(0, 4, 3, 3)], beta=1000.0)
    with pytest.raises(ValueError, match="4-D"):
        attention_map(torch.zeros(3, 4))


# -- schedules and ranges ------------------------------------------------------------------------

@pytest.mark.parametrize("initial, final, match", [
    (0.0, 1.5, "final sparsity must be in"), (0.0, 1.0, "final sparsity must be in"),
    (-0.1, 0.5, "initial sparsity must be in"), (0.6, 0.5, "initial sparsity 0.6 exceeds final"),
    (0.0, float("nan"), "final sparsity must be in"),
])
def test_agp_sparsity_refuses_out_of_range_targets(initial, final, match):
    with pytest.raises(ValueError, match=match):
        agp_sparsity(5, initial, final, 0, 10)


def test_agp_sparsity_still_follows_zhu_gupta_eq1():
    # s_t = s_f + (s_i - s_f)(1 - t/n)^3 at t = 4, n = 10, dt = 2, s_i = 0.1, s_f = 0.8
    assert agp_sparsity(5, 0.1, 0.8, 0, 10, 2) == pytest.approx(0.8 + (0.1 - 0.8) * (1 - 0.4) ** 3)
    with pytest.raises(TypeError, match="step must be an integer"):
        agp_sparsity(2.5, 0.0, 0.5, 0, 10)
    with pytest.raises(ValueError, match="final sparsity"):
        AGPSchedule(final=1.5)


@pytest.mark.parametrize("rank", [-1, -3, 4, 100])
def test_energy_kept_refuses_ranks_outside_0_to_n(rank):
    s = torch.tensor([3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=rf"rank must be in 0..3 for 3 singular values, got {rank}"):
        energy_kept(s, rank)


def test_energy_kept_values_and_bad_spectra():
    s = torch.tensor([3.0, 2.0, 1.0])
    assert [energy_kept(s, r) for r in range(4)] == pytest.approx([0.0, 9 / 14, 13 / 14, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        energy_kept(torch.tensor([1.0, -1.0]), 1)
    with pytest.raises(ValueError, match="1-D"):
        energy_kept(torch.ones(2, 2), 1)
    with pytest.raises(TypeError, match="integer"):
        energy_kept(s, 1.5)


def test_quantizers_refuse_bad_ranges_and_non_finite_weights():
    w = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    for bits in (0, -2, 17):
        with pytest.raises(ValueError, match=rf"bits must be in 1..16, got {bits}"):
            quantize_dequantize(w, bits)
        with pytest.raises(ValueError, match="bits must be in"):
            product_quantize(w, bits)
    with pytest.raises(ValueError, match="NaN or inf"):
        quant_params(torch.tensor([1.0, float("nan")]), 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_dequantize(torch.tensor([1.0, float("inf")]), 4)
    with pytest.raises(ValueError, match="NaN or inf"):
        product_quantize(torch.full((4, 4), float("nan")), 2)
    with pytest.raises(ValueError, match="max_iter must be an integer >= 0, got -1"):
        kmeans_quantize(w, 2, max_iter=-1)
    with pytest.raises(ValueError, match="tol must be"):
        kmeans_quantize(w, 2, tol=float("nan"))
    with pytest.raises(ValueError, match="max_iter"):
        product_quantize(w, 2, max_iter=-5)
    with pytest.raises(ValueError, match="max_side must be an integer >= 1, got 0"):
        index_map(kmeans_quantize(w, 2), max_side=0)
    with pytest.raises(ValueError, match="bias_count must be an integer >= 0, got -5"):
        model_size([], bias_count=-5)


def test_fake_quantize_lets_nan_reach_the_divergence_check():
    # in QAT a diverged weight must not raise inside the forward pass: NaN flows on to the trainer
    out = fake_quantize(torch.tensor([1.0, float("nan")]), 4)
    assert torch.isnan(out).any()


# -- whole layers pruned away --------------------------------------------------------------------

def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))  # 128 and 16 weights


def test_sparsity_that_empties_a_layer_is_refused_naming_it():
    net = _net()
    # 16 weights: floor(0.97 * 16 + 0.5) = 16 -> all pruned (1 - 0.5/16 = 0.96875); 128 weights keep 4
    with pytest.raises(ValueError, match=r"would prune every weight of 2.weight \(16 weights\).*allow_empty=True"):
        magnitude_masks(net, 0.97)
    masks = magnitude_masks(net, 0.97, allow_empty=True)
    assert masks.kept() == {"0.weight": 4, "2.weight": 0}
    # just below the rule's edge, one weight of the small layer survives
    assert magnitude_masks(net, 0.96).kept() == {"0.weight": 5, "2.weight": 1}


def test_layers_emptied_predicts_the_refusal_from_shapes_alone():
    net = _net()
    assert layers_emptied(net, 0.96) == []
    assert layers_emptied(net, 0.97) == ["2.weight"]
    assert layers_emptied({"fc1.weight": (300, 64), "fc3.weight": 10}, 0.95) == ["fc3.weight"]
    assert layers_emptied({"a": 10}, {"a": 0.94}) == []
    with pytest.raises(ValueError, match="sparsity must be in"):
        layers_emptied(net, 1.0)
    with pytest.raises(TypeError, match="weight tensors"):
        layers_emptied({"a": (3, 3)}, 0.5, scope="global")


def test_global_cut_that_empties_a_layer_is_refused_and_predicted():
    net = _net()
    with torch.no_grad():
        net[2].weight.mul_(1e-3)  # the small layer's weights are all smaller than the big one's
    assert layers_emptied(net, 0.1, scope="global") == []  # prunes 14 of the small layer's 16
    edge = 17 / 144  # prunes 17 weights: all 16 of the small layer, one of the big
    assert layers_emptied(net, edge, scope="global") == ["2.weight"]
    with pytest.raises(ValueError, match=r"global sparsity .* would prune every weight of 2.weight"):
        global_magnitude_masks(net, edge)
    with pytest.raises(ValueError, match="2.weight"):
        magnitude_masks(net, edge, scope="global")
    assert global_magnitude_masks(net, edge, allow_empty=True).kept()["2.weight"] == 0


def test_han_threshold_that_empties_a_layer_is_refused():
    net = _net()
    with pytest.raises(ValueError, match=r"quality 100.0 would prune every weight of 0.weight"):
        threshold_masks(net, 100.0)
    masks, _ = threshold_masks(net, 100.0, allow_empty=True)
    assert masks.kept() == {"0.weight": 0, "2.weight": 0}


def test_layers_emptied_is_part_of_the_pruning_api():
    import kdviz.prune

    assert "layers_emptied" in kdviz.prune.__all__ and kdviz.prune.layers_emptied is layers_emptied
    assert kdviz.prune.layers_emptied({"fc3.weight": (10, 4)}, 0.99) == ["fc3.weight"]  # 1 - 0.5/40 = 0.9875


def test_iterative_prune_refuses_a_round_that_empties_a_layer_unless_asked():
    from kdviz.prune import iterative_prune

    retrained: list[dict[str, int]] = []
    retrain = lambda model, masks: retrained.append(masks.kept())  # noqa: E731
    net = _net()
    with pytest.raises(ValueError, match=r"every weight of 2.weight \(16 weights\).*allow_empty=True"):
        iterative_prune(net, [0.5, 0.97], retrain, lambda m: 0.0)
    assert retrained == [{"0.weight": 64, "2.weight": 8}]  # round 1 ran; round 2 was refused before pruning
    assert int((net[2].weight != 0).sum()) == 8  # the model still holds round 1's masks
    net, retrained[:] = _net(), []
    masks, history = iterative_prune(net, [0.5, 0.97], retrain, lambda m: 0.0, allow_empty=True)
    assert masks.kept() == {"0.weight": 4, "2.weight": 0} and len(history) == 2
    assert int((net[2].weight != 0).sum()) == 0


def test_downsample_mask_refuses_a_max_side_below_one():
    from kdviz.prune.masks import downsample_mask

    mask = np.ones((6, 4), dtype=bool)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=rf"max_side must be a positive integer.*{bad!r}"):
            downsample_mask(mask, bad)
    grid, block = downsample_mask(np.eye(6, 4, dtype=bool), 1)
    assert block == (6, 4) and grid.tolist() == [[round(100 * 4 / 24)]]


def test_parse_temperature_refuses_a_T_whose_reciprocal_overflows():
    from kdviz.app.errors import parse_temperature

    for T in (1e-320, 5e-309):
        with pytest.raises(ValueError, match=rf"T = {T!r} is too small: 1/T overflows"):
            parse_temperature(T)
    assert parse_temperature(MIN_TEMPERATURE) == MIN_TEMPERATURE and parse_temperature("1e-300") == 1e-300
    with pytest.raises(ValueError, match="T = 0 is not allowed"):
        parse_temperature(0.0)


def test_soft_targets_page_names_a_T_of_1e_320_and_keeps_its_T(tmp_path):
    """The exact-T box: 1e-320 gets the clear message, the bars stay at the last good T, no NaN."""
    from _support.apptest import lab_app, lab_environment, ok

    with lab_environment(tmp_path, 1):
        from kdviz.app.sidebar import LabSettings
        from kdviz.app.teacher import teacher_job

        assert teacher_job(LabSettings()).wait(120).state == "finished"
        at = ok(lab_app().run())
        at.number_input(key="st_T_exact").set_value(2.5).run()
        at.number_input(key="st_T_exact").set_value(1e-320).run()
        ok(at)
        assert any("1/T overflows" in e.value and "too small" in e.value for e in at.error), [e.value for e in at.error]
        assert at.session_state["st_T"] == 2.5
