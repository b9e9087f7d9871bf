"""Pruning: remove the smallest weights, see what it costs, and win the accuracy back by retraining.

Han, Pool, Tran, Dally 2015 ("Learning both Weights and Connections"): magnitude pruning, then
retraining with the pruned weights held at zero; Zhu & Gupta 2017: the cubic (AGP) schedule
s_t = s_f + (s_i - s_f)(1 - (t - t_0)/(n dt))^3; Li et al. 2017: whole filters ranked by L1 norm.
The slider re-evaluates the trained baseline at once (``MaskedEvaluator``); the live section runs an
engine job with the pruning hook (``kdviz.present.compression_configs.prune_fine_tune_config``) and
a fragment redraws its snapshots (read by the method's typed reader) every second.
"""
from __future__ import annotations

import os
from bisect import bisect_right

import streamlit as st

from kdviz.app import session
from kdviz.app.charts import csv_button, show_chart
from kdviz.app.components import (
    ExactKeys, copy_link, exact_callbacks, exact_error, guarded, job_on_dataset, live_experiment, page_state, pick_layer,
    read_runs, run_controls, status_row, url_choice, url_number, url_settings,
)
from kdviz.app.errors import user_errors
from kdviz.app.export import export_menu
from kdviz.app.live import job_view
from kdviz.app.pruning_stops import SPARSITY_GRID, sparsity_player_spec
from kdviz.app.pruning_view import (
    MOVEMENT_TITLE, dense_unit_norms, evaluate_slider, load_baseline, movement_panel, ready_baseline, remove_units,
    run_sensitivity, speed_section,
)
from kdviz.app.replay import show_live_or_replay
from kdviz.app.stops_player import stops_player
from kdviz.app.sidebar import current_settings
from kdviz.engine import start
from kdviz.figures.pruning import filter_norm_bars, sensitivity_lines
from kdviz.methods.prune import PRUNE
from kdviz.present.compression_charts import layer_charts, pruning_accuracy, pruning_charts, readings, sparsity_chart
from kdviz.present.compression_configs import prune_fine_tune_config
from kdviz.present.movement import movement_runs
from kdviz.present.stops_player import nearest_stop
from kdviz.prune import check_sparsity

K = {"model": "pr_model", "scope": "pr_scope", "layer": "pr_layer", "target": "pr_live_target", "epochs": "pr_live_epochs",
     "live_scope": "pr_live_scope", "job": "pr_job", "follow": "pr_follow", "scrub": "pr_scrub",
     "live_layer": "pr_live_layer", "unit_layer": "pr_unit_layer", "norm": "pr_norm", "amount": "pr_amount",
     "typed": "pr_typed", "rev": "pr_rev", "pace": "pr_pace", "mv_target": "pr_mv_target", "mv_epochs": "pr_mv_epochs",
     "mv_layer": "pr_mv_layer"}
PACE_S = 20.0  # "pace to watch": the live run lasts at least this long (on digits it is done in ~3 s otherwise)
MOVEMENT_PACE_S = float(os.environ.get("KDVIZ_MOVEMENT_PACE_S", PACE_S))  # the movement runs' pace (tests: shorter)
PLAYER_KEY = "pr_player"
SPARSITY = ExactKeys(value="pr_sparsity", slider="pr_s_slider", exact="pr_s_exact", error="pr_s_error")
SCOPES = {"layer": "each layer alike", "global": "one global cut"}
REFRESH_S = float(os.environ.get("KDVIZ_REFRESH_S", "1.0"))
state = page_state({K["scope"]: "layer", K["target"]: 0.9, K["epochs"]: 8, K["live_scope"]: "layer", K["follow"]: True,
                    K["amount"]: 0.5, K["norm"]: "l1", K["typed"]: None, K["rev"]: 0, K["pace"]: True,
                    K["mv_target"]: 0.9, K["mv_epochs"]: 4})
