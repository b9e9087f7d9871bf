# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: a head's importance is the gradient of the loss with respect to a gate on
#       it; remove the least important, then sparsify and quantize
#     paper: Michel, Levy & Neubig 2019 (head pruning); Mishra et al. 2021 (N:M); Han
#       et al. 2016 (k-means)
#     title: Pruning heads, sparsifying and quantizing a vision transformer
#     widgets:
#     - HeadPruningMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 16 · Pruning heads, sparsifying and quantizing a vision transformer
#
# A transformer layer has several attention heads. Are they all needed? Michel, Levy & Neubig (2019),
# *Are Sixteen Heads Really Better than One?* ([arXiv:1905.10650](https://arxiv.org/abs/1905.10650)) put a gate
# ξ_h on each head's output (eq. 2) and call a head's **importance** the expected size of the loss's gradient
# with respect to its gate (eq. 4):
#
# I_h = E_x | ∂L(x) / ∂ξ_h |
#
# (by Taylor, about the loss change if the head were removed). Removing the least important heads a few at a
# time, importance recomputed in between (section 4.1), loses surprisingly little. Removed heads can be taken
# out of the weights, so the model really gets smaller. The last part compares that with the other ways to
# compress the same linear layers: N:M and unstructured sparsity, int8 and k-means codebooks.
#
# Run the cells from top to bottom; on the bundled digits data the lab takes a few minutes the first time (the
# ViT trains for 40 epochs, once; later runs reuse it) and under a minute after that.

# %%
from kdviz.present.labs import lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
HEADS_REMOVED = 8  # heads the fine-tune removes (of 16; each layer keeps one)
ROUNDS = 4  # importance is recomputed before each round
LAB

# %% [markdown]
# ## 0. A trained ViT
#
# The Transformers page's teacher preset: 4 pre-norm blocks of 4 heads, width 64, 2 x 2 patches on the 8 x 8
# digits (16 patches and a class token). Reused when it exists.

# %%
import torch

from kdviz.engine import load_trained_model, train_teacher_cached
from kdviz.present.vit_compression import teacher_options

options = teacher_options(LAB.dataset, LAB.data_root, str(LAB.runs))
options["epochs"] = LAB.epochs_or(options["epochs"])
vit_run = train_teacher_cached(options.pop("dataset"), options.pop("model"), **options)
print(vit_run.wait().message)
data = LAB.data()
model = load_trained_model(vit_run.path).eval()
probe = torch.as_tensor(data.train_images[:256]), torch.as_tensor(data.train_labels[:256])
test = torch.as_tensor(data.test_images), torch.as_tensor(data.test_labels)
print(f"heads per layer: {model.heads_per_layer}")

# %% [markdown]
# ## 1. Head importance, checked against a finite difference
#
# `head_importance` takes the gradient per example (`torch.func.vmap`), as eq. 4 reads. One head's value by a
# central difference of the loss in its gate, example by example, must agree.

# %%
import torch.nn.functional as F

from kdviz.prune.heads import head_importance

importance = head_importance(model, *probe)
x, y, layer, head, eps = probe[0][:16].double(), probe[1][:16], 2, 1, 1e-5
double = load_trained_model(vit_run.path).double().eval()
diffs = []
for i in range(len(x)):
    losses = []
    for sign in (1, -1):
        gates = torch.ones(4, 4, dtype=torch.float64)
        gates[layer, head] += sign * eps
        with torch.no_grad():
            losses.append(float(F.cross_entropy(double.forward_detailed(x[i:i + 1], gates).logits, y[i:i + 1])))
    diffs.append(abs(losses[0] - losses[1]) / (2 * eps))
check = head_importance(double, x, y)[layer, head]
print(f"layer {layer + 1}, head {head + 1}: eq. 4 = {float(check):.6f}, finite differences = {sum(diffs) / len(diffs):.6f}")

# %% [markdown]
# ## 2. The importance heatmap
#
# The raw scores of eq. 4. **Look for:** a few bright heads, and dim ones that will go first. Try
# `head_importance(model, *probe, normalize_layers=True)` (section 4.2: each layer divided by its l2 norm) and
# `head_importance_heatmap(..., normalized=True)`: every layer then looks alike.

