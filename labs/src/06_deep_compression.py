# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: prune, quantize, Huffman-code, step by step
#     paper: Han, Mao & Dally 2016
#     title: Deep Compression
#     widgets:
#     - DeepCompressionMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 6 · Deep Compression: prune, quantize, Huffman-code
#
# Three ideas stacked (Han, Mao & Dally (2016), *Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman Coding*, [arXiv:1510.00149](https://arxiv.org/abs/1510.00149), figure 1):
#
# 1. **Prune**: remove the smallest weights and retrain (Han et al. 2015). Only the kept weights are
#    stored, each with a 5-bit gap to the previous one.
# 2. **Quantize**: share 2^b values per layer with k-means, fine-tune them (lab 5). Each kept weight
#    becomes a b-bit index.
# 3. **Huffman-code** the indices and the gaps: their distributions are skewed, so common symbols get
#    short codes.
#
# Han et al. report for LeNet-300-100 on MNIST (table 1): **1070 KB → 27 KB, 40x, at 1.58% error
# (1.64% before)**. This lab runs the same pipeline and measures every stage from real encoded bytes;
# the last model is decoded from those bytes before it is tested.
#
# On digits the whole lab takes about a minute on two CPU cores.

# %%
from kdviz.present.labs import lab_baseline, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %% [markdown]
# ## 0. A trained LeNet-300-100 (reused from lab 5 when it is already trained)
#
# LeNet-300-100 (Han et al. 2015): 784 (or 64) inputs, 300 and 100 hidden units, 10 outputs, with the settings
# of the app's baseline and of labs 4 and 5.

# %%
baseline = lab_baseline(LAB)
print(baseline.wait().message)  # a finished baseline with the same settings is reused at once

# %% [markdown]
# ## 1. Run the pipeline in the background
#
# `deep_compression_experiment` starts two training runs, one after the other, and returns at once:
# **prune** (the baseline pruned step by step and retrained) and then **quantize** (k-means on the
# pruned weights, the shared values fine-tuned). Each is a real run folder under `LAB.runs`, so you can
# reopen it later or compare it in the app. Huffman coding needs no training: it is measured from the
# finished folders. The monitor shows the progress, the accuracy of each stage as it trains, and the
# size after each stage as it ends. The settings are Han et al.'s: 92% of `fc1` and `fc2` pruned, 74%
# of the small output layer, 6-bit codebooks.

# %%
from kdviz.methods.deep_compression import deep_compression_experiment, preset
from kdviz.widgets.deep_compression import DeepCompressionMonitor

SHORT = dict(round_epochs=1.0, retrain_epochs=float(LAB.epochs), finetune_epochs=1.0) if LAB.epochs else {}
options = preset(LAB.dataset, bits=6, **SHORT)  # CI: shorter retraining
experiment = deep_compression_experiment(baseline.path, options, runs_root=LAB.runs)
monitor = DeepCompressionMonitor(experiment)
monitor

# %% [markdown]
# This cell waits for both runs to end, then lists every stage: dense, pruned, k-means and Huffman.

# %%
import pandas as pd
from kdviz.present.deep_compression import stage_rows

monitor.wait()
view = monitor.view
for status in view.statuses():
    print(status.line)
for name in view.names:
    print(f"{view.label(name)}: run folder {experiment.job(name).path}")
report = view.report()
pd.DataFrame(stage_rows(report)).set_index("stage").round(2)

# %% [markdown]
# ## 2. Where the bytes go
#
# **Look for:** pruning saves the most in one step, but its kept weights are still 32-bit floats plus a
# 5-bit gap each; k-means turns each 32-bit value into a 6-bit index; Huffman coding then shaves the
# skewed indices and gaps further. The error should stay close to the dense model's: retraining after
# pruning and fine-tuning after k-means win most of the losses back, and Huffman coding is lossless.

# %%
from kdviz.figures.quantization import size_waterfall

size_waterfall(report.sizes())

# %% [markdown]
# ## 3. Inside the compressed model
#
# The pruned layer's surviving weights form two humps (the small ones are gone). k-means starts from 64
# values evenly spaced over the range and drops those whose cluster empties (the gap between the humps
# holds no weight), so the shared values (dashed) cover both humps; fine-tuning nudges them (solid).
# The table counts each layer's Huffman-coded bits.

# %%
from kdviz.figures.quantization import codebook_histogram
from kdviz.present.deep_compression import codebook_data, layer_rows

before = report.accuracy_before_finetune
if before is not None:
    print(f"k-means before fine-tuning: {before:.2%} test accuracy; after: {report.stages[2].accuracy:.2%}")
print(f"fc1 shares {report.shared['fc1'].num_clusters} values (at most 2^{report.shared['fc1'].bits})")
codebook_histogram(**codebook_data(report, "fc1")).show()
pd.DataFrame(layer_rows(report)).set_index("layer").round(1)

# %% [markdown]
# **Check it yourself:** the sizes are real bytes. Decode `fc1` from its bytes alone and compare with the
# shared weights; then compare the Huffman-coded index bits with fixed-width indices (one code per
# shared value; fillers carry a padding index and are marked by the top gap code).

# %%
import math
import numpy as np

layer = report.encoded["fc1"]
decoded = layer.decode()
print("decoded == shared weights:", np.array_equal(decoded, report.shared["fc1"].weight().numpy()))
n, k = layer.index.n_symbols, report.shared["fc1"].num_clusters
print(f"{n:,} stored entries: Huffman {8 * len(layer.index.data) / n:.2f} bits per index "
      f"(fixed width: {max(1, math.ceil(math.log2(k)))}), {8 * len(layer.gaps.data) / n:.2f} bits per gap (fixed: 5)")

# %% [markdown]
# **Try next:** 4 bits instead of 6 (`preset(LAB.dataset, bits=4)`); prune harder (`hidden_sparsity=0.96`);
# or cut to the targets in one step instead of four (`round_epochs=0.0`: no retraining between rounds,
# only the final retraining) and watch the error of the pruned stage. Each stage is a training run, so
# it needs at least one step: `retrain_epochs=0.0` as well is refused.
# With `lab_settings(dataset="mnist", ...)` the bench (`bench/deep_compression.py`) compares the result with Han et al.'s table.
