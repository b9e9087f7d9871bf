"""Sweeps: many KD students over a grid of knobs (T x alpha by default), scheduled by Ray Tune.

Choose two config fields and their values, the seeds, how many trials run at once and whether ASHA
may stop poor trials early, press Start: ``kdviz.sweep.start_sweep`` plans and checks every trial,
then runs them on Ray (this machine's cores, or the cluster at ``$RAY_ADDRESS``) in a background
thread and returns at once, so the page never waits. Each trial is an ordinary run folder of a KD
student of the sidebar's teacher; the sweep's record (``<runs root>/sweeps/<name>-<time>/sweep.json``)
is rewritten after every result, and a fragment redraws every second from it: the heatmap (mean ±
spread over seeds), parallel coordinates and the best trials (``kdviz.present.sweep``). Earlier
sweeps reopen below. Without Ray the page says how to install it.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import dataset_and_run, guarded, page_state, show_run_status
from kdviz.app.errors import user_errors
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import teacher_job
from kdviz.present.sweep import (
    DEFAULT_GRID, best_table_figure, best_trials, default_axes, default_sweep_base, failed_lines, field_title, heatmap_figure,
    parallel_figure, sweep_caption, swept_fields, values_text,
)
from kdviz.sweep import (
    INSTALL_COMMAND, INSTALL_MESSAGE, AshaOptions, SweepSpec, load_sweep, parse_values, ray_available, saved_sweeps,
    start_sweep,
)

K = {"x": "sw_x", "x_values": "sw_x_values", "y": "sw_y", "y_values": "sw_y_values", "seeds": "sw_seeds",
     "at_once": "sw_at_once", "cpus": "sw_cpus", "asha": "sw_asha", "grace": "sw_grace", "steps": "sw_steps",
     "job": "sw_sweeping", "pick": "sw_pick", "opened": "sw_opened"}
FIELDS = ["T", "alpha", "lr", "batch_size", "train_subset", "weight_decay"]
NO_FIELD = "(none)"
(GX, GXV), (GY, GYV) = DEFAULT_GRID.items()
DEFAULTS = {K["x"]: GX, K["x_values"]: values_text(GXV), K["y"]: GY, K["y_values"]: values_text(GYV), K["seeds"]: 2,
            K["at_once"]: 2, K["cpus"]: 1, K["asha"]: False, K["grace"]: 2,
            K["steps"]: int(os.environ.get("KDVIZ_SWEEP_STEPS", "300"))}  # steps per trial (a multiple of 20)
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)

st.title("Sweeps: how a method answers its knobs")
st.markdown(
    "One run says little about a method; a **grid** of runs shows how it responds to its knobs. Choose two "
    "settings and their values, the seeds and how many trials run at once, press **Start**: every combination "
    "trains a KD student of the sidebar's teacher on **Ray Tune**, and the heatmap fills in as trials report, "
    "each cell the mean over seeds with its spread. **ASHA** (Li et al. 2020) stops trials that fall behind at "
    "each rung, so the budget goes to the promising ones.")
session.touch()
settings = current_settings()


def draw_record(data: dict, where: str) -> None:
    """The record's caption, heatmap (axes chosen here), parallel coordinates, best trials and failures."""
    st.caption(sweep_caption(data))
    names = swept_fields(data)
    x, y = default_axes(data)
    if len(names) > 2:
        c1, c2 = st.columns(2)
        x = c1.selectbox("Heatmap columns", names, index=names.index(x), key=f"sw_hx_{where}", format_func=field_title)
        rows = [NO_FIELD, *[n for n in names if n != x]]
        y = c2.selectbox("Heatmap rows", rows, index=rows.index(y) if y in rows else 0, key=f"sw_hy_{where}",
                         format_func=field_title)
        y = None if y == NO_FIELD else y
    show_chart(heatmap_figure(data, x, y), f"sweep-heatmap-{where}",
               caption="Each cell: the mean test accuracy of its trials (seeds pooled) ± their standard deviation; "
                       "a trial ASHA stopped counts with the accuracy it had then.")
    if not best_trials(data, limit=1):
        st.caption("Parallel coordinates and the best trials appear with the first evaluation.")
    else:
        c1, c2 = st.columns(2)
        with c1:
            show_chart(parallel_figure(data), f"sweep-parallel-{where}", csv=False)
        with c2:
            show_chart(best_table_figure(data), f"sweep-best-{where}", csv=False)
    for line in failed_lines(data):
        st.warning(line, icon=":material/error:")


def live_panel(was_live: bool) -> None:
    """Redraw the kept sweep from its record; the whole page reruns once it has ended."""
    session.touch()
    sweeping = session.kept_job(K["job"])
    if was_live and sweeping.done:
        st.rerun(scope="app")
    st.subheader(f"Sweep {sweeping.record.name}")
    draw_record(sweeping.record.to_dict(), "live")


