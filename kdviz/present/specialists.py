"""Specialists, end to end (Hinton, Vinyals, Dean 2015, section 5): a generalist, the classes it
confuses, one specialist per confusable subset, and the combination at test time.

The pipeline (``specialists_experiment``, an ``Experiment``):

1. **generalist**: trained on the dataset's training images less a held-out slice (``held_out``
   images, class-balanced: the generalist's ``train_subset`` is the rest), or a finished run reused;
2. **confusable subsets** (section 5.2, ``SpecialistsExperiment.analysis``): the covariance of its
   predicted probabilities on the held-out images (on its own training images when it saw them
   all), k-means on the covariance's columns (diagonal zeroed: ``without_diagonal`` says why;
   ``zero_diagonal=False`` clusters the raw columns as the paper; clusters above ``max_size`` split
   again unless ``split_large=False``), the clusters of ``min_size`` to ``max_size`` classes
   most confusable first, ``count`` of them;
3. **specialists**: one run per subset, initialised from the generalist, trained on its data with
   the subset's images weighted to half and a dustbin for the other classes
   (``kdviz.methods.specialist``); a specialist with no subset left does not start and says why;
4. **combination** (section 5.3, ``SpecialistsExperiment.result``): on the test set, q minimising
   KL(p^g || q) + sum_{m active} KL(p^m || q), against the generalist alone: overall and on the
   covered classes, with the sizes (parameters, float32 bytes) of both.

Measured (``bench/specialists.py``, seeds 0-2, test accuracy, mean ± sample std): MNIST, MLP [64]
generalist (5 epochs, 10,000 held out), k = 4, 2-3 specialists of 2-4 classes (2 epochs each):
97.15 ± 0.17 % alone, 97.36 ± 0.16 % combined (+0.21 ± 0.06 points, higher in 3 of 3 seeds), for
3-4x the parameters; digits, MLP [16]: 95.41 -> 95.56 % (+0.15 ± 0.26, higher in 1 of 3, level in 2).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..distill.specialists import (
    Clusters, best_kmeans, combine, confusable_subsets, prediction_covariance, split_large_clusters, without_diagonal,
)
from ..data.bundle import balanced_subset
from ..engine import JobManager, TrainConfig
from ..engine.evaluation import predict_logits
from ..engine.experiment import Experiment
from ..engine.run_reader import read_status
from ..engine.setup import dataset_for
from ..engine.teacher_cache import load_trained_model
from ..figures.specialists import confusable_matrix, covered_accuracy, stage_accuracy
from ..methods.scratch import SCRATCH
from ..methods.specialist import SPECIALIST, SUBSET_ACC, specialist_classes, specialist_config, specialist_probabilities
from ..models.device import module_device
from ..models.summary import count_parameters

GENERALIST = "generalist"
BYTES_PER_PARAMETER = 4  # float32 weights


def specialist_name(index: int) -> str:
    """The job name of the ``index``-th specialist (0-based): ``"specialist 1"``."""
    return f"specialist {index + 1}"


@dataclass(frozen=True)
class SpecialistsPlan:
    """What to run: the generalist's config (trained unless ``generalist_run``, a finished run
    folder, is given), the clustering (k ``clusters``, subsets of ``min_size``..``max_size``
    classes, at most ``count`` specialists), the specialists' training (``enriched_fraction``,
    ``epochs``, ``lr``; None: the generalist's) and the combination's ``top_n`` (section 5.3, step 1)."""

    generalist: TrainConfig
    generalist_run: str | None = None
    clusters: int = 4
    count: int = 3
    min_size: int = 2
    max_size: int = 4
    enriched_fraction: float = 0.5
    epochs: int | None = None
    lr: float | None = None
    top_n: int = 1
    zero_diagonal: bool = True  # cluster the covariance's columns without its diagonal (distill.specialists.without_diagonal)
    split_large: bool = True  # split clusters above max_size again (distill.specialists.split_large_clusters)

    def validate(self) -> "SpecialistsPlan":
        """Check every setting; a ``ValueError`` names the first bad one. Returns self."""
        whole = lambda v, low: not isinstance(v, bool) and isinstance(v, int) and v >= low  # noqa: E731
        if not whole(self.clusters, 1) or not whole(self.count, 1) or not whole(self.top_n, 1):
            raise ValueError(f"clusters, count and top_n must be whole numbers >= 1, got {self.clusters!r}, "
                             f"{self.count!r}, {self.top_n!r}")
        if not (whole(self.min_size, 2) and whole(self.max_size, 2) and self.min_size <= self.max_size):
            raise ValueError(f"subset sizes need 2 <= min_size <= max_size, got {self.min_size!r}..{self.max_size!r}")
        if not 0.0 < float(self.enriched_fraction) < 1.0:
            raise ValueError(f"enriched_fraction must be between 0 and 1 (the paper: 0.5), got {self.enriched_fraction!r}")
        if self.generalist_run is None:
            self.generalist.validate()
        elif read_status(self.generalist_run).get("state") != "finished":
            raise ValueError(f"the generalist to reuse, {self.generalist_run}, is not a finished run")
        return self


def generalist_config(base: TrainConfig, held_out: int) -> TrainConfig:
    """``base`` (a ``ce`` run) trained on its training set less ``held_out`` class-balanced images,
    which section 5.2's covariance is then measured on (0: the generalist sees every image)."""
    n = len(dataset_for(replace(base, train_subset=None)).train_labels)
    if isinstance(held_out, bool) or not isinstance(held_out, int) or not 0 <= held_out < n:
        raise ValueError(f"held_out must be a whole number of training images, 0..{n - 1}, got {held_out!r}")
    return replace(base, method=SCRATCH.loss, teacher=None, hooks=[], train_subset=(n - held_out) if held_out else None,
                   name=base.name or GENERALIST)


