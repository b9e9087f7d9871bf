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

# %%
from kdviz.present.labs import lab_settings, lab_teacher

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, default "runs"): reopen them later, or in the app

# %%
STUDENT = dict(model="mlp", model_options={"hidden": [16]}, epochs=LAB.epochs_or(10), lr=0.02)
T, ALPHA = 4.0, 0.9  # the distillation temperature and the weight of the soft-target term

# %% [markdown]
# ## 1. The teacher (reused from lab 1 when it is already trained)

# %%
teacher = lab_teacher(LAB)
print(teacher.wait().message)  # a finished teacher with the same settings is reused at once

# %% [markdown]
# ## 2. Start two students
#
# `start` returns at once: each job trains in its own thread and writes a run folder under `LAB.runs`.
# The two students share everything (architecture, seed, learning rate, epochs) except the loss.

# %%
from kdviz.engine import start
from kdviz.widgets import RunComparison, TrainingMonitor  # imported before training starts

kd = start(LAB.config(method="kd", teacher=str(teacher.path), T=T, alpha=ALPHA, name="kd-student", **STUDENT))
scratch = start(LAB.config(method="ce", name="scratch-student", **STUDENT))
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
from kdviz.engine import open_run

n_test = len(LAB.data().test_labels)
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
