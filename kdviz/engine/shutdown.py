"""Jobs end cleanly when their process ends: at interpreter exit, and on SIGTERM or SIGHUP.

A job trains in a daemon thread. A script that returned while one trained used to leave the thread
inside torch while the interpreter tore itself down: the process aborted ("terminate called without
an active exception", SIGABRT) and status.json said "running" forever (issue 13, item 3). So every
``JobManager`` that starts a job is watched here, and at interpreter exit (``atexit``, which runs
while daemon threads still run) each watched manager stops its jobs: queued jobs leave the queue,
running and paused jobs stop after their current step, save a checkpoint and write "stopped", and
their threads are joined within one bounded wait (``KDVIZ_EXIT_WAIT_S``, 15 s by default). A job
still running after that wait is marked "stopped" with a message that says its last checkpoint is
kept, so the run folder never claims to be running.

SIGTERM and SIGHUP then act like Ctrl-C: the handler raises ``KeyboardInterrupt`` in the main thread,
so ``kdviz train`` stops its run and exits with the "stopped" code, and a script that does not catch
it exits through the same atexit path. The handlers are installed only from the main thread (Python
allows no other), never inside a Jupyter kernel, and only over the default disposition: a host that installed its own handler
(Streamlit's server stops itself on SIGTERM; its scripts run in other threads anyway) keeps it, and
a signal that is ignored (``nohup`` ignores SIGHUP) stays ignored. ``restore_signal_handlers()`` puts
back what was there before.
"""
from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .manager import JobManager

EXIT_WAIT_S = 15.0
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_MANAGERS: "weakref.WeakSet[JobManager]" = weakref.WeakSet()
_LOCK = threading.Lock()
_AT_EXIT_REGISTERED = False
_PREVIOUS_HANDLERS: dict[int, object] = {}


def exit_wait_s() -> float:
    """Seconds the exit handler waits, in all, for running jobs to stop: ``$KDVIZ_EXIT_WAIT_S`` or 15."""
    raw = os.environ.get("KDVIZ_EXIT_WAIT_S", "").strip()
    try:
        value = float(raw) if raw else EXIT_WAIT_S
    except ValueError:
        return EXIT_WAIT_S
    return value if value >= 0 else EXIT_WAIT_S


def watch(manager: "JobManager") -> None:
    """Stop ``manager``'s jobs when the process exits (called when it starts a job; idempotent)."""
    global _AT_EXIT_REGISTERED
    with _LOCK:
        _MANAGERS.add(manager)
        if not _AT_EXIT_REGISTERED:
            atexit.register(_at_exit)
            _AT_EXIT_REGISTERED = True
    install_signal_handlers()


def _at_exit() -> None:
    _quiet_signals_while_exiting()
    stop_jobs_at_exit()


def stop_jobs_at_exit(timeout: float | None = None) -> None:
    """Stop every watched manager's jobs, join their threads within ``timeout`` seconds in all (default
    ``exit_wait_s()``), and mark any job still running then as stopped. The managers start nothing more."""
    deadline = time.monotonic() + (exit_wait_s() if timeout is None else timeout)
    with _LOCK:
        managers = list(_MANAGERS)
    for manager in managers:
        manager.close("the process exited")
    for manager in managers:
        manager.join(max(0.0, deadline - time.monotonic()))


def _on_stop_signal(signum: int, frame: object) -> None:
    """SIGTERM or SIGHUP: what Ctrl-C does (a ``KeyboardInterrupt`` in the main thread)."""
    raise KeyboardInterrupt(f"{signal.Signals(signum).name} received")


def in_jupyter_kernel() -> bool:
    """True inside a Jupyter kernel: its host (JupyterLab, nbclient) manages its lifetime and stops it
    with SIGTERM; turned into Ctrl-C, every kernel shutdown waited for the SIGKILL that follows."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "kernel", None) is not None


def install_signal_handlers() -> list[int]:
    """Install the SIGTERM/SIGHUP handler where the disposition is still the default; from the main
    thread only. Returns the signals it handles now."""
    if threading.current_thread() is not threading.main_thread() or in_jupyter_kernel():
        return []
    with _LOCK:
        for sig in STOP_SIGNALS:
            if sig in _PREVIOUS_HANDLERS:
                continue
            try:
                current = signal.getsignal(sig)
                if current is not signal.SIG_DFL:  # the host's handler, SIG_IGN (nohup), or not set from Python
                    continue
                signal.signal(sig, _on_stop_signal)
            except (ValueError, OSError):  # not the main interpreter, or an embedding that forbids it
                continue
            _PREVIOUS_HANDLERS[sig] = current
        return [sig for sig in STOP_SIGNALS if signal.getsignal(sig) is _on_stop_signal]


def restore_signal_handlers() -> None:
    """Put back the dispositions found before ``install_signal_handlers`` (where ours is still installed)."""
    if threading.current_thread() is not threading.main_thread() or in_jupyter_kernel():
        return
    with _LOCK:
        for sig, previous in list(_PREVIOUS_HANDLERS.items()):
            if signal.getsignal(sig) is _on_stop_signal:
                signal.signal(sig, previous)
            del _PREVIOUS_HANDLERS[sig]


def _quiet_signals_while_exiting() -> None:
    """While the exit handler waits for jobs, a second SIGTERM must not abort that wait half-way."""
    if threading.current_thread() is not threading.main_thread() or in_jupyter_kernel():
        return
    for sig in STOP_SIGNALS:
        try:
            if signal.getsignal(sig) is _on_stop_signal:
                signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            continue
