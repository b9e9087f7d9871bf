"""The ``specialist`` hook and method (Hinton et al. 2015, section 5) on real digits data: its loss is
the enrichment-weighted cross-entropy over the subset and the dustbin, recomputed here with numpy; its
options reach the loss (a wiring test); bad options are refused with a message naming them; a short
real run logs the specialist's own accuracies, recomputed here from the saved checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.engine import TrainConfig, start
from kdviz.engine.hooks import StepBatch, TrainContext
from kdviz.engine.setup import dataset_for
from kdviz.engine.teacher_cache import load_trained_model
from kdviz.methods.base import method_of
from kdviz.methods.specialist import SPECIALIST, SpecialistHook, specialist_config

from _support.run_files import metric_lines

SUBSET = (3, 5, 8)


def numpy_loss(logits: np.ndarray, labels: np.ndarray, indices: np.ndarray, all_labels: np.ndarray, e: float) -> float:
    """mean_b w_b * -log p^m(mapped y_b), written out with numpy."""
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    f = np.isin(all_labels, SUBSET).mean()
    total = 0.0
    for row, y, i in zip(p, labels, indices):
        prob = row[y] if y in SUBSET else row[[c for c in range(10) if c not in SUBSET]].sum()
        weight = e / f if all_labels[i] in SUBSET else (1 - e) / (1 - f)
        total += -weight * np.log(prob)
    return total / len(labels)


@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_the_hook_loss_is_the_weighted_dustbin_cross_entropy(digits, fraction):
    hook = SpecialistHook(list(SUBSET), enriched_fraction=fraction)
    ctx = TrainContext(model=torch.nn.Identity(), teacher=None, config=None, dataset=digits, device=torch.device("cpu"))
    hook.setup(ctx)
    g = torch.Generator().manual_seed(3)
    indices = torch.randperm(len(digits.train_labels), generator=g)[:32]
    logits = torch.randn(32, 10, generator=g)
    batch = StepBatch(digits.train_images[indices], digits.train_labels[indices], indices, logits)
    ours = hook.loss_terms(ctx, batch)["dustbin_ce"].item()
    ref = numpy_loss(logits.double().numpy(), digits.train_labels[indices].numpy(), indices.numpy(),
                     digits.train_labels.numpy(), fraction)
    assert ours == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("options,message", [
    ({"classes": []}, "must list the specialist's classes"),
    ({"classes": [1, 2], "enriched_fraction": 1.0}, "enriched_fraction"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(method="none", hooks=[{"name": "specialist", **options}]).validate()


def test_classes_outside_the_dataset_are_named_at_setup(digits):
    hook = SpecialistHook([3, 12])
    ctx = TrainContext(model=torch.nn.Identity(), teacher=None, config=None, dataset=digits, device=torch.device("cpu"))
    with pytest.raises(ValueError, match=r"class indices 0..9, got \[3, 12\]"):
        hook.setup(ctx)


def test_a_short_specialist_run_logs_its_own_accuracies(manager, tmp_path, one_thread):
    generalist = start(TrainConfig(dataset="digits", model_options={"hidden": [16]}, max_steps=40, snapshot_every=0,
                                   runs_root=str(tmp_path), name="generalist"), manager)
    assert generalist.wait(120).state == "finished"
    config = specialist_config(TrainConfig.load(generalist.path), str(generalist.path), SUBSET, enriched_fraction=0.7,
                               name="spec")
    config.max_steps = 20
    job = start(config, manager)
    assert job.wait(120).state == "finished"
    saved = json.loads((Path(job.path) / "config.json").read_text())
    assert saved["init_from"] == str(generalist.path) and saved["method"] == "none"
    assert saved["hooks"] == [{"name": "specialist", "classes": [3, 5, 8], "enriched_fraction": 0.7}]
    assert method_of(TrainConfig.load(job.path)) is SPECIALIST
    last = metric_lines(Path(job.path), "eval")[-1]
    # recompute the special accuracy from the checkpoint: the dustbin logit corrected by log((1-f)e / (f(1-e)))
    data = dataset_for(config)
    f = np.isin(data.train_labels.numpy(), SUBSET).mean()
    with torch.no_grad():
        logits = load_trained_model(job.path).eval()(data.test_images).double().numpy()
    rest = [c for c in range(10) if c not in SUBSET]
    dustbin = np.log(np.exp(logits[:, rest]).sum(1)) + np.log((1 - f) * 0.7 / (f * 0.3))
    pred = np.concatenate([logits[:, list(SUBSET)], dustbin[:, None]], 1).argmax(1)
    mapped = np.array([SUBSET.index(y) if y in SUBSET else 3 for y in data.test_labels.numpy()])
    assert last["specialist/subset_acc"] == pytest.approx((pred == mapped).mean(), abs=1e-9)
    inside = mapped < 3
    assert last["specialist/special_acc"] == pytest.approx((pred[inside] == mapped[inside]).mean(), abs=1e-9)
