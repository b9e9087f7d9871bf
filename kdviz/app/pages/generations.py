"""Generations: born-again networks and the teacher assistant, as chains of KD runs, live.

Born-again networks (Furlanello et al., ICML 2018): generation 0 learns from the labels; generation k,
the same architecture, learns from generation k-1 with Hinton's KD loss. Teacher assistant (Mirzadeh
et al., AAAI 2020): the teacher is distilled into an assistant of intermediate size, the assistant into
a small student, against the same student distilled from the teacher directly. Start plans the chain
(``kdviz.present.generations``: configs, who teaches whom, sizes checked) and starts it as one
experiment kept by ``kdviz.app.session``: each later run starts once the run it learns from has
finished; Stop stops the running run and cancels the later ones. A fragment redraws every run's state and accuracy, the accuracy per generation (or per
run of the chain, with the capacity gap) and a caption that reads the numbers.
"""
from __future__ import annotations

import os
from dataclasses import replace

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import dataset_and_run, live_experiment, page_state, read_runs, run_controls, status_row
from kdviz.app.errors import plain_message
from kdviz.app.live import job_view
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import show_teacher_status, teacher_job
from kdviz.app.training_view import accuracy_chart
from kdviz.present.distill_configs import distill_defaults
from kdviz.present.family_story import family_base_config
from kdviz.figures.generations import ASSISTANT_COLOUR, DIRECT_COLOUR, VIA_COLOUR, group_styles
from kdviz.present.generations import (
    ASSISTANT, ASSISTANT_GROUP, BORN_AGAIN, DIRECT_GROUP, VIA_GROUP, assistant_plan, born_again_plan, chain_experiment,
    chain_figures, chain_results,
)

K = {"kind": "gen_kind", "generations": "gen_generations", "assistant": "gen_assistant", "student": "gen_student",
     "seeds": "gen_seeds", "seed": "gen_seed", "T": "gen_T", "alpha": "gen_alpha", "epochs": "gen_epochs",
     "pace": "gen_pace", "error": "gen_error"}
ASSISTANT_WIDTHS, STUDENT_WIDTHS = (16, 32, 64, 128), (2, 4, 8, 16, 32)
PACE_S = 30.0
EXPERIMENT = "Generations"  # this page's experiments in the session
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
settings = current_settings()
d = distill_defaults(settings.dataset)
DEFAULTS = {K["kind"]: BORN_AGAIN, K["generations"]: 3, K["assistant"]: 32, K["student"]: 8, K["seeds"]: 1,
            K["seed"]: 0, K["T"]: d.T, K["alpha"]: d.alpha, K["epochs"]: d.epochs, K["pace"]: False}
state = page_state(DEFAULTS)

st.title("Generations: born-again and teacher assistant")
st.markdown(
    "**Born-again networks** (Furlanello et al. 2018): generation 0 learns from the labels; each later "
    "generation, the *same* network, learns from the one before it by knowledge distillation. Does each "
    "generation beat its parent?  \n**Teacher assistant** (Mirzadeh et al. 2020): a small student may be too far "
    "from a big teacher to follow it; an assistant of intermediate size, distilled first, teaches the student "
    "instead. Does the student via the assistant beat the same student distilled directly?")
session.touch()
bundle, teacher = dataset_and_run(settings, lambda: teacher_job(settings))
ready = teacher is not None and show_teacher_status(teacher, settings, key="gen-teacher")
exp = session.current_experiment(EXPERIMENT, settings.dataset)
runs = read_runs(exp)

kind_col, size_col, more = st.columns([2, 3, 1], vertical_alignment="bottom")
kind_col.segmented_control("Chain", [BORN_AGAIN, ASSISTANT], key=K["kind"], format_func=str.capitalize)
kind = state.get(K["kind"]) if state.get(K["kind"]) in (BORN_AGAIN, ASSISTANT) else BORN_AGAIN  # none chosen: the first
if kind == BORN_AGAIN:
    size_col.slider("Born-again generations after generation 0", 1, 6, key=K["generations"])
else:
    a, s = size_col.columns(2)
    a.selectbox("Assistant: hidden units", ASSISTANT_WIDTHS, key=K["assistant"])
    s.selectbox("Student: hidden units", STUDENT_WIDTHS, key=K["student"])
with more.popover("More", icon=":material/tune:", width="stretch"):
    st.number_input("Seeds (the chain repeated)", min_value=1, max_value=5, step=1, key=K["seeds"])
    st.number_input("First seed", min_value=0, step=1, key=K["seed"])
    st.slider("Temperature T", 1.0, 20.0, step=0.5, key=K["T"])
    st.slider("α (soft-target weight)", 0.0, 1.0, step=0.05, key=K["alpha"])
    st.slider("Epochs (each run)", 1, 1000, key=K["epochs"])
    st.toggle(f"Pace to watch (each run at least {PACE_S:.0f} s)", key=K["pace"])


