"""Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network", section 3: dark knowledge.

The paper distils the 800-800 student from the MNIST teacher on a transfer set with every 3
removed: "from the perspective of the distilled model, 3 is a mythical digit that it has never
seen". It makes 206 test errors, 133 of them on the 1010 test 3s; "most of the errors are on the 3s
because the learned bias for the 3 class is too low", and with that bias raised by 3.5 it makes 109
errors, 14 on 3s (98.6 % of the 3s right). With a transfer set of only 7s and 8s the student makes
47.3 % test errors; with the biases of 7 and 8 reduced by 7.6 ("to optimize test performance"),
13.2 %. The other digits' soft targets taught the student what a 3 looks like; only its prior is off.

Two reproductions: ``hinton-dark-knowledge`` (no 3s) and ``hinton-dark-knowledge-78`` (only 7s and
8s). Both reuse ``hinton-mnist``'s teacher (``hinton_mnist.teacher_config``: the same run folder
under a runs root serves both) and its 800-800 student settings (``hinton_mnist.student_config``),
with the transfer set filtered by ``TrainConfig.train_classes`` and the student distilled at T = 20
(the paper's), alpha = 0.9. A bias shift adds a constant to some output logits
(``kdviz.distill.bias_shift``), measured on the finished run's logits for the whole test set
(``present.dark_knowledge.run_logits``): nothing is retrained. Besides the paper's rows, each table
has the shift that is best on the test set (a grid of 0.1 over -10..10) and the error it leaves,
since our student's logit scale is not the paper's.

Quick mode: ``hinton-mnist``'s quick 1200-1200 MLP teacher (the paper's kind; 300 steps, about 95 %,
three times faster to train than the quick CNN, so a test of the whole reproduction stays short) and
students on a 1,000-image class-balanced subset of the filtered transfer set, 200 Adam steps: the
table's shape and the shift's direction, not the paper's numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..distill.bias_shift import best_shift, per_class_errors
from ..methods.kd import KD
from ..present.dark_knowledge import run_logits
from .base import PaperNumber, PlannedRun, Reproduction, register
from .hinton_mnist import TEACHER_ROW, student_config, teacher_config

T, ALPHA = 20.0, 0.9  # the paper's temperature for the MNIST students; hinton-mnist's alpha
QUICK_TEACHER = "mlp"  # hinton-mnist's 1200-1200 teacher, quick: 300 steps train in a third of the CNN's time
SHIFT_GRID = [round(-10.0 + 0.1 * i, 1) for i in range(201)]  # the slider's range, in steps of 0.1
TEACHER_PAPER = PaperNumber(TEACHER_ROW, 67, "test errors", "1200-1200 MLP, dropout, +-2 px jitter (ours: hinton-mnist's teacher)")


@dataclass(frozen=True)
class DarkKnowledge:
    """One transfer-set experiment: the classes kept for training, the classes whose bias is
    shifted afterwards and the paper's shift; ``percent`` reports errors in % of the test set."""

    name: str
    kept: tuple[int, ...]
    shifted: tuple[int, ...]
    paper_shift: float
    percent: bool
    distilled_row: str
    shifted_row: str
    best_shift_row: str
    best_errors_row: str
    class_rows: tuple[str, str] = ("", "")  # errors on the shifted classes, before and after the paper's shift
    right_row: str = ""  # % of the shifted classes' test images right after the paper's shift


NO_THREES = DarkKnowledge(
    "hinton-dark-knowledge", tuple(c for c in range(10) if c != 3), (3,), 3.5, False,
    distilled_row="distilled, no 3s in transfer set", shifted_row="distilled, bias of 3 +3.5",
    best_shift_row="best bias shift for 3", best_errors_row="test errors at the best shift",
    class_rows=("errors on the test 3s", "errors on the test 3s, bias +3.5"), right_row="test 3s right, bias +3.5")
SEVENS_EIGHTS = DarkKnowledge(
    "hinton-dark-knowledge-78", (7, 8), (7, 8), -7.6, True,
    distilled_row="distilled, only 7s and 8s", shifted_row="distilled, biases of 7 and 8 -7.6",
    best_shift_row="best bias shift for 7 and 8", best_errors_row="test error at the best shift")
EXPERIMENTS = {e.name: e for e in (NO_THREES, SEVENS_EIGHTS)}


def paper_numbers(e: DarkKnowledge) -> tuple[PaperNumber, ...]:
    """The paper's rows for ``e`` (section 3), in its order, then our best-shift rows."""
    if not e.percent:
        return (TEACHER_PAPER,
                PaperNumber(e.distilled_row, 206, "test errors", "800-800 MLP distilled at T = 20, every 3 removed"),
                PaperNumber(e.class_rows[0], 133, "test errors", "of the 1010 test 3s"),
                PaperNumber(e.shifted_row, 109, "test errors", "the bias of class 3 raised by 3.5"),
                PaperNumber(e.class_rows[1], 14, "test errors", "of the 1010 test 3s"),
                PaperNumber(e.right_row, 98.6, "% of test 3s", "the bias of class 3 raised by 3.5"),
                PaperNumber(e.best_shift_row, None, "bias units", "the paper gives only +3.5"),
                PaperNumber(e.best_errors_row, None, "test errors", "ours, shift chosen on the test set"))
    return (TEACHER_PAPER,
            PaperNumber(e.distilled_row, 47.3, "% test error", "transfer set of 7s and 8s only"),
            PaperNumber(e.shifted_row, 13.2, "% test error", "the biases of 7 and 8 reduced by 7.6"),
            PaperNumber(e.best_shift_row, -7.6, "bias units", "the paper's shift, chosen for test performance"),
            PaperNumber(e.best_errors_row, 13.2, "% test error", "at that shift"))


