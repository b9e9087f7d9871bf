"""Every lab notebook runs top to bottom in a real kernel (nbclient), fast enough for CI.

Every notebook ``labs/build.py`` builds (one per ``labs/src/NN_topic.py``) is picked up automatically;
``test_build.py`` checks that the committed notebooks are what their sources build. Notebooks run in a
temporary working directory with ``KDVIZ_RUNS`` pointing to a temporary runs folder (shared by the labs
of one session, so lab 2 reuses lab 1's teacher as a student would) and ``KDVIZ_LAB_EPOCHS`` shortening
training. A cell that hangs (a live widget that blocks, say) fails the test at the per-cell timeout.

The kernel is killed as soon as the last cell has run (``shutdown_kernel="immediate"``): the outputs are
in by then, and a graceful shutdown cost every notebook 3-6 s (measured on the 2-core VM: the kernel's
exit, IPython's atexit ``gc.collect()`` beside a widget poller, outlasted jupyter_client's 2.5 s grace;
the SIGTERM that follows is turned into a ``KeyboardInterrupt`` by ``kdviz.engine.shutdown``, so most
kernels waited for the SIGKILL at 5 s). Each phase is timed (kernel start, every cell, shutdown); a
notebook slower than ``SLOW_NOTEBOOK_S`` warns with the breakdown, so a stall in CI names its phase.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from pathlib import Path

import pytest
from _labs_build import LABS, load_build

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = [LABS / f"{source.stem}.ipynb" for source in load_build().lab_sources(LABS)]
CELL_TIMEOUT_S = 120
LAB_EPOCHS = "2"
SLOW_NOTEBOOK_S = 60  # a notebook slower than this warns with its phases


class PhaseClock:
    """Seconds spent in each phase of a notebook's run: ``mark(name)`` ends the phase named ``name``."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.phases.append((name, now - self.last))
        self.last = now

    @property
    def total(self) -> float:
        return self.last - self.start

    def report(self) -> str:
        """The phases, slowest first (the five slowest), e.g. "cell 6 3.1 s, kernel start 1.2 s"."""
        slowest = sorted(self.phases, key=lambda phase: -phase[1])[:5]
        return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in slowest) or "no phase ended"


@pytest.fixture(scope="session")
def lab_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-runs")


def test_there_are_labs():
    assert [p.name for p in NOTEBOOKS][:2] == ["01_soft_targets.ipynb", "02_distill_a_student.ipynb"]
    assert all(p.is_file() for p in NOTEBOOKS), "run python labs/build.py"


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, lab_runs: Path, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(path, workdir / path.name)
    monkeypatch.setenv("KDVIZ_RUNS", str(lab_runs))
    monkeypatch.setenv("KDVIZ_LAB_EPOCHS", LAB_EPOCHS)
    nb = nbformat.read(workdir / path.name, as_version=4)
    phases = PhaseClock()
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
        startup_timeout=120, shutdown_kernel="immediate",
        on_notebook_start=lambda **_: phases.mark("kernel start"),
        on_cell_executed=lambda cell_index, **_: phases.mark(f"cell {cell_index}"),
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the message holds the cell and traceback
        pytest.fail(f"{path.name} failed after {phases.report()}:\n{exc}")
    phases.mark("kernel shutdown")
    if phases.total > SLOW_NOTEBOOK_S:
        warnings.warn(f"{path.name} took {phases.total:.0f} s: {phases.report()}", stacklevel=1)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    # Every code cell ran and the run folders went to KDVIZ_RUNS, not the working directory.
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
    assert not (workdir / "runs").exists()
    assert any(lab_runs.iterdir())
    widget_views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_views, f"{path.name} shows no widget"
    if os.environ.get("KDVIZ_KEEP_EXECUTED"):
        nbformat.write(nb, Path(os.environ["KDVIZ_KEEP_EXECUTED"]) / path.name)
