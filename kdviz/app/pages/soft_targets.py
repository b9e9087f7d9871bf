"""Soft targets: what temperature does to a teacher's probabilities (Hinton, Vinyals, Dean 2015).

q_i = exp(z_i / T) / sum_j exp(z_j / T) (eq. 1). The sample and temperature controls live in a
fragment, so a slider move reruns only the two charts that depend on T. The temperature grid and
"most confused" (smallest top-2 gap at T = 1) are ``kdviz.present``'s, shared with the Jupyter
TemperatureExplorer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.components import ExactKeys, dataset_and_run, exact_callbacks, exact_error
from kdviz.app.errors import parse_temperature, user_errors
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import show_teacher_status, teacher_job, teacher_test_logits
from kdviz.app.temperature import TemperatureView
from kdviz.distill import temperature_table
from kdviz.figures.soft_targets import sample_image, softmax_curves
from kdviz.present.confusion import MOST_CONFUSED_HELP, confusion_order
from kdviz.present.temperature import TEMPERATURES, format_temperature, nearest_temperature

K = {"index": "st_index", "T": "st_T", "slider": "st_T_slider", "exact": "st_T_exact", "T_error": "st_T_error",
     "confused": "st_confused_rank", "curves_seed": "st_curves_seed", "view": "st_view"}
DEFAULT_T = 4.0
T_KEYS = ExactKeys(value=K["T"], slider=K["slider"], exact=K["exact"], error=K["T_error"])

state = st.session_state
state.setdefault(K["T"], DEFAULT_T)
state.setdefault(K["slider"], nearest_temperature(state[K["T"]]))
state.setdefault(K["exact"], state[K["T"]])
state.setdefault(K["index"], 0)
state.setdefault(K["confused"], -1)
state.setdefault(K["curves_seed"], 0)


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_softmax_curves(seed: int):
    """The softmax-curves figure per seed (it does not depend on the sample or T)."""
    return softmax_curves((1, 2, 5, 10, 20), num_logits=10, seed=seed)


# A typed T is kept exactly; the slider moves to the nearest grid value (an end beyond the grid).
on_slider, on_exact = exact_callbacks(T_KEYS, parse_temperature, nearest_temperature)


def pick_random(n: int) -> None:
    state[K["index"]] = int(np.random.default_rng().integers(n))


def pick_confused(order: np.ndarray) -> None:
    state[K["confused"]] = (state[K["confused"]] + 1) % len(order)
    state[K["index"]] = int(order[state[K["confused"]]])


st.title("Soft targets")
st.markdown(
    "A teacher's probabilities say more than its answer: how much it thinks a **3** looks like an "
    "**8**. Dividing the logits by a temperature *T* before the softmax, "
    r"$q_i = \frac{\exp(z_i/T)}{\sum_j \exp(z_j/T)}$, makes those small probabilities visible "
    "(Hinton, Vinyals and Dean 2015, eq. 1). Students learn from them."
)
session.touch()
settings = current_settings()
bundle, job = dataset_and_run(settings, lambda: teacher_job(settings))

st.header("A teacher's soft targets", divider="gray")
ready = job is not None and show_teacher_status(job, settings, key="st-teacher")


@st.fragment
def explorer(logits: np.ndarray) -> None:
    """Sample picker, temperature controls, probability bars and the entropy curve."""
    n = len(logits)
    state[K["index"]] = min(int(state[K["index"]]), n - 1)
    order = confusion_order(logits)
    pick, image_col = st.columns([3, 2], vertical_alignment="bottom")
    with pick:
        st.number_input(f"Test sample (0 to {n - 1})", min_value=0, max_value=n - 1, step=1, key=K["index"])
        b1, b2 = st.columns(2)
        b1.button("Random sample", on_click=pick_random, args=(n,), icon=":material/casino:", width="stretch")
        b2.button("Most confused", on_click=pick_confused, args=(order,), icon=":material/help:", width="stretch",
                  help=MOST_CONFUSED_HELP)
        st.select_slider("Temperature T (log scale)", options=TEMPERATURES, key=K["slider"],
                         format_func=format_temperature, on_change=on_slider)
        st.number_input("…or type an exact T", key=K["exact"], step=0.5, format="%.3g", on_change=on_exact,
                        help="Any positive number. T = 1 is the ordinary softmax.")
        exact_error(T_KEYS, "Temperature")
    i, T = int(state[K["index"]]), float(state[K["T"]])
    label = bundle.class_names[int(bundle.test_labels[i])]
    guess = bundle.class_names[int(np.argmax(logits[i]))]
    with image_col:
        verdict = "right" if label == guess else "wrong"
        st.plotly_chart(sample_image(bundle.test_images[i].numpy(), f"#{i}: label {label}, teacher says {guess} ({verdict})"),
                        theme=None, config={"displayModeBar": False}, key="chart-sample")
    view = state.get(K["view"])
    if view is None or view[0] != (id(logits), i):  # built once per sample; a T change only updates numbers
        view = state[K["view"]] = ((id(logits), i), TemperatureView(logits[i], bundle.class_names))
    bars, curve = view[1].figures(T)
    left, right = st.columns(2)
    with left:
        show_chart(bars, "soft-targets", caption=f"Filled bars: T = {format_temperature(T)}; outlines: T = 1. "
                   "Raise T and the wrong classes the teacher finds similar rise out of the floor.")
    with right:
        show_chart(curve, "entropy-vs-temperature", caption="The dot is the current T. Entropy climbs from "
                   "nearly 0 (one-hot) to ln 10 (all classes equal); the useful range sits on the slope.")


if ready:
    with user_errors("Soft targets"):
        explorer(teacher_test_logits(job, settings))
else:
    st.caption("The worked example and the curves below need no teacher: read them while it trains.")

st.header("Worked example: logits [2, 7, 10]", divider="gray")
table = pd.DataFrame(temperature_table((2.0, 7.0, 10.0), (1, 5, 10, 20)))
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.5f") for c in table.columns if c != "T"}
             | {"T": st.column_config.NumberColumn(format="%g")})
st.caption("At T = 1 the largest logit takes 95% of the mass; at T = 20 the three classes are nearly even, "
            "yet their order is kept: the ratios between small probabilities are what a student learns.")
csv_button(table, "worked-example")

st.header("Softmax curves", divider="gray")
seed = int(state[K["curves_seed"]])
show_chart(cached_softmax_curves(seed), "softmax-curves",
           caption="Ten random logits in (-10, 10), sorted. At T = 1 the top logit takes almost everything; "
                   "as T grows the curve flattens toward 1/10 while keeping its order.")
if st.button("New random logits", icon=":material/refresh:"):
    state[K["curves_seed"]] = seed + 1
    st.rerun()
