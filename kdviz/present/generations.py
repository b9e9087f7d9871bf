"""Chains of KD runs: born-again networks and teacher assistants, planned, read and told.

* **Born-again networks** (Furlanello et al., "Born-Again Neural Networks", ICML 2018, section 3):
  generation 0 is trained on the labels; generation k is the *same* architecture trained with
  Hinton's KD loss against generation k-1 (eq. 1 of the paper is KD with the previous generation
  as teacher). Does each generation beat the one before it?
* **Teacher assistant** (Mirzadeh et al., "Improved Knowledge Distillation via Teacher Assistant",
  AAAI 2020, section 3): when the capacity gap teacher/student is large, distil the teacher into an
  assistant of intermediate size first, then the assistant into the student; compared against the
  teacher distilled into the same student directly.

Both are chains of ordinary KD runs (``kdviz.engine.experiment``: a stage starts once the run it
names has finished and takes its run folder as ``teacher``); no new loss. This module plans them
(``born_again_plan``, ``assistant_plan``: named configs and who teaches whom), starts them
(``chain_experiment``), reads them (``chain_results``: accuracy per generation or path, mean and
spread over seeds) and says what the numbers show (``born_again_caption``, ``assistant_caption``).

Every run of one chain keeps the chain's seed, so the generations see the same class-balanced
labelled images (``train_subset`` is drawn per seed), start from the same weights and take the same
batches: only the targets differ. Repeating the chain over seeds gives the spread.

Measured here (digits, the family's defaults ``family_story.family_base_config``: MLP [8] student,
100 labelled images, T = 4, alpha = 0.9, 400 epochs, lr 0.01, batch 16; teacher the app's MLP
256-256 with dropout 0.3, 20 epochs, 96.2 %; seeds 0, 1, 2; final test accuracy, mean ± sample std):

  born-again  generation 0 (labels)  83.7 % ± 3.6   (85.6, 86.0, 79.6)
              generation 1           83.5 % ± 3.8   (85.1, 86.2, 79.1)
              generation 2           83.4 % ± 3.7   (85.3, 85.8, 79.1)
              generation 3           83.3 % ± 3.6   (85.1, 85.6, 79.1)
  -> each generation is level with the one before (-0.2, -0.1, -0.1 points; higher in 1, 1, 0 of 3 seeds):
     no born-again gain for this 610-parameter student on 100 labels (the paper's are for large CIFAR nets).

  teacher assistant (teacher 85,002 params; assistant MLP [32], 2,410 params: 94.0 % ± 1.2, gap 35x):
    student MLP [8] (610 params, gap 139x): direct 90.4 % ± 2.1, via the assistant 90.7 % ± 2.0:
      +0.2 points, level within seed noise (higher in 2 of 3 seeds);
    student MLP [2] (160 params, gap 531x): direct 30.6 % ± 2.6, via the assistant 31.8 % ± 1.9:
      +1.2 points, within seed noise but higher in 3 of 3 seeds (assistant MLP [8]: +1.5, 3 of 3).
  The paper's gains are for convolutional nets on CIFAR; here 1.5 points at most.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..engine import Job, JobManager, TrainConfig
from ..engine.experiment import Experiment
from ..methods.kd import KD
from ..methods.scratch import SCRATCH
from ..models import build_model
from ..models.summary import count_parameters
from ..figures.generations import ASSISTANT_COLOUR, DIRECT_COLOUR, VIA_COLOUR, capacity_gap_accuracy, generation_accuracy
from .story import LEVEL_POINTS, points

BORN_AGAIN, ASSISTANT = "born-again", "teacher assistant"  # the two kinds of chain
ASSISTANT_GROUP, VIA_GROUP, DIRECT_GROUP = "assistant", "student via assistant", "student direct"
TEACHER_NAME = "teacher"  # the name a plan uses for the finished teacher run it starts from
MAX_GENERATIONS = 10


@dataclass(frozen=True)
class ChainRun:
    """One run of a chain: its job name, config, the group it counts in (``"generation 2"``,
    ``"student via assistant"``), its seed, its parameter count and the job whose finished run folder
    becomes its ``teacher`` (None: the config's own teacher, or none)."""

    name: str
    config: TrainConfig
    group: str
    seed: int
    params: int
    teacher_from: str | None = None

    def build(self, jobs: Mapping[str, Job]) -> TrainConfig:
        """The config to start, the teacher set to the run folder of ``teacher_from``'s finished job."""
        if self.teacher_from is None:
            return self.config.validate()
        return replace(self.config, teacher=str(jobs[self.teacher_from].path)).validate()


@dataclass(frozen=True)
class ChainPlan:
    """A chain's runs in start order (every run after the one it learns from), its kind and the
    parameter count of the teacher it starts from (None for born-again: generation 0 has no teacher)."""

    kind: str
    runs: tuple[ChainRun, ...]
    teacher_params: int | None = None

    @property
    def groups(self) -> list[str]:
        """The groups in order of first appearance (generation 0, 1, ...; or assistant, via, direct)."""
        return list(dict.fromkeys(run.group for run in self.runs))

    @property
    def configs(self) -> dict[str, TrainConfig]:
        """``{job name: config}``; a run with ``teacher_from`` gets its teacher once that one has finished."""
        return {run.name: run.config for run in self.runs}

    @property
    def dependencies(self) -> dict[str, str | None]:
        """``{job name: the job it learns from}`` (None: starts at once)."""
        return {run.name: run.teacher_from for run in self.runs}

    @property
    def teacher(self) -> str | None:
        """The run folder of the finished teacher the chain starts from (None for born-again)."""
        return next((run.config.teacher for run in self.runs if run.group == ASSISTANT_GROUP), None)

    def run(self, name: str) -> ChainRun:
        return next(run for run in self.runs if run.name == name)


def _positive_int(name: str, value: Any, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high is not None and value > high):
        limit = f" and at most {high}" if high is not None else ""
        raise ValueError(f"{name} must be a whole number of at least 1{limit}, got {value!r}")
    return value


def _seeds(base: TrainConfig, seeds: Sequence[int] | None) -> list[int]:
    chosen = [base.seed] if seeds is None else list(seeds)
    if not chosen or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in chosen):
        raise ValueError(f"seeds must be one or more whole numbers >= 0, got {seeds!r}")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"seeds must differ from each other, got {seeds!r}")
    return chosen


