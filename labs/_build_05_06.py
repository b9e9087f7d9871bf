"""Write labs 05 (quantization) and 06 (Deep Compression) from the cell lists below.

    python labs/_build_05_06.py          # rewrite both notebooks
    python labs/_build_05_06.py --check  # exit 1 if a committed notebook differs from its source

Same rules and notebook format as ``labs/_build.py`` (no outputs, stable cell ids): one idea per
lab, a picture early, markdown that says what to look for, runs top to bottom on digits in a couple
of minutes on two CPU cores, an MNIST switch in the settings cell, ``KDVIZ_RUNS`` and
``KDVIZ_LAB_EPOCHS`` read from the environment, and every long job waited for in a later cell.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _build import write_labs  # noqa: E402

HAN = ("Han, Mao & Dally (2016), *Deep Compression: Compressing Deep Neural Networks with Pruning, Trained "
       "Quantization and Huffman Coding*, [arXiv:1510.00149](https://arxiv.org/abs/1510.00149)")
COURBARIAUX = ("Courbariaux, Bengio & David (2015), *BinaryConnect*, [arXiv:1511.00363](https://arxiv.org/abs/1511.00363)")
RASTEGARI = ("Rastegari, Ordonez, Redmon & Farhadi (2016), *XNOR-Net*, [arXiv:1603.05279](https://arxiv.org/abs/1603.05279)")
DENTON = ("Denton, Zaremba, Bruna, LeCun & Fergus (2014), *Exploiting Linear Structure Within Convolutional Networks "
          "for Efficient Evaluation*, [arXiv:1404.0736](https://arxiv.org/abs/1404.0736)")

SETTINGS = '''
import os

DATASET = "digits"  # or "mnist" with MNIST_ROOT = "/path/to/folder/with/the/four/idx/files"
MNIST_ROOT = None
RUNS = os.environ.get("KDVIZ_RUNS", "runs")  # run folders go here (reopen them later, or in the app)

# LeNet-300-100 (Han et al. 2015): 784 (or 64) inputs -> 300 -> 100 -> 10. Same settings as the app's
# baseline, so a baseline trained there (or in the other lab) is reused.
BASELINE = dict(epochs=20 if DATASET == "digits" else 3, lr=0.05)
LAB_EPOCHS = os.environ.get("KDVIZ_LAB_EPOCHS")  # CI sets a small number so the lab runs fast
if LAB_EPOCHS:
    BASELINE["epochs"] = int(LAB_EPOCHS)
'''

BASELINE_CELL = '''
from kdviz.engine import load_trained_model, train_teacher_cached

baseline = train_teacher_cached(DATASET, "lenet300", data_root=MNIST_ROOT, runs_root=RUNS,
                                name=f"baseline-lenet300-{DATASET}", **BASELINE)
print(baseline.wait().message)  # a finished baseline with the same settings is reused at once
'''

LAB_05 = [
    ("md", f"""
# Lab 5 · Quantization: fewer bits per weight

A trained network stores every weight as a 32-bit float, but it does not need that precision. This
lab asks one question: **how few distinct values can a layer's weights take before the network
breaks, and how should those values be chosen?**

* **k-means weight sharing** ({HAN}, section 3): cluster a layer's weights into k = 2^b values
  (the *codebook*) and store a b-bit index per weight. It minimises the within-cluster sum of
  squares (eq. 1); afterwards the shared values are fine-tuned with the indices fixed (eq. 3).
* **Uniform** levels: evenly spaced over the weight range, per tensor or per output channel.
* **Binary** weights: sign(w) ({COURBARIAUX}) or α·sign(w) with α = mean |w| per output unit ({RASTEGARI}).
* **Low rank**: keep the r largest singular values, W ≈ U_r S_r V_rᵀ ({DENTON}).

Run the cells from top to bottom. On the bundled digits data the lab takes a minute or two on two CPU cores.
"""),
    ("code", SETTINGS),
    ("md", "## 0. A trained LeNet-300-100"),
    ("code", BASELINE_CELL),
    ("md", """
## 1. One layer's codebook

