"""``TrainConfig.train_classes``: train only on some classes' images (Hinton et al. 2015, section 3:
a transfer set with every 3 removed), the test set untouched. Validated with clear messages, applied
by ``setup.dataset_for``, really seen by the trainer, kept through config.json; a run folder written
before the field existed still loads."""
from __future__ import annotations

import json

import pytest
import torch

from _support.jobs import finished_job
from kdviz.engine import TrainConfig, load_trained_model
from kdviz.engine.evaluation import predict_logits
from kdviz.engine.run_folder import read_config
from kdviz.engine.setup import dataset_for, steps_per_epoch

NO_THREES = [0, 1, 2, 4, 5, 6, 7, 8, 9]


@pytest.mark.parametrize("classes, message", [
    ([], "at least one class"),
    ([7, 8, 7], r"class\(es\) \[7\] more than once"),
    ([1, -1], "train_classes entry must be at least 0"),
    ([10, 3, 12], r"train_classes \[10, 12\]: digits has no such class \(its classes are 0..9"),
])
def test_bad_class_lists_are_refused_with_a_message_naming_them(classes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(dataset="digits", train_classes=classes).validate()


@pytest.mark.parametrize("classes", ["3", [3.0], [True]])
def test_class_lists_of_the_wrong_type_are_refused(classes):
    with pytest.raises(TypeError, match="train_classes"):
        TrainConfig(dataset="digits", train_classes=classes).validate()


def test_dataset_for_drops_the_other_classes_from_training_only():
    full = dataset_for(TrainConfig(dataset="digits"))
    config = TrainConfig(dataset="digits", train_classes=NO_THREES).validate()
    data = dataset_for(config)
    assert 3 not in data.train_labels.tolist()
    assert len(data.train_labels) == int((full.train_labels != 3).sum())
    assert torch.equal(data.train_images, full.train_images[full.train_labels != 3])
    assert torch.equal(data.test_labels, full.test_labels) and (data.test_labels == 3).sum() > 0
    assert data.num_classes == 10  # the model still has an output for the dropped class
    assert config.identity()["train_classes"] == NO_THREES
    # with train_subset, the balanced subset is drawn from the kept classes only
    both = dataset_for(TrainConfig(dataset="digits", train_classes=[7, 8], train_subset=30, batch_size=4))
    assert torch.bincount(both.train_labels, minlength=10).tolist() == [0] * 7 + [15, 15, 0]
    assert steps_per_epoch(TrainConfig(dataset="digits", train_classes=[7, 8], train_subset=30, batch_size=4)) == 8


def test_a_run_trained_on_sevens_and_eights_only_predicts_sevens_and_eights(manager, tmp_path):
    """The trainer really sees the filtered set: its step count follows the kept images, and a
    student trained with cross-entropy on 7s and 8s alone never predicts another digit (with the
    field ignored it would learn all ten)."""
    config = TrainConfig(dataset="digits", model="mlp", train_classes=[7, 8], batch_size=32, epochs=3, lr=0.1, seed=4,
                         runs_root=str(tmp_path), snapshot_every=0)
    job = finished_job(config, manager)
    n_kept = len(dataset_for(config).train_labels)
    assert 200 < n_kept < 300
    assert job.store.metrics("step")[-1]["step"] == 3 * -(-n_kept // 32)
    model = load_trained_model(job.path)
    data = dataset_for(config)
    predicted = predict_logits(model, data.test_images, torch.device("cpu")).argmax(1)
    assert set(predicted.tolist()) == {7, 8}
    assert read_config(job.path).train_classes == [7, 8]  # kept in config.json
    assert json.loads((job.path / "config.json").read_text())["train_classes"] == [7, 8]


def test_a_config_json_written_before_the_field_existed_still_loads(tmp_path):
    data = TrainConfig(dataset="digits", name="old").to_dict()
    del data["train_classes"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    old = read_config(tmp_path)
    assert old.train_classes is None
    assert old.identity() == TrainConfig(dataset="digits").identity()  # a cached teacher from before is still found
    assert TrainConfig.from_json(TrainConfig(train_classes=[3]).to_json()).train_classes == [3]


def test_students_of_one_teacher_with_other_classes_get_their_own_teacher_logits(manager, tmp_path):
    """The teacher's logits are memoized per training split: a student trained on 7s and 8s after one
    trained on every class (same teacher, same process) must not get the other split's logits."""
    base = dict(dataset="digits", epochs=1, runs_root=str(tmp_path), snapshot_every=0)
    teacher = finished_job(TrainConfig(**base), manager)
    kd = dict(base, method="kd", teacher=str(teacher.path))
    finished_job(TrainConfig(**kd), manager)
    finished_job(TrainConfig(**kd, train_classes=[7, 8]), manager)


def test_the_command_line_takes_a_class_list_and_names_a_bad_one(tmp_path, capsys):
    from kdviz.engine.cli import build_parser, main

    assert build_parser().parse_args(["train", "--train-classes", "0,1,2,4"]).train_classes == [0, 1, 2, 4]
    assert main(["train", "--dataset", "digits", "--train-classes", "7,11", "--runs-root", str(tmp_path)]) == 2
    assert "train_classes [11]: digits has no such class" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written for a config that never started
