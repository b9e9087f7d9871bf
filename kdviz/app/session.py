"""Per-browser-session jobs: each session owns its runs, and closing the tab stops them.

Streamlit has no "tab closed" event, so a watchdog thread (one per process) checks every few
seconds which sessions still exist:

* A session seen connected by Streamlit's runtime (``Runtime.is_active_session``, documented as
  safe from any thread) is gone once its websocket has been closed for ``KDVIZ_SESSION_GRACE_S``
  seconds (default 10; a network blip that reconnects within it keeps the jobs).
* Without a runtime answer (tests, other hosts) a heartbeat decides: every script run and every
  live-chart refresh calls ``touch()``; a session silent for ``KDVIZ_HEARTBEAT_TIMEOUT_S`` seconds
  (default 300) is gone.

A tab is one *lab session*, named by an id in its URL (``?lab=<id>``, written on every run by
``attach``): reloading the tab opens a new Streamlit session with the same URL, which ``attach``
reattaches to the lab session's experiments, and the watchdog counts a lab session gone only once
every tab attached to it has gone. A copied settings link never carries the id.

The jobs of a gone session are stopped (each saves a checkpoint; its run folder stays on disk and
can be reopened). This module is the one owner of a session's job bookkeeping: its experiments
(``kdviz.engine.experiment.Experiment``, named jobs and stages) are started and kept here
(``start_experiment``, ``add_experiment``, ``experiments``, ``current_experiment``), and every job
they start is handed to the watchdog; pages never keep jobs in ``st.session_state`` themselves. At most ``KDVIZ_MAX_JOBS`` jobs (default 2) run at once across all sessions; the
rest wait in the shared queue of one ``JobManager`` and show their place in it.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from .. import paths
from ..engine import JobManager, TrainConfig
from ..engine.experiment import Experiment

EXPERIMENTS_KEY = "kdviz_experiments"
LAB_KEY = "kdviz_lab_session"  # this Streamlit session's lab session id
LAB_PARAM = "lab"  # the URL query parameter that names it
LOG = logging.getLogger("kdviz.app")


def _env_number(name: str, default: float, low: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < low:
        raise ValueError(f"{name} must be at least {low:g}, got {raw!r}")
    return value


def runs_root() -> str:
    """Where the lab's run folders go: the one runs root of the app, the labs and the CLI
    (``kdviz.paths.runs_root``: ``$KDVIZ_RUNS``, else ``runs`` in the checkout or the user's data folder)."""
    return str(paths.runs_root())


_MANAGER_LOCK = threading.Lock()
_MANAGERS: dict[int, JobManager] = {}


def lab_manager() -> JobManager:
    """The process-wide job manager: at most ``$KDVIZ_MAX_JOBS`` (default 2) jobs run at once.

    Running jobs share ``$KDVIZ_NUM_THREADS`` CPU threads (default 1: one each). The lab's models are
    small, and on a busy 2-core machine two OpenMP threads per job made a digits teacher 25x slower
    than one (75 s against 3 s for 20 epochs, measured here) because the threads spin-wait for cores.
    """
    limit = int(_env_number("KDVIZ_MAX_JOBS", 2, 1))
    threads = int(_env_number("KDVIZ_NUM_THREADS", 1, 1))
    with _MANAGER_LOCK:
        if limit not in _MANAGERS:
            _MANAGERS[limit] = JobManager(max_concurrent=limit, cpu_threads=threads)
            if len(_MANAGERS) == 1:
                atexit.register(_stop_all_jobs)
        return _MANAGERS[limit]


def _stop_all_jobs() -> None:
    """At server shutdown: stop every job so each saves a checkpoint and its status says so."""
    for manager in list(_MANAGERS.values()):
        manager.stop_all(wait=True, timeout=5.0)


@dataclass
class _Lab:
    """One lab session: its experiments, those handed to the watchdog, the Streamlit sessions (tabs,
    reloads) attached to it."""

    experiments: list[Experiment] = field(default_factory=list)
    jobs: dict[str, Stoppable] = field(default_factory=dict)  # a page's single live job, by session key
    watched: set[int] = field(default_factory=set)
    runtime_ids: set[str] = field(default_factory=set)


_LABS: dict[str, _Lab] = {}


def _lab(lab_id: str) -> _Lab:
    with _MANAGER_LOCK:
        return _LABS.setdefault(lab_id, _Lab())


def attach() -> str:
    """This tab's lab session id, written into the URL (``?lab=<id>``). A new Streamlit session
    opened with the id of a lab session of this server (a reload) is attached to its experiments, so
    the page shows the runs still training; an unknown or malformed id gets a new session."""
    state = st.session_state
    lab_id = state.get(LAB_KEY)
    if lab_id is None:
        raw = str(st.query_params.get(LAB_PARAM, ""))
        lab_id = raw if re.fullmatch(r"[0-9a-f]{32}", raw) and raw in _LABS else uuid.uuid4().hex
        state[LAB_KEY] = lab_id
    lab = _lab(lab_id)
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is not None:
        with _MANAGER_LOCK:
            lab.runtime_ids.add(ctx.session_id)
    state.setdefault(EXPERIMENTS_KEY, lab.experiments)
    if st.query_params.get(LAB_PARAM) != lab_id:
        st.query_params[LAB_PARAM] = lab_id
    return lab_id


def runtime_session_active(session_id: str) -> bool | None:
    """True/False from Streamlit's runtime, or None when there is no (real) runtime to ask. For a lab
    session: True while any tab attached to it is connected, False once all have gone."""
    lab = _LABS.get(session_id)
    if lab is not None and lab.runtime_ids:
        answers = [_runtime_answer(rid) for rid in list(lab.runtime_ids)]
        if any(answer is True for answer in answers):
            return True
        return False if answers and all(answer is False for answer in answers) else None
    return _runtime_answer(session_id)


def _runtime_answer(session_id: str) -> bool | None:
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        answer = Runtime.instance().is_active_session(session_id)
    except Exception:  # noqa: BLE001 - a runtime in shutdown; fall back to the heartbeat
        return None
    return answer if isinstance(answer, bool) else None  # AppTest's mock runtime answers a MagicMock


class Stoppable(Protocol):
    """A job or an experiment: what the watchdog stops when its session has gone."""

    def stop(self) -> None: ...


@dataclass
class _Session:
    jobs: list[Stoppable] = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)
    tracked: bool = False  # the runtime has reported this session connected at least once
    gone_since: float | None = None