def _check_kd(T: Any, alpha: Any) -> tuple[float, float]:
    if isinstance(T, bool) or not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ValueError(f"the temperature T must be a positive number, got {T!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (the soft-target weight) must be between 0 and 1, got {alpha!r}")
    return float(T), float(alpha)


def parameter_count(model: str, options: Mapping[str, Any], input_shape: tuple[int, ...] = (1, 8, 8),
                    num_classes: int = 10) -> int:
    """The number of parameters of ``model`` built with ``options`` for images of ``input_shape``."""
    return count_parameters(build_model(model, tuple(input_shape), num_classes, **dict(options)))


def born_again_plan(base: TrainConfig, generations: int, T: float, alpha: float, *,
                    seeds: Sequence[int] | None = None, input_shape: tuple[int, ...] = (1, 8, 8),
                    num_classes: int = 10) -> ChainPlan:
    """Furlanello et al. 2018: per seed, generation 0 (``base``'s student on the labels, no teacher)
    and ``generations`` born-again generations, generation k distilled (Hinton's KD at ``T``,
    ``alpha``) from generation k-1 of the same seed. Every run shares ``base``'s model, data, batches
    and length; ``seeds`` (default: ``base.seed``) repeat the chain. Job names:
    ``"generation k · seed s"``."""
    generations = _positive_int("generations (born-again students after generation 0)", generations, MAX_GENERATIONS)
    T, alpha = _check_kd(T, alpha)
    params = parameter_count(base.model, base.model_options, input_shape, num_classes)
    runs = []
    for seed in _seeds(base, seeds):
        for k in range(generations + 1):
            name, before = f"generation {k} · seed {seed}", f"generation {k - 1} · seed {seed}"
            fields = (dict(method=SCRATCH.loss, teacher=None) if k == 0 else
                      dict(method=KD.loss, teacher=None, T=T, alpha=alpha))
            config = replace(base, seed=seed, name=f"ban-g{k}-s{seed}", **fields)
            runs.append(ChainRun(name, config, f"generation {k}", seed, params, None if k == 0 else before))
    return ChainPlan(BORN_AGAIN, tuple(runs))


