"""A sweep's plan: which ``TrainConfig`` fields vary, over which values, on which seeds.

``SweepSpec`` holds a base config (the fields every trial shares), a **grid** (every combination of
the listed values) and/or **random** fields (``samples`` draws, each a value from a list or a number
from a ``lo..hi`` range), the seeds, how many trials run at once, the CPUs per trial and optional ASHA
early stopping (Li et al. 2020, "A System for Massively Parallel Hyperparameter Tuning", MLSys: stop a
trial at a rung when its metric is below the top 1/reduction_factor of the trials that reached it).

``plan_trials(spec)`` expands the spec into the list of trials *before* Ray starts (random values are
drawn here, from ``sample_seed``), and validates every trial's config, so a bad value is a
``ValueError`` naming the trial and the field, never a failed Ray trial minutes later; and a page can
draw every cell of the heatmap before the first trial reports.
"""
from __future__ import annotations

import itertools
import json
import os
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..engine import TrainConfig

METRIC = "test_acc"  # what ASHA compares and the heatmap shows: the student's test accuracy
RANGE_SEPARATOR = ".."
PATH_FIELDS = ("teacher", "init_from", "data_root")
NOT_SWEEPABLE = {"seed", "runs_root", "name"}  # seeds have their own option; the sweep owns folder and name


@dataclass
class AshaOptions:
    """ASHA early stopping on ``test_acc`` at each evaluation (Tune's ``ASHAScheduler``, time in
    evaluations): no trial stops before ``grace_period`` evaluations; at each rung only the top
    1/``reduction_factor`` of the trials that reached it go on."""

    grace_period: int = 1
    reduction_factor: float = 2.0

    def validate(self) -> "AshaOptions":
        if isinstance(self.grace_period, bool) or not isinstance(self.grace_period, int) or self.grace_period < 1:
            raise ValueError(f"ASHA grace period must be a whole number of evaluations >= 1, got {self.grace_period!r}")
        if isinstance(self.reduction_factor, bool) or not isinstance(self.reduction_factor, (int, float)) \
                or self.reduction_factor <= 1:
            raise ValueError(f"ASHA reduction factor must be a number > 1, got {self.reduction_factor!r}")
        return self


@dataclass
class SweepSpec:
    """Everything that decides a sweep's trials and how Ray schedules them (JSON-serialisable)."""

    base: dict = field(default_factory=dict)  # TrainConfig fields every trial shares
    grid: dict = field(default_factory=dict)  # field -> list of values, all combinations
    random: dict = field(default_factory=dict)  # field -> list of values, or [lo, hi] with "range": see parse
    samples: int = 0  # random draws (0: no random fields)
    seeds: list = field(default_factory=lambda: [0])
    trials_at_once: int = 2
    cpus_per_trial: float = 1.0
    asha: AshaOptions | None = None
    sample_seed: int = 0  # the random draws' generator seed, so a random sweep can be planned again
    name: str = "sweep"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown sweep option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        data = dict(data)
        if isinstance(data.get("asha"), dict):
            data["asha"] = AshaOptions(**data["asha"])
        return cls(**data)

    def swept_fields(self) -> list[str]:
        """The fields that vary between trials, grid first, then random, then ``seed`` if several."""
        names = [*self.grid, *self.random]
        return names + (["seed"] if len(self.seeds) > 1 else [])

    def validate(self) -> "SweepSpec":
        """Check the options (each trial's config is checked by ``plan_trials``); returns self."""
        _check_whole("trials at once", self.trials_at_once, 1)
        if isinstance(self.cpus_per_trial, bool) or not isinstance(self.cpus_per_trial, (int, float)) \
                or self.cpus_per_trial <= 0:
            raise ValueError(f"CPUs per trial must be a number > 0, got {self.cpus_per_trial!r}")
        if not self.seeds or not isinstance(self.seeds, list):
            raise ValueError("a sweep needs at least one seed")
        for seed in self.seeds:
            _check_whole("seed", seed, 0)
        known = {f.name for f in fields(TrainConfig)}
        for kind, values in (("grid", self.grid), ("random", self.random)):
            for name, choices in values.items():
                if name in NOT_SWEEPABLE:
                    raise ValueError(f"{name!r} cannot be a {kind} field: "
                                     + ("use the seeds option" if name == "seed" else "the sweep sets it"))
                if name not in known:
                    raise ValueError(f"{kind} field {name!r} is not a TrainConfig field (known: {', '.join(sorted(known))})")
                if not isinstance(choices, (list, tuple)) or not choices:
                    raise ValueError(f"{kind} field {name!r} needs at least one value")
        both = sorted(set(self.grid) & set(self.random))
        if both:
            raise ValueError(f"field(s) {', '.join(both)} are both grid and random fields; choose one")
        if self.random and self.samples < 1:
            raise ValueError("random fields need a number of samples >= 1")
        _check_whole("samples", self.samples, 0)
        if self.asha is not None:
            self.asha.validate()
        return self


@dataclass(frozen=True)
class PlannedTrial:
    """One trial: its key (the swept values in words), its swept values and its full config dict."""

    key: str
    values: dict
    config: dict

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": dict(self.values), "config": dict(self.config)}