# ---- 5.2: the analysis of the generalist ----------------------------------------------------------
@dataclass(frozen=True)
class Analysis:
    """Section 5.2 on a finished generalist: the covariance (K x K) of its probabilities on
    ``images`` images (``held_out``: images it did not train on), the k-means ``clusters``, the
    ``groups`` of classes after splitting the large ones, and the ``subsets`` chosen for specialists
    (most confusable first)."""

    covariance: np.ndarray
    clusters: Clusters
    groups: tuple[tuple[int, ...], ...]  # the clusters' classes, those above max_size split (split_large)
    subsets: tuple[tuple[int, ...], ...]
    images: int
    held_out: bool
    class_names: tuple[str, ...]


def covariance_images(config: TrainConfig) -> tuple[torch.Tensor, bool]:
    """The training images the generalist of ``config`` did not train on (and True), or, when it
    trained on all of them, all of them (and False)."""
    everything = dataset_for(replace(config, train_subset=None))
    if config.train_subset is None:
        return everything.train_images, False
    used = balanced_subset(everything.train_labels, config.train_subset, config.seed)
    mask = torch.ones(len(everything.train_labels), dtype=torch.bool)
    mask[used] = False
    return everything.train_images[mask], True


def analyse_generalist(run: str, plan: SpecialistsPlan) -> Analysis:
    """Section 5.2 for the finished generalist ``run``: covariance, clusters (seeded with its seed), subsets."""
    config = TrainConfig.load(run)
    images, held_out = covariance_images(config)
    generalist = load_trained_model(run, device="auto")  # the GPU when there is one
    probs = torch.softmax(predict_logits(generalist, images, module_device(generalist)).double(), dim=1).cpu().numpy()
    covariance = prediction_covariance(probs)
    k = min(plan.clusters, covariance.shape[0])
    clustered = without_diagonal(covariance) if plan.zero_diagonal else covariance
    clusters = best_kmeans(clustered, k, seed=config.seed)
    groups = (split_large_clusters(clustered, clusters.members(), plan.max_size, seed=config.seed) if plan.split_large
              else [g for g in clusters.members() if g])
    subsets = confusable_subsets(covariance, groups, plan.min_size, plan.max_size, plan.count)
    names = tuple(dataset_for(config).class_names)
    return Analysis(covariance, clusters, tuple(groups), tuple(subsets), len(images), held_out, names)


