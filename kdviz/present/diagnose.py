"""Why did knowledge distillation help, or not? One diagnosis of a distilled run for both UIs.

The question users of every distillation toolkit ask most (issue 16) has a few usual answers, each
read here from the runs' own checkpoints and records (never from what a run "should" show):

* the teacher was **overconfident at the chosen T**: its soft targets (Hinton, Vinyals, Dean 2015,
  eq. 1) put almost no probability on the wrong classes of the student's training images, so they
  carry little beyond the label (``distill.calibration.non_target_mass``);
* the student had **no capacity** to follow: it fits its own training images far worse than the
  teacher fits them (Mirzadeh et al. 2020 on the capacity gap);
* **alpha** was so high that the labels barely count;
* the **transfer set** was large enough that the scratch student caught up (Hinton et al. 2015,
  section 3: soft targets help most when labelled data is scarce).

Beside those: per-class teacher-student agreement and per-class gain over the scratch student on
the test set, the teacher's calibration (Guo et al. 2017: reliability bins and ECE, eq. 3) and, when
finished runs at several (T, alpha) exist for the same student, teacher and data in the runs root,
the response surface of final accuracy over scratch. Models are read through the engine's loaders
(tensors only, no unpickling); run folders are only read.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from ..distill.calibration import GUO_BINS, ReliabilityBins, mean_per_class, non_target_mass, reliability_bins
from ..distill.soft_targets import soften
from ..engine import list_runs, load_checkpoint, load_trained_model, open_run
from ..engine.evaluation import predict_logits
from ..engine.run_folder import checkpoint_file, has_checkpoint, read_config
from ..engine.setup import dataset_for
from ..models.device import module_device
from ..figures import diagnose as fd
from ..methods import method_of
from ..methods.scratch import SCRATCH
from .dark_knowledge import run_logits
from .runs import RunView, as_run_view, last_eval

LOW_NON_TARGET_MASS = 0.05  # soft targets with < 5 % off the true class are nearly the labels
CAPACITY_GAP = 0.10  # the student fits its training images 10 points worse than the teacher does
HIGH_ALPHA = 0.95  # the labels weigh (1 - alpha) < 5 % of the loss
CATCH_UP = 0.005  # the scratch student within half a point of the distilled one
TEMPERATURE_LADDER = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)  # non-target mass at these T, to suggest one
# Fields that may differ between runs of one (student, teacher, data) for the response surface.
_NOT_THE_STUDENT = {"method", "teacher", "T", "alpha", "hooks", "device", "seed"}


@dataclass(frozen=True)
class DiagnosisWarning:
    """One plain-words reason why distillation may not have helped; ``kind`` names the rule."""

    kind: str
    text: str


@dataclass(frozen=True)
class ResponseSurface:
    """Final test accuracy of finished distilled runs minus the mean of the matching scratch runs,
    per (alpha, T): ``gain`` (len(alphas), len(temperatures)), NaN where no run; each cell averages
    ``run_counts`` runs (seeds)."""

    temperatures: tuple[float, ...]
    alphas: tuple[float, ...]
    gain: np.ndarray
    run_counts: np.ndarray
    scratch_acc: float
    scratch_runs: int
    current: tuple[float, float]


@dataclass(frozen=True)
class Diagnosis:
    """Everything the Diagnose view draws for one distilled run; per-class arrays are (K,), on the
    test set unless the name says training. ``scratch_*`` and ``gain`` are None without a scratch run."""

    label: str
    class_names: tuple[str, ...]
    T: float
    alpha: float
    step: int
    ended: bool
    agreement: np.ndarray
    student_acc: np.ndarray
    teacher_acc: np.ndarray
    scratch_acc: np.ndarray | None
    gain: np.ndarray | None
    scratch_label: str | None
    non_target_mass: np.ndarray
    mean_non_target_mass: float
    non_target_mass_right: np.ndarray  # the part of ``non_target_mass`` from images the teacher gets right
    teacher_right: int  # training images the teacher classifies correctly
    mass_by_temperature: dict[float, float]  # mean non-target mass on those, per T (the chosen one included)
    training_counts: np.ndarray
    teacher_bins: ReliabilityBins
    teacher_train_acc: float | None
    student_train_acc: float | None
    student_test_acc: float
    scratch_test_acc: float | None
    colours: dict[str, str]
    surface: ResponseSurface | None = None
    warnings: tuple[DiagnosisWarning, ...] = ()

    @property
    def teacher_ece(self) -> float:
        return self.teacher_bins.ece

    @property
    def training_images(self) -> int:
        return int(self.training_counts.sum())

    def version(self) -> tuple:
        """Changes whenever anything the figures draw changes (a new checkpoint, a new run on the surface)."""
        surface = None if self.surface is None else (self.surface.temperatures, self.surface.alphas,
                                                     self.surface.gain.tobytes(), self.surface.run_counts.tobytes())
        return (self.label, self.step, self.ended, self.T, self.alpha, self.student_test_acc, self.scratch_test_acc,
                self.scratch_label, self.teacher_bins.counts.tobytes(), self.teacher_ece, surface)


def _student_key(config: Any) -> str:
    """What a run trains apart from its method, teacher, T, alpha and seed: runs with equal keys
    are the same student on the same data and schedule."""
    fields = {k: v for k, v in config.identity().items() if k not in _NOT_THE_STUDENT}
    return json.dumps(fields, sort_keys=True, default=str)


def _resolved(path: Any) -> str:
    return str(Path(path).expanduser().resolve())


def _finished_rows(root: Path) -> list[tuple[dict, Any]]:
    """(list_runs row, config) of every finished run under ``root`` with a final test accuracy."""
    rows = []
    for row in list_runs(root):
        if row["state"] == "finished" and row.get("test_acc") is not None:
            try:
                rows.append((row, read_config(row["path"])))
            except (ValueError, TypeError):
                continue
    return rows


def find_scratch(kd_view: RunView) -> Path | None:
    """The newest finished scratch run beside ``kd_view``'s folder with the same student, data,
    schedule and seed (None if there is none)."""
    if kd_view.path is None:
        return None
    key, seed = _student_key(kd_view.config), kd_view.config.seed
    for row, config in _finished_rows(kd_view.path.parent):
        if method_of(config) is SCRATCH and config.seed == seed and _student_key(config) == key:
            return Path(row["path"])
    return None


def response_surface(kd_view: RunView, runs_root: str | Path | None = None) -> ResponseSurface | None:
    """The T x alpha surface over the finished runs of ``kd_view``'s method, student, teacher and
    data in ``runs_root`` (default: the run's own folder's parent), against the mean of the matching
    finished scratch runs; None unless at least two (T, alpha) cells and a scratch run exist."""
    root = Path(runs_root) if runs_root is not None else (kd_view.path.parent if kd_view.path else None)
    if root is None or not root.is_dir():
        return None
    key, teacher = _student_key(kd_view.config), _resolved(kd_view.config.teacher)
    cells: dict[tuple[float, float], list[float]] = {}
    scratch: list[float] = []
    for row, config in _finished_rows(root):
        if _student_key(config) != key:
            continue
        spec = method_of(config)
        if spec is SCRATCH:
            scratch.append(float(row["test_acc"]))
        elif spec is kd_view.method and config.teacher and _resolved(config.teacher) == teacher:
            cells.setdefault((float(config.T), float(config.alpha)), []).append(float(row["test_acc"]))
    if len(cells) < 2 or not scratch:
        return None
    temperatures = tuple(sorted({t for t, _ in cells}))
    alphas = tuple(sorted({a for _, a in cells}))
    gain = np.full((len(alphas), len(temperatures)), np.nan)
    counts = np.zeros_like(gain, dtype=np.int64)
    base = float(np.mean(scratch))
    for (t, a), accs in cells.items():
        i, j = alphas.index(a), temperatures.index(t)
        gain[i, j], counts[i, j] = float(np.mean(accs)) - base, len(accs)
    return ResponseSurface(temperatures, alphas, gain, counts, base, len(scratch),
                           (float(kd_view.config.T), float(kd_view.config.alpha)))


def _train_acc(records: list[dict]) -> float | None:
    return last_eval(records, "train_acc")


def _per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> np.ndarray:
    hits = (logits.argmax(dim=1) == labels).double().numpy()
    return mean_per_class(hits, labels.numpy(), k)


def _teacher_training_logits(teacher_path: str, config: Any) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's eval-mode logits on the student's training images (its transfer set, as
    ``dataset_for`` filters and subsets it, without jitter) and their labels."""
    data = dataset_for(config)
    teacher = load_trained_model(teacher_path, device="auto")  # the GPU when there is one
    logits = predict_logits(teacher, data.train_images, module_device(teacher)).double().cpu().numpy()
    return logits, data.train_labels.numpy()


