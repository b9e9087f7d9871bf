# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: how few distinct weight values a layer needs
#     paper: 'Han, Mao & Dally 2016 (and binary weights: Courbariaux et al. 2015, Rastegari
#       et al. 2016)'
#     title: Quantization
#     widgets:
#     - QuantizationExplorer
#     - CentroidMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 5 · Quantization: fewer bits per weight
#
# A trained network stores every weight as a 32-bit float, but it does not need that precision. This
# lab asks one question: **how few distinct values can a layer's weights take before the network
# breaks, and how should those values be chosen?**
#
# * **k-means weight sharing** (Han, Mao & Dally (2016), *Deep Compression: Compressing Deep Neural Networks with Pruning, Trained Quantization and Huffman Coding*, [arXiv:1510.00149](https://arxiv.org/abs/1510.00149), section 3): cluster a layer's weights into k = 2^b values
#   (the *codebook*) and store a b-bit index per weight. It minimises the within-cluster sum of
#   squares (eq. 1); afterwards the shared values are fine-tuned with the indices fixed (eq. 3).
# * **Uniform** levels: evenly spaced over the weight range, per tensor or per output channel.
# * **Binary** weights: sign(w) (Courbariaux, Bengio & David (2015), *BinaryConnect*, [arXiv:1511.00363](https://arxiv.org/abs/1511.00363)) or α·sign(w) with α = mean |w| per output unit (Rastegari, Ordonez, Redmon & Farhadi (2016), *XNOR-Net*, [arXiv:1603.05279](https://arxiv.org/abs/1603.05279)).
# * **Low rank**: keep the r largest singular values, W ≈ U_r S_r V_rᵀ (Denton, Zaremba, Bruna, LeCun & Fergus (2014), *Exploiting Linear Structure Within Convolutional Networks for Efficient Evaluation*, [arXiv:1404.0736](https://arxiv.org/abs/1404.0736)).
#
# Run the cells from top to bottom. On the bundled digits data the lab takes a minute or two on two CPU cores.

# %%
from kdviz.present.labs import lab_baseline, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %% [markdown]
# ## 0. A trained LeNet-300-100
#
# LeNet-300-100 (Han et al. 2015): 784 (or 64) inputs, 300 and 100 hidden units, 10 outputs. `lab_baseline`
# trains it with the settings of the app's baseline and of labs 4 and 6, so a baseline trained there is reused.

# %%
baseline = lab_baseline(LAB)
print(baseline.wait().message)  # a finished baseline with the same settings is reused at once

# %% [markdown]
# ## 1. One layer's codebook
#
# Cluster the weights of `fc2` into 2³ = 8 shared values, once with **linear** initialisation (evenly
# spaced between the smallest and largest weight) and once with **density** initialisation (the quantiles
# of the weights), Han et al. section 3.2.
#
# **Look for:** the bars are the layer's weights, the lines its 8 shared values. Density init crowds
# the values into the middle, where most weights are; linear init keeps values out at the tails. Han et
# al. (figure 8) found linear best *after fine-tuning*: the few large weights matter most, and density
# init represents them poorly. Before fine-tuning, on a small model, either can come out ahead: compare
# the two accuracies printed under the charts.

# %%
from kdviz.engine import load_trained_model
from kdviz.figures.quantization_explorer import levels_histogram
from kdviz.quant import SliderEvaluator
from kdviz.quant.explore import MethodExplorer, QuantChoice, layer_histogram

data = LAB.data()
model = load_trained_model(baseline.path)
explorer = MethodExplorer(SliderEvaluator(model, data.test_images, data.test_labels))
print(f"float32 test accuracy: {explorer.baseline():.2%}")

counts, edges = layer_histogram(explorer.evaluator, "fc2")
for init in ("linear", "density"):
    choice = QuantChoice("kmeans", bits=3, init=init)
    q = explorer.quantize(choice)
    levels_histogram(counts, edges, q.levels["fc2"], "fc2", choice.label(), 3, q.n_weights["fc2"]).show()
    print(f"{init:>8} init: test accuracy {explorer.accuracy(choice):.2%} with every layer at 3 bits")

# %% [markdown]
# The **index map** shows which shared value each weight of `fc2` uses (rows: output units, columns:
# inputs), and the **codebook** lists the values with the number of weights that use each. The whole
# layer is stored as this table plus 3 bits per weight.

# %%
from kdviz.figures.quantization import codebook_table, index_map_heatmap

q = explorer.quantize(QuantChoice("kmeans", bits=3))
index_map_heatmap(q.codes["fc2"], layer="fc2").show()
codebook_table(q.levels["fc2"], q.counts["fc2"]).show()
print(f"all layers: {q.ratio:.1f}x smaller than float32 ({q.bits_per_weight:.2f} bits per weight, codebooks included)")

