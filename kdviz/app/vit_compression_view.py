"""The Transformers page's second tab: prune a trained ViT's attention heads while it fine-tunes, and
compare the compressed forms (heads removed, N:M, int8, k-means) by accuracy, size and latency.

``render_vit_compression()`` is called by ``kdviz/app/pages/transformers.py`` inside its second tab. The
ViT is either the teacher preset (``kdviz.present.vit_configs``, trained once in the background like every
baseline: ``teacher.shared_run_job``) or a finished ViT run of the runs folder. Start launches the
``head_prune`` fine-tune (Michel et al. 2019) as a background job; a fragment redraws the importance
heatmap and the accuracy-against-heads-removed chart from its snapshots. Everything shown is computed in
``kdviz.present.vit_compression``; this module lays out widgets.
"""
from __future__ import annotations

import os

import numpy as np
import streamlit as st
import torch

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import dataset_and_run, live_experiment, page_state, read_runs, run_controls, show_run_status, status_row
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.sidebar import LabSettings, current_settings, load_bundle
from kdviz.app.teacher import known_run_job, shared_run_job, teacher_epochs
from kdviz.engine import load_trained_model
from kdviz.figures.vit_heads import accuracy_against_heads_removed, compression_table, head_importance_heatmap
from kdviz.methods.head_prune import HEAD_PRUNE
from kdviz.present.vit_compression import (
    CURVE_COLOURS, compression_rows, default_removed, dense_accuracy, fine_tune_points, finished_vit_runs,
    head_prune_config, heatmap_caption, preset_teacher_epochs, pruning_curves, teacher_options,
)
from kdviz.prune.heads import head_importance, removable_heads, uniform_heads

K = {"source": "vitc_source", "run": "vitc_run", "heads": "vitc_heads", "rounds": "vitc_rounds",
     "epochs": "vitc_epochs", "pace": "vitc_pace", "error": "vitc_error", "table": "vitc_table"}
SOURCES = ("The preset ViT teacher", "A finished ViT run")
DEFAULTS = {K["source"]: SOURCES[0], K["heads"]: 6, K["rounds"]: 3, K["epochs"]: 2, K["pace"]: True}
EXPERIMENT = "ViT head pruning"
PACE_S = float(os.environ.get("KDVIZ_VIT_PACE_S", "20"))  # a digits fine-tune takes a few seconds otherwise
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
TABLE_RUNS = int(os.environ.get("KDVIZ_VIT_TABLE_RUNS", "30"))  # timed forwards per form and batch size
PROBE = 256  # images the importance is averaged over (the no-fine-tuning curves)
IMPORTANCE_EQ = r"I_h = \mathbb{E}_{x \sim X} \left| \frac{\partial \mathcal{L}(x)}{\partial \xi_h} \right|"


@st.cache_resource(show_spinner="Pruning heads without fine-tuning, by importance and at random…", max_entries=4)
def _baseline(run_path: str, dataset: str, root: str | None, download: bool) -> dict:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    model = load_trained_model(run_path).eval()
    uniform_heads(model)  # a ViT whose layers all have the same heads, or a message naming the problem
    probe = (torch.as_tensor(bundle.train_images[:PROBE]), torch.as_tensor(bundle.train_labels[:PROBE]))
    test = (torch.as_tensor(bundle.test_images), torch.as_tensor(bundle.test_labels))
    removed = default_removed(model, probe)
    return {"test": test, "dense": dense_accuracy(model, *test), "curves": pruning_curves(model, probe, test),
            "removed": removed, "shape": uniform_heads(model),
            "importance": head_importance(model, *probe, removed=torch.as_tensor(removed)).numpy()}


@st.cache_resource(show_spinner="Measuring every form (median of many forwards, batch 1 and 256)…", max_entries=8)
def _table(run_path: str, removed_bytes: bytes, shape: tuple[int, int], dataset: str, root: str | None, download: bool) -> list[dict]:
    bundle = load_bundle(LabSettings(dataset=dataset, data_root=root, download=download))
    removed = np.frombuffer(removed_bytes, dtype=bool).reshape(shape)
    model = load_trained_model(run_path).eval()
    return compression_rows(model, removed, torch.as_tensor(bundle.test_images), torch.as_tensor(bundle.test_labels),
                            runs=TABLE_RUNS)


def _trained_run(settings, teacher_drawn_elsewhere: bool) -> str | None:
    """The ViT to prune: the preset teacher (trained here if needed) or a finished run; None until ready."""
    st.segmented_control("ViT to prune", SOURCES, key=K["source"])
    if st.session_state.get(K["source"]) == SOURCES[1]:
        runs = finished_vit_runs(session.runs_root())
        if not runs:
            st.info("No finished ViT run in the runs folder yet: train one on the first tab, or use the preset teacher.",
                    icon=":material/info:")
            return None
        label = st.selectbox("Finished ViT run", list(runs), key=K["run"])
        return runs[label]
    options = teacher_options(settings.dataset, settings.data_root, session.runs_root(),
                              epochs=teacher_epochs(settings.dataset, {settings.dataset: preset_teacher_epochs(settings.dataset)}))
    # On the Transformers page the Distil tab draws the preset teacher's Start / Cancel buttons (two
    # sets would share their keys): this tab then only follows the run.
    find = (lambda: known_run_job(options)) if teacher_drawn_elsewhere else (lambda: shared_run_job(options))
    _bundle, job = dataset_and_run(settings, find, "ViT teacher")
    if job is None:
        st.info("The preset ViT teacher has not been trained yet: start it on the **Distil** tab, or choose a "
                "finished ViT run above.", icon=":material/info:")
        return None
    if not show_run_status(job, f"ViT teacher on {settings.dataset}", lambda: shared_run_job(options, True),
                           "vitc-teacher", "ViT teacher"):
        return None
    return str(job.path)


