"""A run's seed decides its initial weights, even while other threads build models at the same time
(torch's global random generator is shared: kdviz.models.INIT_LOCK serialises its use)."""
from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from kdviz.data import load_dataset
from kdviz.engine import TrainConfig, start
from kdviz.engine.data_feed import BatchFeed
from kdviz.models import build_model


def first_batch_loss(seed: int) -> float:
    """Cross-entropy of the seeded initial model on the run's first batch, computed here by hand."""
    data = load_dataset("digits")
    torch.manual_seed(seed)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=10, hidden=[32])
    batch = next(BatchFeed(data.train_images, data.train_labels, 64, seed, 0, torch.device("cpu")).epoch(0))
    with torch.no_grad():
        return float(F.cross_entropy(model(batch.images), batch.labels))


def test_the_initial_weights_depend_only_on_the_seed_while_other_threads_build_models(tmp_path, manager):
    expected = first_batch_loss(7)
    stop = threading.Event()

    def build_forever() -> None:  # a UI thread loading teachers and baselines meanwhile
        while not stop.is_set():
            build_model("mlp", input_shape=(1, 8, 8), num_classes=10, hidden=[256, 256])

    noise = [threading.Thread(target=build_forever, daemon=True) for _ in range(2)]
    for thread in noise:
        thread.start()
    try:
        jobs = [start(TrainConfig(model_options={"hidden": [32]}, seed=7, max_steps=1, snapshot_every=0,
                                  runs_root=str(tmp_path), name=f"seeded-{i}"), manager) for i in range(4)]
        assert all(job.wait(60).state == "finished" for job in jobs)
    finally:
        stop.set()
        for thread in noise:
            thread.join(10)
    for job in jobs:
        assert job.store.metrics("step")[0]["loss"] == pytest.approx(expected, rel=1e-6)