state.setdefault(SPARSITY.value, 0.8)  # the sparsity both the slider and its exact box show (not a widget key)
# The settings a link carries (``?pr_sparsity=0.9&pr_scope=global...``), each checked as its control would.
IN_URL = {SPARSITY.value: lambda raw: check_sparsity(float(raw)), K["scope"]: url_choice(SCOPES),
          K["target"]: url_number(0.5, 0.98), K["epochs"]: url_number(1, 30, int), K["live_scope"]: url_choice(SCOPES)}
url_settings(IN_URL)

st.title("Pruning")
st.markdown(
    "Most weights of a trained network can go. **Magnitude pruning** removes the weights of smallest |w|; "
    "**retraining** with the removed ones held at zero wins the accuracy back (Han et al. 2015: LeNet-300-100 "
    "keeps 8% of its weights at the same error). Pruning gradually on Zhu & Gupta's cubic schedule (2017) "
    "lets the network adapt as it goes."
)
session.touch()
settings = current_settings()
bundle, job, b = ready_baseline(settings, K["model"], "pr", load_baseline)


def on_player() -> None:
    """The player reports the stop the user moved to: the exact box, the link and the downloads follow."""
    picked = state.get(PLAYER_KEY) or {}
    if "value" in picked:
        state[SPARSITY.value] = state[SPARSITY.exact] = state[SPARSITY.slider] = float(picked["value"])
        state[SPARSITY.error] = None


def explorer() -> None:
    """The exact box, scope and layer; then the browser-side sparsity slider with accuracy, metrics,
    bars, curve, histogram, mask and storage, every stop evaluated once (``pruning_stops``)."""
    _, on_exact = exact_callbacks(SPARSITY, check_sparsity, lambda s: float(s))

    def on_typed() -> None:
        on_exact()
        if not state[SPARSITY.error]:
            state[K["rev"]] += 1  # the browser's slider moves to the typed value

    c1, c2 = st.columns([2, 3], vertical_alignment="bottom")
    c1.number_input("Type an exact sparsity (or drag the slider below)", key=SPARSITY.exact, step=0.01, format="%.4g",
                    on_change=on_typed, help="A number in [0, 1): 0.9 removes 90% of the weights.")
    c2.radio("Scope", list(SCOPES), format_func=SCOPES.get, key=K["scope"], horizontal=True,
             help="Each layer to the same sparsity, or one magnitude cut over all layers (big layers lose more).")
    exact_error(SPARSITY, "Sparsity")
    layer = pick_layer(K["layer"], b.layers, "Layer shown in the histogram and the mask")
    value = float(state[SPARSITY.value])
    if round(value, 6) not in SPARSITY_GRID:
        state[K["typed"]] = value  # a typed or linked sparsity is a stop of its own (until another is typed)
    with st.spinner("Pruning the baseline at every stop of the slider and testing each…"):
        spec = sparsity_player_spec(b, state[K["scope"]], layer, state[K["typed"]])
    stops_player(spec, nearest_stop(spec, value), state[K["rev"]], key=PLAYER_KEY, on_change=on_player)
    scope = state[K["scope"]]
    csv_button(lambda: evaluate_slider(b, value, scope).table, "pruning-storage")


def live_config():
    """The prune-and-fine-tune run the live controls describe (built on the method side)."""
    return prune_fine_tune_config(job, float(state[K["target"]]), scope=state[K["live_scope"]],
                                  epochs=int(state[K["epochs"]]), runs_root=session.runs_root(),
                                  pace_s=PACE_S if state[K["pace"]] else None)


def start_live() -> None:
    """Prune the baseline on the AGP schedule while fine-tuning it (the config is built on the method side)."""
    with user_errors("Start"):
        live_job = start(live_config(), session.lab_manager())
        session.keep_job(K["job"], live_job)  # a reloaded tab finds it; closing the tab stops it
        state[K["follow"]] = True


