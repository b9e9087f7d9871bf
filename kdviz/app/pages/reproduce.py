"""Reproduce: rebuild a paper's table over seeds and watch it fill in beside the paper's numbers (issue 15).

Pick a reproduction (``kdviz.reproduce.REPRODUCTIONS``: Hinton et al. 2015 on MNIST, Han et al. 2015
pruning), the number of seeds and quick or full, press Start: ``start_reproduction`` starts its runs in
the lab's job manager (a reused teacher first, the students once it has finished) and returns at once;
a thread polls it (``Reproducing.watch``: the students start even while the user is on another page)
and a fragment redraws it every second, so the table (mean ± std over seeds, every seed's value, training
time) and the accuracy chart of the runs fill in live. The result is rewritten to
``<runs root>/reproductions/<name>-<time>/result.json`` after every run, and earlier results reopen
below. The running reproduction is kept in the session (``session.keep_job``): closing the tab stops it,
a reload finds it again. Tables and captions come from ``kdviz.reproduce.present``.

A finished dark-knowledge result (Hinton et al. 2015, section 3: ``hinton-dark-knowledge``,
``hinton-dark-knowledge-78``) also shows its student's per-class test errors before and after the bias
shift, with a bias slider (``kdviz.present.dark_knowledge``: the test logits are read once per run, so a
move only re-counts); the caption's totals are read from the same counts as the bars.
"""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from kdviz import paths
from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import guarded, page_state, status_row
from kdviz.app.errors import user_errors
from kdviz.app.live import folder_view, job_view
from kdviz.app.sidebar import DATASETS, current_settings, load_bundle
from kdviz.app.training_view import run_line
from kdviz.figures.training import accuracy_comparison
from kdviz.figures.per_class import per_class_error_bars
from kdviz.present.dark_knowledge import error_bar_data, errors_with_shift, run_logits, shift_caption
from kdviz.reproduce import REPRODUCTIONS, load_result, start_reproduction
from kdviz.reproduce.dark_knowledge import EXPERIMENTS, SHIFT_GRID, shifted_runs
from kdviz.reproduce.present import (
    COLUMNS, data_problem, failed_runs, result_caption, run_labels, saved_results, settings_caption, table_records,
)

K = {"name": "rp_name", "seeds": "rp_seeds", "mode": "rp_mode", "job": "rp_reproducing", "pick": "rp_pick",
     "opened": "rp_opened"}
QUICK, FULL = "quick", "full"
NAMES = REPRODUCTIONS.names()
DEFAULTS = {K["name"]: NAMES[0], K["seeds"]: 3, K["mode"]: QUICK}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)

st.title("Reproduce the papers")
st.markdown(
    "Does a method do what its paper claims? Pick one of the papers' tables, press **Start**, and watch our "
    "numbers fill in beside the paper's: the **mean ± standard deviation over seeds**, every seed's value and "
    "the training time per run. A single run is not a result: use three seeds or more."
)
session.touch()
settings = current_settings()

c1, c2, c3 = st.columns([4, 2, 2], vertical_alignment="bottom")
c1.selectbox("Reproduction", NAMES, key=K["name"], format_func=lambda name: f"{name}: {REPRODUCTIONS.get(name).title}")
c2.slider("Seeds", 1, 5, key=K["seeds"], help="Each seed trains its own students (seeds 0, 1, ...); a teacher "
          "or baseline is trained once and reused.")
c3.radio("Mode", [QUICK, FULL], key=K["mode"], horizontal=True,
         help="Quick: short runs that show the table's shape in minutes. Full: the settings of the table in the "
              "README (tens of minutes on 2 cores).")
reproduction = REPRODUCTIONS.get(state[K["name"]])
seeds, quick = int(state[K["seeds"]]), state[K["mode"]] == QUICK
st.caption(settings_caption(reproduction.citation, reproduction.settings(quick), quick))


def data_folder() -> tuple[bool, str | None]:
    """(ready, the data folder to train from): the sidebar's dataset must be the reproduction's, and load."""
    needed = reproduction.dataset
    problem = data_problem(needed, DATASETS.get(needed, needed), settings.dataset)
    if problem is not None:
        st.warning(problem, icon=":material/dataset:")
        return False, None
    with user_errors("Dataset"):
        load_bundle(settings)  # the sidebar's folder, checked and confined (a message names the problem)
        root = paths.confine(settings.data_root, "data folder") if settings.data_root else None
        return True, str(root) if root is not None else None
    return False, None


def show_table(result, key: str) -> None:
    """The table beside the paper's numbers, its caption, and any run that did not finish."""
    st.dataframe(pd.DataFrame(table_records(result.rows), columns=list(COLUMNS)), hide_index=True, width="stretch",
                 key=key)
    st.caption(result_caption(result))
    for line in failed_runs(result):
        st.warning(line, icon=":material/block:")


def progress(reproducing) -> None:
    """One status row per planned run: those started, and those waiting for the run they need."""
    for key in reproducing.result.planned:
        job = reproducing.jobs.get(key)
        if job is not None:
            status_row(job, key)
        elif key in reproducing.result.runs:
            st.markdown(f":material/block: **{key}** {reproducing.result.runs[key]['message']}")
        else:
            st.markdown(f":material/hourglass_top: **{key}** waits for the teacher or baseline it starts from.")


