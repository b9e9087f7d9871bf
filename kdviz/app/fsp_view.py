"""The FSP page's models, checks and experiment, kept apart from the page's widgets.

Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation" (CVPR 2017), section 4.1: a deep ResNet
teacher and a shallower student with the *same channel count per stage*, so that the FSP matrix of
every section (first map x last map of a stage, eq. 1) has the same shape in both. Stage 1 trains
the student on the FSP loss alone (eq. 2), stage 2 on cross-entropy from the stage-1 weights; a
student trained from scratch beside it is the baseline of the "fast optimisation" comparison.
Any method whose spec declares a ``stage1`` (``two_stage.stage1_methods()``; FitNets hints,
Romero et al. 2015, besides FSP) can be stage 1.

The teacher is trained once in the background and reused from disk (``present.shared_run``), like
the lab's other teachers; one estimated past a minute (a ResNet-20 on MNIST) waits for its Start
button (``teacher.shared_run_job``). One Start makes one ``TwoStageFSP`` experiment (jobs ``STAGE1``, ``STAGE2``
once stage 1 has finished, and ``SCRATCH``) in the lab's job manager; the page keeps it in the
session (``session.add_experiment``, so closing the tab stops it) and polls it on every refresh
(``session.current_experiment``), which starts stage 2 when its turn comes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from ..data import DatasetBundle
from ..distill.fsp import fsp_matrix, section_pairs
from ..distill.hints import HintRegressor
from ..engine import Job, TrainConfig
from ..models import build_model
from ..methods import get_method
from ..methods.fsp import pair_label
from ..methods.two_stage import SCRATCH, STAGE1, STAGE2, Stage1Choice, TwoStageFSP, role_of, scratch_config
from ..present import Experiment, RunView
from .live import job_view
from .session import lab_manager, runs_root
from .sidebar import LabSettings
from .teacher import TEACHER_LR, shared_run_job, teacher_epochs

# ResNet-(6n+2) of He et al. 2016, section 4.2: n basic blocks in each of the three stages.
DEPTHS: dict[str, tuple[int, int, int]] = {
    "ResNet-8 (1 block per stage)": (1, 1, 1),
    "ResNet-14 (2 blocks per stage)": (2, 2, 2),
    "ResNet-20 (3 blocks per stage)": (3, 3, 3),
}
CHANNELS: dict[str, tuple[int, int, int]] = {"8-16-32": (8, 16, 32), "4-8-16": (4, 8, 16), "16-32-64": (16, 32, 64)}
SAME = "same as the teacher"
# The ResNet teacher's recipe where it differs from the lab's MLP teachers (issue 14, "the story must hold").
# On digits, 20 epochs at a constant learning rate of 0.05 left the ResNet-20 oscillating to the last step
# (seed 0: 91.8 % test, its training accuracy 98.7 %), below the attention page's ResNet-8 student (96.0 %).
# Cosine annealing to zero (Loshchilov & Hutter 2017, eq. 5) over 30 epochs (660 steps, about 10 s on
# one core) settles it at 97-98 % on every seed tried. The schedule and epochs are part of the run's
# identity (``TrainConfig.identity``), so a cached teacher of the old recipe is never reused for it.
RESNET_TEACHER_EPOCHS: dict[str, int] = {"digits": 30}
RESNET_TEACHER_SCHEDULE: dict[str, str] = {"digits": "cosine"}  # elsewhere the engine's default, "constant"
ROLE_LABELS = {STAGE1: "stage 1", STAGE2: "stage 2", SCRATCH: "scratch student"}


def teacher_options(settings: LabSettings, blocks: tuple[int, ...], channels: tuple[int, ...]) -> dict:
    """The TrainConfig fields of the ResNet teacher (plain cross-entropy, cached on disk)."""
    depth = 6 * blocks[0] + 2 if len(set(blocks)) == 1 else "-".join(map(str, blocks))
    return {"dataset": settings.dataset, "model": "resnet", "data_root": settings.data_root,
            "model_options": {"blocks_per_stage": list(blocks), "channels": list(channels)},
            "epochs": teacher_epochs(settings.dataset, RESNET_TEACHER_EPOCHS), "lr": TEACHER_LR,
            "lr_schedule": RESNET_TEACHER_SCHEDULE.get(settings.dataset, "constant"), "runs_root": runs_root(),
            "name": f"teacher-resnet{depth}-{'-'.join(map(str, channels))}-{settings.dataset}"}


def teacher_job(settings: LabSettings, blocks: tuple[int, ...], channels: tuple[int, ...],
                retry: bool = False) -> Job | None:
    """The teacher: reused from disk, joined while it trains, else started when it is short (digits:
    seconds) or ``retry`` asks; a long one (a ResNet-20 on MNIST: minutes) is None until its Start or
    Continue button, which ``teacher.shared_run_job`` draws with its estimate, is pressed."""
    return shared_run_job(teacher_options(settings, blocks, channels), retry)


def stage1_steps_from_url(raw: str) -> int:
    """The "Stage-1 iterations" slider's value from a link: 10 to 1000 in steps of 10."""
    value = float(raw)
    if not value.is_integer() or not 10 <= value <= 1000 or value % 10:
        raise ValueError(f"{raw} is not one of 10, 20, ..., 1000 (stage-1 iterations go in steps of 10)")
    return int(value)