def scrubbed(found: list, total: int) -> int:
    """The index of the snapshot the scrubber points at (the latest while following)."""
    steps = [snap.step for snap, _ in found]
    if state[K["follow"]] or state.get(K["scrub"]) is None or state[K["scrub"]] > total:
        state[K["scrub"]] = steps[-1]  # no on_change here: a timed rerun must never count as a user's drag
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.slider("Training step: scrub back through the snapshots", 0, total, key=K["scrub"], disabled=bool(state[K["follow"]]),
              help="Turn off 'Follow the latest' to scrub.")
    c2.toggle("Follow the latest", key=K["follow"], help="Off: the scrubber stays where you put it. On, once the run "
              "has finished: the mask and histogram replay in the browser (press ▶ under them).")
    return max(0, bisect_right(steps, int(state[K["scrub"]])) - 1)


def snapshot_chart(live_job, view, layer: str, chart: str):
    """The live panel's ``chart`` ("mask" or "histogram") of ``layer`` drawn from one raw snapshot
    (None for a snapshot without the pruning hook's arrays): the replay's drawing function."""
    def draw(raw):
        found = readings(PRUNE, [raw], live_job.config)
        if not found or layer not in found[0][1].layers:
            return None
        return pruning_charts(found[0][1], layer, step=raw.step, live=True, colour=view.colour)[chart]

    return draw


def live_panel(live: bool) -> None:
    """Status, scrubber and the four live charts of this session's prune-and-fine-tune job."""
    session.touch()
    live_job = job_on_dataset(K["job"], settings.dataset)
    if live and live_job is not None and live_job.done:
        st.rerun(scope="app")
    if live_job is None:
        st.info("Press **Start pruning** to prune the baseline gradually while fine-tuning it. The charts fill in "
                "live; you need not click anything.", icon=":material/info:")
        return
    status_row(live_job, "Prune and fine-tune")
    view = job_view(live_job, "pruned + fine-tuned")
    found = readings(PRUNE, view.snapshots, live_job.config)
    if not found:
        st.caption("Waiting for the first snapshot…")
        return
    index = scrubbed(found, max(live_job.status().total_steps, found[-1][0].step, 1))
    snap, pruned = found[index]
    st.caption(f"Snapshot {index + 1} of {len(found)}: step {snap.step} (epoch {snap.epoch:.2f}), "
               f"{100 * pruned.overall_sparsity():.1f}% of weights pruned.")
    layer = pick_layer(K["live_layer"], pruned.layers)
    figures = pruning_charts(pruned, layer, step=snap.step, live=True, colour=view.colour)
    left, right = st.columns(2)
    with left:
        mask_caption = ("Scrub back to watch the mask form: the AGP schedule prunes fast at first, then ever more "
                        "gently.")
        hist_caption = ("Between pruning steps, retraining lets surviving weights drift back into the gap; the next "
                        "step cuts at a higher threshold.")
        if live_job.done and state[K["follow"]]:  # finished: the browser replays the snapshots
            for chart, caption in (("mask", mask_caption), ("histogram", hist_caption)):
                show_live_or_replay(view, f"live-{chart}", snapshot_chart(live_job, view, layer, chart),
                                    caption=caption.replace("Scrub back", "Play"), variant=layer)
        else:
            show_chart(figures["mask"], "live-mask", caption=mask_caption)
            show_chart(figures["histogram"], "live-histogram", caption=hist_caption)
    with right:
        show_chart(figures["bars"], "live-sparsity", caption="Bars: pruned now. Black ticks: the schedule's target at this step.")
        fig = pruning_accuracy(view.evals, live_job.config, b.dense_accuracy if b else None, epoch=snap.epoch)
        show_chart(fig, "live-accuracy", caption="Accuracy dips each time the schedule prunes and recovers while "
                   "fine-tuning; the dashed line is the scrubbed snapshot.")


def settings_shown() -> dict:
    """The page's controls, as the export's report lists them."""
    return {"baseline": state.get(K["model"]), "sparsity (slider)": state[SPARSITY.value], "scope": state[K["scope"]],
            "live target sparsity": state[K["target"]], "live epochs": state[K["epochs"]],
            "live scope": state[K["live_scope"]]}


def runs_to_export() -> list:
    """The baseline and the prune-and-fine-tune run these settings start (its config, as Start builds it)."""
    if job is None or b is None:
        return []
    return [("baseline", job.config), ("pruned + fine-tuned", live_config())]


