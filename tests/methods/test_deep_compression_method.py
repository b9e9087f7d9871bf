"""The Deep Compression recipe through the engine: a pruning run, then a k-means run from its weights.

A real (tiny) experiment on digits, at non-default options (70% of the hidden layers and 50% of the
output layer pruned, 3-bit codebooks). Expected values are recomputed here from the run folders'
checkpoints (weights, masks, distinct values, a plain torch forward pass), not read from the report.
"""
from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.data import load_dataset
from kdviz.engine import TrainConfig, load_checkpoint, load_trained_model
from kdviz.engine.run_reader import read_status
from kdviz.methods import method_of
from kdviz.methods.deep_compression import (
    PRUNE_STAGE, QUANTIZE_STAGE, DeepCompressionOptions, deep_compression_experiment, preset,
)
from kdviz.methods.deep_compression_report import compression_report, read_codebooks

from _support.jobs import finished_job

torch.set_num_threads(1)
LAYERS = ("fc1", "fc2", "fc3")
OPTIONS = dict(hidden_sparsity=0.7, output_sparsity=0.5, bits=3, prune_rounds=2, round_epochs=1.0,
               retrain_epochs=1.0, finetune_epochs=2.0, finetune_lr=1e-3, points=5)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, manager):
    root = tmp_path_factory.mktemp("dc-runs")
    config = TrainConfig(dataset="digits", model="lenet300", epochs=3, lr=0.05, runs_root=str(root), name="baseline")
    return finished_job(config, manager)


@pytest.fixture(scope="module")
def experiment(baseline, manager):
    """The experiment run to the end, with (prune done, quantize started) seen every few ms."""
    exp = deep_compression_experiment(baseline.path, preset("digits", **OPTIONS), manager)
    seen = []
    end = time.monotonic() + 120
    while not exp.done:
        assert time.monotonic() < end, {n: j.status() for n, j in exp.jobs.items()}
        jobs = exp.jobs
        seen.append((jobs[PRUNE_STAGE].done, QUANTIZE_STAGE in jobs))
        time.sleep(0.005)
    return exp, seen


def weights(run) -> dict[str, np.ndarray]:
    state = load_checkpoint(run)["model"]
    return {n: state[f"{n}.weight"].numpy() for n in LAYERS}


def test_the_quantize_stage_starts_only_after_pruning_finished(experiment, baseline):
    exp, seen = experiment
    prune, quantize = exp.job(PRUNE_STAGE), exp.job(QUANTIZE_STAGE)
    assert prune.status().state == quantize.status().state == "finished"
    assert (False, False) in seen and not any(started and not done for done, started in seen)
    assert read_status(prune.path)["updated"] <= os.stat(Path(quantize.path) / "config.json").st_mtime
    assert Path(quantize.config.init_from) == Path(prune.path) and Path(prune.config.init_from) == Path(baseline.path)
    assert method_of(prune.config).label == "pruned fine-tune" and method_of(quantize.config).label == "k-means fine-tune"


def test_options_reach_the_stage_configs(experiment, baseline):
    exp, _ = experiment
    prune, quantize = exp.job(PRUNE_STAGE).config, exp.job(QUANTIZE_STAGE).config
    per_epoch = math.ceil(len(load_dataset("digits").train_labels) / 128)
    hook = prune.hooks[0]
    assert hook["sparsity"] == {"fc1": 0.7, "fc2": 0.7, "fc3": 0.5} and hook["schedule"] == "agp"
    assert (hook["frequency"], hook["end_step"], prune.max_steps) == (per_epoch, 2 * per_epoch, 3 * per_epoch)
    assert (prune.lr, prune.weight_decay, prune.model, prune.dataset) == (0.01, 1e-4, "lenet300", "digits")
    assert quantize.hooks == [{"name": "kmeans", "bits": 3, "init": "linear", "seed": 0, "layers": list(LAYERS)}]
    assert (quantize.lr, quantize.weight_decay, quantize.max_steps) == (1e-3, 0.0, 2 * per_epoch)
    assert Path(prune.runs_root) == Path(baseline.path).parent


