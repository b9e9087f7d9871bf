"""What the ViT compression tab, the ``HeadPruningMonitor`` widget, lab 16 and the bench show, computed
once for every UI: the ViT teacher (``kdviz.present.vit_configs``), the head-pruning fine-tune's config
(``kdviz.methods.head_prune``), the accuracy-against-heads-removed curves of Michel et al. 2019
(section 4.1: importance order against random order, no fine-tuning), the points of fine-tuned runs,
and the accuracy / size / latency table of the compressed forms:

* **dense**: the trained ViT, float32;
* **heads removed**: the removed heads taken out physically (``TinyViT.prune_heads``), checked against
  the model with those heads gated off;
* **N:M** (2:4 by default) and **unstructured** magnitude sparsity on every Linear layer (qkv, proj,
  fc1, fc2, patch_embed, head; ``kdviz.prune.n_m``, ``kdviz.prune.magnitude``), one-shot without
  fine-tuning, stored and run as torch sparse CSR (``kdviz.deploy.formats``: torch has no 2:4 kernel on
  CPU, so the N:M form is timed as CSR too);
* **int8**: torch.ao dynamic quantization of every Linear (``quantize_dynamic``);
* **k-means**: Han et al. 2016's shared weights (``kdviz.quant.kmeans``), 2^bits centroids per layer;
  its size is the encoded size (indices + codebook, ``kdviz.quant.size``) plus the float rest, and it
  runs decoded to float32 (no codebook kernel in torch), so its latency is the dense model's.

Latency: ``kdviz.deploy.latency.measure_forms`` (interleaved forwards, median, one thread, batch 1 and 256).
"""
from __future__ import annotations

import copy
from pathlib import Path
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ..deploy.formats import DeployForm, to_int8_model, to_sparse_csr_model
from ..deploy.latency import fixed_threads, measure_forms
from ..engine import TrainConfig, list_runs
from ..engine.run_folder import read_config
from ..engine.setup import steps_per_epoch
from ..methods.head_prune import HEAD_PRUNE, head_prune_hook
from ..palette import ROLE_COLORS
from ..prune.heads import gated_accuracy, iterative_head_pruning, removable_heads, shrink, uniform_heads, zero_removed_heads
from ..prune.magnitude import layerwise_magnitude_masks
from ..prune.n_m import n_m_masks
from ..quant.kmeans import kmeans_quantize_model
from ..quant.size import encode_model
from .vit_configs import teacher_config
from .vit_configs import teacher_run_options as teacher_options  # noqa: F401  (one preset: both tabs share its run)

ORDER_LABELS = {"importance": "by importance (no fine-tuning)", "random": "random order (no fine-tuning)"}
CURVE_COLOURS = {ORDER_LABELS["importance"]: ROLE_COLORS["head-pruned"], ORDER_LABELS["random"]: ROLE_COLORS["baseline"],
                 HEAD_PRUNE.label: ROLE_COLORS["pruned"]}


def preset_teacher_epochs(dataset: str) -> int:
    """The teacher preset's epochs on ``dataset``."""
    return int(teacher_config(dataset).epochs)


