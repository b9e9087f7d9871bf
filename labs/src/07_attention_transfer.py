# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: where does the teacher look, and does a thinner student learn to look there
#       (spatial attention maps)
#     paper: Zagoruyko & Komodakis 2017, section 3.1
#     title: Attention transfer
#     widgets:
#     - AttentionMonitor
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 7 · Attention transfer: learn where the teacher looks
#
# Zagoruyko & Komodakis (2017), *Paying More Attention to Attention: Improving the Performance of Convolutional
# Neural Networks via Attention Transfer*, ICLR, [arXiv:1612.03928](https://arxiv.org/abs/1612.03928), ask one
# question of a trained network: **where does it look?** For a layer's activations A (C channels of h × w), the
# spatial **attention map** sums the squared activations over the channels (section 3.1):
#
# $$F(A) = \sum_{c=1}^{C} |A_c|^2, \qquad Q = \mathrm{vec}\big(F(A)\big)$$
#
# Bright positions are where the layer responds strongly. The student trains on the labels **and** pulls its
# normalised maps towards the teacher's at chosen layer pairs j of the same resolution (equation 2):
#
# $$\mathcal{L}_{AT} = \mathcal{L}_{CE} + \frac{\beta}{2} \sum_j \left\lVert \frac{Q_S^j}{\lVert Q_S^j\rVert_2} - \frac{Q_T^j}{\lVert Q_T^j\rVert_2} \right\rVert_2$$
#
# The channels are summed away, so the student may be **thinner** than the teacher: here it has half the
# channels and a third of the depth. On the bundled digits the lab takes a couple of minutes on two CPU cores.

# %%
from kdviz.present.labs import lab_resnet_teacher, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files"
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": [4, 8, 16]}  # ResNet-8, half as wide as the teacher
EPOCHS = LAB.epochs_for(digits=8, other=1)  # digits: maps of 8x8, 4x4 and 2x2 positions; MNIST: 28x28 to 7x7
BETA = 2.0  # beta/2 = 1: the attention term is the plain sum of the pairs' distances

# %% [markdown]
# ## 1. The teacher (reused from lab 3 when it is already trained)

# %%
teacher = lab_resnet_teacher(LAB)  # ResNet-20: 3 blocks per stage, channels 8-16-32
print(teacher.wait().message)

# %% [markdown]
# ## 2. Where the teacher looks, and where an untrained student looks
#
# The attention maps of the teacher's second stage (`stage2_out`) on one test image, beside those of the
# *untrained* student. Both maps are normalised to unit length, Q/‖Q‖₂, so they share one colour scale and
# their distance ‖q_S − q_T‖₂ runs from 0 (the same map) to √2 (no overlap).
#
# **Look for:** the teacher's bright cells sit on the strokes that tell this digit from the others; the untrained
# student's map is spread out or elsewhere. Attention transfer drives that distance down.

# %%
from kdviz.distill.attention import attention_vector
from kdviz.engine import load_trained_model
from kdviz.figures.attention import attention_maps
from kdviz.present.labs import probe_features, untrained_student

data = LAB.data()
teacher_model = load_trained_model(teacher.path).eval()
probe = data.test_images[:8]
t_map = attention_vector(probe_features(teacher_model, probe)["stage2_out"])[0]
s_map = attention_vector(probe_features(untrained_student(teacher, **STUDENT), probe)["stage2_out"])[0]
side = int(t_map.numel() ** 0.5)
attention_maps(probe[0, 0], t_map.view(side, side), s_map.view(side, side), "stage2_out", student_label="untrained student")

# %% [markdown]
# ## 3. An AT student beside a scratch student
#
# `attention_configs` makes both runs from one student config: the same ResNet-8, seed, batches and schedule.
# The **AT student** adds the attention term (`beta=BETA`) at every layer the two networks share at the same
# resolution (`pairs="auto"`: the stem and the end of each stage, as the paper transfers "at the end of each
# group of residual blocks"); the **scratch student** learns from the labels alone. Both start at once in
# background threads.

# %%
from kdviz.methods.attention import attention_configs
from kdviz.present import Experiment
from kdviz.widgets import AttentionMonitor  # imported before training starts

base = LAB.config(model="resnet", model_options=STUDENT, teacher=str(teacher.path), epochs=EPOCHS, lr=0.05,
                  eval_train_samples=500)
experiment = Experiment()
for name, config in attention_configs(base, beta=BETA).items():
    experiment.start(name, config)
experiment.jobs

# %% [markdown]
# ## 4. Watch the student learn where to look
#
# **What to look for:**
#
# * **Maps** (pick a layer pair and a probe image): the teacher's map (middle) is fixed; the AT student's
#   (right) takes its bright spots within the first epoch. The title gives their distance for this image.
# * **Distance** (bottom left): each pair's distance, averaged over 64 fixed test images, falls several times.
# * **Accuracy** (bottom right): on digits both students end close together; the paper's gains (section 4)
#   are on CIFAR and ImageNet, where a thin student has more to learn from where a teacher looks.

# %%
monitor = AttentionMonitor(experiment)
monitor

# %% [markdown]
# ## 5. Does a student learn to look there without being told?
#
# When both runs have ended, measure the distance of each trained student's maps to the teacher's on the same
# 64 test images, layer by layer. The scratch student also learned the digits: did it also learn the teacher's
# attention, or only the AT student?

# %%
from kdviz.distill.attention import at_pair_losses, resolve_at_pairs

monitor.wait()
probe = data.test_images[:64]
t_feats = probe_features(teacher_model, probe)
for name, job in experiment.jobs.items():
    s_feats = probe_features(load_trained_model(job.path).eval(), probe)
    pairs = resolve_at_pairs("auto", s_feats, t_feats)  # the AT student's pairs: (student, teacher) names
    distances = at_pair_losses([s_feats[s] for s, _ in pairs], [t_feats[t] for _, t in pairs])
    print(f"{name:16s} test accuracy {job.status().test_acc:.1%} · distance to the teacher's maps: "
          + ", ".join(f"{s} {d:.2f}" for (s, _), d in zip(pairs, distances.tolist())))

# %% [markdown]
# **Try next** (change a setting and run everything again; each run gets its own folder):
#
# * `BETA = 0`: the AT student becomes a second scratch student. `BETA = 20`: the maps match almost exactly;
#   what happens to accuracy?
# * `attention_configs(base, beta=BETA, pairs=[["stage3_out", "stage3_out"]])`: transfer at the last stage only.
# * `STUDENT` with the teacher's channels `[8, 16, 32]`: is attention easier to copy at the same width?
# * AT and KD together (the paper's "AT+KD"): `dataclasses.replace(config, method="kd")` on the AT student's
#   config before starting it.
