# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kdviz_lab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kdviz_lab:
#     idea: 'magnitude pruning and retraining: most weights can go; movement pruning;
#       bytes are not time'
#     paper: Han, Pool, Tran & Dally 2015; Zhu & Gupta 2017; Sanh, Wolf & Rush 2020
#     title: Pruning
#     widgets:
#     - PruningExplorer
#     - PruningMonitor
#     - MovementMonitor
#     - SpeedMeter
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lab 4 · Pruning: most weights can go
#
# A trained network holds many weights it barely uses. **Magnitude pruning** removes the weights of
# smallest |w| (sets them to zero, for good), and **retraining** the survivors with the removed ones held
# at zero wins the lost accuracy back (Han, Pool, Tran & Dally (2015), *Learning both Weights and Connections for Efficient Neural Networks*, [arXiv:1506.02626](https://arxiv.org/abs/1506.02626)). Their LeNet-300-100 keeps **8 %** of its weights (12x fewer)
# at the same MNIST error: 1.64 % before, 1.59 % after.
#
# Pruning gradually works better than all at once. Zhu & Gupta (2017), *To prune, or not to prune: exploring the efficacy of pruning for model compression*, [arXiv:1710.01878](https://arxiv.org/abs/1710.01878) raise the sparsity on a cubic schedule (AGP),
# pruning much at first and ever less later, while training goes on:
#
# $$s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{n\,\Delta t}\right)^3$$
#
# The lab: train a baseline, prune it with a slider (no retraining), find the sensitive layers, then prune
# and fine-tune live and compare; then choose the weights by how they move instead (movement pruning), and time
# the pruned model on this CPU. On the bundled digits it runs in a couple of minutes on two CPU cores.

# %%
from kdviz.present.labs import lab_baseline, lab_settings

LAB = lab_settings(dataset="digits")  # or dataset="mnist", mnist_root="/path/to/the/four/idx/files" (Han et al.'s setting)
LAB  # run folders go to LAB.runs ($KDVIZ_RUNS, else runs/ in the checkout): the app lists them too

# %%
SPARSITY = 0.9  # the share of each layer's weights pruned by the end of the fine-tuning
PRUNE_EPOCHS = LAB.epochs_for(digits=8, other=4)  # fine-tuning epochs, from the baseline's weights

# %% [markdown]
# ## 1. The baseline
#
# LeNet-300-100 (784 or 64 inputs, then 300 and 100 hidden units) trained normally. `lab_baseline` trains it
# in the background and returns a job at once; a finished run with the same settings (from an earlier run of
# this lab or of labs 5 and 6, or from the app's pruning page) is reused.

# %%
data = LAB.data()
baseline = lab_baseline(LAB)
print(baseline.wait().message)

# %% [markdown]
# ## 2. Prune with a slider
#
# Every move removes the weights of smallest |w| from the *trained* weights and tests the model again on the
# whole test set. Nothing is retrained.
#
# **Look for:**
#
# * the **knee**: accuracy holds nearly flat to a high sparsity, then falls fast;
# * the **histogram**: trained weights pile up near zero, and pruning cuts exactly that pile, leaving a gap
#   between the dashed thresholds (Han et al., figure 4);
# * **one global cut** against **each layer alike**: a global cut prunes the big first layer far harder than
#   the small last one. Which keeps more accuracy at 95 %?
# * the **mask** of fc1: whole columns go dark. They are input pixels that never vary (the image border).

# %%
from kdviz.widgets.pruning import PruningExplorer, PruningMonitor  # imported before training starts

explorer = PruningExplorer(baseline, data, sparsity=0.9)
explorer

# %% [markdown]
# ## 3. Which layers can take it?
#
# Sensitivity analysis (Han et al., figure 6; Distiller's `perform_sensitivity_analysis`): prune **one** layer
# at a time at rising sparsity, the others dense, and test. A flat curve means the layer can be pruned hard;
# a steep one asks for a lower target. Han et al. keep 8 % of fc1 but 26 % of fc3.

# %%
from kdviz.engine import load_trained_model
from kdviz.figures.pruning import sensitivity_lines
from kdviz.prune import MaskedEvaluator, sensitivity_analysis

evaluator = MaskedEvaluator(load_trained_model(baseline.path), data.test_images, data.test_labels)
dense_accuracy = evaluator.current_accuracy()
sensitivity = sensitivity_analysis(evaluator)
sensitivity_lines(sensitivity, baseline=dense_accuracy)

