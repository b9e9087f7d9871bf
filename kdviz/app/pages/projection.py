"""ProjectionNet: how many bits does a digit need?

Ravi, "ProjectionNet" (arXiv:1708.00630, 2017): a small projection network reads T locality-sensitive
hash codes of d bits each (random hyperplanes, fixed from a seed, section 3.3) and learns jointly with a
full trainer network on eq. 1, lambda1 L_theta + lambda2 L_p + lambda3 L_p_hat. Start trains, in the
background, one projection net per bit budget (T, T/2, T/4, T/8 hash functions of d bits), each with
its own trainer (configs and captions from ``kdviz.present.projection_story``); a fragment reads the
runs' snapshots and records every second and redraws the probe digits' bits, the loss parts, accuracy
against bits and the model sizes. The page never trains anything itself.
"""
from __future__ import annotations

import os

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import show_chart
from kdviz.app.components import (
    copy_link, live_experiment, page_state, read_runs, run_controls, status_row, url_number, url_settings,
)
from kdviz.app.errors import plain_message, user_errors
from kdviz.app.live import job_view
from kdviz.app.replay import show_live_or_replay
from kdviz.app.sidebar import current_settings, load_bundle
from kdviz.methods.projection import bits_of
from kdviz.present.projection_story import (
    PROJECTION_DEFAULTS as PD, accuracy_figure, accuracy_points, bits_figure, loss_figure, model_sizes,
    projection_configs, size_caption,
)

K = {"T": "pn_hashes", "d": "pn_bits", "hidden": "pn_hidden", "l1": "pn_lambda1", "l2": "pn_lambda2",
     "l3": "pn_lambda3", "epochs": "pn_epochs", "lr": "pn_lr", "seed": "pn_seed", "sweep": "pn_sweep",
     "error": "pn_start_error"}
DEFAULTS = {K["T"]: PD.num_hashes, K["d"]: PD.bits_per_hash, K["hidden"]: PD.hidden, K["l1"]: PD.lambda1,
            K["l2"]: PD.lambda2, K["l3"]: PD.lambda3, K["epochs"]: PD.epochs, K["lr"]: PD.lr, K["seed"]: PD.seed,
            K["sweep"]: True}
HIDDEN_WIDTHS = [16, 32, 64, 128, 256]
MAX_EPOCHS = 60
EXPERIMENT = "ProjectionNet bit budgets"
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state(DEFAULTS)
IN_URL = {K["T"]: url_number(1, 64, int), K["d"]: url_number(1, 16, int), K["epochs"]: url_number(1, MAX_EPOCHS, int),
          K["l1"]: url_number(0.0, 100.0), K["l2"]: url_number(0.0, 100.0), K["l3"]: url_number(0.0, 100.0),
          K["lr"]: url_number(1e-5, 1.0), K["seed"]: url_number(0, 2**31 - 1, int)}
url_settings(IN_URL)

INTRO = r"""
A **projection network** never sees the pixels. It sees $T$ hash codes of $d$ bits each: bit $j$ of hash
$k$ is $\mathrm{sgn}(\langle w_{k,j}, x\rangle)$ for random hyperplanes $w_{k,j}$ drawn once from a seed and
**never trained** (section 3.3). Nearby digits get nearby codes. A small fully connected net on those
$T\cdot d$ bits learns **jointly** with a full *trainer* network (Ravi 2017, eq. 1):
"""
JOINT_LOSS = (r"\mathcal{L} = \lambda_1 \mathcal{L}_\theta(\text{trainer}, y) + \lambda_2 \mathcal{L}_p(\text{projection}, "
              r"\text{trainer}) + \lambda_3 \hat{\mathcal{L}}_p(\text{projection}, y)")  # eq. 1
AFTER = "Only the projection net is deployed; $P$ costs no bytes since it is regenerated from its seed."
st.title("ProjectionNet: how many bits does a digit need?")
st.markdown(INTRO + f"\n$${JOINT_LOSS}$$\n\n" + AFTER)
st.caption("This page trains its own projection nets and trainers on the sidebar's dataset; the sidebar's teacher "
           "and student belong to the soft-target pages.")
session.touch()
settings = current_settings()
bundle = None
with user_errors("Dataset"):
    bundle = load_bundle(settings)

