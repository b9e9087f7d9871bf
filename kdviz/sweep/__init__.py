"""Sweeps on Ray Tune: many ordinary kdviz runs over a grid or random draws of config values.

A presentation-level package above the engine, like ``kdviz.reproduce``: ``spec`` plans the trials
(``SweepSpec``, ``plan_trials``), ``trainable`` is Tune's function trainable (one trial = one kdviz run
folder, each evaluation reported to Tune so ASHA can stop it), ``runner`` connects to Ray and runs the
Tuner in a background thread (``start_sweep``, ``run_sweep``), ``record`` is ``sweep.json``, ``cli`` the
``kdviz sweep`` command. Ray is an optional extra (``pip install 'kdviz[sweep]'``): this package
imports without it, and ``require_ray`` raises ``SweepUnavailable`` with that command.
"""
from .record import SweepRecord, TrialRecord, load_sweep, saved_sweeps
from .runner import (
    INSTALL_COMMAND, INSTALL_MESSAGE, Sweeping, SweepUnavailable, connect_ray, ray_available, require_ray, run_sweep,
    shutdown_ray, start_sweep,
)
from .spec import METRIC, AshaOptions, PlannedTrial, SweepSpec, parse_assignment, parse_setting, parse_values, plan_trials

__all__ = [
    "INSTALL_COMMAND", "INSTALL_MESSAGE", "METRIC", "AshaOptions", "PlannedTrial", "SweepRecord", "SweepSpec",
    "SweepUnavailable", "Sweeping", "TrialRecord", "connect_ray", "load_sweep", "parse_assignment", "parse_setting",
    "parse_values", "plan_trials", "ray_available", "require_ray", "run_sweep", "saved_sweeps", "shutdown_ray",
    "start_sweep",
]