# %% [markdown]
# ## 4. Prune and fine-tune, live
#
# A training job starts from the baseline's weights (`init_from`) with the `prune` hook, in the config that
# `prune_fine_tune_config` builds: the sparsity rises on the AGP schedule over the first 75 % of the run, and
# after every optimizer step the masks are applied again, so a pruned weight stays exactly zero while the
# others keep learning. The masks are saved in each checkpoint.
#
# **Look for:** the masks darken quickly at first, then slowly (the cubic schedule). Accuracy dips each time
# the schedule prunes and recovers while fine-tuning. In the histogram, survivors drift back into the gap
# between pruning steps. Drag the scrubber to look back in time; **Stop** ends the job after its current step.

# %%
from kdviz.engine import start
from kdviz.present.compression_configs import prune_fine_tune_config

config = prune_fine_tune_config(baseline, SPARSITY, scope="layer", schedule="agp", epochs=PRUNE_EPOCHS)
job = start(config)  # about 20 evaluations and 40 snapshots over the run
monitor = PruningMonitor(job)
monitor

# %% [markdown]
# ## 5. Wait for the end
#
# This cell blocks until the job has ended. The monitor keeps drawing meanwhile, but its Stop button waits
# for the kernel, so try it before you run this cell.

# %%
print(job.wait().message)

# %% [markdown]
# ## 6. Retraining against no retraining
#
# The line is the slider's one-shot pruning (section 2). The second line follows the fine-tuning run through
# its evaluations as its sparsity rose. At the same sparsity, retrained weights do better: retraining moves the
# knee to the right.

# %%
from kdviz.engine import open_run
from kdviz.figures.pruning import accuracy_vs_sparsity
from kdviz.methods.prune import PRUNE
from kdviz.prune.explore import accuracy_curve

evals = open_run(job.path).metrics("eval")
sparsity = PRUNE.metric_key(config, "sparsity")  # the key the prune hook logs its sparsity under
accuracy_vs_sparsity({
    "pruned, no retraining": accuracy_curve(evaluator),
    "pruned + fine-tuned (AGP)": ([r[sparsity] for r in evals], [r["test_acc"] for r in evals]),
}, baseline=dense_accuracy)

# %% [markdown]
# ## 7. What it saves
#
# Zeros only save space when they are not stored. The table encodes the pruned weights (loaded from the run's
# checkpoint: the zeros are still there after a reload) as dense float32, as CSR with 32-bit indices, and in
# Han's relative-index format with 5-bit gaps for FC layers (Deep Compression, section 2). Beside it, Han et
# al.'s table 1 for LeNet-300-100 on MNIST.

# %%
import pandas as pd
from kdviz.figures.pruning import storage_bars
from kdviz.prune import count_flops, size_report

pruned = load_trained_model(job.path)
report = size_report(pruned)
han = {"fc1": 8.0, "fc2": 9.0, "fc3": 26.0, "total (+ biases)": 8.0}  # % of weights kept, Han et al. 2015
table = pd.DataFrame(report.rows()).set_index("layer")
table["Han et al. kept %"] = [han.get(layer) for layer in table.index]
flops = count_flops(pruned)
print(f"test accuracy {dense_accuracy:.2%} dense -> {evals[-1]['test_acc']:.2%} pruned and fine-tuned; "
      f"{report.weight_compression:.1f}x fewer weights (Han et al.: 12x); "
      f"FLOPs {flops['flops']:,} -> {flops['nonzero_flops']:,}")
table[["weights", "kept", "kept %", "Han et al. kept %", "dense bytes", "CSR bytes", "relative-index bytes"]].round(1)

# %%
storage_bars(report.rows())

