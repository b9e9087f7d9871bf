"""Streamlit pieces every page repeats, written once: a run's readiness, a slider with an exact box,
a guarded fragment, a layer picker, run controls.

Each renders what ``kdviz.present`` computed (``readiness``, ``describe``); none composes a status
sentence or owns a job. Keys passed in are the page's own widget keys.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import streamlit as st

from ..engine import FINAL_STATES, Job
from ..engine.experiment import Experiment
from ..present import describe, readiness
from .errors import plain_message, user_errors
from .kept_settings import KEPT_KEY, _seed, keep_settings, page_state  # noqa: F401  (pages import them from here)


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
    """One line per job: state, progress bar, queue place or ETA, last test accuracy, and the data set
    it trains on."""
    limit = job.manager.max_concurrent if job.manager else None
    text = describe(job.status(), label, epochs=job.config.epochs, max_concurrent=limit)
    accuracy = f" · **{text.accuracy}**" if text.accuracy else ""
    st.markdown(f"{icon(text.icon)} **{label}** ({job.config.dataset}) · {text.state}{accuracy} · {text.detail}")
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
    slider shows the value through ``to_slider`` (clamped or snapped to its options).

    Call it before the two widgets are drawn (in the same run or fragment): it first re-seeds them
    from the shared value (``keep_exact``), so the controls always show what the charts use."""
    state = st.session_state
    keep_exact(keys, to_slider)

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


def keep_exact(keys: ExactKeys, to_slider: Callable[[Any], Any]) -> None:
    """Re-seed a slider and its exact box from their shared value (a plain session key, which
    Streamlit never deletes), before they are drawn.

    Streamlit deletes a widget's state at the end of a run that does not draw it (another page, a
    hidden section), and a value once written under the widget's key through ``st.session_state``
    then shows again when the widget comes back: a stale slider beside a chart drawn from the
    current value. Writing both widget keys from the value each run makes them agree by
    construction; the box keeps its own (rejected) text while it shows an error."""
    state = st.session_state
    if keys.value not in state:
        return
    value = state[keys.value]
    _seed(keys.slider, to_slider(value))
    if not state.get(keys.error):
        _seed(keys.exact, value)


def exact_error(keys: ExactKeys, what: str) -> None:
    """Show the exact box's error, if any, naming ``what``."""
    message = st.session_state.get(keys.error)
    if message:
        st.error(f"**{what}:** {message}", icon=":material/warning:")


def job_on_dataset(key: str, dataset: str) -> Job | None:
    """The job kept under session ``key`` when it trains on ``dataset`` (the sidebar's): a run started
    before the data set was switched is not shown as this data set's."""
    from . import session  # late: keeps this module importable in tests without a script run

    job = session.kept_job(key)
    return job if job is not None and job.config.dataset == dataset else None


def pick_layer(key: str, layers: Sequence[str], label: str = "Layer") -> str:
    """A segmented control over ``layers`` that keeps a valid choice when the layers change."""
    state = st.session_state
    if state.get(key) not in layers:
        state[key] = layers[0]
    st.segmented_control(label, list(layers), key=key)
    return state.get(key) or layers[0]


@dataclass(frozen=True)
class RunsReading:
    """One reading of a group of jobs' states, taken once per rerun: the Start label, the Pause/Stop
    buttons and the live refresh of that rerun all render from it, so a job that ends while the page is
    drawn can never leave "Running…" beside a disabled Stop, or a page that stops refreshing."""

    jobs: tuple[Job, ...] = ()
    states: tuple[str, ...] = ()
    pending: bool = False  # stages of an experiment not started yet

    @property
    def running(self) -> list[Job]:
        return [job for job, state in zip(self.jobs, self.states) if state not in FINAL_STATES]

    @property
    def live(self) -> bool:
        """True while any job or stage has not ended."""
        return bool(self.running) or self.pending

    @property
    def paused(self) -> bool:
        states = [state for state in self.states if state not in FINAL_STATES]
        return bool(states) and all(state == "paused" for state in states)


def read_runs(source: Experiment | Sequence[Job] | None) -> RunsReading:
    """Read the states of an experiment's jobs (its stages polled first) or of a list of jobs, once."""
    if source is None:
        return RunsReading()
    if isinstance(source, Experiment):
        source.poll()
        pending, jobs = bool(source.pending), tuple(source.jobs.values())
    else:
        pending, jobs = False, tuple(source)
    return RunsReading(jobs, tuple(job.status().state for job in jobs), pending)


