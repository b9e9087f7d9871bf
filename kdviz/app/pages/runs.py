"""Compare runs: reopen run folders from disk (this lab's, the CLI's, the labs') and overlay them.

The table lists every run folder under the one runs root (``kdviz.paths.runs_root``) with its
hyper-parameters (``kdviz.present.run_table``); tick rows to compare them, filter by dataset and
method, keep a note beside a run, or delete it (after a confirmation). A folder elsewhere opens by its
path only inside the allowed roots (``kdviz.paths.confine``). A run folder reads exactly like a live run
(``kdviz.present.RunView``); records a chart cannot draw are skipped with a note naming the run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from kdviz import paths
from kdviz.app import session
from kdviz.app.charts import show_chart, training_chart_options
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import folder_view
from kdviz.figures.training import accuracy_comparison, loss_curves, run_comparison
from kdviz.present.run_table import (COLUMNS, clean_records, delete_run, distinct_colours, filter_rows, run_rows, skipped_note,
                                     thin_records, unique_labels, write_note)

K = {"selected": "cr_selected", "extra": "cr_extra", "path": "cr_path", "path_error": "cr_path_error", "loss": "cr_loss",
     "table": "cr_table", "shown": "cr_shown", "written": "cr_written", "datasets": "cr_datasets", "methods": "cr_methods",
     "delete": "cr_delete_pending", "done": "cr_done", "listed": "cr_listed", "problem": "cr_problem"}
state = st.session_state
state.setdefault(K["extra"], [])
state.setdefault(K["selected"], [])


def runs_root() -> Path:
    return paths.runs_root()


def open_folder() -> None:
    """The "Open" button: the typed folder must lie in an allowed root and be a readable run."""
    raw = (state.get(K["path"]) or "").strip()
    state[K["path_error"]] = None
    try:
        folder = paths.confine(raw, "run folder")
    except paths.PathNotAllowed as exc:
        state[K["path_error"]] = plain_message(exc)
        return
    try:
        folder_view(folder)
    except (ValueError, TypeError, OSError) as exc:
        state[K["path_error"]] = f"Cannot open {raw!r}: {plain_message(exc)}"
        return
    known = {str(Path(p).resolve()): p for p in state.get(K["listed"], [])}
    path = known.get(str(folder), str(folder))
    if path not in known.values() and path not in state[K["extra"]]:
        state[K["extra"]].append(path)
    if path not in state[K["selected"]]:
        state[K["selected"]] = [*state[K["selected"]], path]


def sync_table_selection(shown: list[str]) -> None:
    """The table's ticks and ``cr_selected`` say the same: a tick the user changed since the last
    run updates the selection (runs filtered out of view stay selected); the ticks are rewritten only
    when the selection changed elsewhere (the box above, a filter, a deleted run), so a click is never
    overwritten by a rerun that started before it."""
    table = state.get(K["table"])
    previous = state.get(K["shown"]) or []
    ticked = sorted(i for i in (table["selection"]["rows"] if table is not None else []) if 0 <= i < len(previous))
    if table is not None and previous and ticked != state.get(K["written"]):
        state[K["selected"]] = ([p for p in state[K["selected"]] if p not in previous]
                                + [previous[i] for i in ticked])
    rows = sorted(shown.index(p) for p in state[K["selected"]] if p in shown)
    if table is None or rows != ticked or shown != previous:
        state[K["table"]] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    state[K["written"]], state[K["shown"]] = rows, list(shown)


def show_table(rows: list[dict]) -> None:
    """The runs with their hyper-parameters; ticking a row compares the run."""
    st.dataframe(pd.DataFrame(rows, columns=list(COLUMNS)), hide_index=True, width="stretch", key=K["table"], on_select="rerun",
                 selection_mode="multi-row",
                 column_config={"test_acc": st.column_config.NumberColumn("test accuracy", format="percent"),
                                "T": st.column_config.NumberColumn("T", format="%g"),
                                "alpha": st.column_config.NumberColumn("alpha", format="%g"),
                                "sizes": st.column_config.TextColumn("sizes"),
                                "note": st.column_config.TextColumn("note", width="medium")})


def selected_views() -> list:
    """Views of the selected runs, each with its clean records; odd records get a visible note."""
    views = []
    for path in state[K["selected"]]:
        with user_errors(f"Run folder {Path(path).name}"):
            view = folder_view(path)
            evals, bad_evals = clean_records(view.evals)
            steps, bad_steps = clean_records(view.steps)
            if bad_evals + bad_steps:
                st.warning(skipped_note(view.label, bad_evals + bad_steps), icon=":material/rule:")
            views.append((view, evals, steps))
    return views


def show_charts(views: list, options) -> None:
    colours = distinct_colours([v.colour for v, _, _ in views])
    labels = unique_labels([v.label for v, _, _ in views], [Path(v.path or "").name for v, _, _ in views])
    lines = [{"label": label, "colour": c, "records": evals} for (_, evals, _), c, label in zip(views, colours, labels)]
    if any(line["records"] for line in lines):
        fig = accuracy_comparison(lines, zoom=options.zoom, smoothing=options.smoothing)
        kinds = ", ".join(dict.fromkeys(v.method.label for v, _, _ in views))
        show_chart(fig, "compare-accuracy", caption="Test accuracy of each run over its epochs. Each run has its own "
                   f"colour, in its method's family ({kinds} here); the axis fits the data (turn zoom off for 0-100 %).")
        finals = [{"label": line["label"], "colour": line["colour"], "value": round(100 * line["records"][-1]["test_acc"], 2)}
                  for line in lines if line["records"]]
        show_chart(run_comparison(finals, value_title="final test accuracy (%)", lower_is_better=False, value_bounds=(0, 100)),
                   "final-accuracy", caption="The last evaluation of each run (a stopped run shows where it stopped).")
    with_steps = [(label, steps) for (_, _, steps), label in zip(views, labels) if steps]
    if not with_steps:
        return
    labels = [label for label, _ in with_steps]
    st.selectbox("Loss curves of", range(len(labels)), format_func=lambda i: labels[i], key=K["loss"])
    label, steps = with_steps[min(int(state.get(K["loss"]) or 0), len(with_steps) - 1)]
    fig = loss_curves(thin_records(steps), log_y=options.log_loss, smoothing=options.smoothing,
                      title=f"{label}: loss {steps[-1]['loss']:.3g} at step {steps[-1]['step']}")
    show_chart(fig, "compare-loss", caption="Per training step: the total and, for KD runs, its soft and hard parts.")


def manage_runs(rows: list[dict]) -> None:
    """A note per selected run, and deleting it after a confirmation."""
    chosen = [r for r in rows if r["path"] in state[K["selected"]]]
    if not chosen:
        st.caption("Tick a run in the table to write a note about it or to delete it.")
        return
    row = chosen[0]
    if len(chosen) > 1:  # drawn once (inside the search it was drawn again per run passed: a duplicate key)
        picked = st.selectbox("Run", [r["name"] for r in chosen], key="cr_manage_run")
        row = next((r for r in chosen if r["name"] == picked), row)
    st.text_area("Note", value=row["note"], key=f"cr_note_{row['name']}", max_chars=2000,
                 help="Kept beside the run in notes.json; the run's records are never changed.")
    save, delete = st.columns(2)
    save.button("Save note", key="cr_save_note", icon=":material/save:", on_click=save_note, args=(row,))
    delete.button("Delete run…", key="cr_delete", icon=":material/delete:", on_click=ask_delete, args=(row["path"],))
    if state.get(K["delete"]) == row["path"]:
        st.warning(f"Delete **{row['name']}** and every file in it (metrics, snapshots, checkpoints)? "
                   "This cannot be undone.", icon=":material/delete_forever:")
        yes, no = st.columns(2)
        yes.button(f"Yes, delete {row['name']}", key="cr_delete_yes", type="primary", on_click=delete_now, args=(row,))
        no.button("Cancel", key="cr_delete_no", on_click=ask_delete, args=(None,))


def save_note(row: dict) -> None:
    try:
        write_note(row["path"], state.get(f"cr_note_{row['name']}") or "", runs_root())
        state[K["done"]] = f"Note saved for {row['name']}."
    except (ValueError, TypeError, OSError) as exc:
        state[K["problem"]] = f"Note not saved: {plain_message(exc)}"


def ask_delete(path: str | None) -> None:
    state[K["delete"]] = path


def delete_now(row: dict) -> None:
    state[K["delete"]] = None
    try:
        delete_run(row["path"], runs_root())
    except (ValueError, OSError) as exc:
        state[K["problem"]] = f"{row['name']} was not deleted: {plain_message(exc)}"
        return
    state[K["selected"]] = [p for p in state[K["selected"]] if p != row["path"]]
    state[K["done"]] = f"Deleted {row['name']}."


st.title("Compare runs")
st.markdown(f"Every run leaves a folder under `{runs_root()}`: its config, metrics, snapshots and checkpoints. "
            "Tick runs in the table to overlay them, or open a run folder by its path.")
session.touch()
if state.get(K["done"]):
    st.success(state.pop(K["done"]), icon=":material/check:")
if state.get(K["problem"]):
    st.error(state.pop(K["problem"]), icon=":material/warning:")

all_rows, problems = [], []
with user_errors("Runs folder"):
    all_rows, problems = run_rows(runs_root())
for problem in problems:
    st.warning(f"Unreadable run folder {problem}", icon=":material/warning:")
names = {r["path"]: f"{r['name']} · {r['method']}" for r in all_rows}
state[K["listed"]] = list(names)
options = [r["path"] for r in all_rows] + [p for p in state[K["extra"]] if p not in names]
state[K["selected"]] = [p for p in state[K["selected"]] if p in options]

f_data, f_method = st.columns(2)
datasets = f_data.multiselect("Datasets", sorted({r["dataset"] for r in all_rows}), key=K["datasets"],
                              placeholder="All datasets")
methods = f_method.multiselect("Methods", sorted({r["method"] for r in all_rows}), key=K["methods"],
                               placeholder="All methods")
rows = filter_rows(all_rows, datasets, methods)
sync_table_selection([r["path"] for r in rows])

left, right = st.columns([3, 2], vertical_alignment="bottom")
left.multiselect("Runs to compare", options, key=K["selected"], format_func=lambda p: names.get(p, p),
                 placeholder="Tick runs in the table below")
with right:
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.text_input("Open a run folder by path", key=K["path"], placeholder=str(runs_root() / "20250101-120000-kd-student"))
    b.button("Open", on_click=open_folder, width="stretch")
if state.get(K["path_error"]):
    st.error(state[K["path_error"]], icon=":material/warning:")

if rows:
    show_table(rows)
    st.caption(f"{len(rows)} of {len(all_rows)} runs shown. Tick rows to compare them.")
elif all_rows:
    st.info("No run matches these filters.", icon=":material/filter_alt:")
else:
    st.info("No runs yet: start one on the **Train a student** page.", icon=":material/info:")

views = selected_views()
if views:
    chart_options = training_chart_options("cr")
    with user_errors("Charts"):
        show_charts(views, chart_options)
with st.expander("Notes and delete", expanded=bool(state.get(K["delete"]))):
    manage_runs(all_rows)