# ---- 5.3: the combination on the test set ---------------------------------------------------------
@dataclass(frozen=True)
class ClassResult:
    """One covered class: its test images and the accuracy of the generalist alone and combined."""

    label: int
    name: str
    images: int
    generalist: float
    combined: float


@dataclass(frozen=True)
class SpecialistsResult:
    """The combination's measurements (accuracies are fractions; sizes in parameters and bytes)."""

    generalist_acc: float
    combined_acc: float
    covered: tuple[ClassResult, ...]
    covered_generalist_acc: float
    covered_combined_acc: float
    active_share: float  # share of test images with at least one active specialist
    subsets: tuple[tuple[int, ...], ...]
    generalist_params: int
    total_params: int

    @property
    def generalist_bytes(self) -> int:
        return self.generalist_params * BYTES_PER_PARAMETER

    @property
    def total_bytes(self) -> int:
        return self.total_params * BYTES_PER_PARAMETER


def measure_combination(generalist_run: str, specialist_runs: list[str], top_n: int = 1) -> SpecialistsResult:
    """Section 5.3 on the test set: the generalist of ``generalist_run`` alone and combined with the
    finished ``specialist_runs``; accuracy overall and on the classes the specialists cover."""
    g_config = TrainConfig.load(generalist_run)
    data = dataset_for(g_config)
    generalist = load_trained_model(generalist_run, device="auto")
    p_g = torch.softmax(predict_logits(generalist, data.test_images, module_device(generalist)).double(), dim=1).cpu()
    configs = [TrainConfig.load(run) for run in specialist_runs]
    subsets = [specialist_classes(c) for c in configs]
    p_ms = [torch.as_tensor(specialist_probabilities(load_trained_model(run, device="auto"), data.test_images, c))
            for run, c in zip(specialist_runs, configs)]
    combination = combine(p_g, p_ms, subsets, top_n=top_n)
    labels = data.test_labels
    right_g, right_c = p_g.argmax(1) == labels, combination.q.argmax(1) == labels
    covered = sorted({c for s in subsets for c in s})
    rows = tuple(ClassResult(c, str(data.class_names[c]), int((labels == c).sum()),
                             float(right_g[labels == c].double().mean()), float(right_c[labels == c].double().mean()))
                 for c in covered if (labels == c).any())
    inside = torch.isin(labels, torch.tensor(covered, dtype=labels.dtype)) if covered else torch.zeros_like(labels, dtype=torch.bool)
    share = lambda right: float(right[inside].double().mean()) if inside.any() else float("nan")  # noqa: E731
    params = count_parameters(generalist)
    return SpecialistsResult(float(right_g.double().mean()), float(right_c.double().mean()), rows, share(right_g),
                             share(right_c), float(combination.active.any(dim=1).double().mean()) if subsets else 0.0,
                             tuple(subsets), params, params * (1 + len(specialist_runs)))


