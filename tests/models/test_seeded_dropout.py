"""Dropout draws its masks from the run's own generator (``kdviz.models.dropout``).

* The layer is Srivastava et al.'s inverted dropout: kept units scaled by 1 / (1 - p), the identity in
  evaluation; with a generator its mask is the Bernoulli draw of that generator, recomputed here.
* The defect it fixes: ``nn.Dropout`` drew from torch's global generator, which every job's thread
  shares, so a dropout model trained beside other jobs was not reproducible. A run trained while another
  thread keeps drawing from the global generator now ends with the very weights of the same run alone.
"""
from __future__ import annotations

import threading

import pytest
import torch
from torch.nn import functional as F

from kdviz.engine import TrainConfig, load_trained_model
from kdviz.engine.setup import INIT_LOCK
from kdviz.models import build_model
from kdviz.models.dropout import STEP_STRIDE, SeededDropout, reseed_dropout


def test_the_mask_is_the_generators_bernoulli_draw_and_kept_units_are_scaled():
    layer = SeededDropout(0.3).train()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), layer)
    assert reseed_dropout(model, seed=7, step=11) == 1
    x = torch.randn(64, 50)
    out = layer(x)
    keep = torch.empty_like(x).bernoulli_(0.7, generator=torch.Generator().manual_seed(7 * STEP_STRIDE + 11))
    torch.testing.assert_close(out, x * keep / 0.7)
    assert 0.6 < keep.mean().item() < 0.8
    layer.eval()
    assert torch.equal(layer(x), x)


def test_without_a_generator_it_is_torchs_dropout():
    x = torch.randn(32, 20)
    torch.manual_seed(5)
    ours = SeededDropout(0.5).train()(x)
    torch.manual_seed(5)
    torch.testing.assert_close(ours, F.dropout(x, 0.5, training=True))


def test_steps_and_seeds_give_different_masks_and_a_step_repeats_its_own():
    layer = SeededDropout(0.5).train()
    masks = {}
    for seed, step in [(0, 1), (0, 2), (1, 1), (0, 1)]:
        reseed_dropout(layer, seed, step)
        masks.setdefault((seed, step), []).append(layer(torch.ones(200)))
    assert torch.equal(*masks[(0, 1)])
    assert not torch.equal(masks[(0, 1)][0], masks[(0, 2)][0]) and not torch.equal(masks[(0, 1)][0], masks[(1, 1)][0])


def test_models_without_dropout_are_left_alone_and_bad_rates_are_refused():
    assert reseed_dropout(build_model("mlp", input_shape=(1, 8, 8), num_classes=10), 0, 0) == 0
    assert reseed_dropout(build_model("mlp", input_shape=(1, 8, 8), num_classes=10, dropout=0.5, input_dropout=0.2), 0, 0) == 2
    with pytest.raises(ValueError, match="dropout must be in"):
        SeededDropout(1.0)


def _train(tmp_path, name: str, manager):
    from kdviz.engine import start

    config = TrainConfig(dataset="digits", model="mlp", model_options={"hidden": [32], "dropout": 0.5, "input_dropout": 0.2},
                         epochs=1, max_steps=40, batch_size=32, snapshot_every=0, seed=3, name=name, runs_root=str(tmp_path))
    job = start(config, manager)  # one CPU thread per job: the same sums in the same order every time
    assert job.wait(timeout=120).state == "finished"
    return load_trained_model(job.path).state_dict()


@pytest.mark.timeout(300)
def test_a_dropout_run_beside_a_thread_drawing_from_the_global_generator_ends_with_the_same_weights(tmp_path, manager):
    alone = _train(tmp_path, "alone", manager)
    busy, done = [], threading.Event()

    def draw():  # another job drawing from the generator all threads share; under INIT_LOCK, as a job's
        while not done.is_set():  # model initialisation does (the only draw jobs make now): never inside our
            with INIT_LOCK:        # seed-and-initialise, but between any two of our training steps
                busy.append(torch.rand(1000).sum().item())

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    try:
        beside = _train(tmp_path, "beside", manager)
    finally:
        done.set()
        thread.join()
    assert len(busy) > 10  # the global generator really was drawn from meanwhile
    assert alone.keys() == beside.keys()
    for key in alone:
        torch.testing.assert_close(alone[key], beside[key], rtol=0, atol=0)