def _checked_view(run: Any) -> RunView:
    view = as_run_view(run)
    if not getattr(view.config, "teacher", None):
        raise ValueError(f"{view.label!r} learns from no teacher (its config names none): only a distilled run "
                         "can be diagnosed")
    if view.path is None or not has_checkpoint(view.path):
        raise ValueError(f"{view.label!r} has no saved model yet (checkpoints/last.safetensors): wait for its first checkpoint")
    if not has_checkpoint(view.config.teacher):
        raise ValueError(f"the teacher of {view.label!r} ({view.config.teacher}) has no saved model")
    return view


def _mtime(path: Path | None) -> int:
    ckpt = None if path is None else checkpoint_file(path)
    return ckpt.stat().st_mtime_ns if ckpt is not None and ckpt.is_file() else 0


_MEMO: "OrderedDict[tuple, Diagnosis]" = OrderedDict()
_MEMO_LOCK = threading.Lock()


def diagnose(kd_run: Any, scratch_run: Any = None, runs_root: str | Path | None = None, n_bins: int = GUO_BINS) -> Diagnosis:
    """The diagnosis of a distilled run (a ``Job``, ``RunReader``, run folder or ``RunView``, live or
    finished) beside ``scratch_run`` (default: the matching finished scratch run beside it, if any),
    with the response surface over ``runs_root``. Computed once per checkpoint version of the runs."""
    kd = _checked_view(kd_run)
    scratch = as_run_view(scratch_run) if scratch_run is not None else None
    if scratch is None:
        found = find_scratch(kd)
        scratch = as_run_view(found) if found is not None else None
    if scratch is not None and _mtime(scratch.path) == 0:
        scratch = None  # the scratch run has no saved model yet
    kd.refresh()
    if scratch is not None:
        scratch.refresh()
    key = (_resolved(kd.path), _mtime(kd.path), scratch and _resolved(scratch.path), scratch and _mtime(scratch.path),
           _mtime(Path(kd.config.teacher)), n_bins, kd.done and (scratch is None or scratch.done))
    with _MEMO_LOCK:
        found_diagnosis = _MEMO.get(key)
    if found_diagnosis is None:
        found_diagnosis = _measure(kd, scratch, n_bins)
        with _MEMO_LOCK:
            _MEMO[key] = found_diagnosis
            while len(_MEMO) > 8:
                _MEMO.popitem(last=False)
    diagnosis = replace(found_diagnosis, surface=response_surface(kd, runs_root))
    return replace(diagnosis, warnings=tuple(diagnosis_warnings(diagnosis)))