# %%
from kdviz.figures.vit_heads import head_importance_heatmap

head_importance_heatmap(importance.numpy(), torch.zeros(4, 4, dtype=torch.bool).numpy())

# %% [markdown]
# ## 3. Accuracy as heads go, without fine-tuning: by importance against at random
#
# The paper's control: the same number of heads removed at random. **Look for:** does the importance curve stay
# high longer? On MNIST (bench `bench/vit_heads.py`, 3 seeds) it did: 92.5 % test accuracy with 6 of 16 heads
# removed, against 72.7 % in random order. Ranking the layer-normalised scores instead (section 4.2) did worse than
# random beyond 5 heads (69 %): with only 4 heads a layer it empties whole early layers first.

# %%
from kdviz.figures.vit_heads import accuracy_against_heads_removed
from kdviz.present.vit_compression import CURVE_COLOURS, dense_accuracy, pruning_curves

curves = pruning_curves(model, probe, test, fraction=0.125)
dense = dense_accuracy(model, *test)
accuracy_against_heads_removed(curves, CURVE_COLOURS, 16, dense)

# %% [markdown]
# ## 4. Removing heads for real
#
# A removed head's rows of the Q, K, V projection and its columns of the output projection go
# (`TinyViT.prune_heads`); the smaller model computes exactly what the gated one does.

# %%
from kdviz.present.vit_compression import default_removed
from kdviz.prune.heads import gate_rows, shrink

removed = default_removed(model, probe)
smaller = shrink(model, removed)
with torch.no_grad():
    gated = model.forward_detailed(test[0], gate_rows(torch.as_tensor(removed))).logits
    diff = float((smaller(test[0]) - gated).abs().max())
count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print(f"heads per layer {smaller.heads_per_layer}; parameters {count(model):,} -> {count(smaller):,}; "
      f"largest logit difference to the gated model {diff:.1e}")

# %% [markdown]
# ## 5. Heads removed against N:M, unstructured, int8 and k-means
#
# Every form of the same trained ViT, measured here (median of many forwards, one thread). **Look for:** sparse
# forms are *not* faster on a CPU (no 2:4 kernel; CSR loses to dense GEMM at these sizes), int8 is smaller and
# faster at batch 256, and removing heads is the one pruning that saves time.

# %%
from kdviz.figures.vit_heads import compression_table
from kdviz.present.vit_compression import compression_rows

rows = compression_rows(model, removed, *test, runs=10)
compression_table(rows)

# %% [markdown]
# ## 6. Prune heads while fine-tuning
#
# The `head_prune` hook removes `HEADS_REMOVED` heads in `ROUNDS` rounds over the first half of the run
# (importance on 256 training images before each round), then fine-tunes. **Look for:** the heatmap's crosses
# appearing round by round, and the fine-tuned points sitting above the no-fine-tuning curve.

# %%
from kdviz.engine import start
from kdviz.present.vit_compression import head_prune_config
from kdviz.widgets.vit_heads import HeadPruningMonitor  # imported before training starts

job = start(head_prune_config(str(vit_run.path), HEADS_REMOVED, ROUNDS, epochs=LAB.epochs_or(3), runs_root=str(LAB.runs)))
monitor = HeadPruningMonitor(job, curves=curves, dense_accuracy=dense)
monitor

# %% [markdown]
# ## 7. The numbers

# %%
from kdviz.methods.head_prune import HEAD_PRUNE, shrunk_model
from kdviz.present import as_run_view

monitor.wait()
view = as_run_view(job.path)
view.refresh()
last = view.read(HEAD_PRUNE)
pruned = shrunk_model(load_trained_model(job.path).eval(), last)
print(f"{last.heads_removed} heads removed, fine-tuned: {job.status().test_acc:.1%} test accuracy "
      f"(all heads {dense:.1%}); heads per layer {pruned.heads_per_layer}")

# %% [markdown]
# **Try next** (change a setting and run everything again; each run gets its own folder):
#
# * `HEADS_REMOVED = 12`: one head per layer. How much does fine-tuning win back?
# * `head_importance(..., per_example=False)`: the released code's convention (one gradient per batch). Do the
#   rankings change?
# * The bench `bench/vit_heads.py` runs importance against random order on MNIST and times the shrunk model.