def run_controls(runs: RunsReading | Sequence[Job], key: str, on_start: Callable[[], None] | None = None,
                 start_label: str = "Start", start_disabled: bool = False, running_label: str | None = None,
                 on_continue: Callable[[], None] | None = None) -> None:
    """Start, Pause/Resume and Stop buttons for a group of jobs, drawn from one reading of their states
    (``read_runs``; a list of jobs is read here). The Start button only when ``on_start`` is given,
    disabled (and labelled ``running_label``) while a job runs, or when ``start_disabled``; Pause and
    Stop act on every job of the group that was still running. With ``on_continue``, a group that
    has ended with stopped runs offers "Continue" in Pause's place (resume them from their checkpoints)."""
    runs = runs if isinstance(runs, RunsReading) else read_runs(runs)
    running, paused = runs.running, runs.paused
    cols = st.columns(3)
    if on_start is not None:
        label = running_label if runs.live and running_label else start_label
        cols[0].button(label, key=f"{key}-start", type="primary", icon=":material/play_arrow:",
                       disabled=runs.live or start_disabled, on_click=on_start, width="stretch")
    if on_continue is not None and not runs.live and "stopped" in runs.states:
        cols[1].button("Continue the stopped runs", key=f"{key}-continue", icon=":material/resume:", width="stretch",
                       on_click=on_continue, help="Resume them from their last checkpoints, in their own run folders.")
    else:
        cols[1].button("Resume" if paused else "Pause", key=f"{key}-pause", disabled=not running, width="stretch",
                       icon=":material/play_circle:" if paused else ":material/pause:",
                       on_click=lambda: [job.resume() if paused else job.pause() for job in running])
    cols[2].button("Stop", key=f"{key}-stop", disabled=not running, icon=":material/stop:", width="stretch",
                   on_click=lambda: [job.stop() for job in running])


def live_experiment(title: str, draw: Callable[[Any], None], idle: Callable[[], None],
                    refresh_s: float = 1.0, action: str | None = None, runs: RunsReading | None = None,
                    dataset: str | None = None) -> None:
    """The wait-for-job fragment every training page shares: ``draw(experiment)`` for this session's
    latest experiment titled ``title`` (its stages polled first), redrawn every ``refresh_s`` seconds
    while it trains and once more, with the whole page, when it ends (so Start is enabled again);
    ``idle()`` before the first Start. With ``action``, bad input inside is shown naming it. Pass the
    rerun's ``runs`` reading (``read_runs``) so the refresh is on exactly when the controls say it runs,
    and the sidebar's ``dataset`` so an experiment on another data set is not drawn as this one's."""
    from . import session  # late: keeps this module importable in tests without a script run

    def panel(live: bool) -> None:
        session.touch()
        experiment = session.current_experiment(title, dataset)
        if experiment is None:
            idle()
            return
        if live and experiment.done:
            st.rerun(scope="app")
        draw(experiment)

    body = guarded(action, panel) if action else panel
    live = (runs if runs is not None else read_runs(session.current_experiment(title, dataset))).live
    st.fragment(run_every=refresh_s if live else None)(body)(live)


URL_READ_KEY = "kdviz_url_read"  # the settings this session has already taken from its URL


def url_number(low: float, high: float, kind: type = float) -> Callable[[str], Any]:
    """A URL parameter's parser for a number in [low, high] (``kind`` int or float)."""
    def parse(raw: str) -> Any:
        value = kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
        if not low <= value <= high:
            raise ValueError(f"{raw} is outside {low:g} to {high:g}")
        return value

    return parse


def url_choice(options: Iterable[Any]) -> Callable[[str], Any]:
    """A URL parameter's parser for one of ``options`` (matched by its text)."""
    by_text = {str(o): o for o in options}

    def parse(raw: str) -> Any:
        if raw not in by_text:
            raise ValueError(f"{raw!r} is not one of {', '.join(by_text)}")
        return by_text[raw]

    return parse


def url_settings(parsers: Mapping[str, Callable[[str], Any]]) -> None:
    """A page's settings in its URL (``st.query_params``, one parameter per session key), so a link
    reproduces them: on the session's first visit each parameter present is parsed (``parsers``: raw
    text -> value, ``ValueError`` for a bad one, shown naming the parameter) and becomes the setting;
    on every run the current settings are written back. Call it after ``page_state``, before drawing."""
    state = st.session_state
    kept = state.setdefault(KEPT_KEY, {})
    read = state.setdefault(URL_READ_KEY, set())
    bad = []
    for key, parse in parsers.items():
        raw = st.query_params.get(key)
        if key in read or raw is None:
            continue
        read.add(key)
        try:
            value = parse(str(raw))
        except (TypeError, ValueError) as exc:
            bad.append(f"`{key}={raw}` ({plain_message(exc)})")
            continue
        if key in kept:
            kept[key] = value
        _seed(key, value)
    if bad:
        st.warning("Ignored in the link: " + "; ".join(bad), icon=":material/link_off:")
    for key in parsers:
        read.add(key)
        if key in state:
            st.query_params[key] = str(state[key])


def copy_link(parsers: Mapping[str, Any], label: str = "Copy link") -> None:
    """A "copy link" popover: this page's address with its settings (``url_settings``) only, never the
    lab session (a link shares settings, not runs)."""
    state = st.session_state
    params = {key: str(state[key]) for key in parsers if key in state}
    base = urlsplit(str(st.context.url or ""))
    link = urlunsplit((base.scheme, base.netloc, base.path, urlencode(params), ""))
    with st.popover(label, icon=":material/link:"):
        st.code(link, language=None, wrap_lines=True)
        st.caption("The copy icon at the box's right copies it. It reproduces this page's settings, not your runs.")


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