def _measure(kd: RunView, scratch: RunView | None, n_bins: int) -> Diagnosis:
    """Read the three models' test logits and the teacher's soft targets on the transfer set."""
    config, teacher_path = kd.config, str(kd.config.teacher)
    step = int(load_checkpoint(kd.path).get("step", 0))  # the saved model's step
    student, teacher = run_logits(kd.path), run_logits(teacher_path)
    labels, k = student.labels, len(student.class_names)
    if teacher.logits.shape != student.logits.shape:
        raise ValueError(f"the teacher's outputs {tuple(teacher.logits.shape)} do not match the student's "
                         f"{tuple(student.logits.shape)}: they were not trained on the same data")
    agree = (student.logits.argmax(dim=1) == teacher.logits.argmax(dim=1)).double().numpy()
    student_acc = _per_class_accuracy(student.logits, labels, k)
    scratch_acc = scratch_test = None
    if scratch is not None:
        other = run_logits(scratch.path)
        scratch_acc = _per_class_accuracy(other.logits, labels, k)
        scratch_test = float((other.logits.argmax(dim=1) == labels).double().mean())
    train_logits, train_labels = _teacher_training_logits(teacher_path, config)
    mass = non_target_mass(train_logits, train_labels, config.T)
    ladder = sorted({*TEMPERATURE_LADDER, float(config.T)})
    right = train_logits.argmax(axis=1) == train_labels  # where the soft target is dark knowledge, not an error
    right_logits, right_labels = (train_logits[right], train_labels[right]) if right.any() else (train_logits, train_labels)
    teacher_probs = np.asarray(soften(teacher.logits.double().numpy(), 1.0))
    teacher_records = open_run(teacher_path).metrics("eval")
    colours = {"student": kd.colour, "teacher": method_of(read_config(teacher_path), is_teacher=True).colour}
    return Diagnosis(
        label=kd.label, class_names=tuple(student.class_names), T=float(config.T), alpha=float(config.alpha),
        step=step, ended=kd.done and (scratch is None or scratch.done),
        agreement=mean_per_class(agree, labels.numpy(), k), student_acc=student_acc,
        teacher_acc=_per_class_accuracy(teacher.logits, labels, k), scratch_acc=scratch_acc,
        gain=None if scratch_acc is None else student_acc - scratch_acc, scratch_label=scratch.label if scratch else None,
        non_target_mass=mean_per_class(mass, train_labels, k), mean_non_target_mass=float(mass.mean()),
        non_target_mass_right=mean_per_class(np.where(right, mass, 0.0), train_labels, k),
        teacher_right=int(right.sum()),
        mass_by_temperature={t: float(non_target_mass(right_logits, right_labels, t).mean()) for t in ladder},
        training_counts=np.bincount(train_labels, minlength=k)[:k], teacher_bins=reliability_bins(teacher_probs, labels.numpy(), n_bins),
        teacher_train_acc=_train_acc(teacher_records), student_train_acc=_train_acc(kd.evals),
        student_test_acc=float((student.logits.argmax(dim=1) == labels).double().mean()), scratch_test_acc=scratch_test,
        colours=colours)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%" if value >= 0.001 else f"{100 * value:.3f}%"


