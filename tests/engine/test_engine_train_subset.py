"""``TrainConfig.train_subset``: a class-balanced labelled subset (Hinton et al. 2015's small
transfer sets), drawn with the run's seed, that the trainer really trains on."""
from __future__ import annotations

import torch
import pytest

from kdviz.data.bundle import balanced_subset
from kdviz.engine import TrainConfig, start
from kdviz.engine.setup import dataset_for, steps_per_epoch


def test_balanced_subset_is_even_sorted_and_seeded():
    labels = torch.arange(10).repeat(30)  # 300 labels, 30 per class
    picked = balanced_subset(labels, 25, seed=3)
    assert len(picked) == 25 and torch.equal(picked, torch.sort(picked).values)
    counts = torch.bincount(labels[picked], minlength=10).tolist()
    assert counts == [3] * 5 + [2] * 5
    assert torch.equal(picked, balanced_subset(labels, 25, seed=3))
    assert not torch.equal(picked, balanced_subset(labels, 25, seed=4))


@pytest.mark.parametrize("size, message", [(0, "1..300"), (301, "1..300")])
def test_balanced_subset_refuses_impossible_sizes(size, message):
    with pytest.raises(ValueError, match=message):
        balanced_subset(torch.arange(10).repeat(30), size, seed=0)


def test_a_class_too_small_for_its_share_is_named():
    labels = torch.tensor([0] * 50 + [1] * 2)
    with pytest.raises(ValueError, match="class 1 has only 2"):
        balanced_subset(labels, 10, seed=0)


def test_config_validates_and_setup_uses_the_subset():
    with pytest.raises(ValueError, match="train_subset"):
        TrainConfig(train_subset=0).validate()
    config = TrainConfig(dataset="digits", train_subset=120, seed=2, batch_size=16)
    data = dataset_for(config)
    assert len(data.train_labels) == 120
    assert torch.bincount(data.train_labels).tolist() == [12] * 10
    assert steps_per_epoch(config) == 8  # 120 / 16, rounded up
    assert len(dataset_for(TrainConfig(dataset="digits")).train_labels) > 1000
    assert "train_subset" in config.identity()


def test_a_run_trains_on_the_subset_only(manager, tmp_path):
    config = TrainConfig(dataset="digits", model="mlp", train_subset=40, batch_size=8, epochs=2, seed=1,
                         runs_root=str(tmp_path), snapshot_every=0)
    job = start(config, manager)
    assert job.wait(120).state == "finished"
    steps = [r for r in job.store.metrics("step")]
    assert steps[-1]["step"] == 10  # 2 epochs x 40 / 8


def test_pace_stretches_a_short_run_and_a_stop_ends_it_at_once(manager, tmp_path):
    """``pace_s``: a run that would take a second lasts at least ``pace_s`` (a class can watch it);
    it is a display option, not part of what is trained; a stop does not wait for the pace."""
    import time

    base = dict(dataset="digits", model="mlp", train_subset=40, batch_size=8, epochs=2, seed=1,
                runs_root=str(tmp_path), snapshot_every=0)
    assert TrainConfig(**base, pace_s=6.0).identity() == TrainConfig(**base).identity()
    with pytest.raises(ValueError, match="pace_s"):
        TrainConfig(**base, pace_s=0.0).validate()
    t0 = time.monotonic()
    job = start(TrainConfig(**base, pace_s=4.0), manager)
    assert job.wait(60).state == "finished"
    assert time.monotonic() - t0 >= 4.0
    long = start(TrainConfig(**{**base, "epochs": 50}, pace_s=600.0), manager)
    from _support.polling import wait_for
    wait_for(lambda: long.status().step >= 3, 60, "the paced run's first steps")
    t1 = time.monotonic()
    long.stop()
    assert long.wait(30).state == "stopped" and time.monotonic() - t1 < 5
