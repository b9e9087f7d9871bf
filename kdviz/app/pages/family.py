"""Which distillation? Every method of the distillation family beside a scratch student, live.

One teacher (the Train a student page's), one tiny student, one small class-balanced transfer set,
one seed and the same batches: Start trains the scratch student and a copy of the student for each
chosen member of the family registry (``kdviz.present.family``: its label, colour, summary, knobs,
config and panel), as one experiment kept by ``kdviz.app.session``. A fragment redraws the test
accuracy of every run, the results table (gain over scratch) and each member's own panel figures with
their captions. The page lists whatever members are registered and never names a method.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import KEPT_KEY, dataset_and_run, live_experiment, page_state, read_runs, run_controls, status_row
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import show_teacher_status, teacher_job
from kdviz.app.training_view import accuracy_chart, cached_figure
from kdviz.present.distill_configs import distill_defaults, run_name
from kdviz.present.family import family_configs, family_members
from kdviz.present.family_story import family_base_config, leader_caption, leader_title, rows_from_views, table_records

MEMBERS, EPOCHS, TRANSFER, SEED, PACE, ERROR = "fam_members", "fam_epochs", "fam_transfer", "fam_seed", "fam_pace", "fam_error"
TRANSFER_SIZES = (50, 100, 200, 500, 1000, 2000, 5000, 0)  # labelled images; 0: the whole training set
PACE_S = float(os.environ.get("KDVIZ_FAMILY_PACE_S", "30"))  # "pace to watch": each run lasts at least this long
LAST_DATASET = "fam_defaults_dataset"
EXPERIMENT = "Which distillation?"  # this page's experiments in the session
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.5"))
REBUILD_S = 3.0 * REFRESH_S  # while a run is live, its member's panel figures are rebuilt at most this often


def knob_key(member, knob) -> str:
    """The session key of one member's knob: ``fam_<member>_<knob>``."""
    return f"fam_{member.name}_{knob.name}"


members = family_members()
by_name = {m.name: m for m in members}
by_label = {m.spec.label: m for m in members}  # the experiment's job names are the members' labels
settings = current_settings()


def dataset_defaults(dataset: str) -> dict:
    """The settings that follow the dataset: the Train-a-student defaults (``distill_defaults``)."""
    d = distill_defaults(dataset)
    return {EPOCHS: d.epochs, TRANSFER: d.transfer_size or 0, PACE: d.pace_s is not None}


DEFAULTS = {MEMBERS: [m.name for m in members], SEED: 0, **dataset_defaults(settings.dataset),
            **{knob_key(m, k): (int(k.default) if k.integer else float(k.default)) for m in members for k in m.knobs}}
state = page_state(DEFAULTS)
last_dataset = state.get(LAST_DATASET, settings.dataset)
if last_dataset != settings.dataset:  # a setting still at the old dataset's default moves to the new one's
    old, new = dataset_defaults(last_dataset), dataset_defaults(settings.dataset)
    for key, value in new.items():
        if state[KEPT_KEY].get(key) == old[key]:
            state[KEPT_KEY][key] = state[key] = value
state[LAST_DATASET] = settings.dataset
if any(name not in by_name for name in state.get(MEMBERS, [])):  # a member no longer registered
    state[MEMBERS] = [name for name in state[MEMBERS] if name in by_name]

st.title("Which distillation?")
st.markdown(
    "Copies of the same small student start from the same weights and see the same labelled images in the "
    "same order; each learns from the same teacher by a different method of the distillation family, and a "
    "**scratch student** learns from the labels alone. Which one ends best, and by how much? The caption "
    "under the chart says who leads now.")
with st.expander("The methods", icon=":material/menu_book:"):
    st.markdown("\n".join(f"* **{m.spec.label}**: {m.spec.summary}" for m in members))
session.touch()
bundle, teacher = dataset_and_run(settings, lambda: teacher_job(settings))
ready = teacher is not None and show_teacher_status(teacher, settings, key="fam-teacher")

exp = session.current_experiment(EXPERIMENT, settings.dataset)  # none started on another data set
runs = read_runs(exp)  # read once: the buttons and the live refresh of this rerun all agree
pick, epochs, more = st.columns([3, 2, 1], vertical_alignment="bottom")
pick.multiselect("Methods to train beside the scratch student", [m.name for m in members], key=MEMBERS,
                 format_func=lambda name: by_name[name].spec.label, placeholder="Choose at least one method")