def _hidden(name: str, size: Any) -> list[int]:
    sizes = [size] if isinstance(size, int) and not isinstance(size, bool) else list(size) if isinstance(size, (list, tuple)) else None
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"{name} must be a hidden-layer width or a list of widths (whole numbers >= 1), got {size!r}")
    return sizes


def assistant_plan(base: TrainConfig, teacher: str, assistant_size: Any, student_size: Any, *,
                   T: float | None = None, alpha: float | None = None, seeds: Sequence[int] | None = None,
                   input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> ChainPlan:
    """Mirzadeh et al. 2020: per seed, the assistant (``base.model`` with hidden layers
    ``assistant_size``) distilled from ``teacher`` (a finished run folder), the student (hidden
    ``student_size``) distilled from that assistant, and the same student distilled from the teacher
    directly. KD at ``T`` and ``alpha`` (default: ``base``'s). The assistant must have fewer
    parameters than the teacher and more than the student, else a ``ValueError`` says which."""
    T, alpha = _check_kd(base.T if T is None else T, base.alpha if alpha is None else alpha)
    if not teacher:
        raise ValueError("the teacher-assistant chain needs a finished teacher run folder")
    try:
        teacher_config = TrainConfig.load(teacher)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the teacher {str(teacher)!r} is not a readable run folder: {exc}") from None
    assistant, student = _hidden("assistant_size", assistant_size), _hidden("student_size", student_size)
    count = lambda options, m=base.model: parameter_count(m, options, input_shape, num_classes)  # noqa: E731
    t_params = count(teacher_config.model_options, teacher_config.model)
    try:
        a_params, s_params = count({**base.model_options, "hidden": assistant}), count({**base.model_options, "hidden": student})
    except TypeError:
        raise ValueError(f"the assistant and student sizes are hidden-layer widths, and model {base.model!r} has no "
                         "hidden layers to size: use an MLP student") from None
    if a_params >= t_params:
        raise ValueError(f"the assistant ({a_params:,} parameters, hidden {assistant}) must be smaller than the teacher "
                         f"({t_params:,} parameters)")
    if s_params >= a_params:
        raise ValueError(f"the student ({s_params:,} parameters, hidden {student}) must be smaller than the assistant "
                         f"({a_params:,} parameters, hidden {assistant})")
    runs = []
    for seed in _seeds(base, seeds):
        kd = dict(method=KD.loss, T=T, alpha=alpha, seed=seed)
        a_name = f"{ASSISTANT_GROUP} · seed {seed}"
        runs += [
            ChainRun(a_name, replace(base, model_options={**base.model_options, "hidden": assistant}, teacher=str(teacher),
                                     name=f"ta-assistant-s{seed}", **kd), ASSISTANT_GROUP, seed, a_params),
            ChainRun(f"{DIRECT_GROUP} · seed {seed}", replace(base, model_options={**base.model_options, "hidden": student},
                     teacher=str(teacher), name=f"ta-direct-s{seed}", **kd), DIRECT_GROUP, seed, s_params),
            ChainRun(f"{VIA_GROUP} · seed {seed}", replace(base, model_options={**base.model_options, "hidden": student},
                     teacher=None, name=f"ta-via-s{seed}", **kd), VIA_GROUP, seed, s_params, a_name),
        ]
    return ChainPlan(ASSISTANT, tuple(runs), t_params)


class ChainExperiment(Experiment):
    """An ``Experiment`` that keeps the ``ChainPlan`` it runs (the UIs read groups and sizes from it)."""

    def __init__(self, plan: ChainPlan, manager: JobManager | None = None, title: str = "") -> None:
        super().__init__(manager, title)
        self.plan = plan


def chain_experiment(plan: ChainPlan, manager: JobManager | None = None, title: str = "") -> ChainExperiment:
    """Start ``plan``: runs without a predecessor at once, every other one as a stage that starts once
    its predecessor has finished, with that run's folder as its ``teacher``. A bad config raises
    before any job starts."""
    for run in plan.runs:
        (replace(run.config, teacher=run.config.teacher or "pending") if run.teacher_from else run.config).validate()
    experiment = ChainExperiment(plan, manager, title)
    try:
        for run in plan.runs:
            if run.teacher_from is None:
                experiment.start(run.name, run.build({}))
            else:
                experiment.then(run.name, run.teacher_from, run.build)
    except BaseException:
        experiment.stop()
        raise
    return experiment


# ---- reading the results ---------------------------------------------------------------------
@dataclass(frozen=True)
class GroupResult:
    """One generation (or path) of a chain: the test accuracies of its runs that have an evaluation
    (one per seed), how many of its runs there are and have finished, their mean and spread (sample
    standard deviation over seeds; None with fewer than two), and the parameters of its model."""

    group: str
    accuracies: tuple[float, ...]
    runs: int
    finished: int
    params: int
    seeds: tuple[int, ...] = ()  # the seed of each accuracy, in the same order

    @property
    def mean(self) -> float | None:
        return sum(self.accuracies) / len(self.accuracies) if self.accuracies else None

    @property
    def spread(self) -> float | None:
        n = len(self.accuracies)
        if n < 2:
            return None
        m = self.mean
        return math.sqrt(sum((a - m) ** 2 for a in self.accuracies) / (n - 1))

    @property
    def done(self) -> bool:
        return self.finished == self.runs


def latest_accuracies(runs: Mapping[str, Any]) -> dict[str, float | None]:
    """``{job name: its latest test accuracy}`` (None before its first evaluation) for ``{name: run}``
    (a ``Job``, a ``RunView``, a run folder), read from each run's ``metrics.jsonl``."""
    from .runs import as_run_view, last_eval

    found = {}
    for name, run in runs.items():
        view = as_run_view(run, name)
        view.refresh()
        found[name] = last_eval(view.evals, "test_acc")
    return found


def chain_results(plan: ChainPlan, accuracies: Mapping[str, float | None],
                  finished: Mapping[str, bool] | None = None) -> list[GroupResult]:
    """A ``GroupResult`` per group of ``plan``, in order, from ``{job name: test accuracy}`` (a missing
    or None accuracy: no evaluation yet) and ``{job name: finished}`` (default: every run with an
    accuracy counts as finished)."""
    results = []
    for group in plan.groups:
        members = [run for run in plan.runs if run.group == group]
        measured = [r for r in members if accuracies.get(r.name) is not None]
        accs = tuple(float(accuracies[r.name]) for r in measured)
        done = sum(bool((finished or {}).get(r.name, finished is None and accuracies.get(r.name) is not None))
                   for r in members)
        results.append(GroupResult(group, accs, len(members), done, members[0].params, tuple(r.seed for r in measured)))
    return results


def capacity_gap(plan: ChainPlan, result: GroupResult) -> float | None:
    """Teacher parameters / the group's parameters (Mirzadeh et al.'s capacity gap); None without a teacher."""
    return plan.teacher_params / result.params if plan.teacher_params else None


def _with_spread(result: GroupResult) -> str:
    text = f"{result.mean:.1%}"
    if result.spread is not None:
        text += f" ± {points(result.spread):.1f} points over {len(result.accuracies)} seeds"
    return text


def _compare(later: GroupResult, earlier: GroupResult) -> tuple[float, bool]:
    """(later minus earlier in points, whether that is within noise: ``LEVEL_POINTS`` or the larger spread)."""
    gap = points(later.mean - earlier.mean)
    noise = max([LEVEL_POINTS, *(points(r.spread) for r in (later, earlier) if r.spread is not None)])
    return gap, abs(gap) < noise


def _paired(later: GroupResult, earlier: GroupResult) -> str:
    """"; higher in 2 of 3 seeds": the same seed's runs compared (same labelled images, same batches)."""
    before = dict(zip(earlier.seeds, earlier.accuracies))
    pairs = [(acc, before[seed]) for seed, acc in zip(later.seeds, later.accuracies) if seed in before]
    if len(pairs) < 2:
        return ""
    return f"; higher in {sum(a > b for a, b in pairs)} of {len(pairs)} seeds"


def born_again_caption(results: Sequence[GroupResult]) -> str:
    """What the generations' accuracies show now: each generation against the one before it (beats,
    level within noise, or falls behind, by how many points), and the best generation."""
    scored = [r for r in results if r.mean is not None]
    if not scored:
        return "Accuracy per generation: waiting for the first evaluation of generation 0."
    finished = all(r.done for r in results)
    parts = [f"Test accuracy per generation{'' if finished else ' so far (runs still training)'}: "
             f"generation 0, trained on the labels, {'ends at' if results[0].done else 'is at'} {_with_spread(scored[0])}."]
    for earlier, later in zip(results, results[1:]):
        if later.mean is None or earlier.mean is None:
            parts.append(f"{later.group.capitalize()} waits for {earlier.group} to finish.")
            break
        gap, level = _compare(later, earlier)
        verdict = ("is level with" if level else "beats" if gap > 0 else "falls behind")
        parts.append(f"{later.group.capitalize()} {verdict} {earlier.group} ({gap:+.1f} points: {_with_spread(later)}"
                     f"{_paired(later, earlier)}).")
    best = max(scored, key=lambda r: r.mean)
    if len(scored) > 1 and best is scored[0]:
        parts.append("No born-again generation beats generation 0.")
    elif len(scored) > 1:
        gap, level = _compare(best, scored[0])
        parts.append(f"Best: {best.group}, {gap:+.1f} points over generation 0{' (within seed noise)' if level else ''}.")
    return " ".join(parts)


def assistant_caption(plan: ChainPlan, results: Sequence[GroupResult]) -> str:
    """What the teacher-assistant chain shows now: the student via the assistant against the same
    student distilled directly, by how many points, with the capacity gaps."""
    by_group = {r.group: r for r in results}
    via, direct, helper = by_group.get(VIA_GROUP), by_group.get(DIRECT_GROUP), by_group.get(ASSISTANT_GROUP)
    if via is None or direct is None or helper is None:
        raise ValueError("assistant_caption needs the results of a teacher-assistant plan")
    gaps = f"capacity gap {capacity_gap(plan, direct):.0f}x teacher/student, {capacity_gap(plan, helper):.0f}x teacher/assistant"
    if direct.mean is None or via.mean is None:
        waiting = "the assistant to finish" if via.mean is None else "the direct student's first evaluation"
        return f"Student via assistant against student direct ({gaps}): waiting for {waiting}."
    gap, level = _compare(via, direct)
    when = "" if via.done and direct.done else " so far"
    if level:
        verdict = f"is level with the direct student{when} ({gap:+.1f} points, within seed noise{_paired(via, direct)})"
    elif gap > 0:
        verdict = f"beats the direct student{when} by {gap:.1f} points{_paired(via, direct)}: the assistant bridged the gap"
    else:
        verdict = f"trails the direct student{when} by {-gap:.1f} points{_paired(via, direct)}: the assistant did not help here"
    return (f"The student taught via the assistant ({_with_spread(via)}) {verdict}; distilled directly it has "
            f"{_with_spread(direct)} ({gaps}; the assistant itself {_with_spread(helper) if helper.mean is not None else 'has no evaluation yet'}).")


def chain_figures(plan: ChainPlan, results: Sequence[GroupResult],
                  teacher_accuracy: float | None = None) -> list[tuple[Any, str]]:
    """The chain's charts with their captions, as (plotly Figure, caption) pairs: accuracy per
    generation for a born-again chain; accuracy per run and accuracy against the capacity gap for a
    teacher-assistant chain. Each generation (run of the chain) has its own colour; a student keeps it on both charts."""
    colours = {ASSISTANT_GROUP: ASSISTANT_COLOUR, DIRECT_GROUP: DIRECT_COLOUR, VIA_GROUP: VIA_COLOUR}
    per_group = generation_accuracy([r.group for r in results], [r.accuracies for r in results], teacher_accuracy=teacher_accuracy,
                                    **({} if plan.kind == BORN_AGAIN else {"x_title": "run of the teacher-assistant chain",
                                       "title": "Test accuracy of each run of the chain", "connect": False,
                                       "colours": [colours[r.group] for r in results]}))
    if plan.kind == BORN_AGAIN:
        return [(per_group, born_again_caption(results))]
    text = assistant_caption(plan, results)
    by_group = {r.group: r for r in results}
    point = lambda r: (capacity_gap(plan, r), r.mean, r.spread, r.group)  # noqa: E731
    direct = [point(by_group[g]) for g in (ASSISTANT_GROUP, DIRECT_GROUP) if by_group[g].mean is not None]
    via = [point(by_group[VIA_GROUP])] if by_group[VIA_GROUP].mean is not None else []
    return [(per_group, text), (capacity_gap_accuracy(direct, via), text)]