exp = session.current_experiment(EXPERIMENT, settings.dataset)
runs = read_runs(exp)
c1, c2, c3, c4, c5 = st.columns(5, vertical_alignment="bottom")
c1.slider("T (hash functions)", 1, 64, key=K["T"])
c2.slider("d (bits per hash function)", 1, 16, key=K["d"])
c3.selectbox("Projection net hidden width", HIDDEN_WIDTHS, key=K["hidden"])
c4.slider("Epochs", 1, MAX_EPOCHS, key=K["epochs"])
with c5.popover("More settings", icon=":material/tune:", width="stretch"):
    st.number_input("λ1 (trainer on the labels)", min_value=0.0, max_value=100.0, step=0.1, key=K["l1"], format="%g")
    st.number_input("λ2 (projection net on the trainer: distillation)", min_value=0.0, max_value=100.0, step=0.1,
                    key=K["l2"], format="%g")
    st.number_input("λ3 (projection net on the labels)", min_value=0.0, max_value=100.0, step=0.1, key=K["l3"],
                    format="%g")
    st.checkbox("Also train T/2, T/4 and T/8 (accuracy against bits)", key=K["sweep"])
    st.number_input("Learning rate (SGD, momentum 0.9)", min_value=1e-5, max_value=1.0, key=K["lr"], format="%g")
    st.number_input("Seed (networks and P)", min_value=0, step=1, key=K["seed"])


def configs() -> dict:
    """The runs these settings give, by job name (raises ``ValueError`` for a bad setting)."""
    return projection_configs(
        dataset=settings.dataset, data_root=settings.data_root, num_hashes=int(state[K["T"]]),
        bits_per_hash=int(state[K["d"]]), hidden=int(state[K["hidden"]]), lambda1=float(state[K["l1"]]),
        lambda2=float(state[K["l2"]]), lambda3=float(state[K["l3"]]), epochs=int(state[K["epochs"]]),
        lr=float(state[K["lr"]]), seed=int(state[K["seed"]]), sweep=bool(state[K["sweep"]]),
        runs_root=session.runs_root())


def start_runs() -> None:
    """The Start button: every bit budget as one experiment (a bad setting is shown, nothing starts)."""
    state[K["error"]] = None
    try:
        session.start_experiment(EXPERIMENT, configs())
    except (ValueError, TypeError, OSError) as exc:
        state[K["error"]] = plain_message(exc)


run_controls(runs, "pn", on_start=start_runs, start_label="Start training", running_label="Running…",
             start_disabled=bundle is None)
copy_link(IN_URL)
if state.get(K["error"]):
    st.error(f"**Start:** {state[K['error']]}", icon=":material/warning:")
st.divider()


def sizes(main) -> None:
    """The deployed projection net's bytes beside its trainer's, for the chosen T x d."""
    t, d = bits_of(main.config)
    size = model_sizes(main.config, bundle.input_shape, bundle.num_classes)
    a, b, c = st.columns(3)
    a.metric("Projection net (deployed)", f"{size.projection_bytes:,} bytes")
    b.metric("P: hyperplanes", "0 bytes", help=f"regenerated from the seed; {size.planes_bytes:,} bytes as floats")
    c.metric("Trainer (not deployed)", f"{size.trainer_bytes:,} bytes")
    st.caption(size_caption(size, t * d))


def panel(exp) -> None:
    """Status, sizes, the probe digits' bits, the loss parts and accuracy against bits."""
    views = [job_view(job, label) for label, job in exp.jobs.items()]
    for view in views:
        status_row(view.job, view.label)
    main = views[0]
    sizes(main)
    holder: dict = {}

    def draw(raw):
        fig, holder["caption"] = bits_figure(main, raw)
        return fig

    if main.snapshots:
        holder["caption"] = bits_figure(main)[1]
    show_live_or_replay(main, "pn-bits", draw, caption=holder.get("caption"))
    a, b = st.columns(2)
    with a:
        loss = loss_figure(main)
        if loss is not None:
            show_chart(loss[0], "pn-loss", caption=loss[1])
    with b:
        points_ = accuracy_points(views, bundle.input_shape, bundle.num_classes)
        if points_:
            fig, caption = accuracy_figure(points_)
            show_chart(fig, "pn-accuracy", caption=caption)


def idle() -> None:
    st.info("Press **Start** to train the projection nets and their trainers. The charts fill in live; you need "
            "not click anything.", icon=":material/info:")


if bundle is not None:
    live_experiment(EXPERIMENT, panel, idle, REFRESH_S, runs=runs, dataset=settings.dataset)
