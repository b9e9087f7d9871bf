"""Product quantization of weight matrices (Gong et al. 2014), checked with numpy."""
import numpy as np
import pytest
import torch

from kdviz.quant import product_quantize


def test_each_subvector_gets_its_nearest_codeword_and_codewords_are_means():
    w = torch.randn(64, 12)
    pq = product_quantize(w, bits=3, subvector=4)
    assert pq.codes.shape == (64, 3) and len(pq.codebooks) == 3
    x = w.numpy()
    for j, cb in enumerate(pq.codebooks):
        block = x[:, 4 * j : 4 * j + 4]
        d = ((block[:, None, :] - cb.numpy()[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(pq.codes[:, j].numpy(), d.argmin(1))
        for k in np.unique(pq.codes[:, j].numpy()):
            np.testing.assert_allclose(cb[k].numpy(), block[pq.codes[:, j].numpy() == k].mean(0), atol=1e-5)
    recon = pq.weight().numpy()
    for j in range(3):
        np.testing.assert_array_equal(recon[:, 4 * j : 4 * j + 4], pq.codebooks[j].numpy()[pq.codes[:, j].numpy()])


def test_more_codewords_than_rows_reconstructs_exactly_and_bits_count():
    w = torch.randn(8, 10)
    pq = product_quantize(w, bits=4, subvector=3)  # 16 codewords > 8 rows; last block has width 1
    torch.testing.assert_close(pq.weight(), w)
    assert [cb.shape for cb in pq.codebooks] == [(8, 3), (8, 3), (8, 3), (8, 1)]
    assert pq.index_bits() == 8 * 4 * 4 and pq.codebook_bits() == 32 * 8 * 10


def test_error_falls_with_more_bits_and_conv_weights_work():
    w = torch.randn(32, 4, 3, 3)
    errs = [float((product_quantize(w, b, subvector=9).weight() - w).norm()) for b in (1, 3, 5)]
    assert errs[0] > errs[1] > errs[2]
    assert product_quantize(w, 2, subvector=9).weight().shape == w.shape


def test_bad_inputs():
    with pytest.raises(ValueError, match="bits"):
        product_quantize(torch.randn(4, 4), 0)
    with pytest.raises(ValueError, match="subvector"):
        product_quantize(torch.randn(4, 4), 2, subvector=5)
    with pytest.raises(ValueError, match="empty"):
        product_quantize(torch.zeros(0, 4), 2)
    with pytest.raises(ValueError, match="matrix"):
        product_quantize(torch.randn(5), 2)
