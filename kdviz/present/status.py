"""One description of a job's state for every UI: what it is doing, how far, what is left.

``describe(status)`` turns a ``JobStatus`` (or its dict) into a ``StatusText``: the state, an icon
name both UIs map to their own glyphs, a headline and a detail line in plain words, and the
progress fraction. A paused job keeps its run slot (``engine.manager``): its detail says so, and a
queued job's detail names the paused runs it waits for. An "interrupted" run (its process died
mid-run, ``engine.run_reader.read_status``) says where it stopped and how to resume it; a finished
run that collapsed to chance accuracy carries its warning (and the warning icon); a reopened run
whose folder named files outside itself says how many were not read (``RunReader.notes``). The
Streamlit components render it as markdown with Material icons, the widgets as HTML; neither
composes the sentence itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ICONS = {"queued": "hourglass_top", "running": "model_training", "paused": "pause_circle", "finished": "check_circle",
         "stopped": "stop_circle", "diverged": "warning", "failed": "error", "interrupted": "running_with_errors",
         "unknown": "help"}
NOTE_CHARS = 160  # the first refused file's note is cut to this length; the rest are counted
ACTIVE = ("queued", "running", "paused")


@dataclass(frozen=True)
class StatusText:
    state: str
    icon: str  # a Material Symbols name ("check_circle")
    headline: str  # "KD student · running · test accuracy 91.2%"
    detail: str  # "epoch 2/5 · step 40/100 · about 12 s left"
    progress: float  # 0..1
    accuracy: str = ""  # "test accuracy 91.2%", or "" before the first evaluation
    warning: str = ""  # "collapsed: test accuracy at chance ..." on a finished run that collapsed
    note: str = ""  # "1 file of this run was not read: ..." (a reopened run's refused files)

    @property
    def line(self) -> str:
        return f"{self.headline} · {self.detail}" if self.detail else self.headline


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1m 15s"``; ``None`` -> ``"?"``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _get(status: Any) -> dict[str, Any]:
    return status.to_dict() if hasattr(status, "to_dict") else dict(status)


def _slot_note(s: dict[str, Any]) -> str:
    """" · <why>" when paused runs hold the slots a queued job waits for (the job's message says so)."""
    message = str(s.get("message") or "")
    if "held by paused run" not in message:
        return ""
    return " · " + message.split("; ", 1)[-1]


def notes_line(notes: Any) -> str:
    """One short line for a run reader's notes (files refused or skipped): how many, and the first."""
    notes = [str(n) for n in notes or [] if str(n).strip()]
    if not notes:
        return ""
    first = " ".join(notes[0].split())
    first = first if len(first) <= NOTE_CHARS else first[: NOTE_CHARS - 1] + "…"
    more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
    return f"{len(notes)} file{'s' if len(notes) > 1 else ''} of this run not read: {first}{more}"


def describe(status: Any, label: str, epochs: int | None = None, max_concurrent: int | None = None,
             notes: Any = None) -> StatusText:
    """Describe a job's status for a run called ``label`` (``epochs``: the config's, for "epoch k/n";
    ``max_concurrent``: the manager's limit, named while the job waits in the queue; ``notes``: a
    ``RunReader``'s, when the status does not carry them itself). A collapse warning and the notes
    line are also appended to ``detail``, so a UI that shows only the detail shows them."""
    s = _get(status)
    text = _describe_state(s, label, epochs, max_concurrent)
    warning = str(s.get("warning") or "")
    note = notes_line(notes if notes is not None else s.get("notes"))
    extra = [f"Warning: {warning}" if warning else "", note]
    detail = " · ".join(p for p in (text.detail, *extra) if p)
    icon = ICONS["diverged"] if warning else text.icon
    return StatusText(text.state, icon, text.headline, detail, text.progress, text.accuracy, warning, note)


def _describe_state(s: dict[str, Any], label: str, epochs: int | None, max_concurrent: int | None) -> StatusText:
    state = s.get("state", "unknown")
    step, total = int(s.get("step") or 0), int(s.get("total_steps") or 0)
    acc = s.get("test_acc")
    accuracy = f"test accuracy {acc:.1%}" if acc is not None else ""
    headline = f"{label} · {state}" + (f" · {accuracy}" if accuracy else "")
    if state == "queued":
        limit = f" (at most {max_concurrent} runs at once)" if max_concurrent else ""
        detail = f"waiting in the queue, place {s.get('queue_position') or '?'}{limit}{_slot_note(s)}"
    elif state in ("running", "paused"):
        epoch = f"epoch {min(int(s.get('epoch') or 0) + 1, epochs)}/{epochs} · " if epochs else ""
        detail = f"{epoch}step {step}/{total or '?'}"
        if state == "running" and s.get("eta_s"):
            detail += f" · about {format_duration(s.get('eta_s'))} left"
        if state == "paused" and s.get("message"):
            detail += f" · {s['message']}"
    elif state == "finished":
        detail = f"{total} steps in {format_duration(s.get('elapsed_s'))}"
    elif state == "interrupted":
        why = str(s.get("message") or "its process ended mid-run; resume it to continue")
        detail = f"step {step}/{total or '?'} · " + why.removeprefix("interrupted: ")
    else:
        detail = s.get("message") or ""
    progress = min(1.0, step / total) if total else (1.0 if state == "finished" else 0.0)
    return StatusText(state, ICONS.get(state, ICONS["unknown"]), headline, detail, progress, accuracy)


def readiness(status: Any, name: str) -> StatusText:
    """Describe a run another one waits for (a teacher, a baseline): ready, training, queued or failed."""
    s = _get(status)
    state = s.get("state", "unknown")
    if state == "finished":
        acc = s.get("test_acc")
        warning = str(s.get("warning") or "")
        return StatusText(state, ICONS["diverged" if warning else state],
                          f"{name} ready" + (f" · {acc:.1%} test accuracy" if acc is not None else ""),
                          f"Warning: {warning}" if warning else "", 1.0, warning=warning)
    if state == "queued":
        return StatusText(state, ICONS[state], f"The {name} waits in the queue (place {s.get('queue_position') or '?'})",
                          _slot_note(s).lstrip(" ·"), 0.0)
    if state in ("running", "paused"):
        total = int(s.get("total_steps") or 0)
        pct = int(s.get("step") or 0) / total if total else 0.0
        if state == "paused":
            return StatusText(state, ICONS[state], f"The {name} is paused at {pct:.0%}",
                              "it keeps its run slot: resume it to finish, or stop it to free the slot", pct)
        eta = f", about {format_duration(s.get('eta_s'))} left" if s.get("eta_s") else ""
        return StatusText(state, ICONS[state], f"Training the {name} in the background: {pct:.0%}{eta}", "", pct)
    if state == "interrupted":
        total = int(s.get("total_steps") or 0)
        pct = int(s.get("step") or 0) / total if total else 0.0
        why = str(s.get("message") or "").removeprefix("interrupted: ")
        return StatusText(state, ICONS[state], f"The {name} was interrupted at {pct:.0%}", why, pct)
    return StatusText(state, ICONS.get(state, ICONS["unknown"]), f"The {name} {state}", s.get("message") or "", 0.0)