Cluster the weights of `fc2` into 2³ = 8 shared values, once with **linear** initialisation (evenly
spaced between the smallest and largest weight) and once with **density** initialisation (the quantiles
of the weights), Han et al. section 3.2.

**Look for:** the bars are the layer's weights, the lines its 8 shared values. Density init crowds
the values into the middle, where most weights are; linear init keeps values out at the tails. Han et
al. (figure 8) found linear best *after fine-tuning*: the few large weights matter most, and density
init represents them poorly. Before fine-tuning, on a small model, either can come out ahead: compare
the two accuracies printed under the charts.
"""),
    ("code", '''
from kdviz import load_dataset
from kdviz.figures.quantization_explorer import levels_histogram
from kdviz.quant import SliderEvaluator
from kdviz.quant.explore import MethodExplorer, QuantChoice, layer_histogram

data = load_dataset(DATASET, root=MNIST_ROOT)
model = load_trained_model(baseline.path)
explorer = MethodExplorer(SliderEvaluator(model, data.test_images, data.test_labels))
print(f"float32 test accuracy: {explorer.baseline():.2%}")

counts, edges = layer_histogram(explorer.evaluator, "fc2")
for init in ("linear", "density"):
    choice = QuantChoice("kmeans", bits=3, init=init)
    q = explorer.quantize(choice)
    levels_histogram(counts, edges, q.levels["fc2"], "fc2", choice.label(), 3, q.n_weights["fc2"]).show()
    print(f"{init:>8} init: test accuracy {explorer.accuracy(choice):.2%} with every layer at 3 bits")
'''),
    ("md", """
The **index map** shows which shared value each weight of `fc2` uses (rows: output units, columns:
inputs), and the **codebook** lists the values with the number of weights that use each. The whole
layer is stored as this table plus 3 bits per weight.
"""),
    ("code", '''
from kdviz.figures.quantization import codebook_table, index_map_heatmap

q = explorer.quantize(QuantChoice("kmeans", bits=3))
index_map_heatmap(q.codes["fc2"], layer="fc2").show()
codebook_table(q.levels["fc2"], q.counts["fc2"]).show()
print(f"all layers: {q.ratio:.1f}x smaller than float32 ({q.bits_per_weight:.2f} bits per weight, codebooks included)")
'''),
    ("md", """
## 2. Explore every method

Drag the **bits** slider, switch the **method** and its options, and pick a **layer**. Every move
quantizes all layers and tests the model on the whole test set.

**What to look for:**

* **k-means** holds its accuracy down to 3 bits or so; the codebook follows the weights.
* **Uniform, per tensor, symmetric** at 2 bits has only three levels (−s, 0, +s) and most weights
  land on 0. Per-channel scales help: each output unit gets a range of its own.
* **Binary**: BinaryConnect's ±1 ignores the size of the weights; XNOR's α per unit keeps it. In a
  ReLU network a scale per unit matters less than you might expect (compare the two). Neither is
  meant to work without training: both papers train *with* binary weights.
* **Low rank** (bottom): the spectrum of a trained layer decays slowly; watch how much rank you
  need before the accuracy returns.
"""),
    ("code", '''
from kdviz.widgets.quantization import QuantizationExplorer

QuantizationExplorer(model, data, method="kmeans", bits=3)
'''),
    ("md", """
## 3. Accuracy against bits, method by method

The same evaluation at every bit width from 1 to 8, and compression against accuracy. Compression
counts everything stored: indices, codebooks, scales and zero points (biases excluded, as Han et al.'s
table 1).
"""),
    ("code", '''
from kdviz.figures.quantization import accuracy_vs_bits, compression_vs_accuracy
from kdviz.figures.quantization_explorer import style_methods  # one colour per method on both charts

style_methods(accuracy_vs_bits(explorer.accuracy_curves(), baseline=explorer.baseline())).show()
style_methods(compression_vs_accuracy(explorer.scatter_points(), baseline=explorer.baseline()))
'''),
    ("md", """
