# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: where to clip a range, which layer breaks accuracy, and how many bits each
#       layer needs
#     paper: Banner et al. 2019; AIMET's per-layer analysis; Dong et al. 2019 / Yao
#       et al. 2021 (HAWQ)
#     title: Post-training quantization
#     widgets:
#     - PTQExplorer
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 11 · Post-training quantization: ranges, the layer that breaks, mixed precision
#
# Lab 5 quantized weights by their min and max. Without any retraining, three choices decide how much a
# quantized network loses:
#
# * **The range.** A uniform quantizer spreads 2^b levels over [lo, hi] (Jacob et al. (2018), *Quantization
#   and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference*,
#   [arXiv:1712.05877](https://arxiv.org/abs/1712.05877), eq. 1). Min-max keeps every outlier; a percentile
#   or the clipping value of least squared error (Banner, Nahshan & Soudry (2019), *Post training 4-bit
#   quantization of convolutional networks for rapid-deployment*, [arXiv:1810.05723](https://arxiv.org/abs/1810.05723))
#   clips a few to give the many small values finer steps. Activations get their ranges from a few
#   calibration batches.
# * **Which layer breaks.** Quantize one layer at a time, the others float, and measure its output's
#   signal-to-quantization-noise ratio and the accuracy lost (AIMET's per-layer analysis).
# * **How many bits each layer gets.** Under a size budget, give the sensitive layers more bits
#   (Dong et al. (2019), *HAWQ*, [arXiv:1905.03696](https://arxiv.org/abs/1905.03696); Yao et al. (2021),
#   *HAWQ-V3*, [arXiv:2011.10680](https://arxiv.org/abs/2011.10680), whose integer program we solve
#   with measured accuracy drops).
#
# Run the cells from top to bottom; on the bundled digits data the lab takes well under a minute.

# %%
from kdviz.present.labs import lab_baseline, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %% [markdown]
# ## 0. A trained LeNet-300-100
#
# The same baseline as labs 4, 5 and 6 (reused when it exists).

# %%
from kdviz.engine import load_trained_model

baseline = lab_baseline(LAB)
print(baseline.wait().message)
data = LAB.data()
model = load_trained_model(baseline.path).eval()

# %% [markdown]
# ## 1. One tensor, three ranges
#
# `fc1`'s weights at 3 bits. For each method: the range it picks and the mean squared quantization
# error. torch.ao's `HistogramObserver` searches the same thing from a histogram, but scores it against
# 256 levels whatever the bit width, and stops at the first local minimum.

# %%
import torch
from torch.ao.quantization.observer import HistogramObserver

from kdviz.quant.ranges import RANGE_METHODS, clip_range, quantization_mse, tensor_params
from kdviz.quant.uniform import QuantParams

w = model.fc1.weight.detach()
for method in RANGE_METHODS:
    lo, hi = clip_range(w, 3, method, symmetric=True, percentile=99.9)
    params = tensor_params(w, 3, method, symmetric=True, percentile=99.9)
    print(f"{method:>10}: range ±{float(hi):.4f}, squared error {quantization_mse(w, params):.3e}")
hist = HistogramObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-3, quant_max=3)
hist(w)
scale, zero_point = hist.calculate_qparams()
theirs = QuantParams(scale.reshape(()), zero_point.reshape(()).float(), -3, 3)
print(f"torch.ao HistogramObserver: range ±{3 * float(scale):.4f}, squared error {quantization_mse(w, theirs):.3e}")

# %% [markdown]
# ## 2. The whole network: calibrate, then compare the range methods
#
# `ptq_evaluator` copies the model, calibrates every layer's input on the first 256 training images
# (forward hooks) and tests on the test set. Every layer's weights at 8, 4 and 3 bits, inputs at 8 bits.

# %%
import pandas as pd

from kdviz.figures.ptq import range_methods_chart
from kdviz.present.ptq import ptq_evaluator
from kdviz.quant.layer_noise import compare_ranges
from kdviz.quant.ranges import RangeSpec

ev = ptq_evaluator(model, data)
rows = compare_ranges(ev, (8, 4, 3), RangeSpec(act_bits=8))
print(f"float32: {ev.float_accuracy:.2%}")
display(pd.DataFrame(rows).pivot(index="bits", columns="method", values="accuracy").sort_index(ascending=False))
range_methods_chart(rows, ev.float_accuracy)

# %% [markdown]
# ## 3. Which layer breaks accuracy?
#
# Each layer alone at 2 bits (MSE ranges). **Look for:** the bar in vermillion, named in the title.

# %%
from kdviz.figures.ptq import layer_noise_chart
from kdviz.quant.layer_noise import layer_noise, worst_layer

spec = RangeSpec("mse", act_bits=8)
noise = layer_noise(ev, 2, spec)
worst = worst_layer(noise)
for n in noise:
    print(f"{n.layer}: output SQNR {n.sqnr_db:5.1f} dB, accuracy {n.accuracy:.2%} ({-100 * n.drop:+.2f} points)")
layer_noise_chart([n.layer for n in noise], [n.sqnr_db for n in noise], [n.drop for n in noise], worst.layer, 2)

# %% [markdown]
# ## 4. Mixed precision against uniform bits at the same size
#
# The sweep quantizes each layer alone at 2..8 bits; the knapsack then picks one width per layer with
# the least summed drop whose weights fit in the size of uniform 3 bits. The chosen model is measured.

# %%
from kdviz.present.ptq import PTQSettings, ptq_study

study = ptq_study(ev, PTQSettings(method="mse", bits=2, uniform_bits=3))
print(study.mixed_sentence().replace("**", ""))
charts = study.charts()
charts["chosen-bits"]

# %%
charts["accuracy-vs-size"]

# %% [markdown]
# ## 5. Explore
#
# The same views with controls: range method, activation bits, per-channel scales, the bits of the
# layer view and the uniform width to match.

# %%
from kdviz.widgets.ptq import PTQExplorer

PTQExplorer(model, data, PTQSettings(method="mse", bits=3, uniform_bits=3))

# %% [markdown]
# **Think about it:** why does min-max lose more at 3 bits than at 8? Which layer gets the most bits,
# and is it the one with the most weights? Turn on per-channel scales: which range method gains most,
# and why? Lab 5's fine-tuning and quantization-aware training win back what no range can.