def charts_to_export():
    """The report's charts, built only when it is downloaded (from the values read now): the slider's
    sparsity bars and mask, the live run's accuracy, the sensitivity."""
    sparsity, scope, live_job = float(state[SPARSITY.value]), state[K["scope"]], job_on_dataset(K["job"], settings.dataset)
    evals = list(job_view(live_job, "pruned + fine-tuned").evals) if live_job is not None else None

    def build() -> list:
        r = evaluate_slider(b, sparsity, scope)
        first = r.snapshot.layers[0]
        shown = [(f"Sparsity per layer at {sparsity:g} ({SCOPES[scope]})", sparsity_chart(r.snapshot)),
                 (f"Mask of {first}", layer_charts(r.snapshot, first)["mask"])]
        if evals is not None:
            shown.append(("Prune and fine-tune: test accuracy", pruning_accuracy(evals, live_job.config, b.dense_accuracy)))
        if b.sensitivity is not None:
            shown.append(("Sensitivity per layer", sensitivity_lines(b.sensitivity, baseline=b.dense_accuracy)))
        return shown

    return build


link, export, _ = st.columns([2, 2, 5])  # wide enough for "Copy link" and "Export" whole
with link:
    copy_link(IN_URL)
if b is not None:
    with export, user_errors("Export"):
        export_menu("Pruning", settings_shown(), runs_to_export(), charts=charts_to_export(), key="pruning")
    st.header("1. Prune with a slider", divider="gray")
    st.caption("One-shot magnitude pruning of the trained baseline, evaluated on the whole test set at every move. "
               "No retraining yet.")
    st.fragment(guarded("Pruning", explorer))()

st.header("2. Prune and fine-tune, live", divider="gray")
st.caption("Starts from the baseline's weights and raises sparsity on Zhu & Gupta's cubic schedule over the first "
           "75% of the run; masks are re-applied after every optimizer step, so pruned weights stay zero.")
c1, c2, c3, c4 = st.columns([3, 3, 3, 2], vertical_alignment="bottom")
c1.slider("Target sparsity", 0.5, 0.98, step=0.01, key=K["target"])
c2.slider("Epochs", 1, 30, key=K["epochs"])
c3.radio("Scope", list(SCOPES), format_func=SCOPES.get, key=K["live_scope"], horizontal=True)
c4.toggle(f"Pace ({PACE_S:.0f} s)", key=K["pace"],
          help=f"Pace to watch: spread the run over at least {PACE_S:.0f} s so the mask can be watched forming. Off: as fast as it can "
               "(a few seconds on digits); a finished run replays with ▶ either way.")
live_jobs = [job for job in [job_on_dataset(K["job"], settings.dataset)] if job is not None]
runs = read_runs(live_jobs)  # read once: the buttons and the live refresh of this rerun all agree
run_controls(runs, "pr-live", on_start=start_live, start_label="Start pruning", start_disabled=b is None)
live = runs.live
st.fragment(run_every=REFRESH_S if live else None)(guarded("Live pruning", live_panel))(live)

