"""The cells of every lab notebook, as ``(kind, source)`` pairs; ``labs/_build.py`` writes them out.

Rules for a lab: one idea; a picture early; markdown that says what to look for and cites the
paper; runs top to bottom on digits in a couple of minutes on two CPU cores; the MNIST switch in
the settings cell; never a live cell that blocks (``job.wait()`` goes in a later cell).
"""
from __future__ import annotations

HINTON = ("Hinton, Vinyals & Dean (2015), *Distilling the Knowledge in a Neural Network*, "
          "[arXiv:1503.02531](https://arxiv.org/abs/1503.02531)")

SETTINGS = '''
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
'''

TEACHER_CELL = '''
from kdviz.engine import train_teacher_cached

teacher = train_teacher_cached(DATASET, "mlp", data_root=MNIST_ROOT, runs_root=RUNS, **TEACHER)
print(teacher.wait().message)  # a finished teacher with the same settings is reused at once
'''

LAB_01 = [
    ("md", f"""
# Lab 1 · Soft targets: what temperature does

A trained network says more than its answer. Its probabilities for the *wrong* classes tell which
classes it finds alike: a 3 that is "a bit like a 5", never like a 1. At the ordinary softmax these
probabilities are tiny. Dividing the logits by a **temperature** T before the softmax brings them out
({HINTON}, section 2, equation 1):

$$q_i = \\frac{{\\exp(z_i / T)}}{{\\sum_j \\exp(z_j / T)}}$$

T = 1 is the usual softmax; a higher T gives a softer distribution. These softened outputs are the
**soft targets** a student learns from in lab 2.

Run the cells from top to bottom (*Run > Run All Cells* works too). On the bundled digits data the lab
takes about a minute on two CPU cores.
"""),
    ("code", SETTINGS),
    ("md", """
## 1. One set of logits, five temperatures

Ten random logits, sorted, softened at T = 1, 2, 5, 10 and 20.

**Look for:** at T = 1 almost all the probability sits on the largest logit (the right end of the
curve). As T grows the curve flattens, and the *order* of the classes never changes: temperature
changes how much the small differences are heard, not what the network thinks.
"""),
    ("code", '''
from kdviz.figures.soft_targets import softmax_curves

softmax_curves(temperatures=(1, 2, 5, 10, 20))
'''),
    ("md", """
The same in numbers, for the logits [2, 7, 10]: at T = 1 the runner-up (z = 7) gets under 5 %;
at T = 5 it gets about 31 %. The entropy (in nats) measures how spread out the distribution is.
"""),
    ("code", '''
import pandas as pd
from kdviz.distill.soft_targets import temperature_table

pd.DataFrame(temperature_table(logits=(2.0, 7.0, 10.0), temperatures=(1, 2, 5, 10, 20))).round(4)
'''),
    ("md", """
## 2. A teacher

A small fully connected network trained on the digits. `train_teacher_cached` trains it in the
background and returns a job at once; `wait()` blocks until it ends. A finished teacher with the same
settings is reused, so running this cell again (or in lab 2) costs nothing.
"""),
    ("code", TEACHER_CELL),
    ("md", """
## 3. Explore the teacher's soft targets

Drag the **T** slider (log scale, 0.1 to 100) and pick test images.

**What to look for:**

* **T = 1**: the bars (black outlines show T = 1 for reference) are almost one-hot. This is all a
  student learns from hard labels.
* **T ≈ 3 to 10**: the runner-up classes rise. Which ones rise depends on the image: that is the
  "dark knowledge" (section 2) a student can copy.
* **T = 100**: nearly uniform. The entropy curve approaches ln 10 ≈ 2.30 nats (dotted line); at that
  point the soft targets carry almost nothing.
* **Most confused** steps through the images the teacher is least sure about at T = 1. Its mistakes
  are usually between digits that look alike (3/5, 4/9, 1/7).
"""),
    ("code", '''
from kdviz import load_dataset
from kdviz.widgets import TemperatureExplorer

explorer = TemperatureExplorer(teacher, load_dataset(DATASET, root=MNIST_ROOT), T=4.0)
explorer
'''),
    ("md", """
## 4. Check yourself

The slider runs the same two functions as this cell, `soften` (equation 1) and `entropy`. Move the
slider or pick another image, then run the cell again.
"""),
    ("code", '''
from kdviz import entropy, soften

z = explorer.logits[explorer.index]  # the teacher's logits for the image shown above
for T in (1, 4, 20, 100):
    p = soften(z, T)
    print(f"T = {T:>3}: top class {p.argmax()} with {p.max():6.1%}, entropy {float(entropy(p)):.3f} nats")
'''),
    ("md", """
**Think about it:** the gradient of the soft-target loss scales as 1/T² (section 2). If a student
learned from targets at T = 20 without correcting for this, what would happen to the balance between
soft and hard targets? Lab 2 trains a student with the correction (the T² factor).
"""),
]