class SessionWatchdog:
    """Stops the jobs of sessions that have gone (tab closed) in a background thread."""

    def __init__(
        self,
        grace_s: float = 10.0,
        heartbeat_timeout_s: float = 300.0,
        interval_s: float = 2.0,
        is_active: Callable[[str], bool | None] = runtime_session_active,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.grace_s, self.heartbeat_timeout_s, self.interval_s = grace_s, heartbeat_timeout_s, interval_s
        self.is_active, self.clock = is_active, clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._thread: threading.Thread | None = None
        self.stopped_sessions: list[str] = []

    def touch(self, session_id: str) -> None:
        """A heartbeat: the session ran a script (or a live fragment) just now."""
        active = self.is_active(session_id)
        with self._lock:
            s = self._sessions.setdefault(session_id, _Session(last_seen=self.clock()))
            s.last_seen, s.gone_since = self.clock(), None
            s.tracked = s.tracked or active is True

    def add_job(self, session_id: str, job: Stoppable) -> None:
        """Stop ``job`` (a ``Job``, or an ``Experiment``: all its jobs and the stages not started yet)
        when the session has gone."""
        self.touch(session_id)
        with self._lock:
            self._sessions[session_id].jobs.append(job)
        self._ensure_thread()

    def jobs(self, session_id: str) -> list[Stoppable]:
        with self._lock:
            s = self._sessions.get(session_id)
            return list(s.jobs) if s else []

    def check(self) -> list[str]:
        """One pass: stop the jobs of every gone session; return the ids of those sessions."""
        now = self.clock()
        gone: list[tuple[str, list[Stoppable]]] = []
        with self._lock:
            items = list(self._sessions.items())
        for sid, s in items:
            active = self.is_active(sid) if s.tracked else None
            with self._lock:
                if active is True:
                    s.gone_since = None
                    continue
                if active is False:
                    s.gone_since = s.gone_since if s.gone_since is not None else now
                    expired = now - s.gone_since >= self.grace_s
                else:
                    expired = now - s.last_seen >= self.heartbeat_timeout_s
                if expired:
                    gone.append((sid, s.jobs))
                    del self._sessions[sid]
        for sid, jobs in gone:
            LOG.warning("session %s has gone (tab closed): stopping its %d job(s)", sid, len(jobs))
            for job in jobs:
                job.stop()
            self.stopped_sessions.append(sid)
        return [sid for sid, _ in gone]

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="kdviz-session-watchdog", daemon=True)
                self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval_s)
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watchdog must outlive one bad pass
                LOG.exception("session watchdog pass failed")
            with self._lock:
                if not self._sessions:
                    self._thread = None
                    return


