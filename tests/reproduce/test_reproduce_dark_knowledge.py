"""Hinton et al. 2015, section 3, dark knowledge: the bias-shift maths against a plain re-count, the
two reproductions' rows and plans beside the paper's numbers, and the quick reproduction end to end on
real MNIST (skipped without the IDX files in ``$KDVIZ_DATA`` or /work/shared/data/mnist)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from kdviz.distill.bias_shift import best_shift, per_class_errors, shifted_predictions
from kdviz.engine import load_trained_model
from kdviz.engine.evaluation import predict_logits
from kdviz.engine.run_folder import read_config
from kdviz.engine.setup import dataset_for
from kdviz.reproduce import REPRODUCTIONS, run_reproduction
from kdviz.reproduce import dark_knowledge as dk
from kdviz.reproduce.hinton_mnist import TEACHER_ROW, student_config, teacher_config

MNIST = Path(os.environ.get("KDVIZ_DATA") or "/work/shared/data/mnist")
HAVE_MNIST = (MNIST / "train-images-idx3-ubyte.gz").is_file() or (MNIST / "train-images-idx3-ubyte").is_file()


def recount(logits: np.ndarray, labels: np.ndarray, shift: dict[int, float]) -> list[int]:
    """Per-class errors, one image at a time: the largest shifted logit (first on a tie) against the label."""
    errors = [0] * logits.shape[1]
    for row, label in zip(logits, labels):
        scores = [float(z) + shift.get(c, 0.0) for c, z in enumerate(row)]
        if max(range(len(scores)), key=lambda c: (scores[c], -c)) != label:
            errors[int(label)] += 1
    return errors


def test_per_class_errors_match_a_plain_recount_with_and_without_a_shift():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(400, 10, generator=g) * 3
    labels = torch.randint(0, 10, (400,), generator=g)
    for shift in ({}, {3: 3.5}, {7: -7.6, 8: -7.6}, {0: 1.25, 9: -0.5}):
        counted = per_class_errors(logits, labels, shift)
        assert counted.tolist() == recount(logits.numpy(), labels.numpy(), shift), shift
    raised = per_class_errors(logits, labels, {3: 100.0})  # every image is called a 3
    assert raised[3] == 0 and raised.sum() == int((labels != 3).sum())
    assert torch.equal(shifted_predictions(logits, {3: 100.0}), torch.full((400,), 3))


def test_raising_one_bias_never_adds_errors_on_that_class_and_best_shift_is_the_grid_minimum():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(300, 10, generator=g) * 2
    logits[:, 3] -= 4.0  # a class whose bias is too low, like the student that never saw a 3
    labels = torch.randint(0, 10, (300,), generator=g)
    on_threes = [int(per_class_errors(logits, labels, {3: d})[3]) for d in np.arange(0, 8.1, 0.5)]
    assert on_threes == sorted(on_threes, reverse=True) and on_threes[0] > on_threes[-1]
    grid = [round(x, 1) for x in np.arange(-2, 8.01, 0.1)]
    chosen, errors = best_shift(logits, labels, [3], grid)
    totals = {d: sum(recount(logits.numpy(), labels.numpy(), {3: d})) for d in grid}
    assert errors == min(totals.values()) and totals[chosen] == errors and chosen > 0
    assert chosen == next(d for d in grid if totals[d] == errors)  # the first best, in grid order


@pytest.mark.parametrize("call, message", [
    (lambda: per_class_errors(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long)), "4 logit rows"),
    (lambda: per_class_errors(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), {3: 1.0}), "classes 0..2"),
    (lambda: shifted_predictions(torch.zeros(4), {}), r"\(N, K\)"),
    (lambda: best_shift(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), [1], []), "at least one shift"),
])
def test_bad_inputs_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_both_reproductions_are_registered_with_the_papers_numbers():
    no3, only78 = REPRODUCTIONS.get("hinton-dark-knowledge"), REPRODUCTIONS.get("hinton-dark-knowledge-78")
    assert [(p.label, p.value) for p in no3.paper] == [
        (TEACHER_ROW, 67), ("distilled, no 3s in transfer set", 206), ("errors on the test 3s", 133),
        ("distilled, bias of 3 +3.5", 109), ("errors on the test 3s, bias +3.5", 14), ("test 3s right, bias +3.5", 98.6),
        ("best bias shift for 3", None), ("test errors at the best shift", None)]
    assert [(p.label, p.value, p.unit) for p in only78.paper][1:] == [
        ("distilled, only 7s and 8s", 47.3, "% test error"), ("distilled, biases of 7 and 8 -7.6", 13.2, "% test error"),
        ("best bias shift for 7 and 8", -7.6, "bias units"), ("test error at the best shift", 13.2, "% test error")]
    assert no3.dataset == only78.dataset == "mnist" and "section 3" in no3.citation


@pytest.mark.parametrize("name, kept", [("hinton-dark-knowledge", [0, 1, 2, 4, 5, 6, 7, 8, 9]), ("hinton-dark-knowledge-78", [7, 8])])
def test_full_plan_reuses_hinton_mnists_teacher_and_student_with_the_class_filter(name, kept):
    plan = REPRODUCTIONS.get(name).plan(3, quick=False)
    teacher, students = plan[0], plan[1:]
    assert teacher.reuse and teacher.config.identity() == teacher_config("cnn", False).identity()
    assert [s.seed for s in students] == [0, 1, 2] and all(s.after == teacher.key for s in students)
    reference = student_config(1, False).identity()
    config = students[1].config
    assert config.train_classes == kept and config.T == 20.0 and config.method == "kd" and config.train_subset is None
    differs = {k for k, v in config.identity().items() if reference[k] != v}  # only the loss and the class filter
    assert differs - {"alpha"} == {"train_classes", "method", "teacher", "T"}
    quick = REPRODUCTIONS.get(name).plan(1, quick=True)
    assert quick[0].config.max_steps == 300 and quick[1].config.train_subset == 1000 and quick[1].config.train_classes == kept
    assert len(set(students[0].rows)) == len(REPRODUCTIONS.get(name).paper) - 1  # every row but the teacher's


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not HAVE_MNIST, reason=f"no MNIST IDX files in {MNIST}")
def test_quick_dark_knowledge_end_to_end_the_bias_shift_recovers_most_threes(tmp_path):
    t0 = time.perf_counter()
    result = run_reproduction("hinton-dark-knowledge", seeds=1, quick=True, runs_root=tmp_path, data_root=str(MNIST))
    took = time.perf_counter() - t0
    assert result.state == "finished", result.runs
    row = {r.label: r.values[0] for r in result.rows}
    e = dk.NO_THREES
    student = Path(result.row(e.distilled_row).runs[0])
    trained_on = dataset_for(read_config(student))
    assert 3 not in trained_on.train_labels.tolist() and len(trained_on.train_labels) == 1000  # never saw a 3
    # recount from the saved model: logits on the 10,000 test images, +3.5 on class 3
    data = dataset_for(read_config(student))
    logits = predict_logits(load_trained_model(student), data.test_images, torch.device("cpu")).numpy()
    labels = data.test_labels.numpy()
    assert int((labels == 3).sum()) == 1010
    before, after = recount(logits, labels, {}), recount(logits, labels, {3: 3.5})
    assert (row[e.distilled_row], row[e.class_rows[0]]) == (sum(before), before[3])
    assert (row[e.shifted_row], row[e.class_rows[1]]) == (sum(after), after[3])
    assert row[e.right_row] == round(100 * (1 - after[3] / 1010), 2)
    assert before[3] == max(before) > 2 * sorted(before)[-2], before  # the 3s are by far the worst class: its bias is too low
    assert after[3] < before[3] / 2  # raising it recovers most of them
    # a short quick run is not the paper's student: +3.5 may overshoot, but some raise of the bias helps overall
    assert 0 < row[e.best_shift_row] <= 10 and row[e.best_errors_row] < sum(before)
    assert row[e.best_errors_row] <= sum(after)
    assert row[TEACHER_ROW] < row[e.distilled_row]
    print(f"quick dark knowledge: {took:.0f} s; per-class errors {before} -> {after} with +3.5 on class 3")