def sweep_spec(teacher: str) -> SweepSpec:
    """The form's sweep (a bad value raises ``ValueError`` naming the field)."""
    grid = {state[K["x"]]: parse_values(state[K["x"]], state[K["x_values"]])}
    if state[K["y"]] != NO_FIELD:
        if state[K["y"]] == state[K["x"]]:
            raise ValueError(f"choose two different fields (both are {state[K['x']]})")
        grid[state[K["y"]]] = parse_values(state[K["y"]], state[K["y_values"]])
    asha = AshaOptions(grace_period=int(state[K["grace"]])) if state[K["asha"]] else None
    base = default_sweep_base(settings.dataset, teacher, max_steps=int(state[K["steps"]]))
    if settings.data_root:
        base["data_root"] = settings.data_root
    return SweepSpec(base=base, grid=grid, seeds=list(range(int(state[K["seeds"]]))), asha=asha,
                     trials_at_once=int(state[K["at_once"]]), cpus_per_trial=float(state[K["cpus"]]),
                     name=f"kd-{settings.dataset}")


def sweep_form() -> None:
    """The fields, values and scheduling options, the teacher's state, Start and Stop."""
    c1, c2, c3, c4 = st.columns([2, 3, 2, 3], vertical_alignment="bottom")
    c1.selectbox("Columns", FIELDS, key=K["x"], format_func=field_title)
    c2.text_input("Column values", key=K["x_values"], help="Comma-separated, e.g. 1, 2, 4, 8")
    c3.selectbox("Rows", [NO_FIELD, *FIELDS], key=K["y"], format_func=lambda f: f if f == NO_FIELD else field_title(f))
    c4.text_input("Row values", key=K["y_values"], help="Comma-separated, e.g. 0.5, 0.9, 0.99")
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    c1.slider("Seeds", 1, 5, key=K["seeds"], help="Each combination trains once per seed (0, 1, ...).")
    c2.slider("Trials at once", 1, 8, key=K["at_once"])
    c3.slider("Steps per trial", 20, 2000, step=20, key=K["steps"])
    with c4.popover("Scheduling", icon=":material/tune:", width="stretch"):
        st.number_input("CPUs per trial", min_value=0.25, max_value=64.0, step=0.25, key=K["cpus"],
                        help="What each trial asks Ray for; torch uses that many threads (at least one).")
        st.toggle("ASHA early stopping", key=K["asha"], help="Stop trials whose test accuracy falls in the bottom "
                  "half of those that reached the same evaluation (a rung).")
        st.number_input("Grace period (evaluations)", min_value=1, max_value=50, key=K["grace"])
    _, teacher = dataset_and_run(settings, lambda: teacher_job(settings))
    ready = teacher is not None and show_run_status(teacher, "teacher", lambda: teacher_job(settings, retry=True),
                                                    "sw-teacher")
    sweeping = session.kept_job(K["job"])
    running = sweeping is not None and not sweeping.done
    b1, b2, _ = st.columns([2, 1, 3])
    if b1.button("Start" if not running else "Running… stop it to start again", type="primary", key="sw-start",
                 icon=":material/play_arrow:", disabled=not ready or running, width="stretch"):
        with user_errors("Start"):
            started = start_sweep(sweep_spec(str(teacher.path)), runs_root=session.runs_root())
            session.keep_job(K["job"], started)
            st.rerun()
    b2.button("Stop", icon=":material/stop:", disabled=not running, width="stretch", key="sw-stop",
              on_click=sweeping.stop if running else None)


if ray_available():
    sweep_form()
    sweeping = session.kept_job(K["job"])
    if sweeping is not None:
        running = not sweeping.done
        st.fragment(run_every=REFRESH_S if running else None)(guarded("Sweep", live_panel))(running)
else:
    st.error(INSTALL_MESSAGE, icon=":material/extension_off:")
    st.code(INSTALL_COMMAND, language="bash")

st.divider()
st.subheader("Earlier sweeps")
listed = {str(path): label for path, label in saved_sweeps(session.runs_root())}
if not listed:
    st.caption(f"No sweeps yet under `{session.runs_root()}`.")
else:
    if state.get(K["pick"]) not in listed:
        state[K["pick"]] = next(iter(listed))
    o1, o2 = st.columns([5, 1], vertical_alignment="bottom")
    o1.selectbox("Sweep", list(listed), key=K["pick"], format_func=listed.get)
    if o2.button("Open", icon=":material/folder_open:", width="stretch", key="sw-open"):
        state[K["opened"]] = state[K["pick"]]
opened = state.get(K["opened"])
if opened:
    with user_errors("Open"):
        st.markdown(f"#### {os.path.basename(opened)}")
        draw_record(load_sweep(opened).to_dict(), "opened")