# ---- the experiment ---------------------------------------------------------------------------
class SpecialistsExperiment(Experiment):
    """The pipeline's jobs (``"generalist"`` unless reused, ``"specialist 1"``...), its plan, and the
    stages that are not jobs: the analysis once the generalist has finished, the result once every
    specialist has ended."""

    def __init__(self, plan: SpecialistsPlan, manager: JobManager | None = None, title: str = "") -> None:
        super().__init__(manager, title)
        self.plan = plan
        self._analysis: Analysis | None = None
        self._result: SpecialistsResult | None = None
        self._error: str | None = None
        self._unstarted: dict[str, str] = {}  # specialists of a reused generalist that could not start, and why
        self._compute = threading.Lock()

    @property
    def blocked(self) -> dict[str, str]:
        """Stages that will never start, and why (a specialist with no subset left among them)."""
        return {**super().blocked, **self._unstarted}

    @property
    def generalist_run(self) -> str | None:
        """The generalist's run folder once it has finished (the reused one at once), else None."""
        if self.plan.generalist_run is not None:
            return self.plan.generalist_run
        job = self.job(GENERALIST)
        return str(job.path) if job is not None and job.done and job.status().state == "finished" else None

    @property
    def error(self) -> str | None:
        """Why the analysis or the combination could not be computed (None: no failure)."""
        return self._error

    def analysis(self) -> Analysis | None:
        """Section 5.2 on the finished generalist, computed once (None until it has finished)."""
        run = self.generalist_run  # read before the lock: it takes the experiment's lock, which poll() holds while building
        with self._compute:
            if self._analysis is None and self._error is None and run is not None:
                try:
                    self._analysis = analyse_generalist(run, self.plan)
                except (ValueError, OSError, RuntimeError) as exc:
                    self._error = f"the confusable subsets could not be computed: {exc}"
            return self._analysis

    def specialist_build(self, index: int):
        """The stage builder of specialist ``index``: its subset from the analysis, or a ``ValueError``."""
        def build(jobs: dict) -> TrainConfig:
            analysis = self.analysis()
            if analysis is None:
                raise ValueError(self._error or "the generalist has not finished")
            if index >= len(analysis.subsets):
                raise ValueError(f"the clustering found {len(analysis.subsets)} subset(s) of {self.plan.min_size}-"
                                 f"{self.plan.max_size} classes, none left for this specialist")
            return specialist_config(TrainConfig.load(self.generalist_run), self.generalist_run, analysis.subsets[index],
                                     enriched_fraction=self.plan.enriched_fraction, epochs=self.plan.epochs,
                                     lr=self.plan.lr, name=f"specialist-{index + 1}").validate()
        return build

    def result(self) -> SpecialistsResult | None:
        """Section 5.3's measurements once every stage has ended and at least one specialist has
        finished (computed once; None before)."""
        if self._result is not None or not self.done:
            return self._result
        finished = [str(job.path) for name, job in self.jobs.items()
                    if name != GENERALIST and job.status().state == "finished"]
        run = self.generalist_run
        with self._compute:
            if self._result is None and self._error is None and finished and run is not None:
                try:
                    self._result = measure_combination(run, finished, self.plan.top_n)
                except (ValueError, OSError, RuntimeError) as exc:
                    self._error = f"the combination could not be computed: {exc}"
        return self._result


def specialists_experiment(plan: SpecialistsPlan, manager: JobManager | None = None,
                           title: str = "") -> SpecialistsExperiment:
    """Start ``plan``: the generalist (unless reused), then ``plan.count`` specialist stages that
    start once it has finished. A bad setting raises before any job starts."""
    plan.validate()
    experiment = SpecialistsExperiment(plan, manager, title)
    try:
        if plan.generalist_run is None:
            experiment.start(GENERALIST, plan.generalist)
            for i in range(plan.count):
                experiment.then(specialist_name(i), GENERALIST, experiment.specialist_build(i))
        else:
            for i in range(plan.count):
                try:
                    experiment.start(specialist_name(i), experiment.specialist_build(i)({}))
                except ValueError as exc:
                    experiment._unstarted[specialist_name(i)] = f"could not start: {exc}"
    except BaseException:
        experiment.stop()
        raise
    return experiment