def distilled_config(e: DarkKnowledge, seed: int, quick: bool):
    """hinton-mnist's 800-800 student, distilled at T = 20 from a transfer set of ``e.kept`` only
    (the teacher's path is filled in by the runner once the teacher has finished)."""
    tag = "no3" if e is NO_THREES else "78"
    return student_config(seed, quick, method=KD.loss, teacher="", T=T, alpha=ALPHA, train_classes=list(e.kept),
                          name=f"dark-knowledge-{tag}-s{seed}")


def plan_runs(e: DarkKnowledge, seeds: Sequence[int], quick: bool = False) -> list[PlannedRun]:
    """hinton-mnist's teacher (the CNN; in quick mode its quick MLP), trained once and reused, then one
    distilled student per seed, which feeds every other row."""
    rows = [p.label for p in paper_numbers(e) if p.label != TEACHER_ROW]
    kind = QUICK_TEACHER if quick else "cnn"
    runs = [PlannedRun(f"teacher-{kind}", TEACHER_ROW, 0, teacher_config(kind, quick), reuse=True)]
    for seed in seeds:
        runs.append(PlannedRun(f"distilled/seed{seed}", rows[0], seed, distilled_config(e, seed, quick),
                               after=f"teacher-{kind}", extra_rows=tuple(rows[1:])))
    return runs


def measure(e: DarkKnowledge, path: Path, row: str) -> float:
    """One row's value for a finished run: errors (count, or % of the test set) from its test logits,
    with the paper's shift on the shifted rows, the best shift on the best-shift rows."""
    view = run_logits(path)
    count = len(view.labels)
    shift = {c: e.paper_shift for c in e.shifted}
    if row == e.best_shift_row or row == e.best_errors_row:
        chosen, errors = best_shift(view.logits, view.labels, e.shifted, SHIFT_GRID)
        if row == e.best_shift_row:
            return chosen
        return round(100.0 * errors / count, 2) if e.percent else float(errors)
    if row == e.right_row:
        wrong = per_class_errors(view.logits, view.labels, shift)
        total = sum(int((view.labels == c).sum()) for c in e.shifted)
        return round(100.0 * (1 - sum(int(wrong[c]) for c in e.shifted) / total), 2)
    errors = per_class_errors(view.logits, view.labels, shift if row in (e.shifted_row, e.class_rows[1]) else None)
    if row in e.class_rows:
        return float(sum(int(errors[c]) for c in e.shifted))
    total = int(errors.sum())
    return round(100.0 * total / count, 2) if e.percent and row != TEACHER_ROW else float(total)


def describe_settings(e: DarkKnowledge, quick: bool) -> str:
    kept = "every digit but 3" if e is NO_THREES else "7s and 8s only"
    student = student_config(0, quick)
    size = f"{student.train_subset} images of the filtered set" if student.train_subset else "the filtered training set"
    steps = f"{student.epochs} epochs (batch {student.batch_size})"
    teacher = "1200-1200 MLP teacher (quick, 300 steps)" if quick else "CNN teacher"
    return (f"{'quick' if quick else 'full'}: hinton-mnist's {teacher}; an "
            f"800-800 student distilled at T = {T:g}, alpha = {ALPHA:g} on {size} ({kept}), {steps}, Adam; then the "
            f"bias of {' and '.join(map(str, e.shifted))} shifted by {e.paper_shift:+g} on the test logits")


def reproduction(e: DarkKnowledge, title: str) -> Reproduction:
    return register(Reproduction(
        name=e.name, title=title,
        citation='Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural Network", section 3',
        dataset="mnist", paper=paper_numbers(e),
        plan_runs=lambda seeds, quick: plan_runs(e, seeds, quick),
        value_of=lambda path, row: measure(e, path, row),
        settings=lambda quick: describe_settings(e, quick)))


HINTON_DARK_KNOWLEDGE = reproduction(NO_THREES, "Dark knowledge: a student that never saw a 3, before and after "
                                                "raising the bias of 3")
HINTON_DARK_KNOWLEDGE_78 = reproduction(SEVENS_EIGHTS, "Dark knowledge: a student that saw only 7s and 8s, before and "
                                                       "after lowering their biases")


def shifted_runs(result) -> list[tuple[str, str]]:
    """``(label, run folder)`` of every distilled student a dark-knowledge result has finished, for
    the bias slider (empty for any other reproduction)."""
    e = EXPERIMENTS.get(result.name)
    if e is None:
        return []
    for row in result.rows:
        if row.label == e.distilled_row:
            return [(f"seed {seed}", run) for seed, run in zip(row.seeds, row.runs)]
    return []
