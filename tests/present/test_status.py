"""One status description for both UIs, checked at non-default values."""
from kdviz.present import describe, format_duration, readiness


def test_running_job_reads_epoch_step_and_time_left():
    text = describe({"state": "running", "step": 40, "total_steps": 160, "epoch": 1, "eta_s": 75, "test_acc": 0.9123},
                    "KD student", epochs=4)
    assert text.headline == "KD student · running · test accuracy 91.2%"
    assert text.detail == "epoch 2/4 · step 40/160 · about 1m 15s left"
    assert text.progress == 0.25 and text.icon == "model_training" and text.accuracy == "test accuracy 91.2%"
    assert text.line == f"{text.headline} · {text.detail}"


def test_queued_paused_finished_and_failed():
    queued = describe({"state": "queued", "queue_position": 3}, "scratch student", max_concurrent=2)
    assert queued.detail == "waiting in the queue, place 3 (at most 2 runs at once)" and queued.progress == 0.0
    paused = describe({"state": "paused", "step": 5, "total_steps": 20, "epoch": 7, "message": "paused by you"}, "x", epochs=3)
    assert paused.detail == "epoch 3/3 · step 5/20 · paused by you"  # the epoch never reads past the config's
    done = describe({"state": "finished", "step": 90, "total_steps": 90, "elapsed_s": 3725}, "x")
    assert done.detail == "90 steps in 1h 02m" and done.progress == 1.0 and done.accuracy == ""
    failed = describe({"state": "failed", "message": "loss is NaN"}, "x")
    assert (failed.icon, failed.detail) == ("error", "loss is NaN")


def test_readiness_of_a_teacher_and_durations():
    assert readiness({"state": "finished", "test_acc": 0.975}, "teacher").headline == "teacher ready · 97.5% test accuracy"
    training = readiness({"state": "running", "step": 30, "total_steps": 120, "eta_s": 9}, "baseline")
    assert training.headline == "Training the baseline in the background: 25%, about 9s left" and training.progress == 0.25
    assert format_duration(None) == "?" and format_duration(59.6) == "1m 00s" and format_duration(float("nan")) == "?"