if b is not None:
    st.header("3. Which layers are sensitive?", divider="gray")
    st.caption("Prune one layer at a time at rising sparsity, the others dense, no retraining (Han et al. 2015, "
               "figure 6; Distiller's sensitivity analysis). Layers that stay flat can be pruned hard.")
    button = st.empty()  # the button goes once the results show (they are kept with the baseline model)
    if b.sensitivity is None and button.button("Run the sensitivity analysis", icon=":material/query_stats:",
                                               key="pr-sens"):
        with st.spinner("Pruning each layer at 20 sparsities…"), user_errors("Sensitivity"):
            run_sensitivity(b)
    if b.sensitivity is not None:
        button.empty()
    if b.sensitivity is not None:
        show_chart(sensitivity_lines(b.sensitivity, baseline=b.dense_accuracy), "sensitivity",
                   caption="The small last layer usually drops first: each of its weights matters more. "
                   "Give it a lower target (Han et al. keep 26% of fc3 against 8% of fc1).")

    def units() -> None:
        """Rank whole neurons or filters by norm and physically remove the weakest (Li et al. 2017)."""
        norms_by_layer = dense_unit_norms(b, state[K["norm"]])
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        c1.slider("Fraction of units to remove", 0.0, 0.95, step=0.05, key=K["amount"])
        c2.radio("Rank by", ["l1", "l2"], format_func=lambda n: f"{n.upper()} norm", key=K["norm"], horizontal=True)
        layer = pick_layer(K["unit_layer"], list(norms_by_layer))
        r = remove_units(b, layer, float(state[K["amount"]]), state[K["norm"]])
        left, right = st.columns([3, 1])
        with left:
            show_chart(filter_norm_bars(norms_by_layer[layer], layer, kept=r.kept, norm=state[K["norm"]]), "unit-norms",
                       caption="Units sorted by norm. The weakest carry little signal; removing them shrinks the model "
                       "itself, with no masks and no sparse formats.")
        with right:
            st.metric("Parameters", f"{r.parameters[1]:,}", f"{r.parameters[1] - r.parameters[0]:,}", delta_color="inverse")
            st.metric("FLOPs per image", f"{r.flops[1]:,}", f"{r.flops[1] - r.flops[0]:,}", delta_color="inverse")
            st.metric("Test accuracy", f"{r.accuracy:.2%}", f"{100 * (r.accuracy - b.dense_accuracy):+.2f} points",
                      help="The smaller model tested as it is, without retraining.")

    st.header("4. Remove whole neurons or filters", divider="gray")
    st.fragment(guarded("Structured pruning", units))()


def start_movement() -> None:
    """Movement and magnitude pruning of the baseline on the same cubic schedule, as one experiment."""
    with user_errors("Start"):
        session.start_experiment(MOVEMENT_TITLE, movement_runs(
            job, float(state[K["mv_target"]]), epochs=int(state[K["mv_epochs"]]), runs_root=session.runs_root(),
            pace_s=MOVEMENT_PACE_S if state[K["pace"]] else None))


def movement_idle() -> None:
    st.info("Press **Start movement vs magnitude** to fine-tune the baseline twice on the same schedule, pruning by "
            "movement and by magnitude. The charts fill in live.", icon=":material/info:")


if b is not None:
    st.header("5. Movement pruning beside magnitude pruning, live", divider="gray")
    st.caption("Sanh, Wolf & Rush 2020: while fine-tuning, each weight's score accumulates −∂L/∂W · W, so weights "
               "that training pushes away from zero score high, however small they are now; the top scores are "
               "kept (straight-through gradient to the scores). Both runs share the cubic schedule, data and steps: "
               "only the rule that chooses the weights differs.")
    c1, c2 = st.columns(2, vertical_alignment="bottom")
    c1.slider("Target sparsity", 0.5, 0.98, step=0.01, key=K["mv_target"])
    c2.slider("Epochs", 1, 20, key=K["mv_epochs"])
    mv_runs = read_runs(session.current_experiment(MOVEMENT_TITLE, settings.dataset))
    run_controls(mv_runs, "pr-movement", on_start=start_movement, start_label="Start movement vs magnitude")
    live_experiment(MOVEMENT_TITLE, lambda exp: movement_panel(exp, b.dense_accuracy, K["mv_layer"]), movement_idle,
                    REFRESH_S, action="Movement pruning", runs=mv_runs, dataset=settings.dataset)

    st.header("6. Speed on this CPU", divider="gray")
    st.caption("Bytes are not time. The same model as trained (dense), with half its neurons or filters removed "
               "(shrunk), with its pruned weights stored as torch sparse CSR (sparse), and with int8 weights (torch.ao "
               "dynamic quantization), each timed here at batch 1 and 256.")
    movement_exp = session.current_experiment(MOVEMENT_TITLE, settings.dataset)
    speed_section({"baseline": job, "pruned + fine-tuned": job_on_dataset(K["job"], settings.dataset),
                   **(dict(movement_exp.jobs) if movement_exp is not None else {})}, "pr-speed")