**Check the low-rank formula yourself:** the Frobenius error of the best rank-r approximation is the
root of the discarded squared singular values (Eckart–Young). Below it is computed both ways.
"""),
    ("code", '''
import numpy as np
from kdviz.figures.quantization import singular_spectrum

W = model.fc1.weight.detach().double().numpy()
s = np.linalg.svd(W, compute_uv=False)
for r in (5, 20, 40):
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    W_r = (U[:, :r] * S[:r]) @ Vt[:r]
    point = explorer.low_rank("fc1", r)
    print(f"rank {r:>2}: ||W - W_r|| = {np.linalg.norm(W - W_r):.4f}, sqrt(sum discarded s^2) = "
          f"{np.sqrt((s[r:] ** 2).sum()):.4f}, test accuracy {point.accuracy:.2%}")
singular_spectrum(s, 20, "fc1")
'''),
    ("md", """
## 4. Fine-tune the shared values, live

k-means at 2 bits loses accuracy. Han et al. win it back by training the **shared values only**: every
weight keeps its index, and each centroid moves by the *sum* of its cluster's gradients (eq. 3). The
`kmeans` training hook does exactly that in a background job; the monitor redraws as it trains.

**Look for:** the solid lines (the values now) drift away from the dashed ones (k-means' choice), most
for the outer values; the accuracy climbs from the first point (k-means before any step) towards the
float model. The learning rate is small because a centroid's gradient sums thousands of weights.
"""),
    ("code", '''
from kdviz.engine import TrainConfig, start
from kdviz.widgets.quantization import CentroidMonitor

FINETUNE_EPOCHS = int(LAB_EPOCHS) if LAB_EPOCHS else (4 if DATASET == "digits" else 1)
EVERY = 5 if DATASET == "digits" else 50  # steps between evaluations and snapshots
finetune = start(TrainConfig(dataset=DATASET, data_root=MNIST_ROOT, model="lenet300", init_from=str(baseline.path),
                             epochs=FINETUNE_EPOCHS, lr=1e-3, eval_every=EVERY, snapshot_every=EVERY, runs_root=RUNS,
                             name=f"kmeans-lenet300-{DATASET}", hooks=[{"name": "kmeans", "bits": 2, "init": "linear"}]))
monitor = CentroidMonitor(finetune, layer="fc1", float_accuracy=explorer.baseline())
monitor
'''),
    ("md", "This cell waits for the fine-tuning to end (the monitor keeps drawing meanwhile)."),
    ("code", '''
monitor.wait()
evals = finetune.store.metrics("eval")
print(f"2-bit k-means: {evals[0]['test_acc']:.2%} before fine-tuning, {evals[-1]['test_acc']:.2%} after "
      f"(float32: {explorer.baseline():.2%})")
monitor.codebook.round(5)
'''),
    ("md", """
**Think about it:** at 2 bits each layer has four shared values. Why does fine-tuning help much more
here than at 6 bits? And why must the learning rate be smaller for `fc1` than the one that trained
the weights? (Hint: count the weights in each cluster.) Lab 6 puts pruning, k-means and Huffman
coding together.
"""),
]

LAB_06 = [
    ("md", f"""
# Lab 6 · Deep Compression: prune, quantize, Huffman-code

Three ideas stacked ({HAN}, figure 1):

1. **Prune**: remove the smallest weights and retrain (Han et al. 2015). Only the kept weights are
   stored, each with a 5-bit gap to the previous one.
2. **Quantize**: share 2^b values per layer with k-means, fine-tune them (lab 5). Each kept weight
   becomes a b-bit index.
3. **Huffman-code** the indices and the gaps: their distributions are skewed, so common symbols get
   short codes.

Han et al. report for LeNet-300-100 on MNIST (table 1): **1070 KB → 27 KB, 40x, at 1.58% error
(1.64% before)**. This lab runs the same pipeline and measures every stage from real encoded bytes;
the last model is decoded from those bytes before it is tested.

On digits the whole lab takes about a minute on two CPU cores.
"""),
    ("code", SETTINGS),
    ("md", "## 0. A trained LeNet-300-100 (reused from lab 5 when it is already trained)"),
    ("code", BASELINE_CELL),
    ("md", """
## 1. Run the pipeline in the background

`DeepCompressionJob` runs the three stages in a thread and returns at once; the monitor shows the
progress and the size after each stage as it ends. The settings are Han et al.'s: 92% of `fc1` and
`fc2` pruned, 74% of the small output layer, 6-bit codebooks.
"""),
    ("code", '''
from kdviz import load_dataset
from kdviz.quant.pipeline import preset
from kdviz.quant.pipeline_job import DeepCompressionJob
from kdviz.widgets.deep_compression import DeepCompressionMonitor

data = load_dataset(DATASET, root=MNIST_ROOT)
config = preset(DATASET, bits=6)
if LAB_EPOCHS:  # CI: shorter retraining
    config = preset(DATASET, bits=6, round_epochs=1.0, retrain_epochs=float(LAB_EPOCHS), finetune_epochs=1.0)
job = DeepCompressionJob(load_trained_model(baseline.path), data, config).start()
monitor = DeepCompressionMonitor(job)
monitor
'''),
    ("md", "This cell waits for the pipeline to end, then lists every stage."),
    ("code", '''
import pandas as pd

monitor.wait()
print(job.status().message)
dense = job.stages()[0]
pd.DataFrame([{"stage": s.name, "size (KB)": round(s.nbytes / 1e3, 2), "ratio": f"{dense.nbytes / s.nbytes:.1f}x",
               "test error": f"{100 * s.error:.2f}%", "what is stored": s.note} for s in job.stages()]).set_index("stage")
'''),
    ("md", """
## 2. Where the bytes go

**Look for:** pruning saves the most in one step, but its kept weights are still 32-bit floats plus a
5-bit gap each; k-means turns each 32-bit value into a 6-bit index; Huffman coding then shaves the
skewed indices and gaps further. The error should stay close to the dense model's: retraining after
pruning and fine-tuning after k-means win most of the losses back, and Huffman coding is lossless.
"""),
    ("code", '''
from kdviz.figures.quantization import size_waterfall

size_waterfall(job.result.sizes())
'''),
    ("md", """
## 3. Inside the compressed model

The pruned layer's surviving weights form two humps (the small ones are gone). k-means puts its 64
shared values over both humps (dashed), and fine-tuning nudges them (solid). The table counts each
layer's Huffman-coded bits.
"""),
    ("code", '''
from kdviz.figures.quantization import codebook_histogram

res = job.result
counts, edges = res.histograms["fc1"]
codebook_histogram(counts, edges, res.centroids_initial["fc1"], res.shared["fc1"].centroids.numpy(), "fc1").show()
pd.DataFrame([{"layer": s.name, "kept": f"{s.n_kept / s.n_weights:.1%}", "index bits": s.value_bits,
               "gap bits": s.sparse_index_bits, "codebook + tables": s.codebook_bits + s.table_bits,
               "ratio": f"{s.rate:.1f}x"} for s in res.layer_sizes]).set_index("layer")
'''),
    ("md", """
**Check it yourself:** the sizes are real bytes. Decode `fc1` from its bytes alone and compare with the
shared weights; then compare the Huffman-coded index bits with fixed-width indices (one code per
shared value, plus one for the filler zeros that bridge long gaps).
"""),
    ("code", '''
import math
import numpy as np

layer = res.encoded["fc1"]
decoded = layer.decode()
print("decoded == shared weights:", np.array_equal(decoded, res.shared["fc1"].weight().numpy()))
n, k = layer.index.n_symbols, res.shared["fc1"].num_clusters
print(f"{n:,} stored entries: Huffman {8 * len(layer.index.data) / n:.2f} bits per index "
      f"(fixed width: {math.ceil(math.log2(k + 1))}), {8 * len(layer.gaps.data) / n:.2f} bits per gap (fixed: 5)")
'''),
    ("md", """
**Try next:** 4 bits instead of 6 (`preset(DATASET, bits=4)`); prune harder (`hidden_sparsity=0.96`);
or skip the retraining (`retrain_epochs=0.0, round_epochs=0.0`) and watch the error of the pruned stage.
With `DATASET = "mnist"` the bench (`bench/deep_compression.py`) compares the result with Han et al.'s table.
"""),
]

LABS: dict[str, list[tuple[str, str]]] = {"05_quantization": LAB_05, "06_deep_compression": LAB_06}


def main(argv: list[str]) -> int:
    return write_labs(LABS, argv, "_build_05_06.py")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