def test_pruned_weights_stay_zero_and_each_layer_has_at_most_8_values(experiment):
    exp, _ = experiment
    pruned = weights(exp.job(PRUNE_STAGE).path)
    shared, _, _ = read_codebooks(exp.job(QUANTIZE_STAGE).path)
    for name, target in zip(LAYERS, (0.7, 0.7, 0.5)):
        w = pruned[name]
        assert (w == 0).sum() == round(target * w.size)  # the layer's AGP target, reached exactly
        q = shared[name].weight().numpy()
        assert np.array_equal(shared[name].mask.numpy(), w != 0)
        assert (q[w == 0] == 0).all() and (q[w != 0] != 0).all()
        assert 2 <= len(np.unique(q[w != 0])) <= 2**3


def test_report_sizes_and_the_decoded_model(experiment):
    exp, _ = experiment
    prune, quantize = exp.job(PRUNE_STAGE), exp.job(QUANTIZE_STAGE)
    report = compression_report(prune.path, quantize.path)
    assert [s.name for s in report.stages] == ["dense", "pruned", "3-bit k-means", "Huffman"]
    sizes = [s.nbytes for s in report.stages]
    assert sizes[0] == 4 * (64 * 300 + 300 * 100 + 100 * 10) and all(a > b for a, b in zip(sizes, sizes[1:]))
    assert report.stages[1].accuracy == pytest.approx(prune.status().test_acc)
    data = load_dataset("digits")
    model = copy.deepcopy(load_trained_model(prune.path)).eval()
    state = load_checkpoint(quantize.path)["model"]
    with torch.no_grad():
        for name in LAYERS:  # Huffman bytes -> weights, biases from the k-means run
            getattr(model, name).weight.copy_(torch.from_numpy(report.encoded[name].decode()))
            getattr(model, name).bias.copy_(state[f"{name}.bias"])
        expected = float((model(data.test_images).argmax(1) == data.test_labels).float().mean())
    assert report.stages[3].accuracy == pytest.approx(expected, abs=1e-9)
    assert report.stages[3].accuracy == pytest.approx(quantize.status().test_acc, abs=1e-6)  # the stored model
    assert report.accuracy_before_finetune is not None and report.complete


def test_stop_stops_the_running_stage_and_cancels_the_next(baseline, manager):
    exp = deep_compression_experiment(baseline.path, preset("digits", round_epochs=200.0), manager)
    prune = exp.job(PRUNE_STAGE)
    end = time.monotonic() + 60
    while prune.status().step < 3:
        assert time.monotonic() < end, prune.status()
        time.sleep(0.02)
    exp.stop()
    statuses = exp.wait(30)
    assert list(statuses) == [PRUNE_STAGE] and statuses[PRUNE_STAGE].state == "stopped"
    assert exp.job(QUANTIZE_STAGE) is None and QUANTIZE_STAGE in exp.blocked and exp.done
    with pytest.raises(ValueError, match="has not finished"):
        compression_report(prune.path)
    with pytest.raises(ValueError, match="has not finished"):  # a stopped run is no baseline
        deep_compression_experiment(prune.path, preset("digits", **OPTIONS), manager)


def test_bad_options_fail_before_any_run_folder(baseline, manager):
    root = Path(baseline.path).parent
    before = sorted(root.iterdir())
    for bad, match in ((dict(bits=0), "bits must be in 1..16"), (dict(hidden_sparsity=1.0), "hidden_sparsity must be in"),
                       (dict(prune_rounds=0), "prune_rounds"), (dict(finetune_lr=0.0), "finetune_lr"),
                       (dict(init="spread"), "k-means initialisation"), (dict(finetune_epochs=0.0), "fine-tuning step"),
                       (dict(round_epochs=0.0, retrain_epochs=0.0), "no training step"),
                       (dict(bits={"fc1": 4}), r"missing \['fc2', 'fc3'\]")):
        with pytest.raises(ValueError, match=match):
            deep_compression_experiment(baseline.path, DeepCompressionOptions(**{**OPTIONS, **bad}), manager)
    with pytest.raises(ValueError, match="is not a run folder"):
        deep_compression_experiment(root / "nowhere", DeepCompressionOptions(**OPTIONS), manager)
    assert sorted(root.iterdir()) == before