# ---- what the UIs show ------------------------------------------------------------------------
def stage_lines(exp: SpecialistsExperiment) -> list[tuple[str, Any, str]]:
    """Every stage in order as (name, its job or None, what it is doing in words when it has no job)."""
    jobs, pending, blocked, analysis = exp.jobs, set(exp.pending), exp.blocked, exp.analysis()
    lines: list[tuple[str, Any, str]] = []
    if exp.plan.generalist_run is not None:
        lines.append((GENERALIST, None, f"reused: {exp.plan.generalist_run}"))
    else:
        lines.append((GENERALIST, jobs.get(GENERALIST), "starting"))
    subsets = ("waiting for the generalist" if analysis is None else
               f"{len(analysis.subsets)} subset(s): " + ", ".join("{" + ", ".join(analysis.class_names[c] for c in s) + "}"
                                                         for s in analysis.subsets))
    lines.append(("confusable subsets", None, exp.error if exp.error and analysis is None else subsets))
    for i in range(exp.plan.count):
        name = specialist_name(i)
        text = (f"will not start: {blocked[name]}" if name in blocked else
                "waiting for the generalist to finish" if name in pending else "starting")
        lines.append((name, jobs.get(name), text))
    result = exp.result()
    combined = ("done" if result is not None else exp.error if exp.error and analysis is not None else
                "will not run: no specialist finished" if exp.done else "waiting for the specialists to finish")
    lines.append(("combination", None, combined))
    return lines


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def specialists_caption(exp: SpecialistsExperiment) -> str:
    """What the pipeline shows now, in words, from its measurements."""
    analysis, result, ended = exp.analysis(), exp.result(), exp.done
    if analysis is None:
        if exp.error or not ended:
            return exp.error or "Waiting for the generalist to finish: its predictions show which classes it confuses."
        return "The generalist did not finish (stopped or failed), so there are no confusable classes to find."
    source = (f"{analysis.images} held-out training images" if analysis.held_out
              else f"its {analysis.images} training images (it trained on all of them)")
    found = (f"The generalist's predictions on {source} cluster into {len(analysis.groups)} groups; "
             f"{len(analysis.subsets)} of {exp.plan.min_size}-{exp.plan.max_size} classes get a specialist.")
    if result is None:
        waiting = ("No specialist finished, so there is nothing to combine." if ended else
                   "The specialists are training; the combination follows when they end.")
        return f"{found} {exp.error or waiting}"
    gain, covered_gain = result.combined_acc - result.generalist_acc, result.covered_combined_acc - result.covered_generalist_acc
    return (f"{found} Combined with {len(result.subsets)} specialist(s) (section 5.3), test accuracy is "
            f"{_pct(result.combined_acc)} against {_pct(result.generalist_acc)} for the generalist alone "
            f"({100 * gain:+.1f} points); on the covered classes {_pct(result.covered_combined_acc)} against "
            f"{_pct(result.covered_generalist_acc)} ({100 * covered_gain:+.1f} points). A specialist was active for "
            f"{_pct(result.active_share)} of the test images. Size: {result.generalist_params:,} parameters "
            f"({result.generalist_bytes / 1024:.0f} KiB) alone, {result.total_params:,} ({result.total_bytes / 1024:.0f} KiB) "
            "with the specialists.")


SPECIALIST_DASHES = ("dash", "dot", "dashdot", "longdash", "longdashdot")


def specialists_figures(exp: SpecialistsExperiment, views: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's charts by key: ``"accuracy"`` (the runs as they train, from ``views``:
    ``{job name: RunView}``), ``"subsets"`` (the covariance matrix, once analysed) and ``"gain"``
    (the covered classes' accuracy, once combined)."""
    series, colours, dashes = {}, {}, {}
    for name, view in views.items():
        if name == GENERALIST:
            series[name], colours[name] = view.eval_series("test_acc"), SCRATCH.colour
        elif view.config is not None:
            label = f"{name}: {SPECIALIST.run_label(view.config)}"
            series[label] = view.eval_series(SPECIALIST.metric_key(view.config, SUBSET_ACC))
            colours[label], dashes[label] = SPECIALIST.colour, SPECIALIST_DASHES[len(dashes) % len(SPECIALIST_DASHES)]
    figures = {"accuracy": stage_accuracy(series, colours, dashes)}
    if (analysis := exp.analysis()) is not None:
        figures["subsets"] = confusable_matrix(analysis.covariance, analysis.class_names, analysis.groups, analysis.subsets)
    if (result := exp.result()) is not None and result.covered:
        figures["gain"] = covered_accuracy([r.name for r in result.covered], [r.generalist for r in result.covered],
                                           [r.combined for r in result.covered], [r.images for r in result.covered])
    return figures
