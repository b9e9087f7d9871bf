"""Lottery tickets & N:M: iterative magnitude pruning with rewinding, and N:M semi-structured sparsity, live.

Lottery tickets (Frankle & Carbin, ICLR 2019; rewinding: Frankle et al., ICML 2020): round 0 trains the
dense network; each later round prunes a share of the survivors by magnitude and rewinds them to
their values at step k, beside the same mask on a random re-initialisation. N:M (Mishra et al. 2021):
a dense run, then two fine-tunes from it at the same sparsity, the N:M pattern and unstructured
pruning. Start plans the runs (``kdviz.present.lottery``) and starts them as one experiment kept by
``kdviz.app.session``; a fragment redraws every run's state, the charts and a caption that reads the
numbers. The page lays out widgets and calls the presenter only.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import live_experiment, page_state, read_runs, run_controls, status_row
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.present.lottery import (
    base_config, lottery_charts, lottery_experiment, lottery_plan, n_m_charts, n_m_experiment, n_m_plan,
)

TICKETS, N_M_VIEW = "Lottery tickets", "N:M sparsity"
K = {"view": "lt_view", "rounds": "lt_rounds", "fraction": "lt_fraction", "rewind": "lt_rewind", "scope": "lt_scope",
     "output": "lt_output", "epochs": "lt_epochs", "seed": "lt_seed", "pace": "lt_pace", "n": "lt_n", "m": "lt_m",
     "schedule": "lt_schedule", "ft_epochs": "lt_ft_epochs", "error": "lt_error"}
OUTPUT_RATES = {"half": "output layer at half the rate (Frankle & Carbin)", "none": "output layer dense (open_lth)"}
PACE_S = 20.0
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
settings = current_settings()
DEFAULTS = {K["view"]: TICKETS, K["rounds"]: 4, K["fraction"]: 0.2, K["rewind"]: 0, K["scope"]: "layer",
            K["output"]: "half", K["epochs"]: 8 if settings.dataset == "digits" else 2, K["seed"]: 0, K["pace"]: False,
            K["n"]: 2, K["m"]: 4, K["schedule"]: "one-shot", K["ft_epochs"]: 2}
state = page_state(DEFAULTS)

st.title("Lottery tickets & N:M sparsity")
st.markdown(
    "**Lottery tickets** (Frankle & Carbin 2019): train, prune a share of the surviving weights by magnitude, "
    "*rewind* the survivors to their starting values (or to step k: Frankle et al. 2020), train again, repeat. "
    "Does the sparse ticket keep the dense accuracy while the same mask on a fresh random start falls away?  \n"
    "**N:M sparsity** (Mishra et al. 2021): keep N of every M consecutive weights of a row, a pattern sparse "
    "kernels can use. What does the pattern cost against unstructured pruning at the same sparsity?")
session.touch()
bundle = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)
st.segmented_control("Experiment", [TICKETS, N_M_VIEW], key=K["view"])
view = state.get(K["view"]) if state.get(K["view"]) in (TICKETS, N_M_VIEW) else TICKETS
exp = session.current_experiment(view, settings.dataset)
runs = read_runs(exp)

if view == TICKETS:
    a, b, c = st.columns(3)
    a.slider("Rounds of pruning", 1, 10, key=K["rounds"])
    b.slider("Share of survivors pruned per round", 0.05, 0.6, step=0.05, key=K["fraction"])
    c.number_input("Rewind to step k (0: the initialisation)", min_value=0, step=1, key=K["rewind"])
else:
    a, b, c = st.columns(3)
    a.selectbox("N (weights kept per group)", [1, 2, 3, 4, 6], key=K["n"])
    b.selectbox("M (group size)", [2, 4, 8, 16], key=K["m"])
    c.segmented_control("Schedule", ["one-shot", "gradual"], key=K["schedule"])
with st.popover("More", icon=":material/tune:"):
    st.slider("Epochs (each round, or the dense run)", 1, 60, key=K["epochs"])
    st.number_input("Seed", min_value=0, step=1, key=K["seed"])
    if view == TICKETS:
        st.segmented_control("Pruning scope", ["layer", "global"], key=K["scope"])
        st.radio("Output layer", list(OUTPUT_RATES), format_func=OUTPUT_RATES.get, key=K["output"])
        st.toggle(f"Pace to watch (each round at least {PACE_S:.0f} s)", key=K["pace"])
    else:
        st.slider("Fine-tune epochs", 1, 20, key=K["ft_epochs"])


def base():
    return base_config(settings.dataset, session.runs_root(), data_root=settings.data_root,
                       epochs=int(state[K["epochs"]]), seed=int(state[K["seed"]]),
                       pace_s=PACE_S if state.get(K["pace"]) and view == TICKETS else None)


def start() -> None:
    """The Start button: the chosen experiment (a bad setting is shown, nothing starts)."""
    state[K["error"]] = None
    try:
        if view == TICKETS:
            plan = lottery_plan(base(), int(state[K["rounds"]]), float(state[K["fraction"]]), int(state[K["rewind"]]),
                                scope=state.get(K["scope"]) or "layer",
                                output_fraction=0.0 if state.get(K["output"]) == "none" else None)
            experiment = lottery_experiment(plan, session.lab_manager(), TICKETS)
        else:
            plan = n_m_plan(base(), int(state[K["n"]]), int(state[K["m"]]), state.get(K["schedule"]) or "one-shot",
                            int(state[K["ft_epochs"]]))
            experiment = n_m_experiment(plan, session.lab_manager(), N_M_VIEW)
        session.add_experiment(experiment)
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


run_controls(runs, "lt", on_start=start, start_label=f"Start: {view.lower()}", running_label="Running…",
             start_disabled=bundle is None)
if state.get("lt-stop") and exp is not None:  # Stop ends the experiment: the rounds not started are cancelled too
    exp.stop()
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def statuses(exp) -> None:
    pending, blocked = set(exp.pending), exp.blocked
    for name, after in exp.plan.names():
        if name in exp.jobs:
            status_row(exp.jobs[name], name)
        elif name in blocked:
            st.caption(f"**{name}** · will not start: {blocked[name]}")
        elif name in pending:
            st.caption(f"**{name}** · waiting for {after} to finish")


def panel(exp) -> None:
    """Every run's state, the two charts and what they show now."""
    statuses(exp)
    left, right = st.columns(2)
    if view == TICKETS:
        accuracy, overlap, caption = lottery_charts(exp.plan, exp.jobs)
        with left:
            show_chart(accuracy, "lt-accuracy", caption=caption)
        with right:
            show_chart(overlap, "lt-overlap", caption="The mask the next round would take, computed at every "
                       "evaluation: its Jaccard overlap with the previous evaluation's. Near 1: the ticket has settled.")
    else:
        comparison, pattern, caption = n_m_charts(exp.plan, exp.jobs)
        with left:
            show_chart(comparison, "lt-n-m", caption=caption)
        with right:
            if pattern is not None:
                show_chart(pattern, "lt-pattern", csv=False)
            else:
                st.caption("The pattern appears with the N:M run's first snapshot.")


def idle() -> None:
    st.info("Choose the settings and press **Start**. Each round starts when the round before it has finished; "
            "the charts fill in live.", icon=":material/info:")


if bundle is not None:
    live_experiment(view, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset, action=view)
