# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: a small net trained on the teacher's soft targets against the same net from
#       scratch, live
#     paper: Hinton, Vinyals & Dean 2015, sections 2 and 3
#     title: Distil a student
#     widgets:
#     - TrainingMonitor
#     - RunComparison
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 2 · Distil a student, live
#
# Two copies of the same small network learn the digits side by side: one **from scratch** on the hard
# labels, one by **knowledge distillation** (KD) from the teacher of lab 1 (Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*, [arXiv:1503.02531](https://arxiv.org/abs/1503.02531), section 2):
#
# $$L = \alpha\, T^2\, \mathrm{KL}\big(p^{\text{teacher}}_T \,\|\, q^{\text{student}}_T\big) + (1 - \alpha)\, \mathrm{CE}(y, q^{\text{student}}_1)$$
#
# The first term matches the student's soft targets to the teacher's at temperature T; the T² keeps its
# gradients comparable to the hard-label term. On MNIST, Hinton et al. report 146 test errors for a
# small net trained alone and 74 for the same net distilled from a big teacher (section 3).
#
# The jobs train in background threads, so the charts update while you read. On digits the lab takes
# about a minute on two CPU cores.

# %% shared="settings"
import os

DATASET = "digits"  # or "mnist" with MNIST_ROOT = "/path/to/folder/with/the/four/idx/files"
MNIST_ROOT = None
RUNS = os.environ.get("KDVIZ_RUNS", "runs")  # run folders go here (reopen them later, or in the app)

if DATASET == "digits":  # 8x8 images: a small teacher is plenty, and trains in seconds
    TEACHER = dict(model_options={"hidden": [256, 256], "dropout": 0.2}, epochs=20)
else:  # Hinton et al. (section 3): two hidden layers of 1200 units, dropout, 2-pixel jitter
    TEACHER = dict(model_options={"hidden": [1200, 1200], "dropout": 0.2}, jitter_px=2, epochs=5)
LAB_EPOCHS = os.environ.get("KDVIZ_LAB_EPOCHS")  # CI sets a small number so the lab runs fast
if LAB_EPOCHS:
    TEACHER["epochs"] = int(LAB_EPOCHS)

# %%
STUDENT = dict(model="mlp", model_options={"hidden": [16]}, epochs=10, lr=0.02)  # 16 hidden units
if LAB_EPOCHS:
    STUDENT["epochs"] = int(LAB_EPOCHS)
T, ALPHA = 4.0, 0.9  # the distillation temperature and the weight of the soft-target term

# %% [markdown]
# ## 1. The teacher (reused from lab 1 when it is already trained)

# %% shared="teacher"
from kdviz.engine import train_teacher_cached

teacher = train_teacher_cached(DATASET, "mlp", data_root=MNIST_ROOT, runs_root=RUNS, **TEACHER)
print(teacher.wait().message)  # a finished teacher with the same settings is reused at once

# %% [markdown]
# ## 2. Start two students
#
# `start` returns at once: each job trains in its own thread and writes a run folder under `RUNS`.
# The two students share everything (architecture, seed, learning rate, epochs) except the loss.

# %%
from kdviz.engine import TrainConfig, start
from kdviz.widgets import RunComparison, TrainingMonitor  # imported before training starts

common = dict(dataset=DATASET, data_root=MNIST_ROOT, runs_root=RUNS, **STUDENT)
kd = start(TrainConfig(method="kd", teacher=str(teacher.path), T=T, alpha=ALPHA, name="kd-student", **common))
scratch = start(TrainConfig(method="ce", name="scratch-student", **common))
kd, scratch

# %% [markdown]
# ## 3. Watch them learn
#
# **What to look for:**
#
# * **Accuracy** (left): the KD student (vermillion) usually climbs faster than the scratch student
#   (green) at the same learning rate, and ends closer to the teacher (dashed blue line).
# * **Loss** (right, for the run picked under *details of*): for the KD student the soft-target term
#   dominates the total, because α = 0.9 and T² = 16. Its hard-label term still falls, although it gets
#   only 10 % of the weight.
# * **Soft targets on a probe image** (bottom): at T = 4 the KD student's bars move towards the
#   teacher's, wrong classes included. Switch *details of* to the scratch student: it has no teacher
#   bars, and its runner-up classes need not match the teacher's.
#
# **Pause** and **Stop** act between two steps. They respond while no other cell runs.

# %%
monitor = TrainingMonitor({"KD student": kd, "scratch student": scratch})
monitor

# %% [markdown]
# ## 4. Wait for the end
#
# This cell blocks until both jobs have ended. The monitor keeps drawing while it waits, but its buttons
# wait for the kernel, so play with Pause and Stop before you run it.

# %%
for job in (kd, scratch):
    print(f"{job.name}: {job.wait().message}")

# %% [markdown]
# ## 5. Compare the finished runs
#
# `RunComparison` reads the run folders, so the same cell works tomorrow with folder paths instead of
# jobs. Switch the metric to *agreement with the teacher*: how often the student predicts the same
# class as the teacher on the test set.

# %%
RunComparison({"teacher": teacher, "KD student": kd, "scratch student": scratch})

# %%
import pandas as pd
from kdviz import load_dataset
from kdviz.engine import open_run

n_test = len(load_dataset(DATASET, root=MNIST_ROOT).test_labels)
rows = []
for label, job in {"teacher": teacher, "KD student": kd, "scratch student": scratch}.items():
    acc = [r["test_acc"] for r in open_run(job.path).metrics("eval")][-1]
    rows.append({"run": label, "test accuracy": f"{acc:.2%}", "test errors": round((1 - acc) * n_test)})
pd.DataFrame(rows).set_index("run")

# %% [markdown]
# **Try next** (change the settings cell and run everything again; each run gets its own folder):
#
# * T = 1: the soft targets are nearly the hard labels. Does KD still help?
# * T = 20, or α = 0.5: more or less weight on the teacher.
# * `"hidden": [8]` or `[64]`: a smaller or a bigger student. When does the teacher help most?
