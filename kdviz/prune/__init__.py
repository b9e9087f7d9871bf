"""Pruning: explicit masks, magnitude / threshold / structured pruning, schedules, size accounting.

Papers: Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural
Networks" (NeurIPS 2015); Han, Mao, Dally, "Deep Compression" (ICLR 2016); Zhu & Gupta, "To prune,
or not to prune" (2017); Li et al., "Pruning Filters for Efficient ConvNets" (ICLR 2017).

>>> masks = magnitude_masks(model, 0.9, scope="layer")   # exact 90% of each layer pruned
>>> masks.apply(model)                                    # zero them; repeat after each optimizer step
>>> save_pruned(model, masks, "pruned.safetensors"); load_pruned(model, "pruned.safetensors")
>>> size_report(model).rows()                             # dense vs CSR vs relative-index bytes
"""
from .evaluate import MaskedEvaluator, accuracy
from .flops import LayerCost, count_flops, layer_costs
from .iterative import PruneRound, agp_targets, fine_tune, iterative_prune
from .magnitude import (
    SCOPES,
    check_sparsity,
    global_magnitude_masks,
    han_thresholds,
    kept_magnitude_threshold,
    layers_emptied,
    layerwise_magnitude_masks,
    magnitude_masks,
    threshold_masks,
)
from .masks import PruningMasks, downsample_mask, layer_name, load_pruned, prunable_weights, save_pruned
from .penalty import l1_penalty
from .schedule import SCHEDULES, AGPSchedule, OneShotSchedule, agp_sparsity, build_schedule
from .sensitivity import sensitivity_analysis
from .size import (
    RELATIVE_INDEX_BITS,
    SizeReport,
    decode_relative_index,
    encode_csr,
    encode_relative_index,
    size_report,
)
from .structured import LAYOUTS, StructuredPruning, prune_structured, unit_norms, units_to_keep, zero_removed_units

__all__ = [
    "AGPSchedule", "LAYOUTS", "LayerCost", "MaskedEvaluator", "OneShotSchedule", "PruneRound",
    "PruningMasks", "RELATIVE_INDEX_BITS", "SCHEDULES", "SCOPES", "SizeReport", "StructuredPruning",
    "accuracy", "agp_sparsity", "agp_targets", "build_schedule", "check_sparsity", "count_flops",
    "decode_relative_index", "downsample_mask", "encode_csr", "encode_relative_index", "fine_tune",
    "global_magnitude_masks",
    "han_thresholds", "iterative_prune", "kept_magnitude_threshold", "l1_penalty", "layer_costs", "layer_name",
    "layers_emptied", "layerwise_magnitude_masks", "load_pruned", "magnitude_masks", "prunable_weights",
    "prune_structured", "save_pruned", "sensitivity_analysis", "size_report", "threshold_masks", "unit_norms",
    "units_to_keep", "zero_removed_units",
]
