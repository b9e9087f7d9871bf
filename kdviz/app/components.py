"""Streamlit pieces every page repeats, written once: a run's readiness, a slider with an exact box,
a guarded fragment, a layer picker, run controls.

Each renders what ``kdviz.present`` computed (``readiness``, ``describe``); none composes a status
sentence or owns a job. Keys passed in are the page's own widget keys (``st.session_state`` is read
and written only through them).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ..engine import Job
from ..present import describe, readiness
from .errors import plain_message, user_errors


def icon(name: str) -> str:
    """A Material Symbols glyph in Streamlit markdown (``":material/check_circle:"``)."""
    return f":material/{name}:"


def show_run_status(job: Job, name: str, retry: Callable[[], object], key: str, what: str = "teacher") -> bool:
    """Draw a teacher-like run's readiness; True when it is ready to use.

    A failed run gets a "Retry training the {what}" button that calls ``retry``; while it trains, a
    fragment refreshes the progress every second (no user action needed) and reruns the page once
    it is done."""
    from . import session  # late: keeps this module importable in tests without a script run

    text = readiness(job.status(), name)
    if text.state == "finished":
        st.caption(f"**{icon(text.icon)}** {text.headline} · cached in `{job.path}`")
        return True
    if job.done:
        st.error(f"{icon(text.icon)} {text.headline}: {text.detail}", icon=":material/error:")
        if st.button(f"Retry training the {what}", key=f"{key}-retry"):
            retry()
            st.rerun()
        return False

    @st.fragment(run_every=1.0)
    def poll() -> None:
        session.touch()
        if job.status().done:
            st.rerun(scope="app")
        now = readiness(job.status(), name)
        st.info(f"{icon(now.icon)} {now.headline}")
        st.progress(now.progress)

    poll()
    return False


def status_row(job: Job, label: str) -> None:
    """One line per job: state, progress bar, queue place or ETA, last test accuracy."""
    limit = job.manager.max_concurrent if job.manager else None
    text = describe(job.status(), label, epochs=job.config.epochs, max_concurrent=limit)
    accuracy = f" · **{text.accuracy}**" if text.accuracy else ""
    st.markdown(f"{icon(text.icon)} **{label}** · {text.state}{accuracy} · {text.detail}")
    st.progress(text.progress)


def guarded(action: str, body: Callable[..., None]) -> Callable[..., None]:
    """``body`` with bad input shown as a message naming ``action`` (use inside fragments, so a
    fragment's own reruns are covered too)."""
    def run(*args: Any) -> None:
        with user_errors(action):
            body(*args)

    run.__name__ = run.__qualname__ = body.__name__
    return run


@dataclass(frozen=True)
class ExactKeys:
    """The session keys of a slider with an exact box: the shared value, the slider, the box, the error."""

    value: str
    slider: str
    exact: str
    error: str


def exact_callbacks(keys: ExactKeys, check: Callable[[Any], Any], to_slider: Callable[[Any], Any]) -> tuple[Callable, Callable]:
    """(on_slider, on_exact) for a slider and an "…or type" box sharing one value. The box is checked
    by ``check`` (a ``ValueError``/``TypeError`` becomes the error message, the value is kept); the
    slider shows the value through ``to_slider`` (clamped or snapped to its options)."""
    state = st.session_state

    def on_slider() -> None:
        state[keys.value] = state[keys.exact] = state[keys.slider]
        state[keys.error] = None

    def on_exact() -> None:
        try:
            value = check(state[keys.exact])
        except (TypeError, ValueError) as exc:
            state[keys.error] = plain_message(exc)
            return
        state[keys.value], state[keys.error] = value, None
        state[keys.slider] = to_slider(value)

    return on_slider, on_exact


def exact_error(keys: ExactKeys, what: str) -> None:
    """Show the exact box's error, if any, naming ``what``."""
    message = st.session_state.get(keys.error)
    if message:
        st.error(f"**{what}:** {message}", icon=":material/warning:")


def pick_layer(key: str, layers: Sequence[str], label: str = "Layer") -> str:
    """A segmented control over ``layers`` that keeps a valid choice when the layers change."""
    state = st.session_state
    if state.get(key) not in layers:
        state[key] = layers[0]
    st.segmented_control(label, list(layers), key=key)
    return state.get(key) or layers[0]


def run_controls(jobs: Sequence[Job], key: str, on_start: Callable[[], None] | None = None,
                 start_label: str = "Start", start_disabled: bool = False) -> None:
    """Start, Pause/Resume and Stop buttons for a group of jobs (the Start button only when
    ``on_start`` is given, disabled while a job runs or when ``start_disabled``); Pause and Stop
    act on every job of the group that is still running."""
    running = [job for job in jobs if not job.done]
    paused = bool(running) and all(job.status().state == "paused" for job in running)
    cols = st.columns(3)
    if on_start is not None:
        cols[0].button(start_label, key=f"{key}-start", type="primary", icon=":material/play_arrow:",
                       disabled=bool(running) or start_disabled, on_click=on_start, width="stretch")
    cols[1].button("Resume" if paused else "Pause", key=f"{key}-pause", disabled=not running, width="stretch",
                   icon=":material/play_circle:" if paused else ":material/pause:",
                   on_click=lambda: [job.resume() if paused else job.pause() for job in running])
    cols[2].button("Stop", key=f"{key}-stop", disabled=not running, icon=":material/stop:", width="stretch",
                   on_click=lambda: [job.stop() for job in running])


def live_experiment(title: str, draw: Callable[[Any], None], idle: Callable[[], None],
                    refresh_s: float = 1.0, action: str | None = None) -> None:
    """The wait-for-job fragment every training page shares: ``draw(experiment)`` for this session's
    latest experiment titled ``title`` (its stages polled first), redrawn every ``refresh_s`` seconds
    while it trains and once more, with the whole page, when it ends (so Start is enabled again);
    ``idle()`` before the first Start. With ``action``, bad input inside is shown naming it."""
    from . import session  # late: keeps this module importable in tests without a script run

    def panel(live: bool) -> None:
        session.touch()
        experiment = session.current_experiment(title)
        if experiment is None:
            idle()
            return
        if live and experiment.done:
            st.rerun(scope="app")
        draw(experiment)

    body = guarded(action, panel) if action else panel
    experiment = session.current_experiment(title)
    live = experiment is not None and not experiment.done
    st.fragment(run_every=refresh_s if live else None)(body)(live)


def page_state(defaults: Mapping[str, Any]) -> Any:
    """This session's widget state with a page's ``defaults`` filled in where unset (``st.session_state``)."""
    state = st.session_state
    for key, value in defaults.items():
        state.setdefault(key, value)
    return state


def dataset_and_run(settings: Any, make_run: Callable[[], Job], what: str = "Teacher") -> tuple[Any, Job | None]:
    """The sidebar's dataset and the run a page needs first (a teacher, a baseline), each failure shown
    as a message naming the dataset or ``what``: (bundle or None, job or None)."""
    from .sidebar import load_bundle  # late: the sidebar imports this module's neighbours

    bundle = job = None
    with user_errors("Dataset"):
        bundle = load_bundle(settings)
    with user_errors(what):
        if bundle is not None:
            job = make_run()
    return bundle, job
