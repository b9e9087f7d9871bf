"""Deep Compression (Han, Mao, Dally, ICLR 2016): prune, then share weights by k-means, then Huffman-code.

The pipeline's maths lives in ``kdviz.quant.pipeline``; this spec gives it a place in the lab (its
page and widget). Its stages are the ``prune`` and ``kmeans`` methods' hooks run one after the
other from a trained baseline, then Huffman coding of the indices (section 4).
"""
from __future__ import annotations

from ..palette import ROLE_COLORS
from .base import MethodSpec, PageSpec, register_method

DEEP_COMPRESSION = register_method(MethodSpec(
    name="deep_compression", label="Deep Compression", colour=ROLE_COLORS["quantized"],
    summary="prune -> k-means weight sharing -> Huffman coding (Han et al. 2016, fig. 1)",
    pages=(PageSpec("deep_compression", "Deep Compression", ":material/compress:", order=50),),
    widgets={"DeepCompressionMonitor": "deep_compression"},
))
