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
# Soft targets matter most when labelled data are scarce: Hinton et al. (section 3) train a speech
# model on 3 % of the data and keep most of the full model's accuracy. So both students here learn
# from a small **transfer set**: `TRANSFER` below is how many labelled images they see (the app's
# defaults, `kdviz.present.distill_configs.distill_defaults`: 100 on digits, 10 per class). The jobs train in background threads, so the
# charts update while you read; on digits the two students take about half a minute on two CPU cores.

# %%
from kdviz.present.labs import lab_settings, lab_teacher

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
from kdviz.present.distill_configs import distill_defaults

DEFAULTS = distill_defaults(LAB.dataset)  # the Train-a-student page's defaults for this dataset
T, ALPHA = DEFAULTS.T, DEFAULTS.alpha  # the distillation temperature and the weight of the soft-target term
TRANSFER = DEFAULTS.transfer_size  # labelled images each student learns from (None: the whole training set)
STUDENT = dict(model=DEFAULTS.student_model, model_options=dict(DEFAULTS.student_options),
               epochs=LAB.epochs_or(DEFAULTS.epochs), lr=DEFAULTS.lr, batch_size=DEFAULTS.batch_size)
# The race computes in seconds; paced, it lasts long enough to watch (None: as fast as possible).
PACE_S = DEFAULTS.pace_s if LAB.epochs is None else None
DEFAULTS

# %% [markdown]
# ## 1. The teacher (reused from lab 1 when it is already trained)

# %%
teacher = lab_teacher(LAB)
print(teacher.wait().message)  # a finished teacher with the same settings is reused at once

# %% [markdown]
# ## 2. Start two students
#
# `start` returns at once: each job trains in its own thread and writes a run folder under `LAB.runs`.
# The two students share everything (architecture, seed, transfer set, learning rate, epochs) except
# the loss: `student_pair_configs` builds the pair exactly as the app's Start button does.

# %%
from kdviz.engine import start
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB, student_pair_configs
from kdviz.widgets import RunComparison, TrainingMonitor  # imported before training starts

configs = student_pair_configs(teacher=str(teacher.path), T=T, alpha=ALPHA, dataset=LAB.dataset,
                               data_root=LAB.data_root, seed=0, train_size=len(LAB.data().train_labels),
                               runs_root=LAB.runs, transfer_size=TRANSFER, pace_s=PACE_S, **STUDENT)
kd, scratch = start(configs[KD_JOB]), start(configs[SCRATCH_JOB])
kd, scratch

# %% [markdown]
# ## 3. Watch them learn
#
# **What to look for:**
#
# * **Accuracy** (left): which student, the KD student (vermillion) or the scratch student (green),
#   is higher, and how far both stay below the teacher (dashed blue line). Section 5 says who won, by
#   how much, and if the scratch student won, why that can happen.
# * **Loss** (right, for the run picked under *details of*): for the KD student the total is the
#   soft-target term (scaled by T²) plus the hard-label term weighted by 1 - α.
# * **Soft targets on a probe image** (bottom): do the KD student's bars move towards the teacher's,
#   wrong classes included? Switch *details of* to the scratch student and compare its runner-up classes.
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
# class as the teacher on the test set. The sentence under the table is written from the numbers
# (`kdviz.present.story`), the same as the app's captions.

# %%
RunComparison({"teacher": teacher, "KD student": kd, "scratch student": scratch})

# %%
import pandas as pd
from kdviz.engine import open_run

n_test = len(LAB.data().test_labels)
final, rows = {}, []
for label, job in {"teacher": teacher, "KD student": kd, "scratch student": scratch}.items():
    final[label] = acc = [r["test_acc"] for r in open_run(job.path).metrics("eval")][-1]
    rows.append({"run": label, "test accuracy": f"{acc:.2%}", "test errors": round((1 - acc) * n_test)})
pd.DataFrame(rows).set_index("run")

# %%
from kdviz.present.story import RaceSettings, accuracy_caption

seen = TRANSFER or len(LAB.data().train_labels)  # labelled images each student saw
print(accuracy_caption(final["KD student"], final["scratch student"], RaceSettings(T=T, alpha=ALPHA, train_size=seen),
                       finished=True, teacher_acc=final["teacher"]))

# %% [markdown]
# **Try next** (change the settings cell and run everything again; each run gets its own folder):
#
# * T = 1: the soft targets are nearly the hard labels. Does KD still help?
# * T = 20, or α = 0.5: more or less weight on the teacher.
# * `TRANSFER = None` and `STUDENT["epochs"] = 8`: both students see every labelled image. Does the gap
#   shrink, and what happens with 100 epochs?
# * `"hidden": [16]` or `[64]`: a bigger student. When does the teacher help most?
