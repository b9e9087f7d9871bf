"""TrainConfig: JSON round trip, validation with errors that name the field; lr schedules."""
import json
import math

import pytest

from kdviz.engine.config import TrainConfig
from kdviz.engine.optim import learning_rate


def test_defaults_validate_and_round_trip_through_json(tmp_path):
    cfg = TrainConfig(model_options={"hidden": [32, 16]}, hooks=[{"name": "prune", "sparsity": 0.5}], probe_temperatures=[1, 3])
    assert cfg.validate() is cfg
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg
    (tmp_path / "config.json").write_text(cfg.to_json())
    assert TrainConfig.load(tmp_path) == cfg
    assert json.loads(cfg.to_json())["model_options"] == {"hidden": [32, 16]}


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


@pytest.mark.parametrize(
    "change, error, field",
    [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"method": "distill"}, ValueError, "method"),
        ({"method": "kd"}, ValueError, "teacher"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"T": 0}, ValueError, "T"),
        ({"jitter_px": 3}, ValueError, "jitter_px"),
        ({"epochs": True}, TypeError, "epochs"),
        ({"epochs": 2.5}, TypeError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"dataset": "imagenet"}, ValueError, "dataset"),
        ({"model": "swin"}, ValueError, "model"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"lr_schedule": "linear"}, ValueError, "lr_schedule"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"hooks": [{"sparsity": 0.5}]}, ValueError, "hooks"),
        ({"probe_temperatures": []}, ValueError, "probe_temperatures"),
        ({"model_options": {"f": object()}}, TypeError, "JSON"),
    ],
)
def test_bad_values_raise_naming_the_field(change, error, field):
    with pytest.raises(error, match=field):
        TrainConfig(**change).validate()


def test_learning_rate_schedules_match_their_formulas():
    total = 100
    const = TrainConfig(lr=0.2)
    assert [learning_rate(s, total, const) for s in (0, 50, 99)] == [0.2, 0.2, 0.2]
    cos = TrainConfig(lr=0.2, lr_schedule="cosine")
    for s in (0, 25, 50, 80, 100):
        assert learning_rate(s, total, cos) == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * s / total)))
    step = TrainConfig(lr=0.2, lr_schedule="step", lr_milestones=[0.5, 0.75], lr_gamma=0.1)
    assert learning_rate(49, total, step) == pytest.approx(0.2)
    assert learning_rate(50, total, step) == pytest.approx(0.02)
    assert learning_rate(74, total, step) == pytest.approx(0.02)
    assert learning_rate(75, total, step) == pytest.approx(0.002)
