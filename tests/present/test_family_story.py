"""``kdviz.present.family_story``: the shared base config of "Which distillation?", the results table and
the caption of who leads, checked against numbers worked out here by hand."""
from __future__ import annotations

import pytest

from kdviz.methods import get_method
from kdviz.present.distill_configs import distill_defaults
from kdviz.methods.kd import KD
from kdviz.present.family import family_configs, family_members
from kdviz.present.family_story import (
    SCRATCH_LABEL, family_base_config, leader_caption, result_rows, rows_from_views, table_records,
)

SCRATCH = get_method("scratch")
KD_LOSS = get_method("kd").loss


def base(**fields):
    return family_base_config(teacher="/runs/teacher", dataset="digits", train_size=1347, runs_root="/runs", **fields)


def test_base_config_is_the_train_a_student_default_with_the_teacher():
    d = distill_defaults("digits")
    config = base()
    assert (config.teacher, config.method) == ("/runs/teacher", SCRATCH.loss)
    assert (config.model, config.model_options, config.epochs, config.lr) == (d.student_model, dict(d.student_options),
                                                                             d.epochs, d.lr)
    assert (config.train_subset, config.pace_s, config.batch_size) == (d.transfer_size, d.pace_s, d.batch_size)
    assert config.eval_every == max(1, -(-100 // 16) // 4, -(-100 // 16) * d.epochs // 400)


def test_base_config_carries_non_default_settings_and_every_member_shares_them():
    config = base(epochs=3, seed=7, transfer_size=None, pace_s=None, model="mlp", model_options={"hidden": [16]})
    assert (config.epochs, config.seed, config.train_subset, config.pace_s) == (3, 7, None, None)
    assert config.model_options == {"hidden": [16]}
    chosen = {m.name: None for m in family_members()}
    configs = family_configs(config, chosen)
    assert list(configs)[0] == SCRATCH_LABEL and len(configs) == 1 + len(chosen)
    shared = {(c.model, str(c.model_options), c.seed, c.epochs, c.train_subset, c.batch_size, c.eval_every, c.lr)
              for c in configs.values()}
    assert len(shared) == 1  # the same student, data, seed and batches for every run
    assert configs[SCRATCH_LABEL].teacher is None
    # every member learns from the teacher, except a teacherless one (deep mutual learning) that drops it
    assert {c.teacher for label, c in configs.items() if label != SCRATCH_LABEL} <= {"/runs/teacher", None}
    assert configs[KD.label].teacher == "/runs/teacher"


def test_base_config_refuses_a_missing_teacher_and_a_bad_transfer_set():
    with pytest.raises(ValueError, match="teacher"):
        family_base_config(teacher="", dataset="digits", train_size=1347, runs_root="/runs")
    with pytest.raises(ValueError, match="train_subset|transfer"):
        base(transfer_size=-5).validate()


def test_rows_give_each_gain_over_scratch_in_points():
    rows = result_rows([("A student", "running", 0.91), (SCRATCH_LABEL, "running", 0.874),
                        ("B student", "queued", None), ("C student", "finished", 0.85)])
    by_label = {r.label: r for r in rows}
    assert by_label["A student"].gain_points == pytest.approx(3.6)
    assert by_label["C student"].gain_points == pytest.approx(-2.4)
    assert by_label["B student"].gain_points is None and by_label[SCRATCH_LABEL].gain_points is None
    cells = {r["method"]: r for r in table_records(rows)}
    assert cells["A student"]["gain over scratch"] == "+3.6 points"
    assert cells["C student"]["gain over scratch"] == "-2.4 points"
    assert cells["B student"]["test accuracy"] == "–" and cells[SCRATCH_LABEL]["test accuracy"] == "87.4%"


def test_caption_names_the_leader_and_the_gap_while_running():
    rows = result_rows([(SCRATCH_LABEL, "running", 0.80), ("A student", "running", 0.86), ("B student", "running", 0.83)])
    text = leader_caption(rows, finished=False, teacher_acc=0.97)
    assert "The A student leads so far with 86.0%, 3.0 points above the B student" in text
    assert "are 2 above, 0 level, 0 below" in text and "dashed line the teacher" in text


def test_caption_says_so_when_scratch_wins_and_when_runs_are_level():
    rows = result_rows([(SCRATCH_LABEL, "finished", 0.90), ("A student", "finished", 0.88), ("B student", "finished", 0.897)])
    text = leader_caption(rows, finished=True)
    assert "scratch student" in text and "level at the top (90.0%" in text  # B is 0.3 points behind: a tie
    assert "end 0 above, 1 level, 1 below" in text
    rows = result_rows([(SCRATCH_LABEL, "finished", 0.90), ("A student", "finished", 0.85)])
    text = leader_caption(rows, finished=True)
    assert "The scratch student ends on top with 90.0%, 5.0 points above the A student" in text
    assert "no distilled student beats training from the labels alone here." in text


def test_caption_waits_for_two_evaluations_and_names_the_late_runs():
    assert "starts once at least two runs" in leader_caption(result_rows([(SCRATCH_LABEL, "running", 0.5)]),
                                                             finished=False)
    rows = result_rows([(SCRATCH_LABEL, "running", 0.5), ("A student", "running", 0.7), ("B student", "queued", None)])
    assert leader_caption(rows, finished=False).endswith("Waiting for a first evaluation: B student.")


def test_runs_at_different_epochs_are_compared_at_the_epoch_both_reached(manager, tmp_path):
    """A scratch student two epochs long beside a distilled one of one epoch (real runs, read back from their
    folders): the table compares both at epoch 1, and the caption says the scratch student is further on."""
    from kdviz.engine import TrainConfig, start
    from kdviz.present import as_run_view
    from _support.run_files import metric_lines

    common = dict(dataset="digits", model="mlp", model_options={"hidden": [8]}, train_subset=100, batch_size=16,
                  eval_every=7, snapshot_every=0, runs_root=str(tmp_path))  # 7 steps: one epoch
    teacher = start(TrainConfig(max_steps=20, name="teacher", **{**common, "model_options": {"hidden": [32]}}), manager)
    assert teacher.wait(60).state == "finished"
    jobs = [start(TrainConfig(epochs=2, name="scratch-student", **common), manager),
            start(TrainConfig(epochs=1, method=KD_LOSS, teacher=str(teacher.path), name="kd-student", **common), manager)]
    assert [job.wait(60).state for job in jobs] == ["finished", "finished"]
    views = [as_run_view(job.path, label) for job, label in zip(jobs, (SCRATCH_LABEL, "A student"))]
    assert all(view.refresh() for view in views)  # read every record from the folders
    rows = {r.label: r for r in rows_from_views(views)}
    scratch_evals = metric_lines(jobs[0].path, "eval")
    at_one = [r["test_acc"] for r in scratch_evals if r["epoch"] <= 1.0 + 1e-9][-1]
    kd_final = metric_lines(jobs[1].path, "eval")[-1]["test_acc"]
    assert (rows[SCRATCH_LABEL].epoch, rows[SCRATCH_LABEL].last_epoch, rows["A student"].epoch) == (1.0, 2.0, 1.0)
    assert rows[SCRATCH_LABEL].test_acc == pytest.approx(at_one) and at_one != scratch_evals[-1]["test_acc"]
    assert rows["A student"].gain_points == pytest.approx(100 * (kd_final - at_one))
    assert "Compared at epoch 1, the furthest every run has reached (scratch student is further on)." in \
        leader_caption(list(rows.values()), finished=True)


def test_the_chart_title_names_the_same_leader_as_the_caption_at_the_common_epoch():
    """A run further on must not lead the title while another leads the caption (seen in the app: the
    title compared each run's own last evaluation, the caption the epoch every run had reached)."""
    from kdviz.present.family_story import ResultRow, leader_caption, leader_title

    rows = [ResultRow("scratch student", "finished", 0.60, None, True, epoch=20, last_epoch=400),
            ResultRow("KD student", "finished", 0.831, 23.1, epoch=20, last_epoch=400),
            ResultRow("RKD student", "running", 0.858, 25.8, epoch=20, last_epoch=21)]
    title, caption = leader_title(rows), leader_caption(rows, finished=False)
    assert title == "RKD student leads at epoch 20: 85.8%, 2.7 points above KD student"
    assert "The RKD student leads so far with 85.8%, 2.7 points above the KD student" in caption
    level = [rows[0], ResultRow("KD student", "finished", 0.858, 25.8, epoch=20), rows[2]]
    assert leader_title(level) == "KD student and RKD student are level at epoch 20 (85.8%)"
    assert leader_title(rows[:1]) is None