LAB_02 = [
    ("md", f"""
# Lab 2 · Distil a student, live

Two copies of the same small network learn the digits side by side: one **from scratch** on the hard
labels, one by **knowledge distillation** (KD) from the teacher of lab 1 ({HINTON}, section 2):

$$L = \\alpha\\, T^2\\, \\mathrm{{KL}}\\big(p^{{\\text{{teacher}}}}_T \\,\\|\\, q^{{\\text{{student}}}}_T\\big) + (1 - \\alpha)\\, \\mathrm{{CE}}(y, q^{{\\text{{student}}}}_1)$$

The first term matches the student's soft targets to the teacher's at temperature T; the T² keeps its
gradients comparable to the hard-label term. On MNIST, Hinton et al. report 146 test errors for a
small net trained alone and 74 for the same net distilled from a big teacher (section 3).

The jobs train in background threads, so the charts update while you read. On digits the lab takes
about a minute on two CPU cores.
"""),
    ("code", SETTINGS + '''
STUDENT = dict(model="mlp", model_options={"hidden": [16]}, epochs=10, lr=0.02)  # 16 hidden units
if LAB_EPOCHS:
    STUDENT["epochs"] = int(LAB_EPOCHS)
T, ALPHA = 4.0, 0.9  # the distillation temperature and the weight of the soft-target term
'''),
    ("md", "## 1. The teacher (reused from lab 1 when it is already trained)"),
    ("code", TEACHER_CELL),
    ("md", """
## 2. Start two students

`start` returns at once: each job trains in its own thread and writes a run folder under `RUNS`.
The two students share everything (architecture, seed, learning rate, epochs) except the loss.
"""),
    ("code", '''
from kdviz.engine import TrainConfig, start
from kdviz.widgets import RunComparison, TrainingMonitor  # imported before training starts

common = dict(dataset=DATASET, data_root=MNIST_ROOT, runs_root=RUNS, **STUDENT)
kd = start(TrainConfig(method="kd", teacher=str(teacher.path), T=T, alpha=ALPHA, name="kd-student", **common))
scratch = start(TrainConfig(method="ce", name="scratch-student", **common))
kd, scratch
'''),
    ("md", """
## 3. Watch them learn

**What to look for:**

* **Accuracy** (left): the KD student (vermillion) usually climbs faster than the scratch student
  (green) at the same learning rate, and ends closer to the teacher (dashed blue line).
* **Loss** (right, for the run picked under *details of*): for the KD student the soft-target term
  dominates the total, because α = 0.9 and T² = 16. Its hard-label term still falls, although it gets
  only 10 % of the weight.
* **Soft targets on a probe image** (bottom): at T = 4 the KD student's bars move towards the
  teacher's, wrong classes included. Switch *details of* to the scratch student: it has no teacher
  bars, and its runner-up classes need not match the teacher's.

**Pause** and **Stop** act between two steps. They respond while no other cell runs.
"""),
    ("code", '''
monitor = TrainingMonitor({"KD student": kd, "scratch student": scratch})
monitor
'''),
    ("md", """
## 4. Wait for the end

This cell blocks until both jobs have ended. The monitor keeps drawing while it waits, but its buttons
wait for the kernel, so play with Pause and Stop before you run it.
"""),
    ("code", '''
for job in (kd, scratch):
    print(f"{job.name}: {job.wait().message}")
'''),
    ("md", """
## 5. Compare the finished runs

`RunComparison` reads the run folders, so the same cell works tomorrow with folder paths instead of
jobs. Switch the metric to *agreement with the teacher*: how often the student predicts the same
class as the teacher on the test set.
"""),
    ("code", '''
RunComparison({"teacher": teacher, "KD student": kd, "scratch student": scratch})
'''),
    ("code", '''
import pandas as pd
from kdviz import load_dataset
from kdviz.engine import open_run

n_test = len(load_dataset(DATASET, root=MNIST_ROOT).test_labels)
rows = []
for label, job in {"teacher": teacher, "KD student": kd, "scratch student": scratch}.items():
    acc = [r["test_acc"] for r in open_run(job.path).metrics("eval")][-1]
    rows.append({"run": label, "test accuracy": f"{acc:.2%}", "test errors": round((1 - acc) * n_test)})
pd.DataFrame(rows).set_index("run")
'''),
    ("md", """
**Try next** (change the settings cell and run everything again; each run gets its own folder):

* T = 1: the soft targets are nearly the hard labels. Does KD still help?
* T = 20, or α = 0.5: more or less weight on the teacher.
* `"hidden": [8]` or `[64]`: a smaller or a bigger student. When does the teacher help most?
"""),
]

LABS: dict[str, list[tuple[str, str]]] = {
    "01_soft_targets": LAB_01,
    "02_distill_a_student": LAB_02,
}