# %% [markdown]
# ## 8. Movement pruning: keep what fine-tuning grows
#
# Magnitude pruning keeps the weights that are large in the *trained* model. Sanh, Wolf & Rush (2020), *Movement
# Pruning: Adaptive Sparsity by Fine-Tuning*, NeurIPS, [arXiv:2005.07683](https://arxiv.org/abs/2005.07683),
# section 3, keep the weights that fine-tuning moves *away from zero*. Each weight gets a score, the sum over the
# steps of the gradient times the weight,
#
# $$S_{ij} = -\alpha_S \sum_{t} \left(\frac{\partial L}{\partial W_{ij}}\right)^{(t)} W_{ij}^{(t)},$$
#
# and each layer keeps the weights of highest score (hard movement: Top-v, recomputed after every step, so a
# pruned weight can come back). Two fine-tunes of the baseline start now on the same cubic schedule to
# `SPARSITY`, with the same data order and learning rate: one picks the weights by movement score, the other by
# magnitude.
#
# **Look for:** the two sparsity curves lie on top of each other; only the choice of weights differs. In the
# scatter of |W| against the score, magnitude keeps the top and movement the right; the coloured points are the
# weights the two rules disagree on. Sanh et al. found movement ahead at high sparsity when a *pretrained* model
# is fine-tuned on a new task (BERT on SQuAD and MNLI, thousands of steps). Here the model is fine-tuned on the
# task it was trained for, for a few dozen steps: scores summed over so few steps are mostly noise, and movement
# usually trails magnitude. On MNIST, with about 1,900 steps per run, the picture is Sanh et al.'s: movement
# trails by 0.9 points at 50 % sparsity, is about level at 90 % and leads by 0.7 points at 97 %, on each of three
# seeds (`python bench/movement.py`; the table is in the README).

# %%
from kdviz.present import Experiment
from kdviz.present.movement import movement_runs
from kdviz.widgets import MovementMonitor  # imported before training starts

race = Experiment(title="lab 4 movement vs magnitude")
for name, run_config in movement_runs(baseline, SPARSITY, epochs=PRUNE_EPOCHS).items():
    race.start(name, run_config)  # both at once: the same schedule, steps and seed
movement = MovementMonitor(race)
movement

# %% [markdown]
# Once both have finished: each run's test accuracy at the sparsity it ended at, and how many of the weights
# movement keeps magnitude would keep too.

# %%
from kdviz.methods.movement import MOVEMENT
from kdviz.present.movement import curve_of, movement_story
from kdviz.present.runs import as_run_view

movement.wait()
views = [as_run_view(job, name) for name, job in race.jobs.items()]
for view in views:
    view.refresh()
curves = {view.label: curve_of(view) for view in views}
print(movement_story(views).caption)
pd.DataFrame([{"rule": label, "sparsity": f"{c.sparsity[-1]:.1%}", "test accuracy": f"{c.accuracy[-1]:.2%}"}
              for label, c in curves.items()])

# %% [markdown]
# ## 9. Bytes are not time
#
# Section 7 counted bytes. `SpeedMeter` times the movement-pruned model on this CPU, now: as trained (dense
# float32, zeros and all), with half its neurons removed (shrunk), with its own zeros left out as torch sparse CSR
# (sparse) and with int8 weights (torch.ao dynamic and static quantization), at batch 1 and 256, each the median
# of interleaved runs, beside the bytes stored.
#
# **Look for:** the sparse form stores a fraction of the bytes, yet at these layer sizes torch's CPU sparse
# kernels are rarely faster than one dense matrix product, at batch 1 usually slower; removing whole neurons
# (shrunk) is what makes a small network faster. The caption says, from the numbers, which form saves bytes but
# not time.

# %%
from kdviz.widgets import SpeedMeter

meter = SpeedMeter(race.jobs[MOVEMENT.label], autostart=True, runs=10)
meter

# %%
meter.task.wait()
print(meter.task.error or meter.task.result.caption())
columns = ["form", "batch 1 / dense", "batch 256 / dense", "stored (KiB)", "same prediction as its source"]
pd.DataFrame(meter.task.result.rows())[columns] if meter.task.result else None

# %% [markdown]
# **Try next** (change the settings and run everything again; each run gets its own folder):
#
# * Han's per-layer targets: `SPARSITY = {"fc1": 0.92, "fc2": 0.91, "fc3": 0.74}`. The sensitivity curves of
#   section 3 say why fc3 keeps more.
# * `schedule="one-shot"`: prune to 90 % at once, then fine-tune. Does the dip heal as well?
# * `scope="global"` with `SPARSITY = 0.95`: one cut across layers. Compare the kept % per layer with Han's.
# * `lab_settings(dataset="mnist", mnist_root=...)`: the paper's setting (a few minutes more).
# * `movement_runs(baseline, 0.97, epochs=20, warmup=0.2)`: movement at a higher sparsity, with more steps and a
#   warm-up in which the scores accumulate before anything is pruned (Sanh et al.'s schedule).
