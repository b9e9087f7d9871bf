"""The attention-transfer experiment: its defaults, its two students' configs and its accuracy caption.

Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017), eq. 2: the AT student
minimises cross-entropy plus beta/2 * sum_j || Q_S^j/||Q_S^j|| - Q_T^j/||Q_T^j|| ||_2 (beta as
``kdviz.distill.attention`` defines it: the paper's per-sample distance, averaged over the batch);
the scratch student is the same ResNet-8 with the same seed, data, batches and learning-rate
schedule, trained on the labels alone (the paper's baseline, section 4). Both UIs start the pair
from ``attention_student_configs``, so the AT student differs from the scratch one only in the AT term.

``ATTENTION_DEFAULTS`` were measured on digits (issue 14, "the story must hold"; the numbers per
seed are in ``tests/present/test_attention_defaults_at_wins.py``). A constant learning rate left
both students swinging to the last step (AT won 2 of 3 seeds), so both anneal it to zero with a
cosine schedule (Loshchilov & Hutter 2017, eq. 5), as the page's teacher does. With that schedule
and all 1,347 training images the scratch ResNet-8 reaches 95-97 % and AT led on at most 3 of 5
seeds (beta 1 to 10, 3 to 15 epochs, lr 0.05 or 0.02); the teacher's maps pay off when labels are
few: on 100 labelled images (10 per class) at beta 2 the AT student led on 5 of 5 seeds, by 2.9
to 7.3 points after 40 epochs (80 steps, a few seconds), by 1.8 to 6.0 after 60.

``accuracy_caption`` says who leads and by how much, from the runs' last evaluations, and when the
scratch student matches or wins, the likely reasons read from the settings and the numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..engine import TrainConfig
from ..methods.attention import NAME as AT_HOOK, attention_configs
from .story import LEVEL_POINTS, points

TEACHER_BLOCKS, TEACHER_CHANNELS = (3, 3, 3), (8, 16, 32)  # ResNet-20, shared with the FSP page's teacher
STUDENT_BLOCKS = (1, 1, 1)  # ResNet-8
STUDENT_CHANNELS = {"4-8-16 (half the teacher's)": (4, 8, 16), "8-16-32 (the teacher's)": (8, 16, 32)}
# Labelled training images each student sees (class-balanced per seed; None: the whole training set).
TRAIN_SIZES = {"100 (10 per class)": 100, "200 (20 per class)": 200, "500 (50 per class)": 500, "all": None}
MAX_EVALS_PER_RUN = 60  # a long run evaluates (and snapshots) less often than EVALS_PER_EPOCH
EVALS_PER_EPOCH = 4
EVAL_TRAIN_SAMPLES = 500  # training accuracy is measured on this many fixed training images
HEAVY_BETA = 5.0  # from here on the attention term outweighed cross-entropy on digits (AT fell below scratch)
SMALL_TEACHER_EDGE_POINTS = 1.0  # a teacher this close to the scratch student has little to pass on
MANY_LABELS = 100  # with more labelled images than this the scratch student caught up on some seeds (digits)
DISTANCE_DROP = 0.2  # the AT student "copied the maps" when its probe distance fell by this fraction


@dataclass(frozen=True)
class AttentionDefaults:
    """The page's opening settings: the student's channels (a ``STUDENT_CHANNELS`` key), beta, epochs,
    learning rate (SGD, momentum 0.9), labelled training images (a ``TRAIN_SIZES`` key), seed and the
    learning-rate schedule both students share."""

    channels: str
    beta: float
    epochs: int
    lr: float
    train_size: str
    seed: int = 0
    lr_schedule: str = "cosine"


ATTENTION_DEFAULTS = AttentionDefaults(channels=next(iter(STUDENT_CHANNELS)), beta=2.0, epochs=40, lr=0.05,
                                       train_size=next(iter(TRAIN_SIZES)))


def evals_per_epoch(epochs: int) -> int:
    """Evaluations (and snapshots) per epoch: ``EVALS_PER_EPOCH``, fewer on a long run (at least one)."""
    return max(1, min(EVALS_PER_EPOCH, MAX_EVALS_PER_RUN // max(1, int(epochs))))


def attention_student_configs(*, teacher: str, dataset: str, channels: str, beta: float, epochs: int, lr: float,
                              train_size: str, seed: int, runs_root: str, data_root: str | None = None,
                              lr_schedule: str = ATTENTION_DEFAULTS.lr_schedule) -> dict[str, TrainConfig]:
    """The AT and scratch students' validated configs by job name (raises ``ValueError`` for a bad setting).

    Both are ResNet-8 with ``STUDENT_CHANNELS[channels]`` and share every field but the AT term
    (``kdviz.methods.attention.attention_configs`` adds it to one and drops the teacher from the other)."""
    if channels not in STUDENT_CHANNELS:
        raise ValueError(f"unknown student channels {channels!r}; choose one of {list(STUDENT_CHANNELS)}")
    if train_size not in TRAIN_SIZES:
        raise ValueError(f"unknown training-set size {train_size!r}; choose one of {list(TRAIN_SIZES)}")
    base = TrainConfig(
        dataset=dataset, data_root=data_root, model="resnet", teacher=str(teacher),
        model_options={"blocks_per_stage": list(STUDENT_BLOCKS), "channels": list(STUDENT_CHANNELS[channels])},
        epochs=int(epochs), lr=float(lr), lr_schedule=lr_schedule, seed=int(seed),
        train_subset=TRAIN_SIZES[train_size], eval_train_samples=EVAL_TRAIN_SAMPLES, runs_root=str(runs_root))
    return attention_configs(base, beta=float(beta), evals_per_epoch=evals_per_epoch(epochs))


@dataclass(frozen=True)
class AttentionRace:
    """What the two students were trained with, as the caption's reasons need it: beta, the schedule,
    whether the student is as wide as the teacher, the labelled training images (None: all), and the
    AT student's mean probe distance to the teacher's maps at its first and latest evaluation (None
    when unknown)."""

    beta: float
    lr_schedule: str = "cosine"
    same_width: bool = False
    train_size: int | None = None
    first_distance: float | None = None
    last_distance: float | None = None


def race_of(config: TrainConfig, distances: dict[str, list[float]] | None = None) -> AttentionRace:
    """The ``AttentionRace`` of an AT student's ``config`` and its probe distances per layer pair
    ({pair: [distance per evaluation]}, as ``kdviz.figures.attention.distance_series`` gives them)."""
    hooks = [h for h in (config.hooks or []) if h.get("name") == AT_HOOK]
    beta = float(hooks[0].get("beta", ATTENTION_DEFAULTS.beta)) if hooks else 0.0
    series = [d for d in (distances or {}).values() if d]
    first, last = ((sum(d[i] for d in series) / len(series) for i in (0, -1)) if series else (None, None))
    return AttentionRace(beta=beta, lr_schedule=config.lr_schedule,
                         same_width=list(config.model_options.get("channels", [])) == list(TEACHER_CHANNELS),
                         train_size=config.train_subset,
                         first_distance=first, last_distance=last)


def maps_caption(step: int, race: AttentionRace) -> str:
    """The attention maps' caption at snapshot ``step``: what the maps are, and whether the AT student's
    maps have moved towards the teacher's so far (its mean probe distance, first to latest evaluation)."""
    head = (f"Step {step}. Each map is Q/‖Q‖₂ of one fixed test image, so teacher and student share one colour "
            "scale.")
    first, last = race.first_distance, race.last_distance
    if not (_known(first) and _known(last)) or first <= 0:
        return head + " Watch whether the student's bright spots move to the teacher's."
    moved = f"(mean distance over the pairs {first:.2f} → {last:.2f})"
    if last <= (1 - DISTANCE_DROP) * first:
        return head + f" The student's bright spots have moved towards the teacher's {moved}."
    return head + f" The student's maps have not moved much towards the teacher's yet {moved}."