epochs.slider("Epochs", 1, 1000, key=EPOCHS, help="Passes over the labelled transfer set (every student the same).")
with more.popover("More", icon=":material/tune:", width="stretch"):
    st.selectbox("Labelled images (transfer set)", TRANSFER_SIZES, key=TRANSFER,
                 format_func=lambda n: "all of the training set" if n == 0 else f"{n} ({n // 10} per class)",
                 help="Every student trains on the same class-balanced subset.")
    st.number_input("Seed (every student)", min_value=0, step=1, key=SEED)
    st.toggle(f"Pace to watch (at least {PACE_S:.0f} s)", key=PACE,
              help="A run computes in seconds; pacing spreads it out so the race can be followed.")


def knobs(chosen: list) -> None:
    """Each chosen member's settings, drawn from its ``Knob``s (a slider each)."""
    for member in chosen:
        st.markdown(f"**{member.spec.label}** · {member.spec.summary}")
        if not member.knobs:
            continue
        for col, knob in zip(st.columns(max(3, len(member.knobs))), member.knobs):
            kind = int if knob.integer else float
            col.slider(knob.label, kind(knob.low), kind(knob.high), step=kind(knob.step), key=knob_key(member, knob),
                       help=knob.help or None)


chosen = [by_name[name] for name in state.get(MEMBERS, []) if name in by_name]
knobs(chosen)


def experiment_configs() -> dict:
    """``{label: config}`` of the scratch student and each chosen member (a ``ValueError`` for a bad setting)."""
    choice, train_size, transfer = settings.student_model, len(bundle.train_labels), int(state[TRANSFER])
    base = family_base_config(
        teacher=str(teacher.path), dataset=settings.dataset, data_root=settings.data_root, train_size=train_size,
        runs_root=session.runs_root(), model=choice.model, model_options=choice.options, epochs=int(state[EPOCHS]),
        seed=int(state[SEED]), transfer_size=transfer if 0 < transfer < train_size else None,
        pace_s=PACE_S if state[PACE] else None)
    return family_configs(base, {m.name: {k.name: state[knob_key(m, k)] for k in m.knobs} for m in chosen})


def start_runs() -> None:
    """The Start button: the scratch student and every chosen member as one experiment (a bad setting is shown)."""
    state[ERROR] = None
    try:
        session.start_experiment(EXPERIMENT, experiment_configs())
    except (ValueError, TypeError, OSError) as exc:
        state[ERROR] = plain_message(exc)


def continue_runs() -> None:
    """Continue: the stopped runs resume from their checkpoints (a failure is shown, never raised)."""
    state[ERROR] = None
    try:
        session.resume_experiment(exp)
    except (ValueError, TypeError, OSError) as exc:
        state[ERROR] = plain_message(exc)


run_controls(runs, "fam", on_start=start_runs, start_label="Start the chosen methods and scratch",
             running_label="Running…", start_disabled=not ready or not chosen, on_continue=continue_runs)
if state.get(ERROR):
    st.error(f"**Start:** {state[ERROR]}", icon=":material/warning:")
st.divider()


def panels(views: list) -> None:
    """Each member's own live figures (``FamilyMember.panel``), with their captions, two to a row."""
    for view in views:
        member = by_label.get(view.label)
        if member is None or member.panel is None:
            continue
        with user_errors(f"{view.label} panel"):
            figures = cached_figure(f"family-panel-{view.path}", (view.metric_version, view.snapshot_version),
                                    lambda: list(member.panel(view)), 0.0 if view.done else REBUILD_S)
            if not figures:
                continue
            st.subheader(view.label)
            for first in range(0, len(figures), 2):
                for i, (col, panel) in enumerate(zip(st.columns(2), figures[first:first + 2]), first):
                    with col:
                        show_chart(panel.figure, f"family-{run_name(view.label)}-{i}", caption=panel.caption or None)


def charts(exp) -> None:
    """Status rows, the accuracy race of every run, the results table and each member's panel."""
    views = [job_view(job, name) for name, job in exp.jobs.items()]
    for view in views:
        status_row(view.job, view.label)
    t_acc = teacher.status().test_acc if teacher is not None else None
    rows = rows_from_views(views)
    version = (tuple(v.metric_version for v in views), t_acc)
    fig = cached_figure(f"family-acc-{views[0].path}", version, lambda: accuracy_chart(views, [], t_acc, leader_title(rows)),
                        0.0 if exp.done else REFRESH_S)
    show_chart(fig, "family-accuracy", caption=leader_caption(rows, finished=exp.done, teacher_acc=t_acc))
    st.dataframe(table_records(rows), hide_index=True)
    panels(views)


def idle() -> None:
    st.info("Press **Start** to train every chosen method and the scratch student at once. The charts fill in "
            "live; you need not click anything.", icon=":material/info:")


if bundle is not None:
    live_experiment(EXPERIMENT, charts, idle, REFRESH_S, runs=runs, dataset=settings.dataset)