def accuracy_chart(lines: list[dict], key: str, caption: str) -> None:
    """Test accuracy of ``lines`` (``run_line``) with at least one evaluation, else a note."""
    lines = [line for line in lines if line["records"]]
    if not lines:
        st.caption("The accuracy chart appears with the first evaluation.")
        return
    # the default title compares the two best runs: between seeds of one row that says nothing
    show_chart(accuracy_comparison(lines, title="Test accuracy of every run of the reproduction"), key, caption=caption)


def live_panel(was_live: bool) -> None:
    """Poll the kept reproduction (its students start once their teacher has finished), then draw its
    table, the runs' states and their accuracy; the whole page reruns once it has ended."""
    session.touch()
    reproducing = session.kept_job(K["job"])
    reproducing.poll()
    if was_live and reproducing.done:
        st.rerun(scope="app")
    result = reproducing.result
    st.subheader(f"{result.name}: {result.title}")
    show_table(result, "rp-live-table")
    progress(reproducing)
    accuracy_chart([run_line(job_view(job, key)) for key, job in reproducing.jobs.items()], "reproduce-live",
                   "Test accuracy of every run of the reproduction, at each evaluation, as they train.")


def bias_section(result, where: str) -> None:
    """Hinton et al.'s bias shift on a finished dark-knowledge student: per-class test errors as
    trained and with the bias of the shifted classes moved by the slider (its logits are read once)."""
    runs = shifted_runs(result)
    if not runs:
        return
    experiment = EXPERIMENTS[result.name]
    shift_key, run_key = f"rp_dk_shift_{experiment.name}", f"rp_dk_run_{where}"
    page_state({shift_key: experiment.paper_shift})
    st.markdown("##### Per-class errors and the bias shift")
    by_label = dict(runs)
    if len(runs) > 1:
        if st.session_state.get(run_key) not in by_label:
            st.session_state[run_key] = runs[0][0]
        st.selectbox("Student", list(by_label), key=run_key)
    path = by_label.get(st.session_state.get(run_key), runs[0][1])
    names = " and ".join(str(c) for c in experiment.shifted)
    st.slider(f"Shift of the bias of {names}", min(SHIFT_GRID), max(SHIFT_GRID), step=0.1, key=shift_key,
              help=f"Added to the final layer's bias of class {names} (a constant on those logits for every test "
                   f"image); the paper's shift is {experiment.paper_shift:+g}. Nothing is retrained.")
    with user_errors("Bias shift"):
        errors = errors_with_shift(run_logits(path), experiment.shifted, float(st.session_state[shift_key]))
        show_chart(per_class_error_bars(**error_bar_data(errors)), f"dark-knowledge-{where}", caption=shift_caption(errors))


ready, data_root = data_folder()
reproducing = session.kept_job(K["job"])
running = reproducing is not None and not reproducing.done
b1, b2, _ = st.columns([2, 1, 3])
if b1.button("Start" if not running else "Running… stop it to start again", type="primary", icon=":material/play_arrow:",
             disabled=not ready or running, width="stretch", key="rp-start"):
    with user_errors("Start"):
        # The lab's one job manager (at most $KDVIZ_MAX_JOBS runs at once, shared with every tab): the
        # runner still trains the teacher before the students, but `kdviz reproduce` uses every core.
        started = start_reproduction(reproduction.name, seeds, quick, runs_root=paths.runs_root(), data_root=data_root,
                                     manager=session.lab_manager())
        session.keep_job(K["job"], started)
        started.watch()  # its students start and result.json is rewritten while the user is on another page
        st.rerun()
b2.button("Stop", icon=":material/stop:", disabled=not running, width="stretch", key="rp-stop",
          on_click=reproducing.stop if running else None)

if reproducing is not None and (running or reproducing.result.name == reproduction.name):  # else it is listed below
    st.fragment(run_every=REFRESH_S if running else None)(guarded("Reproduction", live_panel))(running)
    if reproducing.done:
        bias_section(reproducing.result, "live")
else:
    st.subheader("The paper's table")
    with user_errors("Plan"):
        plan = reproduction.plan(seeds, quick)
        rows = reproduction.measure([], plan)
        st.dataframe(pd.DataFrame(table_records(rows), columns=list(COLUMNS)), hide_index=True, width="stretch")
        st.info(f"Press **Start** to train {len(plan)} runs ({seeds} seed{'s' if seeds > 1 else ''}, {state[K['mode']]}); "
                "the table and the chart fill in live, you need not click anything.", icon=":material/info:")

st.divider()
st.subheader("Earlier results")
listed = {str(saved.path): saved for saved in saved_results(paths.runs_root())}
if not listed:
    st.caption(f"No results yet under `{paths.runs_root()}`.")
else:
    if state.get(K["pick"]) not in listed:
        state[K["pick"]] = next(iter(listed))
    o1, o2 = st.columns([5, 1], vertical_alignment="bottom")
    o1.selectbox("Result", list(listed), key=K["pick"], format_func=lambda path: listed[path].label)
    if o2.button("Open", icon=":material/folder_open:", width="stretch", key="rp-open"):
        state[K["opened"]] = state[K["pick"]]
opened = state.get(K["opened"])
if opened:
    with user_errors("Open"):
        result = load_result(opened)
        st.markdown(f"#### {result.name}: {result.title}")
        show_table(result, "rp-opened-table")
        lines = [run_line(folder_view(run, label)) for run, label in run_labels(result).items() if os.path.isdir(run)]
        accuracy_chart(lines, "reproduce-opened", "Test accuracy of the result's runs, read back from their run folders.")
        bias_section(result, "opened")
