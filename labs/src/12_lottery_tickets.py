# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: a sparse subnetwork that trains as well as the dense one from the same start,
#       and the N:M pattern sparse kernels can use
#     paper: Frankle & Carbin 2019, section 1; Frankle et al. 2020; Mishra et al. 2021
#     title: Lottery tickets and N:M sparsity
#     widgets:
#     - LotteryMonitor
#     - NMMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 12 · Lottery tickets and N:M sparsity
#
# Frankle & Carbin (2019), *The Lottery Ticket Hypothesis: Finding Sparse, Trainable Neural Networks*, ICLR,
# [arXiv:1803.03635](https://arxiv.org/abs/1803.03635), section 1: a dense network holds a sparse subnetwork, a
# **winning ticket**, that trained alone from the *same* initial weights reaches the dense accuracy. They find it
# by **iterative magnitude pruning**: train, prune a share p of the surviving weights with the smallest |w|,
# **reset** the survivors to their initial values θ₀, and repeat. After r rounds a layer keeps (1 − p)ʳ of its
# weights. The control: the same mask m on a *fresh* random initialisation θ′₀ trains worse, so the ticket is
# the mask **and** its initial weights: f(x; m ⊙ θ₀).
#
# Frankle et al. (2020), *Linear Mode Connectivity and the Lottery Ticket Hypothesis*, ICML, rewind to θₖ, the
# weights after k training steps, instead of θ₀ (`REWIND_STEP`); on larger networks only rewinding finds tickets.
#
# Part 2: **N:M sparsity** (Mishra et al. 2021, NVIDIA's 2:4): keep the N largest |w| of every M consecutive
# weights of a row. Every group has the same number of survivors, which sparse matrix kernels exploit. What does
# the constraint cost against unstructured pruning at the same sparsity?

# %%
from kdviz.present.labs import lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
ROUNDS = 3  # rounds of pruning after the dense round 0
PRUNE_FRACTION = 0.3  # share of the survivors pruned per round (Frankle & Carbin: 0.2, output layer at half)
REWIND_STEP = 0  # 0: the original ticket (theta_0); k > 0: rewinding
EPOCHS = LAB.epochs_for(digits=4, other=2)  # per round

# %% [markdown]
# ## 1. The masks: one round by hand
#
# `next_ticket_masks` prunes p of each layer's survivors by |w| (the output layer at p/2). Masks of consecutive
# rounds **nest**: a weight pruned once stays pruned, so the overlap (Jaccard) of round r with round r−1 is 1 − p.

# %%
import torch

from kdviz.models import build_model
from kdviz.prune.lottery import mask_overlap, next_ticket_masks

data = LAB.data()
torch.manual_seed(0)
net = build_model("lenet300", input_shape=data.input_shape, num_classes=data.num_classes)
first = next_ticket_masks(net, None, PRUNE_FRACTION)
second = next_ticket_masks(net, first, PRUNE_FRACTION)
print({name: f"{kept:.0%}" for name, kept in ((n, 1 - s) for n, s in second.sparsity().items())})
print(f"overlap of round 2 with round 1: Jaccard {mask_overlap(first, second).jaccard:.3f}")

# %% [markdown]
# ## 2. The ticket search, live
#
# `lottery_experiment` starts the dense round 0 now; each round starts when the round before has finished, from
# its trained weights (which choose the mask), rewound to θₖ. Beside every round, the **random re-init** control
# trains the same mask from a fresh start.
#
# **What to look for:**
#
# * **Accuracy per round** (left): the ticket (orange) stays near the dense line as the weights fall; the
#   re-initialised mask (grey) falls away.
# * **Mask overlap** (right): at every evaluation, the mask the *next* round would take, compared with the one
#   at the previous evaluation. It climbs towards 1 as the ticket's mask settles, often long before training ends
#   (You et al. 2020 call such an early, stable mask an "early-bird" ticket).

# %%
from kdviz.present.lottery import base_config, lottery_experiment, lottery_plan
from kdviz.widgets import LotteryMonitor  # imported before training starts

base = base_config(LAB.dataset, LAB.runs, data_root=LAB.data_root, epochs=EPOCHS)
plan = lottery_plan(base, rounds=ROUNDS, prune_fraction=PRUNE_FRACTION, rewind_step=REWIND_STEP)
search = lottery_experiment(plan, title="lab 12 tickets")
monitor = LotteryMonitor(search)
monitor

# %% [markdown]
# ## 3. N:M against unstructured pruning
#
# A dense network, then two fine-tunes from its weights at the same sparsity 1 − N/M: the **N:M** pattern and
# **unstructured** magnitude pruning per layer. The right chart shows a corner of the first layer: the blank
# cells are pruned, and every group of M inputs between two lines keeps exactly N.

# %%
from kdviz.present.lottery import n_m_experiment, n_m_plan
from kdviz.widgets import NMMonitor

monitor.wait()
comparison = n_m_experiment(n_m_plan(base, n=2, m=4, fine_tune_epochs=max(1, EPOCHS // 2)), title="lab 12 N:M")
n_m_monitor = NMMonitor(comparison)
n_m_monitor

# %%
n_m_monitor.wait()
print(n_m_monitor.caption.value)

# %% [markdown]
# **Try next** (change a setting and run everything again; each run gets its own folder):
#
# * `PRUNE_FRACTION = 0.2` and `ROUNDS = 8`: Frankle & Carbin's schedule down to about 17% of the weights
#   (`python bench/lottery_ticket.py` runs it on MNIST over three seeds).
# * `REWIND_STEP = 20`: rewind to step 20 instead of the initialisation.
# * `lottery_plan(..., scope="global", output_fraction=0.0)`: open_lth's convention, one magnitude cut over all
#   hidden layers and the output layer left dense.
# * `n_m_plan(base, n=1, m=4)`: 75% sparsity; does the pattern cost more at higher sparsity?
