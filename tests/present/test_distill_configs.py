"""The KD and scratch configs of the distillation experiment: the same run but for the loss."""
import pytest

from kdviz.engine import TrainConfig
from kdviz.methods import get_method, method_of
from kdviz.present.distill_configs import KD_JOB, SCRATCH_JOB, evaluation_interval, run_name, student_pair_configs

ARGS = dict(teacher="/runs/teacher-mlp", T=2.5, alpha=0.7, dataset="digits", model="mlp", model_options={"hidden": [8]},
            epochs=3, lr=0.03, seed=11, train_size=1000, runs_root="/tmp/somewhere")


def test_the_pair_differs_only_in_loss_teacher_and_name():
    configs = student_pair_configs(**ARGS, batch_size=50, evals_per_epoch=5, probe_count=6)
    assert list(configs) == [KD_JOB, SCRATCH_JOB] == [get_method("kd").label, get_method("scratch").label]
    kd, scratch = configs[KD_JOB], configs[SCRATCH_JOB]
    assert method_of(kd) is get_method("kd") and method_of(scratch) is get_method("scratch")
    assert (kd.T, kd.alpha, kd.teacher) == (2.5, 0.7, "/runs/teacher-mlp") and scratch.teacher is None
    assert (kd.name, scratch.name) == ("kd-student", "scratch-student")
    assert kd.eval_every == kd.snapshot_every == 4  # 1000 / 50 = 20 steps per epoch, 5 evaluations
    assert kd.probe_temperatures == [1.0, 2.5] and kd.probe_count == 6
    differ = {k for k, v in kd.to_dict().items() if scratch.to_dict()[k] != v}
    assert differ == {"method", "teacher", "T", "alpha", "name"}


def test_defaults_come_from_the_engine_config():
    kd = student_pair_configs(**ARGS)[KD_JOB]
    assert kd.batch_size == TrainConfig().batch_size
    assert kd.eval_every == evaluation_interval(1000, TrainConfig().batch_size, 4) == 16 // 4  # ceil(1000 / 64) = 16


def test_evaluation_interval_and_bad_settings():
    assert evaluation_interval(10, 64, 4) == 1  # less than one step per evaluation: every step
    assert evaluation_interval(6400, 64, 3) == 33
    with pytest.raises(ValueError, match="batch_size"):
        evaluation_interval(100, 0)
    with pytest.raises(ValueError, match="T"):
        student_pair_configs(**{**ARGS, "T": -1.0})
    assert run_name("Pruned fine-tune (50%)") == "pruned-fine-tune-50"


def test_a_long_run_on_a_small_set_evaluates_at_most_about_max_evals_times():
    # 200 images in batches of 16: 13 steps per epoch, 3 by the per-epoch rule; 200 epochs = 2600 steps
    assert evaluation_interval(200, 16, 4, epochs=200, max_evals=400) == 2600 // 400 == 6
    assert evaluation_interval(200, 16, 4, epochs=2, max_evals=400) == 13 // 4  # short run: the per-epoch rule
    with pytest.raises(ValueError, match="max_evals"):
        evaluation_interval(200, 16, 4, epochs=2, max_evals=0)
    kd = student_pair_configs(**{**ARGS, "epochs": 200, "train_size": 200}, batch_size=16)[KD_JOB]
    assert kd.eval_every == kd.snapshot_every == 6


def test_defaults_per_dataset_and_the_transfer_set():
    from kdviz.present.distill_configs import TRANSFER_FIELD, distill_defaults
    assert distill_defaults("fashion-mnist") == distill_defaults("mnist")
    d = distill_defaults("digits")
    pair = student_pair_configs(**{**ARGS, "train_size": 1347}, batch_size=d.batch_size, transfer_size=d.transfer_size)
    kd, scratch = pair[KD_JOB], pair[SCRATCH_JOB]
    assert getattr(kd, TRANSFER_FIELD) == getattr(scratch, TRANSFER_FIELD) == d.transfer_size
    # the evaluation interval counts the transfer set's steps, not the whole training set's
    assert kd.eval_every == evaluation_interval(d.transfer_size, d.batch_size, 4, epochs=ARGS["epochs"])


def test_the_pace_reaches_both_students_and_digits_defaults_are_paced_to_watch():
    from kdviz.present.distill_configs import distill_defaults
    pair = student_pair_configs(**ARGS, pace_s=12.5)
    assert pair[KD_JOB].pace_s == pair[SCRATCH_JOB].pace_s == 12.5
    assert student_pair_configs(**ARGS)[KD_JOB].pace_s is None
    assert 20 <= distill_defaults("digits").pace_s <= 40