def difference_story(first: tuple, latest: tuple, pair: str) -> str:
    """What the difference panel of ``pair`` did between the first and the latest stage-1 snapshot
    ((snapshot, reading) each): its largest entry against the teacher's largest, then and now, and
    what to change when it has not shrunk to half (the paper's stage 1 drives it towards zero, eq. 2)."""
    ratios = []
    for snap, reading in (first, latest):
        found = [p for p in reading.pairs if p["label"] == pair]
        if not found:
            return ""
        teacher_max = float(abs(found[0]["teacher"]).max()) or 1.0
        ratios.append((snap.step, float(abs(found[0]["difference"]).max()) / teacher_max))
    (step0, before), (step1, now) = ratios
    if step1 <= step0:
        return ""
    told = (f"The difference's largest entry went from {before:.0%} of the teacher's largest (step {step0}) to "
            f"{now:.0%} (step {step1})")
    if now <= 0.5 * before:
        return told + ": the student has taken most of the teacher's flow."
    return told + (": it has not shrunk much yet. More stage-1 iterations, or a larger stage-1 learning rate "
                   "(10x, under 'More'), let the student match more closely.")


def teacher_name(job: Job) -> str:
    return f"teacher {job.config.name.split('-')[1]} ({job.config.dataset})"


@lru_cache(maxsize=16)
def feature_shapes(input_shape: tuple[int, int, int], num_classes: int, blocks: tuple[int, ...],
                   channels: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Shape (without batch) of every named feature of a ResNet, from one forward pass of zeros."""
    model = build_model("resnet", input_shape=input_shape, num_classes=num_classes, blocks_per_stage=blocks,
                        channels=channels).eval()
    with torch.no_grad():
        _, features = model.forward_with_features(torch.zeros(1, *input_shape))
    return {name: tuple(f.shape[1:]) for name, f in features.items()}


def pair_options(student: dict[str, tuple], teacher: dict[str, tuple]) -> list[str]:
    """The section pairs both models have, labelled ``"stageK_in->stageK_out"``."""
    return [pair_label(p) for p in section_pairs(list(student)) if p[0] in teacher and p[1] in teacher]


def check_fsp_pairs(pairs: list[str], student: dict[str, tuple], teacher: dict[str, tuple]) -> list[list[str]]:
    """``[[in, out], ...]`` for the hook; a ``ValueError`` saying what to change when a pair's
    student and teacher FSP matrices (C_in x C_out, eq. 1) differ in shape or none is chosen."""
    if not pairs:
        raise ValueError("choose at least one section pair: stage 1 minimises the FSP loss summed over the pairs")
    out = []
    for label in pairs:
        a, b = label.split("->")
        shapes = {}
        for who, feats in (("student", student), ("teacher", teacher)):
            if a not in feats or b not in feats:
                raise ValueError(f"the {who} has no section pair {label} (it has {', '.join(feats)})")
            fa, fb = torch.zeros(1, *feats[a]), torch.zeros(1, *feats[b])
            shapes[who] = tuple(fsp_matrix(fa, fb).shape[1:])
        if shapes["student"] != shapes["teacher"]:
            s, t = shapes["student"], shapes["teacher"]
            raise ValueError(
                f"pair {label}: the student's FSP matrix is {s[0]}x{s[1]} but the teacher's is {t[0]}x{t[1]}, so "
                "they cannot be compared. Give the student the teacher's channels per stage ('Student channels' = "
                "'same as the teacher'), or map the student's features through a 1x1 conv adapter first; "
                "FitNets hints learn such an adapter and accept different channel counts."
            )
        out.append([a, b])
    return out


def check_hint_layers(student_layer: str, teacher_layer: str, student: dict[str, tuple], teacher: dict[str, tuple]) -> None:
    """Build the FitNets regressor for the two layers' shapes: a ``ValueError`` if it cannot exist."""
    for who, layer, feats in (("student", student_layer, student), ("teacher", teacher_layer, teacher)):
        if layer not in feats:
            raise ValueError(f"the {who} has no layer {layer!r} (it has {', '.join(feats)})")
    HintRegressor(student[student_layer], teacher[teacher_layer])


@dataclass(frozen=True)
class FSPChoice:
    """What the page's controls chose: the student, the stage-1 method (a spec name from
    ``stage1_methods()``) and its ``Stage1Choice``, and the main task's epochs, lr and seed."""

    student_blocks: tuple[int, ...]
    channels: tuple[int, ...]
    method: str
    stage1: Stage1Choice
    epochs: int = 6
    lr: float = 0.05
    seed: int = 0


def base_config(choice: FSPChoice, settings: LabSettings, bundle: DatasetBundle, teacher_path: str) -> TrainConfig:
    """The student config the stages and the scratch run share: evaluations and FSP snapshots on
    the same steps for all runs, about 4 times per main-task epoch and 15 times in stage 1, but
    never more often than every 3 steps (each evaluates the whole test set and takes a snapshot)."""
    steps_per_epoch = -(-len(bundle.train_labels) // 64)
    every = max(3, min(choice.stage1.steps // 15, steps_per_epoch // 4))
    return TrainConfig(
        dataset=settings.dataset, data_root=settings.data_root, model="resnet",
        model_options={"blocks_per_stage": list(choice.student_blocks), "channels": list(choice.channels)},
        teacher=teacher_path, epochs=int(choice.epochs), lr=float(choice.lr), seed=int(choice.seed), batch_size=64,
        eval_every=every, snapshot_every=every, eval_train_samples=500, runs_root=runs_root(), name="fsp-student",
    ).validate()


def start_experiment(choice: FSPChoice, settings: LabSettings, bundle: DatasetBundle, teacher_path: str) -> TwoStageFSP:
    """Start stage 1 (the chosen method's ``stage1.build``) and the scratch student now, in the
    lab's job manager; stage 2 starts when the experiment is polled after stage 1 has finished."""
    method = get_method(choice.method)
    if method.stage1 is None:
        raise ValueError(f"{method.label} cannot be stage 1 of the two-stage recipe")
    base = base_config(choice, settings, bundle, teacher_path)
    exp = TwoStageFSP(base, stage1=method.stage1.build(base, choice.stage1), manager=lab_manager())
    try:
        exp.start(SCRATCH, scratch_config(base, name="fsp-scratch-student"))
    except BaseException:
        exp.stop()  # no half-started experiment keeps training unseen
        raise
    return exp


def experiment_views(exp: Experiment) -> dict[str, RunView]:
    """The experiment's runs by role (``two_stage.role_of``: stage 1, stage 2, scratch): this
    session's views of them (``live.job_view``), refreshed, so each refresh reads only what is new."""
    views = {}
    for job in exp.jobs.values():
        role = role_of(job.config)
        views[role] = job_view(job, ROLE_LABELS[role])
    return views
