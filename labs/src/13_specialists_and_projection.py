# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: two more ways to move knowledge into a cheaper model; specialists for the
#       classes a generalist confuses, and a projection net that sees only a few hash
#       bits of the input
#     paper: Hinton et al. 2015, section 5; Ravi 2017
#     title: Specialists and ProjectionNet
#     widgets:
#     - SpecialistsMonitor
#     - ProjectionMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 13 · Specialists and ProjectionNet
#
# Two members of the distillation family that change *what* learns, not only the loss:
#
# * **Specialists** (Hinton, Vinyals & Dean 2015, *Distilling the Knowledge in a Neural Network*,
#   [arXiv:1503.02531](https://arxiv.org/abs/1503.02531), section 5): a generalist is trained on all classes;
#   the classes it confuses are found by clustering the covariance of its predicted probabilities (5.2); one
#   specialist per confusable subset learns those classes plus a *dustbin* class for all the others, starting
#   from the generalist's weights; at test time the generalist's and the active specialists' distributions are
#   combined by minimising $\mathrm{KL}(p^g\|q) + \sum_m \mathrm{KL}(p^m\|q)$ over $q$ (5.3).
# * **ProjectionNet** (Ravi 2017, *ProjectionNet: Learning Efficient On-Device Deep Networks Using Neural
#   Projections*, [arXiv:1708.00630](https://arxiv.org/abs/1708.00630), eq. 1): the input is hashed by T
#   locality-sensitive functions of d bits each (signs of random projections, rebuilt from a seed, so they cost
#   no storage), and a tiny network on those T·d bits is trained **jointly** with a full *trainer* network:
#   $\lambda_1 L_\theta + \lambda_2 L_p + \lambda_3 \hat L_p$ (trainer on labels, projection net on the
#   trainer's predictions, projection net on labels).
#
# Both run as background jobs through kdviz's engine; the monitors below only read what the runs write. On the
# bundled digits each part takes well under a minute on two CPU cores.

# %%
from kdviz.present.labs import lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %% [markdown]
# ## 1. Specialists
#
# A small generalist (an MLP with 16 hidden units) leaves some digits confusable. 300 training images are held
# out to measure the covariance of its probabilities; k-means on the covariance's columns (the diagonal set to
# zero: on digits the raw columns cluster by how confident the generalist is, not by what it confuses) gives
# subsets of 2-4 classes, and up to three specialists train on them.

# %%
from kdviz.present.specialists import SpecialistsPlan, generalist_config, specialists_experiment
from kdviz.widgets.specialists import SpecialistsMonitor

generalist = LAB.config(model="mlp", model_options={"hidden": [16]}, epochs=LAB.epochs_or(20), lr=0.05, batch_size=32,
                        snapshot_every=0, name="generalist")
plan = SpecialistsPlan(generalist_config(generalist, 300), clusters=5, count=3, max_size=4,
                       epochs=LAB.epochs_or(10), lr=0.02)
specialists = specialists_experiment(plan, title="Specialists")
SpecialistsMonitor(specialists)

# %% [markdown]
# **What to look for:** the covariance matrix with the subsets outlined (which digits does the generalist mix
# up?), then each specialist's accuracy curve, and finally the gain of the combination on the classes the
# specialists cover.

# %%
import pandas as pd
from kdviz.present.specialists import specialists_caption

specialists.wait()
print(specialists_caption(specialists))
result = specialists.result()
if result is not None:
    display(pd.DataFrame([{"class": c.name, "test images": c.images, "generalist (%)": round(100 * c.generalist, 1),
                           "combined (%)": round(100 * c.combined, 1)} for c in result.covered]))
    print(f"size: generalist {result.generalist_bytes:,} bytes; with its specialists {result.total_bytes:,} bytes")

# %% [markdown]
# Measured over three seeds (`bench/specialists.py`; README): on MNIST the specialists add +0.21 ± 0.06 points
# (higher on 3 of 3 seeds); on digits +0.15 ± 0.26 (level within the seed noise). Every specialist is a full
# copy of the generalist, so the ensemble is 3-4x its size: specialists buy accuracy, not compression.
#
# ## 2. ProjectionNet
#
# Four projection nets at 64, 32, 16 and 8 bits (T = 8, 4, 2, 1 hash functions of d = 8 bits), each trained
# jointly with its own MLP 256-256 trainer.

# %%
from kdviz.engine import JobManager, start
from kdviz.present.projection_story import model_sizes, projection_configs
from kdviz.widgets.projection import ProjectionMonitor

configs = projection_configs(dataset=LAB.dataset, data_root=LAB.data_root, num_hashes=8, bits_per_hash=8, hidden=128,
                             lambda1=1.0, lambda2=1.0, lambda3=1.0, epochs=LAB.epochs_or(10), lr=0.05, seed=0,
                             runs_root=LAB.runs)
manager = JobManager(max_concurrent=2, cpu_threads=1)
projection_jobs = {name: start(config, manager) for name, config in configs.items()}
ProjectionMonitor(projection_jobs)

# %% [markdown]
# **What to look for:** the bits of the probe digits never change (the projection is fixed), but the class
# probabilities the net reads from them sharpen as it trains; accuracy climbs with the number of bits.

# %%
data = LAB.data()
rows = []
for name, job in projection_jobs.items():
    job.wait()
    sizes = model_sizes(configs[name], tuple(data.input_shape), data.num_classes)
    rows.append({"run": name, "test accuracy (%)": round(100 * job.status().test_acc, 1),
                 "projection net bytes": sizes.projection_bytes, "trainer bytes": sizes.trainer_bytes})
pd.DataFrame(rows)

# %% [markdown]
# Measured over three seeds (`bench/projection_net.py`; README): on MNIST a 600-bit projection net reaches
# 94.8 % at 313 KB against its trainer's 97.4 % at 1.08 MB; on digits 128 bits reach 93.6 %. The distillation
# term was level with a label-only net on digits: the projection's bits, not the trainer, limit the net here.
#
# **Try next:** `hidden=64` or `bits_per_hash=12` in `projection_configs`; `top_n=2` in `SpecialistsPlan`
# (more specialists active per image); or the **Specialists** and **ProjectionNet** pages of the app.
