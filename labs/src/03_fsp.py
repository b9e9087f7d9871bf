# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: distil the flow between layers (FSP matrices), then train on the task
#     paper: Yim, Joo, Bae & Kim 2017
#     title: FSP
#     widgets:
#     - FSPMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 3 · FSP: distil the flow between layers
#
# Labs 1 and 2 distilled what a teacher *answers*. Yim, Joo, Bae & Kim (2017), *A Gift from Knowledge Distillation: Fast Optimization, Network Minimization and Transfer Learning*, CVPR, [paper](https://openaccess.thecvf.com/content_cvpr_2017/html/Yim_A_Gift_From_CVPR_2017_paper.html) distil *how it gets there*: the **flow** from
# one layer to the next. For two feature maps F¹ (h × w × m) and F² (h × w × n) of the same input, the
# **FSP matrix** ("flow of solution procedure", section 3.2, equation 1) holds the inner products
# between their channels:
#
# $$G_{ij}(x) = \frac{1}{h\,w} \sum_{s=1}^{h} \sum_{t=1}^{w} F^1_{s,t,i}(x)\; F^2_{s,t,j}(x)$$
#
# A ResNet is cut into sections (its stages); each section's first and last map give one m × n matrix.
# A deep teacher and a shallow student with **the same channels per stage** have matrices of the same
# shape, and the student is trained in **two stages** (section 3.3):
#
# 1. minimise the FSP loss alone, no labels (equation 2, N samples, n section pairs, equal λ):
#    $L_{FSP} = \frac{1}{N} \sum_x \sum_{i=1}^{n} \lambda_i \, \lVert G_i^T(x) - G_i^S(x) \rVert_2^2$;
# 2. train on the labels as usual, starting from the stage-1 weights.
#
# The paper's "fast optimisation" claim (section 4.1): on CIFAR-10 the FSP student reaches the accuracy of
# the same student trained from scratch in about a third of the iterations. On the bundled digits the lab
# takes a couple of minutes on two CPU cores.

# %%
from kdviz.present.labs import RESNET20, lab_resnet_teacher, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
# ResNet-8 with the teacher's channels per stage (RESNET20: 8-16-32), so their FSP matrices match
STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": list(RESNET20["channels"])}
MAIN_EPOCHS = LAB.epochs_for(digits=6, other=1)  # digits: 22 steps per epoch; MNIST: 938
STAGE1_STEPS = 40 if LAB.epochs else LAB.pick(digits=120, other=300)  # 40 when CI shortens every run
EVAL_EVERY = LAB.pick(digits=5, other=50)
STAGE1_LR = 1e-4  # the FSP loss is 1e4-1e5 at the start: SGD at 1e-2 diverged on digits, 1e-4 falls steadily

# %% [markdown]
# ## 1. The teacher: a deep ResNet
#
# Three stages of three residual blocks (ResNet-20, He et al. 2016), trained on the labels. A finished
# teacher with the same settings is reused from its run folder.

# %%
teacher = lab_resnet_teacher(LAB)  # ResNet-20: 3 blocks per stage, channels 8-16-32
print(teacher.wait().message)

# %% [markdown]
# ## 2. What an FSP matrix looks like
#
# The teacher's FSP matrix of its second section (`stage2_in` → `stage2_out`), averaged over 64 test
# images, beside the matrix of an *untrained* ResNet-8 student. Rows are the channels of the map
# entering the section, columns the channels of the map leaving it. `stage2_in` is twice the size of
# `stage2_out` (stage 2 halves the resolution), so the larger map is max-pooled to the smaller first, as
# the paper does.
#
# **Look for:** the teacher's matrix has structure: a few bright cells where a channel going in
# strongly drives a channel coming out. The untrained student's has its own, unrelated pattern. The
# right panel (teacher − student, red and blue around white) is what stage 1 drives to zero.

# %%
from kdviz.distill import fsp_matrix
from kdviz.engine import load_trained_model
from kdviz.figures.fsp import fsp_heatmaps
from kdviz.present.labs import probe_features, untrained_student

probe = LAB.data().test_images[:64]
t_features = probe_features(load_trained_model(teacher.path).eval(), probe)
s_features = probe_features(untrained_student(teacher, **STUDENT), probe)
G_teacher = fsp_matrix(t_features["stage2_in"], t_features["stage2_out"]).mean(0)  # (64, 8, 16) -> (8, 16)
G_student = fsp_matrix(s_features["stage2_in"], s_features["stage2_out"]).mean(0)
print("maps:", tuple(t_features["stage2_in"].shape[1:]), "->", tuple(t_features["stage2_out"].shape[1:]),
      "| FSP matrix:", tuple(G_teacher.shape))
fsp_heatmaps(G_teacher.numpy(), G_student.numpy(), pair=("stage2_in", "stage2_out"))

