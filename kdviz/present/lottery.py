"""The lottery-ticket search and the N:M comparison as experiments, and what both UIs show of them.

**Ticket search** (Frankle & Carbin 2019, section 1; rewinding: Frankle et al. 2020): ``lottery_plan``
names the runs, ``lottery_experiment`` starts them as one ``Experiment``: the dense round 0 at once,
then round r (the winning ticket, rewound) once round r-1 has finished, taking its folder as
``init_from``; beside each chosen round the random re-initialisation control (same mask, fresh
init) starts from the same predecessor. Every round is an ordinary run of the ``lottery`` hook
(``kdviz.methods.lottery``), so each has a live chart, a checkpoint and a resume.

**N:M against unstructured** (Mishra et al. 2021): ``n_m_plan`` / ``n_m_experiment`` train a dense
network, then fine-tune it twice from the same weights: with the N:M pattern (``n_m`` hook) and with
one-shot unstructured magnitude pruning to the same sparsity 1 - N/M (``prune`` hook).

``lottery_results`` / ``n_m_results`` read the runs (jobs, views or folders) into rows; the
captions say what the numbers show now, never what they should.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..engine import JobManager, TrainConfig
from ..engine.experiment import Experiment
from ..engine.setup import steps_per_epoch
from ..methods.lottery import LOTTERY, lottery_hook
from ..methods.n_m import N_M, n_m_hook
from ..methods.prune import PRUNE, prune_hook
from ..palette import OKABE_ITO
from ..prune.lottery import check_fraction
from ..prune.n_m import check_n_m, n_m_sparsity
from ..figures.lottery import mask_overlap as mask_overlap_chart, ticket_accuracy
from ..figures.n_m import n_m_pattern, sparsity_comparison
from .compression_configs import fine_tune_config
from .runs import as_run_view, last_eval

DENSE = "dense"
LOTTERY_DENSE_COLOUR = OKABE_ITO["blue"]  # the dense network, as the dense line of the charts


def ticket_name(round_: int) -> str:
    return f"ticket {round_}"


def control_name(round_: int) -> str:
    return f"re-init {round_}"


def base_config(dataset: str, runs_root: str, *, data_root: str | None = None, model: str = "lenet300",
                epochs: int = 8, lr: float = 0.05, momentum: float = 0.9, batch_size: int = 64, seed: int = 0,
                train_subset: int | None = None, evals: int = 12, pace_s: float | None = None) -> TrainConfig:
    """The config every round trains with (SGD; open_lth trains LeNet-300-100 at lr 0.1 without
    momentum for 40 epochs, a lab wants minutes), about ``evals`` evaluations per run so the
    mask-overlap chart moves while a round trains."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive whole number, got {epochs!r}")
    config = TrainConfig(dataset=dataset, data_root=data_root, model=model, epochs=epochs, lr=float(lr), momentum=float(momentum),
                         batch_size=batch_size, seed=int(seed), train_subset=train_subset, runs_root=str(runs_root),
                         pace_s=pace_s, name=f"lottery-{model}-{dataset}")
    steps = epochs * steps_per_epoch(config)
    return replace(config, eval_every=max(1, steps // evals), snapshot_every=max(1, steps // evals)).validate()


@dataclass(frozen=True)
class LotteryPlan:
    """The runs of one ticket search: round 0, the tickets of rounds 1..``rounds``, and the controls."""

    base: TrainConfig
    rounds: int
    prune_fraction: float = 0.2
    rewind_step: int = 0
    control_rounds: tuple[int, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # output_fraction, scope, reinit_seed

    def names(self) -> list[tuple[str, str | None]]:
        """(run name, the run it waits for) in start order."""
        out: list[tuple[str, str | None]] = [(DENSE, None)]
        for r in range(1, self.rounds + 1):
            before = DENSE if r == 1 else ticket_name(r - 1)
            out.append((ticket_name(r), before))
            if r in self.control_rounds:
                out.append((control_name(r), before))
        return out

    def config(self, name: str, init_from: str | None = None) -> TrainConfig:
        """The config of run ``name``; every round after 0 starts from ``init_from`` (its predecessor)."""
        reinit = name.startswith("re-init")
        hook = lottery_hook(self.prune_fraction, self.rewind_step, reinit, **self.options)
        return replace(self.base, hooks=[hook], init_from=init_from, name=f"{self.base.name}-{name.replace(' ', '')}")


def lottery_plan(base: TrainConfig, rounds: int = 4, prune_fraction: float = 0.2, rewind_step: int = 0,
                 control_rounds: Sequence[int] | None = None, **options: Any) -> LotteryPlan:
    """A checked plan (a bad value is a ``ValueError`` naming it); ``control_rounds`` default: every round."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 30:
        raise ValueError(f"rounds must be a whole number from 1 to 30, got {rounds!r}")
    check_fraction(prune_fraction, "prune fraction")
    controls = tuple(range(1, rounds + 1)) if control_rounds is None else tuple(sorted(set(control_rounds)))
    bad = [r for r in controls if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= rounds]
    if bad:
        raise ValueError(f"control rounds must be between 1 and {rounds}, got {bad}")
    steps = base.epochs * steps_per_epoch(base)
    steps = min(steps, base.max_steps) if base.max_steps is not None else steps
    if isinstance(rewind_step, bool) or not isinstance(rewind_step, int) or not 0 <= rewind_step < steps:
        raise ValueError(f"the rewind step k must be a whole number from 0 to {steps - 1} (a round trains {steps} "
                         f"steps), got {rewind_step!r}")
    plan = LotteryPlan(base, rounds, float(prune_fraction), rewind_step, controls, dict(options))
    plan.config(ticket_name(1), "pending").validate()
    return plan


class PlannedExperiment(Experiment):
    """An ``Experiment`` that keeps the plan it runs (the UIs read names and settings from it)."""

    def __init__(self, plan: Any, manager: JobManager | None = None, title: str = "") -> None:
        super().__init__(manager, title)
        self.plan = plan


def lottery_experiment(plan: LotteryPlan, manager: JobManager | None = None, title: str = "") -> PlannedExperiment:
    """Start ``plan``: round 0 now, each later run once its predecessor has finished."""
    experiment = PlannedExperiment(plan, manager, title)
    try:
        for name, after in plan.names():
            if after is None:
                experiment.start(name, plan.config(name))
            else:
                experiment.then(name, after, lambda jobs, n=name, a=after: plan.config(n, str(jobs[a].path)))
    except BaseException:
        experiment.stop()
        raise
    return experiment


@dataclass(frozen=True)
class RoundRow:
    """One round: share of weights kept, latest test accuracy of the ticket and of the control."""

    round: int
    kept: float | None
    ticket: float | None
    control: float | None


def _views(runs: Mapping[str, Any]) -> dict[str, Any]:
    views = {}
    for name, run in runs.items():
        view = as_run_view(run, name)
        view.refresh()
        views[name] = view
    return views


def lottery_results(plan: LotteryPlan, runs: Mapping[str, Any]) -> tuple[float | None, list[RoundRow]]:
    """(dense accuracy, one row per round) from ``{run name: job, view or folder}`` (missing: not started)."""
    views = _views(runs)
    acc = {n: last_eval(v.evals, "test_acc") for n, v in views.items()}
    rows = []
    for r in range(1, plan.rounds + 1):
        view = views.get(ticket_name(r))
        sparsity = last_eval(view.evals, LOTTERY.metric_key(view.config, "sparsity")) if view is not None else None
        rows.append(RoundRow(r, None if sparsity is None else 1.0 - sparsity, acc.get(ticket_name(r)),
                             acc.get(control_name(r))))
    return acc.get(DENSE), rows


def overlap_series(runs: Mapping[str, Any]) -> dict[str, tuple[list[float], list[float]]]:
    """``{run name: (epochs, candidate-mask Jaccard)}`` of every run that has reported one."""
    out = {}
    for name, view in _views(runs).items():
        if any(h.get("name") == LOTTERY.name for h in view.config.hooks):
            x, y = view.eval_series(LOTTERY.metric_key(view.config, "candidate_overlap"))
            if x:
                out[name] = (x, y)
    return out


def lottery_caption(dense: float | None, rows: Sequence[RoundRow]) -> str:
    """What the accuracies show now: the sparsest measured ticket against dense and its control."""
    measured = [r for r in rows if r.ticket is not None and r.kept is not None]
    if dense is None:
        return "Round 0 trains the dense network; the rounds of pruning follow it."
    if not measured:
        return f"Dense: {dense:.2%}. Round 1 prunes it and rewinds the survivors."
    last = measured[-1]
    text = (f"With {last.kept:.1%} of the weights the ticket reaches {last.ticket:.2%}, "
            f"{100 * (last.ticket - dense):+.2f} points from dense ({dense:.2%}).")
    paired = [r for r in measured if r.control is not None]
    if paired:
        p = paired[-1]
        text += (f" At {p.kept:.1%} kept the random re-initialisation reaches {p.control:.2%}: the ticket is "
                 f"{100 * (p.ticket - p.control):+.2f} points {'ahead' if p.ticket >= p.control else 'behind'}.")
    return text


# ---- N:M against unstructured --------------------------------------------------------------------
NM_RUN, UNSTRUCTURED_RUN = "N:M", "unstructured"


@dataclass(frozen=True)
class NMPlan:
    """A dense run, then the N:M and the unstructured fine-tunes from it at sparsity 1 - N/M."""

    base: TrainConfig
    n: int
    m: int
    schedule: str = "one-shot"
    fine_tune_epochs: int = 2
    lr: float = 0.01

    @property
    def sparsity(self) -> float:
        return n_m_sparsity(self.n, self.m)

    def names(self) -> list[tuple[str, str | None]]:
        """(run name, the run it waits for) in start order."""
        return [(DENSE, None), (NM_RUN, DENSE), (UNSTRUCTURED_RUN, DENSE)]

    def config(self, name: str, dense: Any = None) -> TrainConfig:
        if name == DENSE:
            return replace(self.base, name=f"{self.base.name}-dense")
        hook = (n_m_hook(self.n, self.m, self.schedule) if name == NM_RUN
                else prune_hook(self.sparsity, "layer", "one-shot" if self.schedule == "one-shot" else "agp"))
        return fine_tune_config(dense, hook, self.fine_tune_epochs, self.lr, evals=8, snapshots=8,
                                name=f"{self.base.name}-{name.replace(':', '').replace(' ', '')}")


def n_m_plan(base: TrainConfig, n: int = 2, m: int = 4, schedule: str = "one-shot", fine_tune_epochs: int = 2,
             lr: float = 0.01) -> NMPlan:
    """A checked N:M plan (a bad value is a ``ValueError`` naming it)."""
    n, m = check_n_m(n, m)
    n_m_hook(n, m, schedule)
    if isinstance(fine_tune_epochs, bool) or not isinstance(fine_tune_epochs, int) or fine_tune_epochs < 1:
        raise ValueError(f"fine-tune epochs must be a positive whole number, got {fine_tune_epochs!r}")
    return NMPlan(base.validate(), n, m, schedule, fine_tune_epochs, float(lr))


def n_m_experiment(plan: NMPlan, manager: JobManager | None = None, title: str = "") -> PlannedExperiment:
    """Start the dense run now; both fine-tunes once it has finished, from its weights."""
    experiment = PlannedExperiment(plan, manager, title)
    try:
        experiment.start(DENSE, plan.config(DENSE))
        for name in (NM_RUN, UNSTRUCTURED_RUN):
            experiment.then(name, DENSE, lambda jobs, n=name: plan.config(n, jobs[DENSE]))
    except BaseException:
        experiment.stop()
        raise
    return experiment


@dataclass(frozen=True)
class NMRow:
    label: str
    accuracy: float | None
    sparsity: float | None


def n_m_results(plan: NMPlan, runs: Mapping[str, Any]) -> list[NMRow]:
    """Dense, N:M and unstructured: latest test accuracy and sparsity reached (None: not yet)."""
    views = _views(runs)
    rows = []
    for name, spec in ((DENSE, None), (NM_RUN, N_M), (UNSTRUCTURED_RUN, PRUNE)):
        view = views.get(name)
        acc = last_eval(view.evals, "test_acc") if view is not None else None
        sparsity = 0.0 if spec is None else (last_eval(view.evals, spec.metric_key(view.config, "sparsity"))
                                             if view is not None else None)
        label = f"{plan.n}:{plan.m}" if name == NM_RUN else (f"unstructured {plan.sparsity:.0%}"
                                                              if name == UNSTRUCTURED_RUN else DENSE)
        rows.append(NMRow(label, acc, sparsity))
    return rows


def n_m_caption(rows: Sequence[NMRow]) -> str:
    dense, pattern, free = rows
    if pattern.accuracy is None or free.accuracy is None:
        return "The dense run trains first; then the N:M and unstructured fine-tunes start from its weights."
    gap = 100 * (pattern.accuracy - free.accuracy)
    return (f"{pattern.label} reaches {pattern.accuracy:.2%}, unstructured pruning at the same sparsity "
            f"{free.accuracy:.2%} ({gap:+.2f} points for the pattern)"
            + (f"; dense {dense.accuracy:.2%}." if dense.accuracy is not None else "."))


# ---- what both UIs draw ----------------------------------------------------------------------------
def lottery_charts(plan: LotteryPlan, runs: Mapping[str, Any]):
    """(accuracy per round figure, live mask-overlap figure, caption) of a ticket search's runs so far."""
    dense, rows = lottery_results(plan, runs)
    accuracy = ticket_accuracy([r.kept for r in rows if r.kept is not None],
                               [r.ticket for r in rows if r.kept is not None],
                               [r.control for r in rows if r.kept is not None], dense,
                               colours={"ticket": LOTTERY.colour})
    return accuracy, mask_overlap_chart(overlap_series(runs)), lottery_caption(dense, rows)


def n_m_charts(plan: NMPlan, runs: Mapping[str, Any]):
    """(N:M vs unstructured figure, the pattern of the N:M run's first layer or None, caption)."""
    rows = n_m_results(plan, runs)
    colours = [LOTTERY_DENSE_COLOUR, N_M.colour, PRUNE.colour]
    comparison = sparsity_comparison([r.label for r in rows], [r.accuracy for r in rows],
                                     [r.sparsity for r in rows], colours)
    pattern = None
    view = _views({NM_RUN: runs[NM_RUN]})[NM_RUN] if NM_RUN in runs else None
    if view is not None and view.snapshots:
        snap = view.read(N_M)
        if snap.layers:
            weights, mask = snap.block(snap.layers[0])
            pattern = n_m_pattern(weights, mask, snap.n_now, snap.m, snap.layers[0])
    return comparison, pattern, n_m_caption(rows)