def plan_trials(spec: SweepSpec, runs_root: str | None = None) -> list[PlannedTrial]:
    """Every trial of ``spec``, in the order Ray is given them, each config validated.

    Random fields are drawn once per sample (``random.Random(sample_seed)``); each sample is crossed
    with the grid, each combination with the seeds."""
    spec.validate()
    rng = random.Random(spec.sample_seed)
    samples = [{name: _draw(rng, choices) for name, choices in spec.random.items()} for _ in range(max(1, spec.samples))]
    grid_names = list(spec.grid)
    combos = list(itertools.product(*(spec.grid[name] for name in grid_names)))
    planned, seen = [], set()
    for drawn in samples:
        for combo in combos:
            for seed in spec.seeds:
                values = {**dict(zip(grid_names, combo)), **drawn, "seed": seed}
                key = trial_key(values)
                if key in seen:
                    continue  # two random draws that came out equal: one trial
                seen.add(key)
                planned.append(PlannedTrial(key, values, _trial_config(spec, values, key, runs_root)))
    return planned


def trial_key(values: dict[str, Any]) -> str:
    """``"T=4, alpha=0.9, seed=0"``: the swept values in words (the trial's name in tables)."""
    return ", ".join(f"{name}={_short(value)}" for name, value in values.items())


def _trial_config(spec: SweepSpec, values: dict[str, Any], key: str, runs_root: str | None) -> dict[str, Any]:
    data = {**spec.base, **values}
    data["name"] = f"{spec.name} {key}"
    for name in PATH_FIELDS:  # a trial runs in a Ray worker, maybe elsewhere: no path relative to here
        if isinstance(data.get(name), str) and data[name]:
            data[name] = os.path.abspath(os.path.expanduser(data[name]))
    if runs_root is not None:
        data["runs_root"] = str(runs_root)
    try:
        config = TrainConfig.from_dict(data).validate()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trial {key}: {exc}") from None
    return config.to_dict()


def _draw(rng: random.Random, choices: list) -> Any:
    """A value from a list, or a number from a range ``{"range": [lo, hi]}`` (whole numbers when both are)."""
    if len(choices) == 1 and isinstance(choices[0], dict) and set(choices[0]) == {"range"}:
        lo, hi = choices[0]["range"]
        if isinstance(lo, int) and isinstance(hi, int):
            return rng.randint(lo, hi)
        return round(rng.uniform(float(lo), float(hi)), 6)
    return rng.choice(list(choices))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _check_whole(what: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be a whole number >= {low}, got {value!r}")


# ---- values typed on a command line or in a text box ---------------------------------------------
def parse_values(field_name: str, text: str) -> list[Any]:
    """``"1,2,4"`` -> ``[1.0, 2.0, 4.0]`` for a float field; a JSON list (``'[{"hidden": [8]}, ...]'``)
    for values that contain commas; ``"0.01..0.1"`` -> ``[{"range": [0.01, 0.1]}]`` (random fields).
    Each value is typed as the field's default is (an int typed for a float field becomes a float)."""
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    if field_name not in kinds:
        raise ValueError(f"{field_name!r} is not a TrainConfig field (known: {', '.join(sorted(kinds))})")
    text = text.strip()
    if not text:
        raise ValueError(f"{field_name}: no values given")
    if text.startswith("["):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{field_name}: the values are not a JSON list: {exc}") from None
    elif _is_range(text):
        bounds = [_typed(kinds[field_name], json.loads(part)) for part in text.split(RANGE_SEPARATOR)]
        if bounds[0] > bounds[1]:
            raise ValueError(f"{field_name}: a range is lo..hi with lo <= hi, got {text!r}")
        return [{"range": bounds}]
    else:
        raw = [_json_or_text(part.strip()) for part in text.split(",") if part.strip()]
    return [_typed(kinds[field_name], value) for value in raw]


def parse_assignment(text: str) -> tuple[str, list[Any]]:
    """``"T=1,2,4"`` -> ``("T", [1.0, 2.0, 4.0])`` (see ``parse_values``)."""
    name, sep, values = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected FIELD=VALUES (e.g. T=1,2,4), got {text!r}")
    return name.strip(), parse_values(name.strip(), values)


def parse_setting(text: str) -> tuple[str, Any]:
    """``"model=mlp"`` -> ``("model", "mlp")``: one base-config value (``--set``)."""
    name, values = parse_assignment(text)
    if len(values) != 1:
        raise ValueError(f"--set takes one value per field, got {len(values)} for {name} (use --grid to sweep it)")
    return name, values[0]


def _is_range(text: str) -> bool:
    """``"0.01..0.1"``: two numbers around ``..`` (a path such as ``../runs/x`` is not a range)."""
    parts = text.split(RANGE_SEPARATOR)
    return len(parts) == 2 and all(_is_number(_json_or_text(p.strip())) for p in parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_or_text(part: str) -> Any:
    try:
        return json.loads(part)
    except json.JSONDecodeError:
        return part


def _typed(annotation: Any, value: Any) -> Any:
    """An int typed for a float field becomes a float (``T=4`` is 4.0); other values stay as parsed."""
    text = str(annotation)
    if text.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if text.startswith("str") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value
