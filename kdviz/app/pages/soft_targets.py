"""Soft targets: what temperature does to a teacher's probabilities (Hinton, Vinyals, Dean 2015).

q_i = exp(z_i / T) / sum_j exp(z_j / T) (eq. 1). The temperature slider, the probability bars and
the entropy curve are one browser-side component (``kdviz.app.temperature``): a move redraws in the
browser from frames precomputed per slider stop (``kdviz.present.temperature.explorer_spec``) and
then reports T, so this page's state follows. The page keeps T in one session key of its own
(``st_T``, never a widget's key, which Streamlit drops while another page shows): the exact box,
the component and the CSV all read it, so they agree after navigating away and back and after a
dataset switch. The sample picker and "most confused" (smallest top-2 gap at T = 1) are
``kdviz.present``'s, shared with the Jupyter TemperatureExplorer.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from kdviz.app import session
from kdviz.app.charts import IMAGE_FORMAT_KEY, csv_button, show_chart
from kdviz.app.components import dataset_and_run
from kdviz.app.errors import parse_temperature, plain_message, user_errors
from kdviz.app.sidebar import current_settings
from kdviz.app.teacher import show_teacher_status, teacher_job, teacher_test_logits
from kdviz.app.temperature import soft_targets_player
from kdviz.distill import temperature_table
from kdviz.figures.soft_targets import sample_image, softmax_curves
from kdviz.present.confusion import MOST_CONFUSED_HELP, confusion_order
from kdviz.present.temperature import explorer_spec, stop_index

# st_T, st_T_typed, st_T_rev and st_sample are the page's own keys; the others belong to widgets.
K = {"T": "st_T", "typed": "st_T_typed", "rev": "st_T_rev", "exact": "st_T_exact", "T_error": "st_T_error",
     "player": "st_T_player", "index": "st_index", "sample": "st_sample", "confused": "st_confused_rank",
     "curves_seed": "st_curves_seed"}
DEFAULT_T = 4.0

state = st.session_state
for key, value in ((K["T"], DEFAULT_T), (K["typed"], None), (K["rev"], 0), (K["T_error"], None),
                   (K["sample"], 0), (K["confused"], -1), (K["curves_seed"], 0)):
    state.setdefault(key, value)


@st.cache_resource(show_spinner=False, max_entries=8)
def cached_softmax_curves(seed: int):
    """The softmax-curves figure per seed (it does not depend on the sample or T)."""
    return softmax_curves((1, 2, 5, 10, 20), num_logits=10, seed=seed)


@st.cache_data(show_spinner=False, max_entries=64)
def cached_spec(row: tuple[float, ...], class_names: tuple[str, ...], typed_T: float | None) -> dict:
    """The explorer's figures and per-stop frames for one sample (built once, then only looked up)."""
    return explorer_spec(row, class_names, typed_T)


def on_player() -> None:
    """The slider moved in the browser: the page's T follows (the browser has already redrawn)."""
    value = state.get(K["player"])
    if isinstance(value, dict) and isinstance(value.get("T"), (int, float)) and value["T"] > 0:
        state[K["T"]], state[K["T_error"]] = float(value["T"]), None


def on_exact() -> None:
    """A typed T is kept exactly (it becomes a slider stop of its own); a bad one is named, T kept."""
    try:
        T = parse_temperature(state[K["exact"]])
    except (TypeError, ValueError) as exc:
        state[K["T_error"]] = plain_message(exc)
        return
    state[K["T"]] = state[K["typed"]] = T
    state[K["T_error"]], state[K["rev"]] = None, state[K["rev"]] + 1


def keep_sample() -> None:
    state[K["sample"]] = int(state[K["index"]])


def pick_random(n: int) -> None:
    state[K["sample"]] = int(np.random.default_rng().integers(n))


def pick_confused(order: np.ndarray) -> None:
    state[K["confused"]] = (state[K["confused"]] + 1) % len(order)
    state[K["sample"]] = int(order[state[K["confused"]]])


st.title("Soft targets")
st.markdown(
    "A teacher's probabilities say more than its answer: how much it thinks a **3** looks like an "
    "**8**. Dividing the logits by a temperature *T* before the softmax makes those small probabilities "
    "visible (Hinton, Vinyals and Dean 2015, eq. 1). Students learn from them:"
)
st.latex(r"q_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}")
session.touch()
settings = current_settings()
bundle, job = dataset_and_run(settings, lambda: teacher_job(settings))

st.header("A teacher's soft targets", divider="gray")
ready = job is not None and show_teacher_status(job, settings, key="st-teacher")


def soft_target_rows(spec: dict, stop: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two charts' data in long form (series, x, y): the bars at T and at T = 1, and the entropy
    at every slider stop."""
    frame, one = spec["frames"][stop], spec["frames"][stop_index(spec, 1.0)]
    classes = list(spec["bars"]["data"][0]["x"])
    bars = pd.DataFrame({"series": [frame["bars"]["name"]] * len(classes) + ["T = 1"] * len(classes),
                         "x": classes * 2, "y": frame["bars"]["y"] + one["bars"]["y"]})
    curve = pd.DataFrame({"series": "entropy", "x": spec["temperatures"],
                          "y": [f["marker"]["y"][0] for f in spec["frames"]]})
    return bars, curve


@st.fragment
def explorer(logits: np.ndarray) -> None:
    """Sample picker, exact-T box and the browser-side slider with the bars and the entropy curve."""
    n = len(logits)
    state[K["sample"]] = min(int(state[K["sample"]]), n - 1)
    state[K["index"]] = state[K["sample"]]  # the widget's key is dropped while another page shows
    if not state[K["T_error"]]:
        state[K["exact"]] = state[K["T"]]
    order = confusion_order(logits)
    pick, image_col = st.columns([3, 2], vertical_alignment="bottom")
    with pick:
        st.number_input(f"Test sample (0 to {n - 1})", min_value=0, max_value=n - 1, step=1, key=K["index"],
                        on_change=keep_sample)
        b1, b2 = st.columns(2)
        b1.button("Random sample", on_click=pick_random, args=(n,), icon=":material/casino:", width="stretch")
        b2.button("Most confused", on_click=pick_confused, args=(order,), icon=":material/help:", width="stretch",
                  help=MOST_CONFUSED_HELP)
        st.number_input("Type an exact T (or drag the slider below)", key=K["exact"], step=0.5, format="%.3g",
                        on_change=on_exact, help="Any positive number. T = 1 is the ordinary softmax.")
        if state[K["T_error"]]:
            st.error(f"**Temperature:** {state[K['T_error']]}", icon=":material/warning:")
    i, T = int(state[K["sample"]]), float(state[K["T"]])
    label = bundle.class_names[int(bundle.test_labels[i])]
    guess = bundle.class_names[int(np.argmax(logits[i]))]
    with image_col:
        verdict = "right" if label == guess else "wrong"
        st.plotly_chart(sample_image(bundle.test_images[i].numpy(), f"#{i}: label {label}, teacher says {guess} ({verdict})"),
                        theme=None, config={"displayModeBar": False}, key="chart-sample")
    typed = state[K["typed"]]
    spec = cached_spec(tuple(float(v) for v in logits[i]), tuple(bundle.class_names), typed)
    stop = stop_index(spec, T)
    soft_targets_player(spec, stop, state[K["rev"]], key=K["player"], on_change=on_player,
                        image_format=state.get(IMAGE_FORMAT_KEY, "png"))
    bars, curve = soft_target_rows(spec, stop)
    left, right = st.columns(2)
    with left:
        csv_button(bars, "soft-targets")
    with right:
        csv_button(curve, "entropy-vs-temperature")


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