# %% [markdown]
# ## 2. Explore every method
#
# Drag the **bits** slider, switch the **method** and its options, and pick a **layer**. Every move
# quantizes all layers and tests the model on the whole test set.
#
# **What to look for:**
#
# * **k-means** holds its accuracy down to 3 bits or so; the codebook follows the weights.
# * **Uniform, per tensor, symmetric** at 2 bits has only three levels (−s, 0, +s) and most weights
#   land on 0. Per-channel scales help: each output unit gets a range of its own.
# * **Binary**: BinaryConnect's ±1 ignores the size of the weights; XNOR's α per unit keeps it. In a
#   ReLU network a scale per unit matters less than you might expect (compare the two). Neither is
#   meant to work without training: both papers train *with* binary weights.
# * **Low rank** (bottom): the spectrum of a trained layer decays slowly; watch how much rank you
#   need before the accuracy returns.

# %%
from kdviz.widgets.quantization import QuantizationExplorer

QuantizationExplorer(model, data, method="kmeans", bits=3)

# %% [markdown]
# ## 3. Accuracy against bits, method by method
#
# The same evaluation at every bit width from 1 to 8, and compression against accuracy. Compression
# counts everything stored: indices, codebooks, scales and zero points (biases excluded, as Han et al.'s
# table 1).

# %%
from kdviz.figures.quantization import accuracy_vs_bits, compression_vs_accuracy
from kdviz.figures.quantization_explorer import style_methods  # one colour per method on both charts

style_methods(accuracy_vs_bits(explorer.accuracy_curves(), baseline=explorer.baseline())).show()
style_methods(compression_vs_accuracy(explorer.scatter_points(), baseline=explorer.baseline()))

# %% [markdown]
# **Check the low-rank formula yourself:** the Frobenius error of the best rank-r approximation is the
# root of the discarded squared singular values (Eckart–Young). Below it is computed both ways.

# %%
import numpy as np
from kdviz.figures.quantization import singular_spectrum

W = model.fc1.weight.detach().double().numpy()
s = np.linalg.svd(W, compute_uv=False)
for r in (5, 20, 40):
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    W_r = (U[:, :r] * S[:r]) @ Vt[:r]
    point = explorer.low_rank("fc1", r)
    print(f"rank {r:>2}: ||W - W_r|| = {np.linalg.norm(W - W_r):.4f}, sqrt(sum discarded s^2) = "
          f"{np.sqrt((s[r:] ** 2).sum()):.4f}, test accuracy {point.accuracy:.2%}")
singular_spectrum(s, 20, "fc1")

# %% [markdown]
# ## 4. Fine-tune the shared values, live
#
# k-means at 2 bits loses accuracy. Han et al. win it back by training the **shared values only**: every
# weight keeps its index, and each centroid moves by the *sum* of its cluster's gradients (eq. 3). The
# `kmeans` training hook does exactly that in a background job (`kmeans_fine_tune_config` builds its config);
# the monitor redraws as it trains.
#
# **Look for:** the solid lines (the values now) drift away from the dashed ones (k-means' choice), most
# for the outer values; the accuracy climbs from the first point (k-means before any step) towards the
# float model. The learning rate is small because a centroid's gradient sums thousands of weights.

# %%
from kdviz.engine import start
from kdviz.present.compression_configs import kmeans_fine_tune_config
from kdviz.widgets.quantization import CentroidMonitor

config = kmeans_fine_tune_config(baseline, bits=2, init="linear", epochs=LAB.epochs_for(digits=4, other=1), lr=1e-3)
finetune = start(config)  # about 20 evaluations and 30 snapshots over the run
monitor = CentroidMonitor(finetune, layer="fc1", float_accuracy=explorer.baseline())
monitor

# %% [markdown]
# This cell waits for the fine-tuning to end (the monitor keeps drawing meanwhile).

# %%
monitor.wait()
evals = finetune.store.metrics("eval")
print(f"2-bit k-means: {evals[0]['test_acc']:.2%} before fine-tuning, {evals[-1]['test_acc']:.2%} after "
      f"(float32: {explorer.baseline():.2%})")
monitor.codebook.round(5)

# %% [markdown]
# **Think about it:** at 2 bits each layer has four shared values. Why does fine-tuning help much more
# here than at 6 bits? And why must the learning rate be smaller for `fc1` than the one that trained
# the weights? (Hint: count the weights in each cluster.) Lab 6 puts pruning, k-means and Huffman
# coding together.