def overconfidence_warning(d: Diagnosis) -> DiagnosisWarning | None:
    """On the training images the teacher classifies correctly (elsewhere its soft target is an
    error, not dark knowledge), its soft targets at T put less than ``LOW_NON_TARGET_MASS`` on the
    other classes."""
    mass = d.mass_by_temperature[d.T]
    if mass >= LOW_NON_TARGET_MASS:
        return None
    better = [t for t, m in sorted(d.mass_by_temperature.items()) if t > d.T and m >= 2 * LOW_NON_TARGET_MASS]
    hint = (f" At T = {better[0]:g} they would put {_pct(d.mass_by_temperature[better[0]])} there: raise T."
            if better else " Even a much higher T leaves little: the teacher is nearly certain of every image.")
    return DiagnosisWarning("overconfident", (
        f"The teacher is overconfident at T = {d.T:g}: on the {d.teacher_right} of the student's {d.training_images} "
        f"training images it classifies correctly, its soft targets put only {_pct(mass)} of their probability on "
        f"the other classes, so they say little more than the labels." + hint))


def diagnosis_warnings(d: Diagnosis) -> list[DiagnosisWarning]:
    """Every rule that fires for ``d``, in plain words with the numbers that made it fire."""
    found = [overconfidence_warning(d)]
    so_far = "" if d.ended else " so far"
    if d.teacher_train_acc is not None and d.student_train_acc is not None \
            and d.teacher_train_acc - d.student_train_acc > CAPACITY_GAP:
        found.append(DiagnosisWarning("capacity", (
            f"The student cannot follow the teacher: it fits {_pct(d.student_train_acc)} of its training "
            f"images{so_far}, the teacher {_pct(d.teacher_train_acc)}. It has too little capacity or too few steps; "
            f"a larger student or a longer run comes before any distillation setting.")))
    if d.alpha >= HIGH_ALPHA:
        found.append(DiagnosisWarning("alpha", (
            f"alpha = {d.alpha:g}: the labels weigh only {_pct(1 - d.alpha)} of the loss, so where the teacher is "
            f"wrong nothing corrects the student. Try alpha between 0.5 and 0.9.")))
    if d.scratch_test_acc is not None and d.scratch_test_acc >= d.student_test_acc - CATCH_UP:
        found.append(DiagnosisWarning("transfer_set", (
            f"The scratch student caught up{so_far}: {_pct(d.scratch_test_acc)} test accuracy from the labels of "
            f"{d.training_images} training images alone, against {_pct(d.student_test_acc)} with the teacher. With "
            f"this many labels the soft targets add little (Hinton et al. 2015, section 3: they help most when "
            f"labelled data is scarce); try a smaller transfer set.")))
    return [w for w in found if w is not None]


