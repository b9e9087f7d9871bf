"""The Deep Compression pipeline (prune -> k-means -> Huffman) and its background job, on digits."""
from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdviz.data import load_dataset
from kdviz.models import build_model
from kdviz.quant.pipeline import DeepCompressionConfig, deep_compression, preset
from kdviz.quant.pipeline_job import DeepCompressionJob

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    m = build_model("lenet300", input_shape=(1, 8, 8), num_classes=10)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    for _ in range(150):
        idx = torch.randint(0, len(digits.train_labels), (64,))
        opt.zero_grad()
        F.cross_entropy(m(digits.train_images[idx]), digits.train_labels[idx]).backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def result(model, digits):
    before = copy.deepcopy(model.state_dict())
    cfg = preset("digits", bits=4, prune_rounds=2, round_epochs=2.0, retrain_epochs=4.0, finetune_epochs=2.0)
    seen = []
    res = deep_compression(model, digits, cfg, on_stage=lambda s: seen.append(s.name))
    assert seen == ["dense", "pruned", "4-bit k-means", "Huffman"]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the input is untouched
    return res


def test_each_stage_is_smaller_and_pruned_weights_stay_zero(result, model):
    sizes = [s.nbytes for s in result.stages]
    assert all(a > b for a, b in zip(sizes, sizes[1:]))
    assert sizes[0] == 4 * sum(getattr(model, n).weight.numel() for n in ("fc1", "fc2", "fc3"))
    w1 = result.pruned.fc1.weight.detach().numpy()
    assert abs((w1 == 0).mean() - 0.92) < 0.005 and abs((result.pruned.fc3.weight.detach().numpy() == 0).mean() - 0.74) < 0.01
    for name, sw in result.shared.items():
        w = sw.weight().numpy()
        pruned = getattr(result.pruned, name).weight.detach().numpy() == 0
        assert (w[pruned] == 0).all() and len(np.unique(w[~pruned])) <= 16
        assert not np.array_equal(sw.centroids.numpy(), result.centroids_initial[name])  # fine-tuned


def test_huffman_size_is_the_encoded_bytes_and_decodes_exactly(result, digits):
    huffman = result.stages[-1]
    total = sum(len(e.index.data) + len(e.gaps.data) + len(e.codebook) + len(e.index_table) + len(e.gap_table)
                for e in result.encoded.values())
    assert huffman.nbytes == total < result.stages[2].nbytes
    for name, e in result.encoded.items():
        assert np.array_equal(e.decode(), result.shared[name].weight().numpy())
    assert result.quantized.fc1.weight.shape == (300, 64)  # the quantized model still works after decoding
    assert abs(huffman.accuracy - result.stages[2].accuracy) < 1e-9


def test_config_is_checked():
    for bad, match in ((dict(bits=0), "bits must be in 1..16"), (dict(hidden_sparsity=1.0), "hidden_sparsity: sparsity must be in"),
                       (dict(prune_rounds=0), "prune_rounds"), (dict(finetune_lr=0.0), "finetune_lr"),
                       (dict(init="spread"), "k-means initialisation")):
        with pytest.raises(ValueError, match=match):
            DeepCompressionConfig(**bad).validate()


def test_job_runs_in_the_background_and_stops_on_request(model, digits):
    with pytest.raises(TypeError, match="DatasetBundle"):
        DeepCompressionJob(model, "digits")
    job = DeepCompressionJob(model, digits, preset("digits", round_epochs=200.0)).start()
    time.sleep(0.5)
    assert job.status().state == "running"
    job.stop()
    status = job.wait(30)
    assert status.state == "stopped" and "stopped after" in status.message and len(job.stages()) < 4
