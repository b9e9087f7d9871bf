"""The FSP page's models, checks and experiment, kept apart from the page's widgets.

Yim, Joo, Bae, Kim, "A Gift from Knowledge Distillation" (CVPR 2017), section 4.1: a deep ResNet
teacher and a shallower student with the *same channel count per stage*, so that the FSP matrix of
every section (first map x last map of a stage, eq. 1) has the same shape in both. Stage 1 trains
the student on the FSP loss alone (eq. 2), stage 2 on cross-entropy from the stage-1 weights; a
student trained from scratch beside it is the baseline of the "fast optimisation" comparison.
FitNets hints (Romero et al. 2015) can replace the FSP loss in stage 1.

The teacher is trained once in the background and reused from disk (``train_teacher_cached``),
like the lab's other teachers. ``FSPExperiment`` holds the runs of one Start: the stage-1 job, the
stage-2 job once stage 1 has finished (started by a small watcher thread, so it starts even when no
page is open), and the scratch job; all of them are handed to the session watchdog.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ..data import DatasetBundle
from ..distill.fsp import fsp_matrix, section_pairs
from ..methods.fsp import pair_label
from ..methods.two_stage import TwoStageFSP, fsp_stage1_config, hints_stage1_config, scratch_config
from ..distill.hints import HintRegressor
from ..engine import Job, TrainConfig, start
from ..models import build_model
from .session import lab_manager, runs_root, watchdog
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
METHODS = {"fsp": "FSP matrices (Yim et al. 2017)", "hints": "FitNets hints (Romero et al. 2015)"}
# Stage 1 optimises sums of squared products of activations (1e4-1e5 at the start on digits):
# SGD at lr 1e-2 diverged there, 1e-4 fell steadily (see kdviz.methods.two_stage).
STAGE1_LR = {"fsp": 1e-4, "hints": 1e-3}


def teacher_options(settings: LabSettings, blocks: tuple[int, ...], channels: tuple[int, ...]) -> dict:
    """The TrainConfig fields of the ResNet teacher (plain cross-entropy, cached on disk)."""
    depth = 6 * blocks[0] + 2 if len(set(blocks)) == 1 else "-".join(map(str, blocks))
    return {"dataset": settings.dataset, "model": "resnet", "data_root": settings.data_root,
            "model_options": {"blocks_per_stage": list(blocks), "channels": list(channels)},
            "epochs": teacher_epochs(settings.dataset), "lr": TEACHER_LR, "runs_root": runs_root(),
            "name": f"teacher-resnet{depth}-{'-'.join(map(str, channels))}-{settings.dataset}"}


def teacher_job(settings: LabSettings, blocks: tuple[int, ...], channels: tuple[int, ...], retry: bool = False) -> Job:
    """The teacher: reused from disk, joined while it trains, else started (``retry`` restarts a
    failed or stopped one)."""
    return shared_run_job(teacher_options(settings, blocks, channels), retry)


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


def stage1_config(base: TrainConfig, choice: "FSPChoice") -> TrainConfig:
    """Stage 1 for ``choice.hook``: method ``"none"`` with the ``fsp`` or ``hints`` hook for
    ``choice.stage1_steps`` optimizer steps at the stage-1 learning rate."""
    common = {"max_steps": int(choice.stage1_steps), "lr": float(choice.stage1_lr)}
    if choice.hook == "fsp":
        return fsp_stage1_config(base, pairs=[list(p) for p in choice.pairs], **common)
    if choice.hook == "hints":
        return hints_stage1_config(base, *choice.hint_layers, **common)
    raise ValueError(f"stage 1 method must be one of {', '.join(METHODS)}, got {choice.hook!r}")


@dataclass
class FSPExperiment:
    """The runs of one Start: two stages (FSP or hints) and a scratch student (same seed and data)."""

    stages: TwoStageFSP
    scratch: Job
    hook: str  # "fsp" or "hints"
    stage1_steps: int
    session_id: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def poll(self) -> Job | None:
        """Start stage 2 once stage 1 has finished (once, from any thread); the stage-2 job or None."""
        with self._lock:
            had = self.stages.stage2
            stage2 = self.stages.poll()
        if stage2 is not None and had is None:
            watchdog().add_job(self.session_id, stage2)
        return stage2

    @property
    def stage1(self) -> Job:
        return self.stages.stage1

    @property
    def stage2(self) -> Job | None:
        return self.stages.stage2

    @property
    def jobs(self) -> list[Job]:
        return [j for j in (self.stage1, self.stage2, self.scratch) if j is not None]

    @property
    def done(self) -> bool:
        """Every run has ended, and stage 2 has run or never will (stage 1 did not finish)."""
        self.poll()
        stage1_ok = self.stage1.status().state == "finished"
        return all(j.done for j in self.jobs) and (self.stage2 is not None or not stage1_ok)

    def pause(self) -> None:
        for job in self.jobs:
            job.pause()

    def resume(self) -> None:
        for job in self.jobs:
            job.resume()

    def stop(self) -> None:
        """Stop every run; a stage 1 stopped before it finished starts no stage 2."""
        for job in (self.stage1, self.scratch, self.stage2):
            if job is not None:
                job.stop()


@dataclass(frozen=True)
class FSPChoice:
    """What the page's controls chose."""

    student_blocks: tuple[int, ...]
    channels: tuple[int, ...]
    hook: str = "fsp"
    pairs: tuple[tuple[str, str], ...] = ()
    hint_layers: tuple[str, str] = ("stage2_out", "stage2_out")
    stage1_steps: int = 150
    epochs: int = 6
    stage1_lr: float = 1e-4
    lr: float = 0.05
    seed: int = 0


def base_config(choice: FSPChoice, settings: LabSettings, bundle: DatasetBundle, teacher_path: str) -> TrainConfig:
    """The student config the stages and the scratch run share: evaluations and FSP snapshots on
    the same steps for all runs, about 4 times per main-task epoch and 15 times in stage 1, but
    never more often than every 3 steps (each evaluates the whole test set and takes a snapshot)."""
    steps_per_epoch = -(-len(bundle.train_labels) // 64)
    every = max(3, min(choice.stage1_steps // 15, steps_per_epoch // 4))
    return TrainConfig(
        dataset=settings.dataset, data_root=settings.data_root, model="resnet",
        model_options={"blocks_per_stage": list(choice.student_blocks), "channels": list(choice.channels)},
        teacher=teacher_path, epochs=int(choice.epochs), lr=float(choice.lr), seed=int(choice.seed), batch_size=64,
        eval_every=every, snapshot_every=every, eval_train_samples=500, runs_root=runs_root(), name="fsp-student",
    ).validate()


def start_experiment(choice: FSPChoice, settings: LabSettings, bundle: DatasetBundle, teacher_path: str,
                     session_id: str) -> FSPExperiment:
    """Start stage 1 and the scratch student now; a watcher thread starts stage 2 after stage 1."""
    base, manager = base_config(choice, settings, bundle, teacher_path), lab_manager()
    stages = TwoStageFSP(base, stage1=stage1_config(base, choice), manager=manager)
    scratch = start(scratch_config(base, name="fsp-scratch-student"), manager)
    exp = FSPExperiment(stages, scratch, choice.hook, int(choice.stage1_steps), session_id)
    for job in (exp.stage1, scratch):
        watchdog().add_job(session_id, job)

    def start_stage2_when_ready() -> None:
        exp.stage1.wait()
        exp.poll()

    threading.Thread(target=start_stage2_when_ready, name="kdviz-fsp-stage2", daemon=True).start()
    return exp
