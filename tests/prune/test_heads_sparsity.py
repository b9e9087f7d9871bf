"""kdviz's N:M, magnitude, int8 and k-means tools on the ViT's Linear layers (qkv, proj, fc1, fc2, patch_embed,
head), through the compressed forms of ``kdviz.present.vit_compression``: every layer is covered, each form
computes what its source computes, and a layer that cannot hold an N:M pattern is named."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdviz.models import build_model
from kdviz.present.vit_compression import compression_forms
from kdviz.prune.magnitude import layerwise_magnitude_masks
from kdviz.prune.n_m import follows_n_m, n_m_masks

VIT_LINEARS = {"patch_embed", "head"} | {f"blocks.{i}.{n}" for i in range(2) for n in ("attn.qkv", "attn.proj", "fc1", "fc2")}


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(2)
    return build_model("vit", (1, 8, 8), 10, patch=2, dim=16, depth=2, heads=4).eval()


def test_n_m_and_magnitude_masks_cover_every_vit_linear(vit):
    masks, skipped = n_m_masks(vit, 2, 4)
    assert {n[: -len(".weight")] for n in masks.names()} == VIT_LINEARS and skipped == {}
    assert all(follows_n_m(m, 2, 4) and float(m.float().mean()) == 0.5 for _, m in masks.items())
    sparse = layerwise_magnitude_masks(vit, 0.75)
    assert all(abs(s - 0.75) < 1 / 64 for s in sparse.sparsity().values())
    mnist = build_model("vit", (1, 28, 28), 10, patch=7, dim=16, depth=1, heads=2)
    _, skipped = n_m_masks(mnist, 2, 4)
    assert skipped == {"patch_embed.weight": "49 inputs are not a multiple of 4"}  # 7 x 7 patches stay dense


def test_every_compressed_form_of_the_vit_computes_what_its_source_does(vit):
    removed = np.zeros((2, 4), dtype=bool)
    removed[0, [0, 3]] = removed[1, 2] = True
    forms, sizes = compression_forms(vit, removed, n=2, m=4, sparsity=0.5, kmeans_bits=3)
    assert [f.name for f in forms] == ["dense", "3 heads removed", "2:4 sparse", "50% unstructured", "int8 dynamic",
                                       "k-means 3-bit"]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for form in forms:
            got, want = form.model(x), form.source(x)
            tolerance = 0.2 if form.name.startswith("int8") else 1e-5
            assert float((got - want).abs().max()) < tolerance, form.name
    shrunk, csr, int8, kmeans = forms[1].model, forms[2].model, forms[4].model, forms[5].model
    assert shrunk.heads_per_layer == [2, 3]
    assert not any(isinstance(m, nn.Linear) for m in csr.modules())  # every Linear, qkv and proj included, is CSR
    quantized = [n for n, m in int8.named_modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert set(quantized) == VIT_LINEARS
    for name, module in kmeans.named_modules():
        if isinstance(module, nn.Linear):
            assert len(torch.unique(module.weight)) <= 8, name  # 3 bits: at most 8 shared values per layer
    assert sizes["k-means 3-bit"] < sum(p.numel() * 4 for p in vit.parameters()) / 4
