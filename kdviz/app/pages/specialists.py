"""Specialists: a generalist, the classes it confuses, specialists with a dustbin, combined (Hinton et
al. 2015, section 5), live.

Start plans the pipeline (``kdviz.present.specialists``: the generalist on all but a held-out slice,
or a finished run reused) and starts it as one experiment kept by ``kdviz.app.session``: once the
generalist has finished, the covariance of its predictions on the held-out images is clustered and
one specialist per confusable subset starts from its weights; once they end, the generalist and the
specialists are combined on the test set (section 5.3). A fragment redraws every stage's state, the
runs' accuracy as they train, the confusable-subset matrix and the accuracy gain on the covered classes.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    live_experiment, page_state, read_runs, run_controls, status_row, url_choice, url_number, url_settings,
)
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.engine import TrainConfig
from kdviz.paths import confine
from kdviz.present.specialists import (
    SpecialistsPlan, generalist_config, specialists_caption, specialists_experiment, specialists_figures, stage_lines,
)
from kdviz.present import as_run_view

K = {"hidden": "spec_hidden", "epochs": "spec_epochs", "held_out": "spec_held_out", "clusters": "spec_clusters",
     "count": "spec_count", "max_size": "spec_max_size", "spec_epochs": "spec_spec_epochs", "enrich": "spec_enrich",
     "top_n": "spec_top_n", "seed": "spec_seed", "reuse": "spec_reuse", "pace": "spec_pace", "error": "spec_error"}
HIDDEN_WIDTHS = (8, 16, 32, 64, 128)
PACE_S = 20.0
EXPERIMENT = "Specialists"
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
settings = current_settings()
DEFAULTS = {K["hidden"]: 16, K["epochs"]: 20, K["held_out"]: 300, K["clusters"]: 5, K["count"]: 3, K["max_size"]: 4,
            K["spec_epochs"]: 10, K["enrich"]: 0.5, K["top_n"]: 1, K["seed"]: 0, K["reuse"]: "", K["pace"]: False}
state = page_state(DEFAULTS)
IN_URL = {K["hidden"]: url_choice(HIDDEN_WIDTHS), K["epochs"]: url_number(1, 200, int),
          K["held_out"]: url_number(0, 100000, int), K["clusters"]: url_number(2, 9, int), K["count"]: url_number(1, 5, int),
          K["max_size"]: url_number(2, 6, int), K["spec_epochs"]: url_number(1, 100, int), K["enrich"]: url_number(0.1, 0.9),
          K["top_n"]: url_number(1, 5, int), K["seed"]: url_number(0, 2**31 - 1, int), K["pace"]: url_choice((False, True))}
url_settings(IN_URL)  # a link reproduces the settings

st.title("Specialists: a generalist and experts for the classes it confuses")
st.markdown(
    "Hinton, Vinyals & Dean (2015, section 5): a **generalist** learns every class; the covariance of its predicted "
    "probabilities shows which classes it predicts together, and k-means on that matrix's columns groups them "
    "(section 5.2). Each confusable group gets a **specialist**, started from the generalist's weights and trained on "
    "data where its classes make half the weight, with one *dustbin* class for all the others. At test time the "
    "generalist's top classes pick the active specialists, and the answer is the distribution q closest to all of them: "
    "min KL(p^g‖q) + Σ KL(p^m‖q) (section 5.3).")
session.touch()
bundle = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)
exp = session.current_experiment(EXPERIMENT, settings.dataset)
runs = read_runs(exp)

left, mid, right, more = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
left.selectbox("Generalist: hidden units", HIDDEN_WIDTHS, key=K["hidden"])
mid.slider("Clusters k (k-means on the covariance's columns)", 2, 9, key=K["clusters"])
right.slider("Specialists (at most)", 1, 5, key=K["count"])
with more.popover("More", icon=":material/tune:", width="stretch"):
    st.slider("Generalist epochs", 1, 200, key=K["epochs"])
    st.number_input("Held-out training images (for the covariance)", min_value=0, step=50, key=K["held_out"])
    st.slider("Largest subset (classes)", 2, 6, key=K["max_size"])
    st.slider("Specialist epochs", 1, 100, key=K["spec_epochs"])
    st.slider("Weight of a specialist's classes in its data", 0.1, 0.9, step=0.05, key=K["enrich"])
    st.slider("Generalist's top-n classes that pick the specialists", 1, 5, key=K["top_n"])
    st.number_input("Seed", min_value=0, step=1, key=K["seed"])
    st.text_input("Reuse a finished generalist (run folder; empty: train one)", key=K["reuse"])
    st.toggle(f"Pace to watch (each run at least {PACE_S:.0f} s)", key=K["pace"])


def pipeline_plan() -> SpecialistsPlan:
    """The plan these settings give (a ``ValueError`` names a bad setting)."""
    reuse = str(state[K["reuse"]] or "").strip()
    base = TrainConfig(dataset=settings.dataset, data_root=settings.data_root, model="mlp",
                       model_options={"hidden": [int(state[K["hidden"]])]}, epochs=int(state[K["epochs"]]), lr=0.05,
                       batch_size=32, seed=int(state[K["seed"]]), snapshot_every=0, runs_root=session.runs_root(),
                       pace_s=PACE_S if state[K["pace"]] else None, name="generalist")
    generalist = generalist_config(base, int(state[K["held_out"]]))
    return SpecialistsPlan(generalist, str(confine(reuse, "generalist run folder")) if reuse else None,
                           clusters=int(state[K["clusters"]]), count=int(state[K["count"]]),
                           max_size=int(state[K["max_size"]]), enriched_fraction=float(state[K["enrich"]]),
                           epochs=int(state[K["spec_epochs"]]), lr=0.02, top_n=int(state[K["top_n"]]))


def start_pipeline() -> None:
    """The Start button: the pipeline as one experiment (a bad setting is shown, nothing starts)."""
    state[K["error"]] = None
    try:
        session.add_experiment(specialists_experiment(pipeline_plan(), session.lab_manager(), EXPERIMENT))
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


run_controls(runs, "spec", on_start=start_pipeline, start_label="Start", running_label="Running…",
             start_disabled=bundle is None)
if state.get("spec-stop") and exp is not None:  # Stop ends the pipeline: the specialists not started are cancelled
    exp.stop()
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def panel(exp) -> None:
    """Every stage's state, the runs' accuracy, the confusable subsets and the gain on the covered classes."""
    for name, job, text in stage_lines(exp):
        if job is not None:
            status_row(job, name)
        else:
            st.caption(f"**{name}** · {text}")
    views = {name: as_run_view(job, name) for name, job in exp.jobs.items()}
    for view in views.values():
        view.refresh()
    figures = specialists_figures(exp, views)
    show_chart(figures["accuracy"], "spec-accuracy")
    columns = st.columns(2)
    if "subsets" in figures:
        with columns[0]:
            show_chart(figures["subsets"], "spec-subsets")
    if "gain" in figures:
        with columns[1]:
            show_chart(figures["gain"], "spec-gain")
    st.caption(specialists_caption(exp))


def idle() -> None:
    st.info("Press **Start**: the generalist trains first, then its confusable classes are found and the specialists "
            "start from its weights; the charts fill in live.", icon=":material/info:")


if bundle is not None:
    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset, action="Specialists")