def chain_plan():
    """The plan these settings give (a ``ValueError`` names a bad setting)."""
    teacher_path = str(teacher.path) if teacher is not None else "-"
    base = family_base_config(teacher=teacher_path, dataset=settings.dataset, data_root=settings.data_root,
                              train_size=len(bundle.train_labels), runs_root=session.runs_root(),
                              epochs=int(state[K["epochs"]]), pace_s=PACE_S if state[K["pace"]] else None)
    base = replace(base, seed=int(state[K["seed"]]))
    seeds = [int(state[K["seed"]]) + i for i in range(int(state[K["seeds"]]))]
    shape = dict(input_shape=tuple(bundle.input_shape), num_classes=int(bundle.num_classes))
    if kind == BORN_AGAIN:
        return born_again_plan(base, int(state[K["generations"]]), float(state[K["T"]]), float(state[K["alpha"]]),
                               seeds=seeds, **shape)
    if teacher is None or not ready:
        raise ValueError("the teacher-assistant chain needs the finished teacher: wait until it is ready")
    return assistant_plan(base, str(teacher.path), int(state[K["assistant"]]), int(state[K["student"]]),
                          T=float(state[K["T"]]), alpha=float(state[K["alpha"]]), seeds=seeds, **shape)


def start_chain() -> None:
    """The Start button: the chain as one experiment (a bad setting is shown, nothing starts)."""
    state[K["error"]] = None
    try:
        session.add_experiment(chain_experiment(chain_plan(), session.lab_manager(), EXPERIMENT))
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


needs_teacher = kind == ASSISTANT and not ready
run_controls(runs, "gen", on_start=start_chain, start_label="Start the chain", running_label="Running…",
             start_disabled=bundle is None or needs_teacher)
if state.get("gen-stop") and exp is not None:  # Stop ends the chain: the runs not started yet are cancelled too
    exp.stop()
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def panel(exp) -> None:
    """Every run's state, the accuracy race, the chain's charts and what they show now."""
    plan = exp.plan
    views = {name: job_view(job, name) for name, job in exp.jobs.items()}
    pending, blocked = set(exp.pending), exp.blocked
    for run in plan.runs:
        if run.name in views:
            status_row(views[run.name].job, run.name)
        elif run.name in blocked:
            st.caption(f"**{run.name}** · will not start: {blocked[run.name]}")
        elif run.name in pending:
            st.caption(f"**{run.name}** · waiting for {run.teacher_from} to finish")
    t_acc = teacher.status().test_acc if teacher is not None and plan.kind == ASSISTANT else None
    accuracies = {name: (v.evals[-1].get("test_acc") if v.evals else None) for name, v in views.items()}
    finished = {name: v.status().get("state") == "finished" for name, v in views.items()}
    results = chain_results(plan, accuracies, finished)
    figures = chain_figures(plan, results, t_acc)
    columns = st.columns(len(figures))
    for i, (column, (figure, caption)) in enumerate(zip(columns, figures)):
        with column:
            show_chart(figure, f"gen-chain-{i}", caption=caption if i == len(figures) - 1 else None)
    if views:
        fig = accuracy_chart(list(views.values()), [], t_acc)
        colours = run_colours(plan)
        for trace in fig.data:  # a run's curve in its generation's (or role's) colour, as on the charts above
            if trace.name in colours:
                trace.update(line_color=colours[trace.name], marker_color=colours[trace.name])
        show_chart(fig, "gen-accuracy", caption="Test accuracy of every run of the chain as it trains.")


def run_colours(plan) -> dict[str, str]:
    """Each run's colour: its generation's in a born-again chain, its role's in a teacher-assistant one."""
    if plan.kind == BORN_AGAIN:
        by_group = dict(zip(plan.groups, (colour for colour, _ in group_styles(len(plan.groups)))))
    else:
        by_group = {ASSISTANT_GROUP: ASSISTANT_COLOUR, DIRECT_GROUP: DIRECT_COLOUR, VIA_GROUP: VIA_COLOUR}
    return {run.name: by_group[run.group] for run in plan.runs if run.group in by_group}


def idle() -> None:
    st.info("Choose a chain and press **Start**. Each run starts when the run it learns from has finished; the "
            "charts fill in live.", icon=":material/info:")


if bundle is not None:
    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset, action="Generations")
