# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: 'what temperature does to a teacher''s answer: dark knowledge, entropy against
#       T'
#     paper: Hinton, Vinyals & Dean 2015, eq. 1
#     title: Soft targets
#     widgets:
#     - TemperatureExplorer
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 1 · Soft targets: what temperature does
#
# A trained network says more than its answer. Its probabilities for the *wrong* classes tell which
# classes it finds alike: a 3 that is "a bit like a 5", never like a 1. At the ordinary softmax these
# probabilities are tiny. Dividing the logits by a **temperature** T before the softmax brings them out
# (Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*, [arXiv:1503.02531](https://arxiv.org/abs/1503.02531), section 2, equation 1):
#
# $$q_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}$$
#
# T = 1 is the usual softmax; a higher T gives a softer distribution. These softened outputs are the
# **soft targets** a student learns from in lab 2.
#
# Run the cells from top to bottom (*Run > Run All Cells* works too). On the bundled digits data the lab
# takes about a minute on two CPU cores.

# %%
from kdviz.present.labs import lab_settings, lab_teacher

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %% [markdown]
# ## 1. One set of logits, five temperatures
#
# Ten random logits, sorted, softened at T = 1, 2, 5, 10 and 20.
#
# **Look for:** at T = 1 almost all the probability sits on the largest logit (the right end of the
# curve). As T grows the curve flattens, and the *order* of the classes never changes: temperature
# changes how much the small differences are heard, not what the network thinks.

# %%
from kdviz.figures.soft_targets import softmax_curves

softmax_curves(temperatures=(1, 2, 5, 10, 20))

# %% [markdown]
# The same in numbers, for the logits [2, 7, 10]: at T = 1 the runner-up (z = 7) gets under 5 %;
# at T = 5 it gets about 31 %. The entropy (in nats) measures how spread out the distribution is.

# %%
import pandas as pd
from kdviz.distill.soft_targets import temperature_table

pd.DataFrame(temperature_table(logits=(2.0, 7.0, 10.0), temperatures=(1, 2, 5, 10, 20))).round(4)

# %% [markdown]
# ## 2. A teacher
#
# A small fully connected network trained on the digits (on MNIST, Hinton et al.'s two layers of 1200
# units). `lab_teacher` trains it in the background and returns a job at once; `wait()` blocks until it
# ends. A finished teacher with the same settings is reused, so running this cell again (or in lab 2)
# costs nothing.

# %%
teacher = lab_teacher(LAB)
print(teacher.wait().message)  # a finished teacher with the same settings is reused at once

# %% [markdown]
# ## 3. Explore the teacher's soft targets
#
# Drag the **T** slider (log scale, 0.1 to 100) and pick test images.
#
# **What to look for:**
#
# * **T = 1**: the bars (black outlines show T = 1 for reference) are almost one-hot. This is all a
#   student learns from hard labels.
# * **T ≈ 3 to 10**: the runner-up classes rise. Which ones rise depends on the image: that is the
#   "dark knowledge" (section 2) a student can copy.
# * **T = 100**: nearly uniform. The entropy curve approaches ln 10 ≈ 2.30 nats (dotted line); at that
#   point the soft targets carry almost nothing.
# * **Most confused** steps through the images the teacher is least sure about at T = 1. Its mistakes
#   are usually between digits that look alike (3/5, 4/9, 1/7).

# %%
from kdviz.widgets import TemperatureExplorer

explorer = TemperatureExplorer(teacher, LAB.data(), T=4.0)
explorer

# %% [markdown]
# ## 4. Check yourself
#
# The slider runs the same two functions as this cell, `soften` (equation 1) and `entropy`. Move the
# slider or pick another image, then run the cell again.

# %%
from kdviz import entropy, soften

z = explorer.logits[explorer.index]  # the teacher's logits for the image shown above
for T in (1, 4, 20, 100):
    p = soften(z, T)
    print(f"T = {T:>3}: top class {p.argmax()} with {p.max():6.1%}, entropy {float(entropy(p)):.3f} nats")

# %% [markdown]
# **Think about it:** the gradient of the soft-target loss scales as 1/T² (section 2). If a student
# learned from targets at T = 20 without correcting for this, what would happen to the balance between
# soft and hard targets? Lab 2 trains a student with the correction (the T² factor).