_WATCHDOG: SessionWatchdog | None = None


def watchdog() -> SessionWatchdog:
    """The process-wide watchdog (grace and timeout from the environment)."""
    global _WATCHDOG
    with _MANAGER_LOCK:
        if _WATCHDOG is None:
            _WATCHDOG = SessionWatchdog(
                grace_s=_env_number("KDVIZ_SESSION_GRACE_S", 10.0, 0.0),
                heartbeat_timeout_s=_env_number("KDVIZ_HEARTBEAT_TIMEOUT_S", 300.0, 1.0),
            )
        return _WATCHDOG


def session_id() -> str:
    """This tab's lab session id (``attach``), else its Streamlit session id ("local" outside a run)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None:
        return "local"
    return st.session_state.get(LAB_KEY) or ctx.session_id


def touch() -> None:
    """Record that this session is alive (call from every script run and live refresh)."""
    watchdog().touch(session_id())


def experiments(title: str | None = None, dataset: str | None = None) -> list[Experiment]:
    """This session's experiments, oldest first (only those titled ``title``, and only those whose
    runs train on ``dataset``, when given)."""
    kept = st.session_state.setdefault(EXPERIMENTS_KEY, [])
    return [exp for exp in kept if (title is None or exp.title == title)
            and (dataset is None or on_dataset(exp, dataset))]


def on_dataset(experiment: Experiment, dataset: str) -> bool:
    """True when the experiment's runs train on ``dataset`` (one started before the sidebar switched
    data sets belongs to the other one and is not shown as this data set's)."""
    return all(job.config.dataset == dataset for job in experiment.jobs.values())


def _watch(experiment: Experiment) -> None:
    """Hand the experiment to the watchdog, once: when the tab closes, ``experiment.stop()`` stops
    every job it has started and cancels its stages not started yet (also those a background
    thread would start while the user is on another page)."""
    watched = _lab(session_id()).watched
    if id(experiment) not in watched:
        watched.add(id(experiment))
        watchdog().add_job(session_id(), experiment)


def add_experiment(experiment: Experiment) -> Experiment:
    """Keep ``experiment`` in this session and hand its jobs to the watchdog (closing the tab stops them)."""
    st.session_state.setdefault(EXPERIMENTS_KEY, []).append(experiment)
    _watch(experiment)
    return experiment


def start_experiment(title: str, configs: Mapping[str, TrainConfig]) -> Experiment:
    """Start ``configs`` (job name -> config) together in the lab's job manager as one experiment
    titled ``title``, kept in this session. A bad config raises before any job starts."""
    for config in configs.values():
        config.validate()
    experiment = Experiment(lab_manager(), title)
    try:
        for name, config in configs.items():
            experiment.start(name, config)
    except BaseException:
        experiment.stop()  # no half-started experiment keeps training unseen
        raise
    return add_experiment(experiment)


def keep_job(key: str, job) -> None:
    """Keep a page's single live job (a fine-tune) under ``key``, in the tab's session state and in its
    lab session (a reloaded tab finds it), and hand it to the watchdog."""
    st.session_state[key] = job
    _lab(session_id()).jobs[key] = job
    watchdog().add_job(session_id(), job)


def kept_job(key: str):
    """The job ``keep_job`` kept under ``key`` in this tab or its lab session; None when there is none."""
    return st.session_state.get(key) or _lab(session_id()).jobs.get(key)


def resume_experiment(experiment: Experiment) -> Experiment:
    """Continue ``experiment``'s stopped runs from their last checkpoints, in their own folders
    (``kdviz.engine.resume``), as this session's newest experiment with the same title and job names;
    its other runs are kept as they are."""
    from ..engine import resume

    again = Experiment(lab_manager(), experiment.title)
    for name, job in experiment.jobs.items():
        again.adopt(name, resume(job.path, lab_manager()) if job.status().state == "stopped" else job)
    return add_experiment(again)


def current_experiment(title: str | None = None, dataset: str | None = None) -> Experiment | None:
    """This session's latest experiment (titled ``title``, on ``dataset``, when given), its stages
    polled and any job they started handed to the watchdog; None before the first."""
    exps = experiments(title, dataset)
    if not exps:
        return None
    exps[-1].poll()
    _watch(exps[-1])
    return exps[-1]