@dataclass(frozen=True)
class DiagnosisFigure:
    """One chart of the Diagnose view: a ``key`` (unique on a page), the figure and its caption."""

    key: str
    figure: go.Figure
    caption: str


def _class_list(d: Diagnosis, values: np.ndarray, below: float) -> str:
    names = [d.class_names[i] for i in np.flatnonzero(np.nan_to_num(values, nan=np.inf) < below)]
    return ", ".join(names) if names else "none"


def diagnosis_figures(d: Diagnosis) -> list[DiagnosisFigure]:
    """The view's charts, each with a caption read from the numbers it draws."""
    out = [DiagnosisFigure("diagnose-agreement", fd.agreement_bars(d.class_names, d.agreement, d.colours["student"], d.label),
                           f"Test images of each class on which the student predicts what the teacher predicts "
                           f"(step {d.step}). Below 90 %: {_class_list(d, d.agreement, 0.9)}.")]
    if d.gain is not None:
        out.append(DiagnosisFigure("diagnose-gain", fd.gain_bars(d.class_names, d.gain),
                                   f"Per-class test accuracy of {d.label} minus {d.scratch_label}'s: "
                                   f"{_pct(d.student_test_acc)} against {_pct(d.scratch_test_acc)} overall."))
    out.append(DiagnosisFigure(
        "diagnose-dark-knowledge",
        fd.non_target_mass_bars(d.class_names, d.non_target_mass_right, d.non_target_mass - d.non_target_mass_right,
                                d.T, d.colours["teacher"], LOW_NON_TARGET_MASS, d.mass_by_temperature[d.T]),
        f"Mean probability the teacher's soft targets at T = {d.T:g} put on the other classes of the student's "
        f"{d.training_images} training images: {_pct(d.mean_non_target_mass)} in all. On the {d.teacher_right} it "
        f"gets right: {_pct(d.mass_by_temperature[d.T])} at this T, {_pct(d.mass_by_temperature[1.0])} at T = 1."))
    bins = d.teacher_bins
    out.append(DiagnosisFigure(
        "diagnose-reliability",
        fd.reliability_diagram(bins.edges, bins.accuracy, bins.confidence, bins.counts, bins.ece, d.colours["teacher"]),
        f"The teacher's test images grouped into {len(bins.counts)} confidence bins (at T = 1); bars under the "
        f"diagonal are bins where it is more confident than right. ECE (Guo et al. 2017, eq. 3) = {_pct(bins.ece)}."))
    if d.surface is not None:
        s = d.surface
        out.append(DiagnosisFigure(
            "diagnose-surface", fd.response_surface(s.temperatures, s.alphas, s.gain, s.run_counts, s.current),
            f"Final test accuracy minus the scratch student's ({_pct(s.scratch_acc)}, mean of {s.scratch_runs} "
            f"run(s)) for the {int(s.run_counts.sum())} finished runs of this student, teacher and data; "
            f"empty cells were never run."))
    return out


__all__ = ["CAPACITY_GAP", "CATCH_UP", "HIGH_ALPHA", "LOW_NON_TARGET_MASS", "Diagnosis", "DiagnosisFigure",
           "DiagnosisWarning", "ResponseSurface", "diagnose", "diagnosis_figures", "diagnosis_warnings", "find_scratch", "response_surface"]
