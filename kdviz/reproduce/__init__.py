"""Reproductions of the papers' tables: one module per paper experiment, a registry, a runner.

``REPRODUCTIONS.names()`` lists them; ``run_reproduction(name, seeds, quick)`` trains one through
the engine and writes ``<runs root>/reproductions/<name>-<time>/result.json`` (reopen it with
``load_result``). This package sits at the presentation level: it may use the engine, the methods
and the figures; only the CLI and the UIs import it.
"""
from . import binary, dark_knowledge, deep_compression, fsp, han_pruning, hinton_mnist  # noqa: F401  (each registers its reproductions)
from .base import REPRODUCTIONS, FinishedRun, PaperNumber, PlannedRun, Reproduction, Row, sample_std, seed_list
from .runner import (
    RESULT_FILE, Reproducing, ReproductionResult, load_result, run_plan, run_reproduction, start_reproduction, with_device,
    write_result,
)
from .table import table_lines

__all__ = ["REPRODUCTIONS", "RESULT_FILE", "FinishedRun", "PaperNumber", "PlannedRun", "Reproducing", "Reproduction",
           "ReproductionResult", "Row", "load_result", "run_plan", "run_reproduction", "sample_std", "seed_list",
           "start_reproduction", "table_lines", "with_device", "write_result"]
