"""TinyBERT's layer-wise losses (Jiao et al. 2020, eqs. 7-10) and attention rollout (Abnar & Zuidema
2020) against independent computations on random inputs: explicit loops over heads and entries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from kdviz.distill import transformer as tb


def _attention(b: int, h: int, n: int, seed: int, probs: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(b, h, n, n, generator=g, dtype=torch.float64) * 2
    return torch.softmax(scores, dim=-1) if probs else scores


@pytest.mark.parametrize("mapping, student, teacher, expected", [
    ("uniform", 2, 4, [(1, 2), (2, 4)]),
    ("uniform", 3, 4, [(1, 1), (2, 2), (3, 4)]),
    ("uniform", 2, 6, [(1, 3), (2, 6)]),
    ("top", 2, 5, [(1, 4), (2, 5)]),
    ("bottom", 2, 5, [(1, 1), (2, 2)]),
    ("last", 3, 6, [(3, 6)]),
    ([3, 4], 2, 4, [(1, 3), (2, 4)]),
    ([[2, 1]], 2, 4, [(2, 1)]),
])
def test_layer_mappings(mapping, student, teacher, expected):
    assert tb.layer_pairs(student, teacher, mapping) == expected


@pytest.mark.parametrize("mapping, message", [
    ("middle", "not one of uniform, top, bottom, last"),
    ([1, 2, 3], "one entry per student layer"),
    ([[1, 5]], r"out of range: student layers are 1..2, teacher 1..4"),
    ([[1, 2], [1, 3]], "each student layer may appear once"),
    (["a", "b"], "lists teacher layers"),
])
def test_bad_layer_mappings_name_the_problem(mapping, message):
    with pytest.raises(ValueError, match=message):
        tb.layer_pairs(2, 4, mapping)
    with pytest.raises(ValueError, match="no deeper than the teacher"):
        tb.layer_pairs(5, 4, "uniform")


def _eq7_by_loops(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """1/h sum_i MSE(A_i^S, A_i^T), each MSE a plain mean over batch and the N x N entries."""
    b, h, n, _ = student.shape
    total = 0.0
    for i in range(h):
        squared = 0.0
        for bi in range(b):
            for r in range(n):
                for c in range(n):
                    squared += (float(student[bi, i, r, c]) - float(teacher[bi, i, r, c])) ** 2
        total += squared / (b * n * n)
    return total / h


def test_attention_loss_is_eq7_per_head_summed_over_pairs():
    s_atts = [_attention(3, 2, 5, 1), _attention(3, 2, 5, 2, probs=False)]
    t_atts = [_attention(3, 2, 5, 10 + i, probs=i % 2 == 0) for i in range(4)]
    pairs = tb.layer_pairs(2, 4, "uniform")  # (1, 2), (2, 4)
    got = tb.attention_pair_losses(s_atts, t_atts, pairs)
    expected = [_eq7_by_loops(s_atts[0], t_atts[1]), _eq7_by_loops(s_atts[1], t_atts[3])]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_group_mean_matches_each_student_head_to_the_mean_of_its_teacher_group():
    student, teacher = _attention(2, 2, 4, 3), _attention(2, 6, 4, 4)
    got = float(tb.attention_pair_losses([student], [teacher], [(1, 1)], "group_mean")[0])
    grouped = torch.stack([teacher[:, 0:3].mean(1), teacher[:, 3:6].mean(1)], dim=1)
    assert got == pytest.approx(_eq7_by_loops(student, grouped), rel=1e-12)
    torch.testing.assert_close(grouped.sum(-1), torch.ones(2, 2, 4, dtype=torch.float64))  # still distributions
    mean = float(tb.attention_pair_losses([student], [teacher], [(1, 1)], "mean")[0])
    assert mean == pytest.approx(_eq7_by_loops(student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)), rel=1e-12)
    assert mean != pytest.approx(got)


def test_unmatched_heads_and_tokens_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="student has 3 heads and the teacher 4.*head_matching='mean'"):
        tb.match_heads(_attention(1, 3, 4, 0), _attention(1, 4, 4, 1))
    with pytest.raises(ValueError, match="'equal' needs equal head counts"):
        tb.match_heads(_attention(1, 2, 4, 0), _attention(1, 4, 4, 1), "equal")
    with pytest.raises(ValueError, match="same images and tokens.*patch grid"):
        tb.match_heads(_attention(1, 2, 4, 0), _attention(1, 2, 5, 1))
    with pytest.raises(ValueError, match="head matching 'max'"):
        tb.match_heads(_attention(1, 2, 4, 0), _attention(1, 2, 4, 1), "max")


def test_hidden_and_embedding_losses_are_eq8_and_eq9_through_w():
    g = torch.Generator().manual_seed(5)
    s_hidden = [torch.randn(2, 3, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    t_hidden = [torch.randn(2, 3, 6, generator=g, dtype=torch.float64) for _ in range(5)]
    proj = tb.Projections(4, 6).double()
    w_h, w_e = proj.hidden.weight.detach().T.numpy(), proj.embedding.weight.detach().T.numpy()  # d_S x d_T
    assert proj.hidden.bias is None and w_h.shape == (4, 6)

    def mse(x, w, y):  # MSE(X W, Y) over every entry, by hand
        diff = np.einsum("bnd,de->bne", x.numpy(), w) - y.numpy()
        return float((diff ** 2).sum() / diff.size)

    pairs = tb.layer_pairs(2, 4, "uniform")  # hidden states: index 0 is the embedding, l the output of block l
    got = tb.hidden_pair_losses(s_hidden, t_hidden, pairs, proj.hidden)
    np.testing.assert_allclose(got.detach().numpy(), [mse(s_hidden[1], w_h, t_hidden[2]), mse(s_hidden[2], w_h, t_hidden[4])],
                               rtol=1e-12)
    emb = tb.embedding_loss(s_hidden[0], t_hidden[0], proj.embedding)
    assert float(emb.detach()) == pytest.approx(mse(s_hidden[0], w_e, t_hidden[0]), rel=1e-12)
    with pytest.raises(ValueError, match="projected student states"):
        tb.embedding_loss(s_hidden[0][:, :2], t_hidden[0], proj.embedding)


def test_gradients_reach_the_student_and_w_never_the_teacher():
    proj = tb.Projections(4, 6)
    student = torch.randn(2, 3, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 6, requires_grad=True)
    tb.projected_mse(student, teacher, proj.hidden).backward()
    assert student.grad is not None and proj.hidden.weight.grad is not None and teacher.grad is None
    s_att, t_att = _attention(1, 2, 3, 0).requires_grad_(), _attention(1, 4, 3, 1).requires_grad_()
    tb.attention_pair_losses([s_att], [t_att], [(1, 1)]).sum().backward()
    assert s_att.grad is not None and t_att.grad is None


def test_prediction_loss_is_t2_kl():
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(4, 10, generator=g, dtype=torch.float64), torch.randn(4, 10, generator=g, dtype=torch.float64)
    T = 3.0
    p, q = torch.softmax(t / T, 1).numpy(), torch.softmax(s / T, 1).numpy()
    expected = T * T * float((p * np.log(p / q)).sum(1).mean())
    assert float(tb.prediction_loss(s, t, T)) == pytest.approx(expected, rel=1e-10)


def test_rollout_is_the_product_of_residual_mixed_head_means():
    atts = [_attention(2, 3, 4, 20 + i) for i in range(3)]
    got = tb.attention_rollout(atts).numpy()
    for b in range(2):
        expected = np.eye(4)
        for layer in atts:
            mixed = 0.5 * np.eye(4) + 0.5 * layer[b].numpy().mean(0)
            expected = mixed @ expected
        np.testing.assert_allclose(got[b], expected, rtol=1e-12)
    np.testing.assert_allclose(got.sum(-1), np.ones((2, 4)), rtol=1e-12)
    np.testing.assert_allclose(tb.attention_rollout(atts[:1], residual=0.0).numpy(), atts[0].mean(1).numpy())
    with pytest.raises(ValueError, match="residual share"):
        tb.attention_rollout(atts, residual=1.5)


def test_class_token_map_is_row_zero_over_the_patch_grid():
    att = _attention(1, 2, 7, 0)  # 1 + 2 x 3 patches
    grid = tb.class_token_map(att, (2, 3))
    assert grid.shape == (1, 2, 2, 3)
    assert float(grid[0, 1, 1, 0]) == float(att[0, 1, 0, 4])  # patch (1, 0) is token 1 + 3
    with pytest.raises(ValueError, match="does not fit a 3x3 patch grid"):
        tb.class_token_map(att, (3, 3))