def _start(trained: str, state) -> None:
    """The Start button: one head-pruning fine-tune of the chosen ViT (a bad setting is shown, not raised)."""
    state[K["error"]] = None
    try:
        config = head_prune_config(trained, int(state[K["heads"]]), int(state[K["rounds"]]), epochs=int(state[K["epochs"]]),
                                   runs_root=session.runs_root(), pace_s=PACE_S if state[K["pace"]] else None)
        session.start_experiment(EXPERIMENT, {HEAD_PRUNE.label: config})
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


def _controls(trained: str, shape: tuple[int, int], runs) -> None:
    state = st.session_state
    state[K["heads"]] = min(int(state[K["heads"]]), removable_heads(shape))  # a smaller ViT chosen after a larger one
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    c1.slider("Heads to remove", 1, removable_heads(shape), key=K["heads"],
              help=f"{shape[0]} layers x {shape[1]} heads; each layer keeps one.")
    c2.slider("Rounds", 1, 8, key=K["rounds"], help="Importance is recomputed before each round (Michel et al., section 4.1).")
    c3.slider("Epochs of fine-tuning", 1, 10, key=K["epochs"])
    c4.toggle(f"Pace to watch (at least {PACE_S:.0f} s)", key=K["pace"])
    run_controls(runs, "vitc-prune", on_start=lambda: _start(trained, state), start_label="Start head pruning",
                 running_label="Pruning…")
    if state.get(K["error"]):
        st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")


def _accuracy_chart(base: dict, view=None) -> None:
    curves = dict(base["curves"])
    if view is not None:
        points = fine_tune_points(view.evals, view.config)
        if points[0]:
            curves[HEAD_PRUNE.label] = points
    show_chart(accuracy_against_heads_removed(curves, CURVE_COLOURS, base["shape"][0] * base["shape"][1], base["dense"]),
               "vitc-accuracy", caption="Lines: heads removed from the trained ViT without fine-tuning. Points: the "
               "fine-tuned run at each evaluation (heads removed so far, test accuracy).")


def _table_section(run_path: str, removed: np.ndarray, dataset_settings, what: str) -> None:
    st.markdown(f"**Compressed forms** of {what}: dense vs heads removed vs N:M vs int8 vs k-means.")
    key = f"{run_path}:{removed.tobytes().hex()}"
    if st.button("Measure size and latency", key="vitc-measure", icon=":material/speed:"):
        st.session_state[K["table"]] = key
    if st.session_state.get(K["table"]) == key:
        with user_errors("Measuring the compressed forms"):
            rows = _table(run_path, removed.astype(bool).tobytes(), removed.shape, dataset_settings.dataset,
                          dataset_settings.data_root, dataset_settings.download)
            show_chart(compression_table(rows), "vitc-table", csv=False)


def render_vit_compression(teacher_drawn_elsewhere: bool = False) -> None:
    """Draw the head-pruning and compression tab; ``teacher_drawn_elsewhere``: another part of the page
    offers the preset ViT teacher's Start button, so this one only follows that run."""
    st.subheader("Are sixteen heads better than one? Prune a ViT's heads, sparsify and quantize it")
    st.markdown("Gate each attention head's output by $\\xi_h$. A head's **importance** is how much the loss "
                "moves when its gate moves, averaged over the data (Michel et al. 2019, eq. 4); the least "
                "important heads go first, a few per round, importance recomputed in between:")
    st.latex(IMPORTANCE_EQ)
    page_state(DEFAULTS)
    settings = current_settings()
    session.touch()
    trained = _trained_run(settings, teacher_drawn_elsewhere)
    if trained is None:
        return
    base = None
    with user_errors("The ViT to prune"):
        base = _baseline(trained, settings.dataset, settings.data_root, settings.download)
    if base is None:
        return
    runs = read_runs(session.current_experiment(EXPERIMENT, settings.dataset))
    _controls(trained, base["shape"], runs)
    st.divider()

    def panel(experiment) -> None:
        name, job = next(iter(experiment.jobs.items()))
        view = job_view(job, name)
        status_row(job, view.label)
        left, right = st.columns(2)
        with left:
            if view.snapshots:
                snap, raw = view.read(HEAD_PRUNE), view.snapshots[-1]
                show_chart(head_importance_heatmap(snap.importance, snap.removed, raw.step, snap.normalized), "vitc-heatmap", csv=False,
                           caption=heatmap_caption(snap.importance, snap.removed))
            else:
                st.caption("Waiting for the first snapshot…")
        with right:
            _accuracy_chart(base, view)
        if job.done and job.status().state == "finished" and view.snapshots:
            _table_section(str(job.path), view.read(HEAD_PRUNE).removed, settings, "the fine-tuned, head-pruned ViT")

    def idle() -> None:
        st.info("Press **Start head pruning**: the importance heatmap and the accuracy chart update while heads go.",
                icon=":material/info:")
        left, right = st.columns(2)
        with left:
            show_chart(head_importance_heatmap(base["importance"], base["removed"]), "vitc-heatmap-idle", csv=False,
                       caption="Without fine-tuning: the heads removed when half the removable heads go by importance.")
        with right:
            _accuracy_chart(base)
        _table_section(trained, base["removed"], settings, "the trained ViT (heads removed without fine-tuning)")

    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset)

