"""Yim, Joo, Bae, Kim 2017, "A Gift from Knowledge Distillation: Fast Optimization, Network
Minimization and Transfer Learning" (CVPR 2017), section 4.1 and table 1 ("fast optimisation").

The paper (CIFAR-10, ResNets; the student has the teacher's architecture): a student first trained
to match the teacher's FSP matrices (stage 1: the FSP loss of eq. 2 alone, no labels) and then on
the labels (stage 2) reaches, after a third of the main-task iterations (21k of 64k), the accuracy
of the same network trained from scratch for all 64k. Its numbers are CIFAR-10 accuracies of
ResNets that a small MNIST run cannot be compared with, so the table quotes none
(``PaperNumber.value`` None) and says the paper's setting in each note; the claim to check is
the order: FSP student at N/3 >= scratch student at N.

Here, on MNIST (as ``bench/fsp_fast_optimisation.py`` ran it), per seed through the engine:

* a teacher ResNet-20 (3 blocks per stage, channels 8-16-32), trained once (seed 0) and reused;
* a scratch ResNet-8 (1 block per stage, the same channels): cross-entropy for N iterations;
* FSP stage 1 on the same ResNet-8 against the teacher (``two_stage.fsp_stage1_config``, every
  section pair, S1 iterations at a low learning rate; the teacher's folder is its ``teacher``);
* FSP stage 2 from the stage-1 weights (``fsp_stage2_config``: cross-entropy, no teacher; the
  stage-1 folder is its ``init_from``) for N / 3 iterations.

Both main-task runs use SGD with momentum and a cosine schedule over their own length, so stage 2's
schedule is the scratch one compressed 3x, as in the paper's comparison. Rows (% test accuracy):
teacher, scratch after N, the same scratch run at N / 3 (its evaluation at that step), the FSP
student after S1 + N / 3; and how many times stage 1 lowered the FSP loss on its probe batch.

Quick mode: a 40-step teacher, N = 90, S1 = 40 (stage 1 evaluated at its start and end only); far
from converged by design: the evaluations on the 10,000 test images cost more than the training.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..engine import TrainConfig, open_run
from ..engine.run_folder import read_config
from ..methods.fsp import FSP
from ..methods.two_stage import fsp_stage1_config, fsp_stage2_config, probe_loss_key, scratch_config
from .base import PaperNumber, PlannedRun, Reproduction, final_test_accuracy, register

TEACHER_ROW, SCRATCH_ROW, SCRATCH_THIRD_ROW = "teacher ResNet-20", "scratch ResNet-8, N", "scratch ResNet-8, N/3"
FSP_ROW, FSP_LOSS_ROW = "FSP ResNet-8, S1 + N/3", "stage-1 FSP loss drop"
PAPER_SETTING = "CIFAR-10 ResNets, the student of the teacher's architecture"
PAPER = (
    PaperNumber(TEACHER_ROW, None, "% test accuracy", f"paper: {PAPER_SETTING} (table 1)"),
    PaperNumber(SCRATCH_ROW, None, "% test accuracy", f"paper: scratch student, 64k iterations, {PAPER_SETTING}"),
    PaperNumber(SCRATCH_THIRD_ROW, None, "% test accuracy", "paper: not reported (the same scratch run at 21k)"),
    PaperNumber(FSP_ROW, None, "% test accuracy",
                "paper: FSP student after 21k main-task iterations (1/3), at least the 64k scratch accuracy (table 1)"),
    PaperNumber(FSP_LOSS_ROW, None, "x lower", "paper: not reported (eq. 2 on a fixed probe batch, first / last)"),
)
CHANNELS = [8, 16, 32]
TEACHER = dict(model="resnet", model_options={"blocks_per_stage": [3, 3, 3], "channels": CHANNELS}, epochs=1, lr=0.05,
               lr_schedule="cosine", batch_size=128, snapshot_every=0, eval_train_samples=1000)
STUDENT = {"blocks_per_stage": [1, 1, 1], "channels": CHANNELS}
MAIN_LR, STAGE1_LR, BATCH = 0.05, 1e-4, 64
MNIST_TRAIN = 60_000
PENDING_TEACHER = "(the teacher run, set once it has finished)"


@dataclass(frozen=True)
class Schedule:
    """Iterations: ``scratch`` (N), ``stage1`` (S1), ``stage2`` (N / 3); evaluations every ``every``
    iterations (quick: stage 1 only at its start and end); ``teacher_steps`` caps the teacher (None: its epoch)."""

    scratch: int
    stage1: int
    teacher_steps: int | None = None
    quick: bool = False

    @property
    def stage2(self) -> int:
        return max(1, self.scratch // 3)

    @property
    def every(self) -> int:
        return self.stage2 if self.quick else max(1, self.scratch // 15)  # quick: evaluate at N/3, 2N/3, N only


FULL = Schedule(scratch=1500, stage1=600)
QUICK = Schedule(scratch=90, stage1=40, teacher_steps=40, quick=True)


def schedule(quick: bool) -> Schedule:
    return QUICK if quick else FULL


def teacher_config(quick: bool = False) -> TrainConfig:
    """The ResNet-20 teacher (seed 0; reused across seeds and reruns)."""
    steps = schedule(quick).teacher_steps
    options = dict(TEACHER, max_steps=steps) if steps else dict(TEACHER)
    return TrainConfig(dataset="mnist", name="fsp-teacher-resnet20" + ("-quick" if quick else ""), **options)


def student_base(seed: int, plan: Schedule) -> TrainConfig:
    """The ResNet-8 student's settings shared by the scratch run and both stages."""
    per_epoch = -(-MNIST_TRAIN // BATCH)
    return TrainConfig(dataset="mnist", model="resnet", model_options=dict(STUDENT), teacher=PENDING_TEACHER, lr=MAIN_LR,
                       lr_schedule="cosine", batch_size=BATCH, epochs=-(-max(plan.scratch, plan.stage1) // per_epoch),
                       eval_every=plan.every, snapshot_every=0, eval_train_samples=1000, seed=seed, name="fsp-student")


def _steps(base: TrainConfig, steps: int, **fields) -> TrainConfig:
    """``steps`` iterations of ``base`` (epochs that cover them counted on MNIST, without loading it)."""
    return replace(base, max_steps=steps, epochs=-(-steps // -(-MNIST_TRAIN // base.batch_size)), **fields)


@dataclass(frozen=True)
class StudentConfigs:
    """One seed's student runs: the scratch baseline and the two FSP stages."""

    scratch: TrainConfig
    stage1: TrainConfig
    stage2: TrainConfig


def student_configs(seed: int, quick: bool = False, plan: Schedule | None = None) -> StudentConfigs:
    """The scratch, stage-1 and stage-2 configs for ``seed``; the runner fills in the stage-1 run's
    ``teacher`` and the stage-2 run's ``init_from``."""
    plan = plan or schedule(quick)
    base = student_base(seed, plan)
    stage1 = fsp_stage1_config(base, pairs="auto", lr=STAGE1_LR, name=f"fsp-stage1-s{seed}")
    stage2 = fsp_stage2_config(base, "", name=f"fsp-stage2-s{seed}")
    return StudentConfigs(_steps(scratch_config(base, name=f"fsp-scratch-s{seed}"), plan.scratch),
                          _steps(stage1, plan.stage1, **({"eval_every": plan.stage1} if plan.quick else {})),
                          _steps(stage2, plan.stage2))


def plan_runs(seeds: Sequence[int], quick: bool = False, plan: Schedule | None = None) -> list[PlannedRun]:
    """The teacher (reused), then per seed the scratch student and the FSP stage 1 -> stage 2 chain."""
    runs = [PlannedRun("teacher", TEACHER_ROW, 0, teacher_config(quick), reuse=True)]
    for seed in seeds:
        configs = student_configs(seed, quick, plan)
        runs.append(PlannedRun(f"scratch/seed{seed}", SCRATCH_ROW, seed, configs.scratch, extra_rows=(SCRATCH_THIRD_ROW,)))
        runs.append(PlannedRun(f"fsp-stage1/seed{seed}", FSP_LOSS_ROW, seed, configs.stage1, after="teacher"))
        runs.append(PlannedRun(f"fsp-stage2/seed{seed}", FSP_ROW, seed, configs.stage2,
                               after=f"fsp-stage1/seed{seed}", link="init_from"))
    return runs


def accuracy_at_third(path: Path) -> float:
    """% test accuracy of a scratch run at its first evaluation at or after a third of its steps."""
    config = read_config(path)
    third = max(1, int(config.max_steps) // 3)
    evals = [r for r in open_run(path).metrics("eval") if "test_acc" in r and r.get("step", 0) >= third]
    if not evals:
        raise ValueError(f"run {path} has no evaluation at or after step {third}")
    return 100.0 * float(evals[0]["test_acc"])


def fsp_loss_drop(path: Path) -> float:
    """First / last FSP loss (eq. 2) on the stage-1 run's fixed probe batch."""
    key = probe_loss_key(FSP, read_config(path))
    losses = [float(r[key]) for r in open_run(path).metrics("eval") if key in r]
    if len(losses) < 2 or losses[-1] <= 0:
        raise ValueError(f"run {path} has fewer than two probe FSP losses ({key})")
    return losses[0] / losses[-1]


def value_of(path: Path, row: str) -> float:
    if row == SCRATCH_THIRD_ROW:
        return accuracy_at_third(path)
    if row == FSP_LOSS_ROW:
        return fsp_loss_drop(path)
    return 100.0 * final_test_accuracy(path)


def describe_settings(quick: bool, plan: Schedule | None = None) -> str:
    plan = plan or schedule(quick)
    teacher = f"{plan.teacher_steps} steps" if plan.teacher_steps else f"{TEACHER['epochs']} epoch"
    return (f"{'quick' if quick else 'full'}: teacher ResNet-20 {'-'.join(map(str, CHANNELS))} ({teacher}, batch 128); "
            f"ResNet-8 students, batch {BATCH}, SGD momentum 0.9, cosine: scratch N = {plan.scratch} iterations at lr "
            f"{MAIN_LR:g}; FSP stage 1 S1 = {plan.stage1} iterations at lr {STAGE1_LR:g}, stage 2 N/3 = {plan.stage2} "
            f"iterations at lr {MAIN_LR:g}")


FSP_FAST_OPTIMISATION = register(Reproduction(
    name="yim-fsp",
    title="FSP fast optimisation: a student after stage 1 + N/3 iterations against one trained from scratch for N",
    citation='Yim, Joo, Bae, Kim 2017, "A Gift from Knowledge Distillation: Fast Optimization, Network Minimization '
             'and Transfer Learning", section 4.1, table 1',
    dataset="mnist",
    paper=PAPER,
    plan_runs=lambda seeds, quick: plan_runs(seeds, quick),
    value_of=value_of,
    settings=lambda quick: describe_settings(quick),
))
