# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: a model defined here, not in kdviz's zoo, wrapped so every view accepts
#       it, then distilled, pruned and quantized
#     paper: Hinton et al. 2015; Zagoruyko & Komodakis 2017; Han et al. 2015 and 2016
#     title: Your own model
#     widgets:
#     - TrainingMonitor
#     - PruningExplorer
#     - QuantizationExplorer
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 14 · Your own model
#
# The other labs use kdviz's zoo (MLPs, LeNets, ResNets). Here you write the network yourself, as any PyTorch
# user would, and `wrap` it: kdviz then taps its intermediate features by name (forward hooks), finds the layers
# pruning and quantization act on, and trains it through the same engine as every page of the app.
#
# The lab: define a small CNN, wrap it and look at what kdviz found; distil it from the lab's teacher beside a
# student trained alone (Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*,
# [arXiv:1503.02531](https://arxiv.org/abs/1503.02531)); compare its attention maps with a fresh copy's
# (Zagoruyko & Komodakis (2017), *Paying More Attention to Attention*, [arXiv:1612.03928](https://arxiv.org/abs/1612.03928));
# then prune it by magnitude (Han et al. 2015, [arXiv:1506.02626](https://arxiv.org/abs/1506.02626)) and share its
# weights by k-means (Han et al. 2016, [arXiv:1510.00149](https://arxiv.org/abs/1510.00149)) with the widgets.

# %%
from kdviz.present.labs import lab_settings, lab_teacher

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
EPOCHS = LAB.epochs_for(digits=6, other=1)  # the students' epochs
TRANSFER = 300  # labelled training images the students see (class-balanced); soft targets matter most when few

# %% [markdown]
# ## 1. A model of your own
#
# Nothing kdviz-specific: an `nn.Module` with its own `forward`. It takes the image shape and the number of
# classes so the engine can build a fresh copy for each run.

# %%
import torch
import torch.nn.functional as F
from torch import nn


class MyCNN(nn.Module):
    def __init__(self, input_shape=(1, 8, 8), num_classes=10):
        super().__init__()
        c, h, w = input_shape
        self.stem = nn.Conv2d(c, 8, 3, padding=1)
        self.body = nn.Conv2d(8, 16, 3, padding=1)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16 * (h // 2) * (w // 2), num_classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.max_pool2d(F.relu(self.body(x)), 2)
        return self.head(self.drop(x.flatten(1)))


# %% [markdown]
# ## 2. Wrap it
#
# `wrap` runs one forward pass to find the features (every Conv and Linear output but the logits; pass
# `layers=[...]` to choose others) and keeps your module names, so pruning tables read `stem`, `body`, `head`.
# Its `nn.Dropout` becomes kdviz's seeded dropout (same maths), so a run is the same alone or beside others.

# %%
from kdviz.models.wrapped import register_wrapped, wrap

data = LAB.data()
model = wrap(MyCNN(data.input_shape, data.num_classes), input_shape=data.input_shape)
print(model.describe())
logits, features = model.forward_with_features(data.test_images[:4])
{name: tuple(f.shape) for name, f in features.items()}

# %% [markdown]
# ## 3. Distil it
#
# The engine builds models by name, so register a builder: `TrainConfig(model="my-cnn")` then trains a fresh,
# wrapped copy per run. Two students see the same `TRANSFER` labelled images: one learns from the teacher's soft
# targets (T = 4), one from the labels alone.
#
# **Look for:** where the two curves end. On the defaults (digits, seed 0, 2-core VM, November 2026) the KD
# student ended at 90.7 % test accuracy and the scratch student at 88.4 %.

# %%
from kdviz.engine import start
from kdviz.widgets import TrainingMonitor

register_wrapped("my-cnn", MyCNN)
teacher = lab_teacher(LAB)
teacher.wait()
common = dict(model="my-cnn", epochs=EPOCHS, train_subset=TRANSFER, lr=0.05, batch_size=32, eval_every=10,
              snapshot_every=10)
kd = start(LAB.config(method="kd", teacher=str(teacher.path), T=4.0, alpha=0.9, name="my-cnn-kd", **common))
scratch = start(LAB.config(method="ce", name="my-cnn-scratch", **common))
monitor = TrainingMonitor({"KD student": kd, "scratch student": scratch})
monitor

# %%
for label, job in (("KD student", kd), ("scratch student", scratch)):
    print(f"{label}: {job.wait().message}")

# %% [markdown]
# ## 4. Where does it look?
#
# Attention maps (Zagoruyko & Komodakis, eq. 2: the sum over channels of squared activations) of the trained
# student's `body` layer beside an untrained copy's, for the same test digits. Does training gather the mass on
# fewer pixels? (On the defaults: 55 % of it on the top quarter of pixels, against 31 % untrained.)

# %%
from kdviz.distill.attention import attention_map
from kdviz.engine import load_trained_model

student = load_trained_model(kd.path).eval()
fresh = wrap(MyCNN(data.input_shape, data.num_classes), input_shape=data.input_shape).eval()
with torch.no_grad():
    trained_maps = attention_map(student.forward_with_features(data.test_images[:6])[1]["body"])
    fresh_maps = attention_map(fresh.forward_with_features(data.test_images[:6])[1]["body"])
print("share of attention on the brightest quarter of pixels, trained vs fresh:")
for name, maps in (("trained", trained_maps), ("fresh", fresh_maps)):
    flat = maps.flatten(1)
    top = flat.topk(flat.shape[1] // 4, dim=1).values.sum(1) / flat.sum(1)
    print(f"  {name}: {top.mean():.2f}")

# %% [markdown]
# ## 5. Prune and quantize it
#
# The widgets take the wrapped model as they take a zoo model. Drag the sparsity and find the knee: this model
# has about 3,800 weights where LeNet-300-100 (lab 4) has 50,000 on digits. Then share each layer's weights
# among 2^bits values with k-means.

# %%
from kdviz.widgets import PruningExplorer, QuantizationExplorer

PruningExplorer(student, data, sparsity=0.7)

# %%
QuantizationExplorer(student, data, bits=3)

# %% [markdown]
# ## 6. The same in one run
#
# A fine-tuning run from the KD student's weights with the `prune` hook (80 % of each layer, one shot, then
# fine-tuned with the pruned weights held at zero): the engine treats your model like its own.

# %%
pruned = start(LAB.config(model="my-cnn", init_from=str(kd.path), epochs=1, train_subset=TRANSFER, lr=0.01,
                          batch_size=32, name="my-cnn-pruned",
                          hooks=[{"name": "prune", "sparsity": 0.8, "schedule": "one-shot"}]))
print(pruned.wait().message)
fine_tuned = load_trained_model(pruned.path)
print({name: f"{float((p == 0).float().mean()):.0%} zeros" for name, p in fine_tuned.named_parameters() if name.endswith("weight")})
