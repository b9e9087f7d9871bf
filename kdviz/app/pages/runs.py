"""Compare runs: reopen run folders from disk (this lab's, the CLI's, another machine's) and
overlay them. A run folder reads exactly like a live run (``kdviz.present.RunView``); each run is
labelled and coloured by its method (``kdviz.methods.method_of``: a cross-entropy run with a prune
hook is a pruned fine-tune, orange, never a scratch student)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.errors import user_errors
from kdviz.app.live import folder_view
from kdviz.app.training_view import accuracy_chart, loss_chart
from kdviz.engine import list_runs
from kdviz.engine.run_folder import read_config
from kdviz.figures.training import run_comparison
from kdviz.methods import method_of

K = {"selected": "cr_selected", "extra": "cr_extra", "path": "cr_path", "path_error": "cr_path_error", "loss": "cr_loss"}
state = st.session_state
state.setdefault(K["extra"], [])
state.setdefault(K["selected"], [])


def open_folder() -> None:
    """The "Open" button: check the typed folder is a readable run, then add it to the selection."""
    path = (state.get(K["path"]) or "").strip()
    state[K["path_error"]] = None
    try:
        if not path:
            raise ValueError("type the path of a run folder (it holds config.json and metrics.jsonl)")
        folder_view(path)
    except (ValueError, TypeError, OSError) as exc:
        state[K["path_error"]] = f"Cannot open {path!r}: {exc}" if path else str(exc)
        return
    if path not in state[K["extra"]]:
        state[K["extra"]].append(path)
    if path not in state[K["selected"]]:
        state[K["selected"]] = [*state[K["selected"]], path]


st.title("Compare runs")
st.markdown(f"Every run leaves a folder under `{session.runs_root()}`: its config, metrics, snapshots and "
            "checkpoints. Pick runs to overlay, or open any run folder by its path.")
session.touch()

rows = []
with user_errors("Runs folder"):
    rows = list_runs(session.runs_root())
for row in rows:
    row["kind"] = "unreadable"
    with user_errors(f"Run folder {row['path']}"):
        row["kind"] = method_of(read_config(row["path"])).label
names = {r["path"]: f"{r['name']} · {r['kind']}" for r in rows}
options = [r["path"] for r in rows] + [p for p in state[K["extra"]] if p not in names]
state[K["selected"]] = [p for p in state[K["selected"]] if p in options]

left, right = st.columns([3, 2], vertical_alignment="bottom")
left.multiselect("Runs to compare", options, key=K["selected"], format_func=lambda p: names.get(p, p),
                 placeholder="Pick runs from the table below")
with right:
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.text_input("Open a run folder by path", key=K["path"], placeholder="runs/20250101-120000-kd-student")
    b.button("Open", on_click=open_folder, width="stretch")
if state.get(K["path_error"]):
    st.error(state[K["path_error"]], icon=":material/warning:")

views = []
for path in state[K["selected"]]:
    with user_errors(f"Run folder {path}"):
        views.append(folder_view(path))
if views:
    fig = accuracy_chart(views)
    kinds = ", ".join(dict.fromkeys(v.method.label for v in views))
    show_chart(fig, "compare-accuracy", caption="Test accuracy of each run over its epochs; the colour says its "
               f"method ({kinds} here), so several runs of one method share a colour.")
    finals = [{"label": v.label, "colour": v.colour, "value": round(100 * v.evals[-1]["test_acc"], 2)}
              for v in views if v.evals]
    if finals:
        show_chart(run_comparison(finals, value_title="final test accuracy (%)", lower_is_better=False), "final-accuracy",
                   caption="The last evaluation of each run (a stopped run shows where it stopped).")
    st.selectbox("Loss curves of", range(len(views)), format_func=lambda i: views[i].label, key=K["loss"])
    chosen = views[min(int(state.get(K["loss"]) or 0), len(views) - 1)]
    fig = loss_chart(chosen)
    if fig is not None:
        show_chart(fig, "compare-loss", caption="Per training step: the total and, for KD runs, its soft and hard parts.")

st.subheader("All runs")
if rows:
    table = pd.DataFrame(rows).rename(columns={"method": "base loss"})
    table = table[["name", "kind", "base loss", "model", "dataset", "state", "step", "total_steps", "test_acc"]]
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"test_acc": st.column_config.NumberColumn("test accuracy", format="percent"),
                                "kind": st.column_config.TextColumn("method")})
else:
    st.info("No runs yet: start one on the **Train a student** page.", icon=":material/info:")