def _known(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def scratch_win_reasons(race: AttentionRace, at_acc: float, scratch_acc: float,
                        teacher_acc: float | None = None) -> list[str]:
    """Why the scratch student may have matched or beaten the AT student, most telling first."""
    if race.beta == 0:
        return ["β = 0 turns the attention term off, so the two students train the same way"]
    reasons = []
    if _known(race.first_distance) and _known(race.last_distance) and race.first_distance > 0 \
            and race.last_distance > (1 - DISTANCE_DROP) * race.first_distance:
        reasons.append(f"the AT student's maps barely moved towards the teacher's (distance {race.first_distance:.2f} "
                       f"→ {race.last_distance:.2f}): raise β or train longer")
    if race.beta >= HEAVY_BETA:
        reasons.append(f"β = {race.beta:g} weighs the maps heavily against the labels and can crowd out "
                       "cross-entropy (try 1 to 2)")
    if _known(teacher_acc) and points(teacher_acc - scratch_acc) < SMALL_TEACHER_EDGE_POINTS:
        reasons.append(f"the teacher ({teacher_acc:.1%}) is barely better than the student trained alone, "
                       "so its maps have little to add")
    if race.lr_schedule == "constant":
        reasons.append("the learning rate never decays, so both students still swing at the last step and "
                       "the final numbers are one point on a noisy curve")
    if race.train_size is None or race.train_size > MANY_LABELS:
        many = "the whole training set" if race.train_size is None else f"{race.train_size:,} labelled images"
        reasons.append(f"with {many} the labels alone go far; the teacher's maps matter most when labels are "
                       f"few (try {min(v for v in TRAIN_SIZES.values() if v)} images)")
    if race.same_width:
        reasons.append("the student is as wide as the teacher and learns digits well from the labels alone "
                       "(a thinner student needs the teacher more)")
    return reasons


def accuracy_caption(at_acc: float | None, scratch_acc: float | None, race: AttentionRace, *, finished: bool,
                     teacher_acc: float | None = None, at_label: str = "AT student",
                     scratch_label: str = "scratch student") -> str:
    """The accuracy chart's caption: who leads and by how much (percentage points), from the last
    evaluations; once both runs are finished, who won, and when the scratch student matched or won,
    the likely reasons (``scratch_win_reasons``)."""
    lead = "Test accuracy of both students; the dashed line is the teacher. "
    if not (_known(at_acc) and _known(scratch_acc)):
        return lead + f"Compare the {at_label} with the {scratch_label} once both curves appear."
    gap = points(at_acc - scratch_acc)
    pair = f"({at_acc:.1%} vs {scratch_acc:.1%})" if gap >= 0 else f"({scratch_acc:.1%} vs {at_acc:.1%})"
    if not finished:
        if abs(gap) < LEVEL_POINTS:
            return lead + f"So far the two students are level {pair}."
        return lead + f"So far the {at_label if gap > 0 else scratch_label} leads by {abs(gap):.1f} points {pair}."
    weak = ""
    if _known(teacher_acc) and teacher_acc < max(at_acc, scratch_acc):
        weak = (f" The teacher ({teacher_acc:.1%}) ends below the {at_label if gap >= 0 else scratch_label}: a teacher "
                "this weak has little to pass on (train it longer).")
    if gap >= LEVEL_POINTS:
        return lead + (f"The {at_label} ends {gap:.1f} points above the {scratch_label} {pair}: looking where "
                       "the teacher looks taught it what the labels alone did not." + weak)
    verdict = (f"The two students end level {pair}." if gap > -LEVEL_POINTS else
               f"Here the {scratch_label} wins, {-gap:.1f} points above the {at_label} {pair}.")
    reasons = scratch_win_reasons(race, at_acc, scratch_acc, teacher_acc)
    if not reasons:
        return lead + verdict + " The gap is within seed-to-seed noise; try another seed." + weak
    return lead + verdict + " Likely reasons: " + "; ".join(reasons) + "." + weak


__all__ = [
    "ATTENTION_DEFAULTS", "AttentionDefaults", "AttentionRace", "STUDENT_BLOCKS", "STUDENT_CHANNELS", "TRAIN_SIZES",
    "TEACHER_BLOCKS", "TEACHER_CHANNELS", "accuracy_caption", "attention_student_configs", "evals_per_epoch",
    "maps_caption", "race_of",
    "scratch_win_reasons",
]