# %% [markdown]
# ## 3. Two stages, and a student from scratch beside them
#
# `TwoStageFSP` starts stage 1 at once: the FSP loss over all three sections (`pairs="auto"`), method
# `"none"` (no classification loss), a low learning rate. When stage 1 has finished, stage 2 starts from
# its weights with cross-entropy. The scratch student is the same ResNet-8 with the same seed, batches
# and main-task schedule, from a random start. Every job trains in its own thread and writes a run
# folder under `LAB.runs`. Stage 1 gets the epochs that cover its `STAGE1_STEPS`, whatever `MAIN_EPOCHS` is.

# %%
from kdviz.methods.two_stage import TwoStageFSP, scratch_config
from kdviz.engine import start
from kdviz.widgets.fsp import FSPMonitor  # imported before training starts

base = LAB.config(model="resnet", model_options=STUDENT, teacher=str(teacher.path), epochs=MAIN_EPOCHS, lr=0.05,
                  eval_every=EVAL_EVERY, snapshot_every=EVAL_EVERY, eval_train_samples=500, name="fsp-student")
stages = TwoStageFSP(base, pairs="auto", stage1_steps=STAGE1_STEPS, stage1_lr=STAGE1_LR)
scratch = start(scratch_config(base, name="fsp-scratch-student"))
stages.stage1, scratch

# %% [markdown]
# ## 4. Watch the flow being learned
#
# **What to look for:**
#
# * **Heatmaps** (top, pick a section pair): the teacher's matrix (left) is fixed. During stage 1 the
#   student's (middle) takes its pattern, and the difference (right) fades towards white. The title gives
#   the distance ‖G<sup>T</sup> − G<sup>S</sup>‖ as a share of the teacher's.
# * **Loss** (bottom left, log scale): the FSP loss on the same 64 test images falls by an order of
#   magnitude, the deep sections (large values) first.
# * **Fast optimisation** (bottom right, from stage 2's first evaluation): stage 1 leaves the classifier
#   untrained (faint dotted curve near chance), but once stage 2 starts, the pink curve climbs much
#   faster than the green scratch curve: the student already computes useful features.
#
# **Stop** ends every run after its current step (a stopped stage 1 starts no stage 2). The monitor also
# starts stage 2 itself when stage 1 has finished.

# %%
monitor = FSPMonitor(stages, scratch=scratch)
monitor

# %% [markdown]
# ## 5. Wait for the end, and count the iterations
#
# This cell blocks until stage 1, stage 2 and the scratch student have ended (the monitor keeps drawing
# meanwhile). Then: the scratch student's final accuracy, and how many stage-2 iterations the FSP student
# needed to reach it.

# %%
from kdviz.engine import open_run

monitor.wait()
scratch_evals = open_run(scratch.path).metrics("eval")
stage2_evals = open_run(stages.stage2.path).metrics("eval")
target, total = scratch_evals[-1]["test_acc"], scratch_evals[-1]["step"]
reached = next((r["step"] for r in stage2_evals if r["test_acc"] >= target), None)
print(f"scratch student: {target:.2%} test accuracy after {total} iterations")
print(f"FSP student:     {stage2_evals[-1]['test_acc']:.2%} after {STAGE1_STEPS} stage-1 + {stage2_evals[-1]['step']} stage-2 iterations")
if reached is None:
    print("FSP did not reach the scratch student's final accuracy in stage 2")
else:
    print(f"FSP reached it after {reached} stage-2 iterations ({reached / max(total, 1):.0%} of scratch's)")

# %% [markdown]
# ## 6. FitNets hints, the other feature-based distillation
#
# Romero, Ballas, Kahou, Chassang, Gatta & Bengio (2015), *FitNets: Hints for Thin Deep Nets*, ICLR, [arXiv:1412.6550](https://arxiv.org/abs/1412.6550) came first: a thin, deep student regresses its middle ("guided") layer onto the teacher's
# middle ("hint") layer, through a learned regressor r that maps the student's shape onto the teacher's
# (equation 3): $L_{HT} = \frac{1}{2} \lVert u_h(x) - r(v_g(x)) \rVert^2$. Like FSP it trains in stages: first
# the hint, then the whole network. Where FSP matches *relations between* two layers (so it needs the same
# channel counts, no regressor), hints match *one layer's values* (so they need the regressor, but no
# matching channels). In kdviz it is one hook; the same two stages run it:

# %%
from kdviz.methods.two_stage import hints_stage1_config

hints_stage1 = hints_stage1_config(base, student_layer="stage2_out", teacher_layer="stage2_out",
                                   max_steps=STAGE1_STEPS, lr=1e-3, name="hints-stage1")
print(hints_stage1.method, hints_stage1.hooks)
# TwoStageFSP(base, stage1=hints_stage1) runs hints then cross-entropy; the Streamlit page has both

# %% [markdown]
# **Try next** (change the settings cells and run everything again; each run gets its own folder):
#
# * `pairs=[["stage3_in", "stage3_out"]]`: one section only. Which section carries the most?
# * `STAGE1_LR = 1e-3` or `1e-2`: how fast can stage 1 go before it diverges (the run then says why)?
# * `STAGE1_STEPS = 20`: is a short stage 1 still worth it?
# * `lab_settings(dataset="mnist", mnist_root=...)`: the same on 28 × 28 images (`bench/fsp_fast_optimisation.py`
#   measures the paper's one-third claim there).