def head_prune_config(trained_run: str, heads_removed: int, rounds: int, epochs: int = 2, lr: float = 0.0005,
                      runs_root: str | None = None, pace_s: float | None = None, snapshots_per_round: int = 2,
                      max_steps: int | None = None) -> TrainConfig:
    """Fine-tune the finished ViT run ``trained_run`` (``init_from``) while ``heads_removed`` heads go in
    ``rounds`` rounds over the first half of the run (``kdviz.methods.head_prune``), validated. Snapshots
    and evaluations come ``snapshots_per_round`` times per round, so the heatmap moves between rounds."""
    base = read_config(trained_run)
    if base.model != "vit":
        raise ValueError(f"head pruning needs a ViT run; {trained_run} trained {base.model!r}")
    total = int(max_steps) if max_steps else int(epochs) * steps_per_epoch(base)
    end = max(1, total // 2)
    every = max(1, end // max(1, int(rounds) * int(snapshots_per_round)))
    hook = head_prune_hook(heads_removed, rounds, start_step=0, end_step=end)
    config = replace(base, init_from=str(trained_run), hooks=[hook], method="ce", epochs=int(epochs), max_steps=max_steps, lr=float(lr),
                     lr_schedule="constant", jitter_px=0, eval_every=every, snapshot_every=every, pace_s=pace_s,
                     name=f"vit-heads-{heads_removed}", runs_root=runs_root or base.runs_root, teacher=None)
    return config.validate()


def pruning_curves(model: nn.Module, probe: tuple[torch.Tensor, torch.Tensor], evaluation: tuple[torch.Tensor, torch.Tensor],
                   fraction: float = 0.1, seed: int = 0) -> dict[str, tuple[list[int], list[float]]]:
    """Michel et al. 2019, section 4.1 without fine-tuning: accuracy on ``evaluation`` against heads removed,
    by importance (eq. 4 on ``probe``, raw scores: ``kdviz.prune.heads`` says why) and in random order, by curve label."""
    out = {}
    with fixed_threads(1):  # tiny models: one thread is fastest, and fair to the jobs training beside
        for order, label in ORDER_LABELS.items():
            steps = iterative_head_pruning(model, probe, evaluation, fraction=fraction, order=order, seed=seed)
            out[label] = ([s.heads_removed for s in steps], [s.accuracy for s in steps])
    return out


def fine_tune_points(evals: Sequence[Mapping[str, Any]], config: Any) -> tuple[list[int], list[float]]:
    """(heads removed, test accuracy) at each evaluation of a head-pruning run, the last one per count."""
    key = HEAD_PRUNE.metric_key(config, "heads_removed")
    by_count: dict[int, float] = {}
    for record in evals:
        if key in record and "test_acc" in record:
            by_count[int(record[key])] = float(record["test_acc"])
    counts = sorted(by_count)
    return counts, [by_count[c] for c in counts]


def heatmap_caption(importance: np.ndarray, removed: np.ndarray) -> str:
    """Which head goes next and how the remaining importance is spread, from one snapshot."""
    alive = ~removed.astype(bool)
    candidates = alive & (alive.sum(1, keepdims=True) > 1)
    if not candidates.any():
        return "Every layer is down to one head: nothing more can go."
    masked = np.where(candidates, importance, np.inf)
    layer, head = np.unravel_index(int(np.argmin(masked)), masked.shape)
    top = np.unravel_index(int(np.argmax(np.where(alive, importance, -np.inf))), importance.shape)
    return (f"{int(removed.sum())} of {removed.size} heads removed. Next to go: layer {layer + 1}, head {head + 1} "
            f"(importance {importance[layer, head]:.3f}); the most important is layer {top[0] + 1}, head {top[1] + 1} "
            f"({importance[top]:.3f}).")


def _kmeans_form(dense: nn.Module, bits: int) -> tuple[DeployForm, int]:
    shared = kmeans_quantize_model(dense, bits)
    decoded = copy.deepcopy(dense)
    modules = dict(decoded.named_modules())
    with torch.no_grad():
        for name, sw in shared.items():
            modules[name].weight.copy_(sw.weight())
    coded_bits = sum(e.size().compressed_bits for e in encode_model(shared).values())
    rest = sum(p.numel() * 4 for n, p in decoded.named_parameters() if n.rsplit(".", 1)[0] not in shared or not n.endswith("weight"))
    return DeployForm(f"k-means {bits}-bit", decoded, decoded, f"{2 ** bits} shared values per layer (Han et al. 2016), "
                      "runs decoded to float32"), coded_bits // 8 + rest


def compression_forms(model: nn.Module, removed: Any, n: int = 2, m: int = 4, sparsity: float = 0.5,
                      kmeans_bits: int = 4) -> tuple[list[DeployForm], dict[str, int]]:
    """The forms of the module docstring and, by form name, a size that overrides ``stored_bytes`` (k-means)."""
    dense = copy.deepcopy(model).eval()
    removed = torch.as_tensor(np.array(removed, dtype=bool))
    gated = zero_removed_heads(copy.deepcopy(dense), removed)
    forms = [DeployForm("dense", dense, dense, "float32 as trained"),
             DeployForm(f"{int(removed.sum())} heads removed", shrink(dense, removed).eval(), gated,
                        f"heads left per layer: {shrink(dense, removed).heads_per_layer}")]
    nm_model = copy.deepcopy(dense)
    masks, skipped = n_m_masks(nm_model, n, m)
    masks.apply(nm_model)
    forms.append(DeployForm(f"{n}:{m} sparse", to_sparse_csr_model(nm_model), nm_model,
                            f"one-shot, CSR on CPU{'; dense: ' + ', '.join(skipped) if skipped else ''}"))
    sparse = copy.deepcopy(dense)
    layerwise_magnitude_masks(sparse, sparsity).apply(sparse)
    forms.append(DeployForm(f"{sparsity:.0%} unstructured", to_sparse_csr_model(sparse), sparse, "one-shot magnitude, CSR"))
    forms.append(DeployForm("int8 dynamic", to_int8_model(dense), dense, "torch.ao quantize_dynamic on every Linear"))
    kmeans, kmeans_bytes = _kmeans_form(dense, kmeans_bits)
    return forms + [kmeans], {kmeans.name: kmeans_bytes}


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((model(images).argmax(1) == labels).float().mean())


def compression_rows(model: nn.Module, removed: Any, images: torch.Tensor, labels: torch.Tensor, runs: int = 30,
                     warmup: int = 3, timing_images: int = 64, **form_options: Any) -> list[dict[str, Any]]:
    """One row per form: ``form``, ``accuracy`` on (images, labels), ``bytes``, ``latency_ms`` {1, 256: median ms}
    (measured in one interleaved run), ``agreement`` with its source and ``note``."""
    with fixed_threads(1):
        forms, sizes = compression_forms(model, removed, **form_options)
        report = measure_forms(forms, images[:timing_images], runs=runs, warmup=warmup, threads=1)
        accuracies = [_accuracy(form.model, images, labels) for form in forms]
    rows = []
    for form, result, acc in zip(forms, report.forms, accuracies):
        rows.append({"form": form.name, "accuracy": acc,
                     "bytes": sizes.get(form.name, result.model_bytes),
                     "latency_ms": {b: t.median_ms for b, t in result.timings.items()},
                     "agreement": result.agreement, "note": form.note})
    return rows


def default_removed(model: nn.Module, probe: tuple[torch.Tensor, torch.Tensor], share: float = 0.5) -> np.ndarray:
    """The heads removed when ``share`` of the removable heads go by importance (no fine-tuning), (L, H) bool."""
    shape = uniform_heads(model)
    count = int(round(share * removable_heads(shape)))
    with fixed_threads(1):
        steps = iterative_head_pruning(model, probe, probe, fraction=1.0 / (shape[0] * shape[1]), max_removed=count,
                                       accuracy=lambda removed: 0.0)
    return steps[-1].removed


def dense_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy with every head present."""
    return gated_accuracy(model, images, labels, torch.zeros(uniform_heads(model), dtype=torch.bool))


def finished_vit_runs(runs_root: str) -> dict[str, str]:
    """Finished ViT runs under ``runs_root`` that are not head-pruning fine-tunes, newest first: {label: path}."""
    out = {}
    for row in list_runs(runs_root):
        if row.get("state") != "finished":
            continue
        try:
            config = read_config(row["path"])
        except (ValueError, OSError):
            continue
        if config.model == "vit" and not HEAD_PRUNE.claims(config):
            options = config.model_options
            out[f"{Path(row['path']).name} · {options.get('depth', '?')} layers x {options.get('heads', '?')} heads"] = str(row["path"])
    return out
