"""Quantization: k-means weight sharing, uniform and binary weights, product quantization,
low rank (truncated SVD), Huffman coding and compressed-size accounting.

Maths only: the training hooks that apply these while a model trains are in ``kdviz.methods``.
"""
from __future__ import annotations

from .binary import BINARIZERS, binaryconnect, sign_ste, xnor_alpha, xnor_binarize
from .evaluate import SliderEvaluator
from .histograms import index_map, weight_histogram
from .huffman import EncodedStream, HuffmanCode, encode_symbols, huffman_code_lengths
from .kmeans import INITS, SharedWeights, SortedWeights, kmeans_quantize, kmeans_quantize_model, quantizable_layers
from .lowrank import SVDFactors, energy_kept, low_rank_layer, low_rank_model, singular_values, truncated_svd
from .product import ProductQuantized, product_quantize
from .shared_weights import attach_shared_model, attach_shared_weights, bake_shared_weights, centroid_parameters
from .size import EncodedLayer, LayerSize, ModelSize, encode_layer, encode_model, model_size
from .uniform import QuantParams, dequantize, fake_quantize, quant_params, quantize, quantize_dequantize

__all__ = [
    "BINARIZERS", "binaryconnect", "sign_ste", "xnor_alpha", "xnor_binarize", "SliderEvaluator", "index_map", "weight_histogram", "EncodedStream",
    "HuffmanCode", "encode_symbols", "huffman_code_lengths", "INITS", "SharedWeights", "SortedWeights",
    "kmeans_quantize", "kmeans_quantize_model", "quantizable_layers", "SVDFactors", "energy_kept", "low_rank_layer",
    "low_rank_model", "singular_values", "truncated_svd", "ProductQuantized", "product_quantize",
    "attach_shared_model", "attach_shared_weights", "bake_shared_weights", "centroid_parameters", "EncodedLayer",
    "LayerSize", "ModelSize", "encode_layer", "encode_model", "model_size", "QuantParams",
    "dequantize", "fake_quantize", "quant_params", "quantize", "quantize_dequantize",
]
