"""The tiny ViT (Dosovitskiy et al. 2021, eqs. 1-4): shapes, attention against a hand computation of
Vaswani et al.'s eq. 1 for one head, and Michel et al. 2019's head gates against physical removal."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdviz.models import build_model
from kdviz.models.vit import TinyViT


@pytest.fixture()
def vit() -> TinyViT:
    torch.manual_seed(3)
    return build_model("vit", (1, 8, 8), 10, patch=2, dim=24, depth=3, heads=3).eval()


def test_shapes_features_and_attention_rows_sum_to_one(vit):
    x = torch.randn(4, 1, 8, 8)
    out = vit.forward_detailed(x)
    assert out.logits.shape == (4, 10)
    assert vit.feature_names == ("embed", "block1", "block2", "block3")
    assert [tuple(h.shape) for h in out.hidden_states] == [(4, 17, 24)] * 4  # 16 patches + the class token
    assert [tuple(a.shape) for a in out.attentions] == [(4, 3, 17, 17)] * 3
    for probs in out.attentions:
        torch.testing.assert_close(probs.sum(-1), torch.ones(4, 3, 17))
    logits, features = vit.forward_with_features(x)
    torch.testing.assert_close(logits, out.logits)
    torch.testing.assert_close(features["block2"], out.hidden_states[2])


def test_patches_are_row_major_blocks_of_the_image(vit):
    x = torch.arange(64.0).view(1, 1, 8, 8)
    patches = vit.patches(x)
    assert patches.shape == (1, 16, 4)
    assert patches[0, 1].tolist() == [2.0, 3.0, 10.0, 11.0]  # second patch of the first row
    assert patches[0, 4].tolist() == [16.0, 17.0, 24.0, 25.0]  # first patch of the second row


def test_one_heads_attention_equals_a_hand_computation(vit):
    """softmax(q k^T / sqrt(d_k)) for head 1 of layer 2, from the block's own weights."""
    x = torch.randn(2, 1, 8, 8)
    out = vit.forward_detailed(x)
    block, head, d = vit.blocks[1], 1, 8
    z = block.norm1(out.hidden_states[1])
    w, b = block.attn.qkv.weight, block.attn.qkv.bias
    q = z @ w[head * d:(head + 1) * d].T + b[head * d:(head + 1) * d]
    k = z @ w[24 + head * d:24 + (head + 1) * d].T + b[24 + head * d:24 + (head + 1) * d]
    expected = torch.exp(q @ k.transpose(1, 2) / d ** 0.5)
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(out.attentions[1][:, head], expected, atol=1e-6, rtol=1e-5)


def test_gating_a_head_to_zero_equals_removing_it(vit):
    x = torch.randn(5, 1, 8, 8)
    gates = torch.ones(3, 3)
    gates[0, 2] = gates[2, 0] = gates[2, 1] = 0.0
    gated = vit.forward_detailed(x, gates).logits
    before = sum(p.numel() for p in vit.parameters())
    vit.prune_heads({0: [2], 2: [0, 1]})
    assert vit.heads_per_layer == [2, 3, 1]
    torch.testing.assert_close(vit(x), gated, atol=1e-6, rtol=1e-5)
    removed = 3 * (3 * 8 * 24 + 3 * 8) + 3 * 8 * 24  # each head: its Q, K, V rows (+ biases), its proj columns
    assert before - sum(p.numel() for p in vit.parameters()) == removed


def test_the_gates_gradient_is_the_loss_change_per_unit_gate(vit):
    """Michel et al. 2019, eq. 4's importance is dL/dxi_h at xi = 1: a finite difference agrees."""
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    gates = torch.ones(3, 3, dtype=torch.float64, requires_grad=True)
    vit.double()
    F.cross_entropy(vit.forward_detailed(x.double(), gates).logits, y).backward()
    shifted = torch.ones(3, 3, dtype=torch.float64)
    shifted[1, 2] += 1e-6
    with torch.no_grad():
        diff = (F.cross_entropy(vit.forward_detailed(x.double(), shifted).logits, y)
                - F.cross_entropy(vit.forward_detailed(x.double(), torch.ones(3, 3, dtype=torch.float64)).logits, y)) / 1e-6
    assert float(gates.grad[1, 2]) == pytest.approx(float(diff), rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("options, message", [
    ({"patch": 3}, "patch size must divide"),
    ({"dim": 30, "heads": 4}, "divisible by the heads"),
    ({"depth": 0}, "depth >= 1"),
])
def test_bad_shapes_name_the_problem(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("vit", (1, 8, 8), 10, **options)


def test_pruning_every_head_of_a_layer_is_refused(vit):
    with pytest.raises(ValueError, match="would lose all 3 heads"):
        vit.prune_heads({1: [0, 1, 2]})
    with pytest.raises(ValueError, match="no layer 5"):
        vit.prune_heads({5: [0]})


def test_vit_attention_from_hidden_equals_its_forward_and_its_scores_are_eq7s_target():
    """TinyViT.attention_from_hidden (an addition for TinyBERT's eq. 7): probabilities equal to
    forward_detailed's, scores equal to q k^T / sqrt(d_k) by hand, and no second forward pass needed."""
    torch.manual_seed(0)
    vit = build_model("vit", (1, 8, 8), 10, patch=2, dim=24, depth=2, heads=3).eval()
    out = vit.forward_detailed(torch.randn(3, 1, 8, 8))
    probs = vit.attention_from_hidden(out.hidden_states, "probs")
    scores = vit.attention_from_hidden(out.hidden_states, "scores")
    for a, p, s in zip(out.attentions, probs, scores):
        torch.testing.assert_close(p, a)
        torch.testing.assert_close(torch.softmax(s, -1), a)
    block, head, d = vit.blocks[1], 2, 8
    z = block.norm1(out.hidden_states[1])
    w, bias = block.attn.qkv.weight, block.attn.qkv.bias
    q = z @ w[head * d:(head + 1) * d].T + bias[head * d:(head + 1) * d]
    k = z @ w[24 + head * d:24 + (head + 1) * d].T + bias[24 + head * d:24 + (head + 1) * d]
    torch.testing.assert_close(scores[1][:, head], q @ k.transpose(1, 2) / d ** 0.5)
    with pytest.raises(ValueError, match="'probs' or 'scores'"):
        vit.attention_from_hidden(out.hidden_states, "logits")
    vit.prune_heads({0: [1]})  # the scores follow a physically pruned layer's heads
    out = vit.forward_detailed(torch.randn(2, 1, 8, 8))
    pruned = vit.attention_from_hidden(out.hidden_states, "probs")
    assert pruned[0].shape == (2, 2, 17, 17)
    torch.testing.assert_close(pruned[0], out.attentions[0])
