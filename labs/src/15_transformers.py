# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: distil a vision transformer layer by layer (attention matrices, hidden states,
#       predictions) and watch the student's attention move to the teacher's
#     paper: Jiao et al. 2020 (TinyBERT), eqs. 7-11; Abnar & Zuidema 2020 (attention
#       rollout)
#     title: Distilling a vision transformer
#     widgets:
#     - ViTDistillMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 15 · Distilling a vision transformer
#
# A vision transformer (Dosovitskiy et al. 2021) cuts a digit into patches, adds a class token, and lets every
# token look at every other through **attention**: per head, one row of softmax(QKᵀ/√d) per token. TinyBERT
# (Jiao et al. 2020, *TinyBERT: Distilling BERT for Natural Language Understanding*,
# [arXiv:1909.10351](https://arxiv.org/abs/1909.10351)) distils a transformer **layer by layer**, student
# layer m learning from teacher layer g(m):
#
# * attention matrices (eq. 7): L_attn = 1/h Σ_i MSE(A_i^S, A_i^T);
# * hidden states through a learned projection (eq. 8): L_hidn = MSE(H^S W_h, H^T);
# * the embedding layer (eq. 9): L_embd = MSE(E^S W_e, E^T);
# * the predictions (eq. 10), here Hinton's T² KL(p_T ‖ p_S).
#
# The lab checks eq. 7 by hand, trains a distilled student beside the same student alone and watches the
# student's attention maps move towards the teacher's. On the bundled digits it runs in a minute or two the
# first time (the teacher trains once) and in seconds with `$KDVIZ_LAB_EPOCHS` set.

# %%
from kdviz.present.labs import lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
WEIGHTS = dict(prediction_weight=1.0, hidden_weight=1.0, attention_weight=1.0, embedding_weight=0.0)
LAB

# %% [markdown]
# ## 1. The teacher: 4 layers x 4 heads (reused when it exists; lab 16 prunes the same one)

# %%
from kdviz.engine import load_trained_model, train_teacher_cached
from kdviz.present.vit_configs import teacher_run_options

options = teacher_run_options(LAB.dataset, LAB.data_root, str(LAB.runs))
options["epochs"] = LAB.epochs_or(options["epochs"])
teacher = train_teacher_cached(options.pop("dataset"), options.pop("model"), **options)
print(teacher.wait().message)

# %% [markdown]
# ## 2. Eq. 7 by hand, for one pair of layers
#
# The student has 2 layers of 2 heads, the teacher 4 of 4. The uniform mapping g(m) = m·N/M pairs student layer
# 1 with teacher layer 2 and 2 with 4; each student head learns the mean of a group of 2 teacher heads. The
# loss from `kdviz.distill.transformer` must equal the mean of the squared differences, computed here.

# %%
import torch

from kdviz.distill import transformer as tb
from kdviz.models import build_model
from kdviz.present.vit_configs import student_config

data = LAB.data()
probe = torch.as_tensor(data.test_images[:32])
teacher_model = load_trained_model(teacher.path).eval()
torch.manual_seed(0)
untrained = build_model("vit", data.input_shape, 10, **student_config(LAB.dataset).model_options).eval()
with torch.no_grad():
    t_att = teacher_model.forward_detailed(probe).attentions
    s_att = untrained.forward_detailed(probe).attentions
pairs = tb.layer_pairs(len(s_att), len(t_att), "uniform")
by_library = tb.attention_pair_losses(s_att, t_att, pairs)
grouped = t_att[1].reshape(32, 2, 2, 17, 17).mean(dim=2)  # teacher layer 2: heads (1, 2) and (3, 4) averaged
by_hand = ((s_att[0] - grouped) ** 2).mean()
print(f"pairs {pairs}; layer 1 <- 2: library {float(by_library[0]):.6f}, by hand {float(by_hand):.6f}")

# %% [markdown]
# ## 3. A distilled student beside the same student alone
#
# Same seed, data, batches and schedule; only the distilled one sees the teacher. The monitor redraws while
# they train: the class token's attention over the probe digit's 4 x 4 patches, per layer and head (teacher
# left, student right), the attention rollout of both, the losses and the accuracy.
#
# **Look for:** the student's squares take the teacher's bright patches within the first epochs; the
# attention loss falls fastest; the rollouts grow alike.

# %%
from kdviz.present import Experiment
from kdviz.present.vit_story import distill_experiment
from kdviz.widgets.vit import ViTDistillMonitor

configs = distill_experiment(str(teacher.path), LAB.dataset, runs_root=str(LAB.runs), data_root=LAB.data_root,
                             epochs=LAB.epochs_or(60), pace_s=None, **WEIGHTS)
experiment = Experiment()
for name, config in configs.items():
    experiment.start(name, config)
monitor = ViTDistillMonitor(experiment)
monitor

# %% [markdown]
# ## 4. Did the student alone learn to look where the teacher looks?
#
# When both have ended: eq. 7 (summed over the mapped pairs) of each student against the teacher on the probe.

# %%
monitor.wait()
for name, job in experiment.jobs.items():
    student = load_trained_model(job.path).eval()
    with torch.no_grad():
        s_att = student.forward_detailed(probe).attentions
    loss = float(tb.attention_pair_losses(s_att, t_att, pairs).sum())
    print(f"{name:18s} test accuracy {job.status().test_acc:.1%} · attention loss to the teacher {loss:.5f}")

# %% [markdown]
# **Try next** (change a setting and run again; each run gets its own folder):
#
# * `WEIGHTS["attention_weight"] = 0`: hidden states and predictions only. Do the maps still converge?
# * `distill_experiment(..., layer_mapping="last")`: only the last layers are paired.
# * `attention_kind="scores"`: TinyBERT's unnormalised scores QKᵀ/√d instead of the softmax rows.
# * `train_subset=200`: 20 labelled images per class, where a teacher usually helps most.
