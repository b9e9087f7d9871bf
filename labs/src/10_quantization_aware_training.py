# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: train with the rounding in the loop, and learn the step size of the grid
#     paper: Jacob et al. 2018 (QAT); Esser et al. 2020 (LSQ)
#     title: Quantization-aware training and learned step sizes
#     widgets:
#     - QATMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 10 · Quantization-aware training and learned step sizes
#
# Post-training quantization (lab 5, lab 11) rounds a trained network and hopes. At 8 bits that works; at 2 or
# 3 bits it does not. Two ideas fix it by **training with the rounding in the forward pass**:
#
# * **QAT** (Jacob et al. (2018), *Quantization and Training of Neural Networks for Efficient
#   Integer-Arithmetic-Only Inference*, [arXiv:1712.05877](https://arxiv.org/abs/1712.05877), eq. 1-2): weights
#   and activations are *fake-quantized*, r ↦ S (clamp(round(r/S) + Z) − Z), and the gradient passes straight
#   through the rounding (Bengio et al. 2013). The scale S follows each tensor's range.
# * **LSQ** (Esser et al. (2020), *Learned Step Size Quantization*, ICLR,
#   [arXiv:1902.08153](https://arxiv.org/abs/1902.08153)): the step size s is a parameter, learned by its own
#   gradient (eq. 3), scaled by g = 1/√(N·Q_P) (section 2.2) so that it learns at the weights' pace.
#
# Run the cells from top to bottom; on the bundled digits data the lab takes well under a minute.

# %%
from kdviz.present.labs import lab_baseline, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
BITS = 2  # bits of the middle layers; the first and last keep 8, as in both papers
EPOCHS = LAB.epochs_or(3)  # fine-tuning epochs
LAB

# %% [markdown]
# ## 0. A trained LeNet-300-100
#
# The same baseline as labs 4, 5, 6 and 11 (reused when it exists).

# %%
from kdviz.engine import load_trained_model

baseline = lab_baseline(LAB)
print(baseline.wait().message)
data = LAB.data()
model = load_trained_model(baseline.path).eval()

# %% [markdown]
# ## 1. Fake quantization and its straight-through gradient
#
# `fc2`'s weights at 3 bits, symmetric, one scale per output channel. Our `fake_quantize` against torch's own
# `torch.fake_quantize_per_channel_affine` on the same weights: the values and the gradients agree. The gradient
# is 1 wherever the weight lies inside the grid's range, 0 where it was clamped.

# %%
import torch

from kdviz.quant.fake_quant import fake_quantize, range_params, tensor_range

w = model.fc2.weight.detach().clone().requires_grad_(True)
params = range_params(*tensor_range(w, per_channel=True), bits=3, symmetric=True)
ours = fake_quantize(w, params)
ours.sum().backward()
w_ref = w.detach().clone().requires_grad_(True)
ref = torch.fake_quantize_per_channel_affine(w_ref, params.scale, params.zero_point, 0, params.qmin, params.qmax)
ref.sum().backward()
print(f"largest difference to torch: values {float((ours - ref).abs().max()):.1e}, "
      f"gradients {float((w.grad - w_ref.grad).abs().max()):.1e}")
print(f"distinct values in channel 0: {len(torch.unique(ours[0]))} (3 bits: at most 8)")

# %% [markdown]
# ## 2. LSQ's step-size gradient (eq. 3)
#
# For one value v, d v̂ / d s is round(v/s) − v/s inside the range (small, either sign: it nudges s so the grid
# lines sit on the values) and −Q_N or Q_P outside it (large: a clipped value pulls the range outwards).
# **Look for:** the sawtooth in the middle and the two steps at the ends.

# %%
import plotly.graph_objects as go

from kdviz.quant.lsq import lsq_range, step_gradient_eq3

q_n, q_p = lsq_range(2, signed=True)
ratio = torch.linspace(-4, 4, 801)
go.Figure(go.Scatter(x=ratio.numpy(), y=step_gradient_eq3(ratio, 1.0, q_n, q_p).numpy(), mode="lines"),
          layout={"title": "LSQ eq. 3 at 2 bits: d v̂ / d s against v / s", "xaxis_title": "v / s",
                  "yaxis_title": "d v̂ / d s", "height": 320})

# %% [markdown]
# ## 3. Post-training quantization at 8, 4, 3 and 2 bits
#
# Weights per channel from their min and max, activations from 256 calibration images, nothing trained.

# %%
from kdviz.present.qat_story import float_accuracy, ptq_accuracies

float_acc = float_accuracy(model, data)
ptq = ptq_accuracies(model, data, (8, 4, 3, 2))
print(f"float {float_acc:.1%}; PTQ " + ", ".join(f"{b} bits {a:.1%}" for b, a in ptq.items()))

# %% [markdown]
# ## 4. QAT and LSQ fine-tune the baseline at the same bits
#
# Both start from the baseline's weights (`init_from`), as in practice. They train in background threads; the
# monitor below follows them.
#
# **What to look for:**
#
# * **Step sizes** (left): LSQ's learned steps move in the first steps, then settle; QAT's follow the weights' range.
# * **Weights and grid** (right, pick a layer): the bars are the float weights underneath, the lines the values
#   they snap to. At 2 bits only 4 lines: many weights share one value, and the outer lines clip the tails.
# * **Accuracy against bits** (bottom): each finished run adds its point beside PTQ's curve.

# %%
from kdviz.present import Experiment
from kdviz.present.qat_story import qat_fine_tune_config
from kdviz.widgets.qat import QATMonitor  # imported before training starts

experiment = Experiment()
for kind, label in (("qat", "QAT"), ("lsq", "LSQ")):
    experiment.start(label, qat_fine_tune_config(baseline, kind, BITS, epochs=EPOCHS, runs_root=LAB.runs))
monitor = QATMonitor(experiment, ptq=ptq, float_accuracy=float_acc)
monitor

# %% [markdown]
# ## 5. The numbers
#
# When both runs have ended: each one's test accuracy against PTQ at the same bits.

# %%
monitor.wait()
for name, job in experiment.jobs.items():
    acc = job.status().test_acc
    print(f"{name} at {BITS} bits: {acc:.1%} ({100 * (acc - ptq[BITS]):+.1f} points against PTQ, "
          f"{100 * (acc - float_acc):+.1f} against float)")

# %% [markdown]
# **Try next** (change a setting and run everything again; each run gets its own folder):
#
# * `BITS = 4`: QAT alone nearly closes the gap to float; LSQ's learned steps matter most at 2-3 bits.
# * `qat_fine_tune_config(..., first_last_bits=None)`: quantize the first and last layers too. Which approach
#   suffers more?
# * The bench `bench/qat_lsq.py` runs LeNet-5 on MNIST at 8/4/3/2 bits over three seeds.
