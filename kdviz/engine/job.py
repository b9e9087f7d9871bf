"""``Job``: one training run in a background daemon thread, with status, pause, resume and stop.

States: queued -> running <-> paused -> finished | stopped | diverged | failed. A job never calls UI
code and an exception inside it never escapes its thread: it becomes state "failed" with the
message and the traceback text, in ``status()`` and in the run folder's status.json. A run folder
whose writer died mid-run reads as "interrupted" (``run_reader.read_status``): final too, for
whoever reads it, until someone resumes it (a new job). A finished run that collapsed to chance
accuracy carries ``JobStatus.warning``.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import TrainConfig
from .run_folder import RunFolder, RunFolderClosed
from .run_reader import RunReader, read_status
from .store import LiveStore
from .trainer import Control, Trainer

if TYPE_CHECKING:
    from .manager import JobManager

FINAL_STATES = ("finished", "failed", "stopped", "diverged", "interrupted")  # nothing more happens without a resume
STATUS_WRITE_INTERVAL_S = 1.0
PAUSED_HEARTBEAT_S = 5.0
PAUSED_SLOT_NOTE = "it keeps its run slot until resumed or stopped"


@dataclass
class JobStatus:
    """A job's state and progress. ``epoch`` counts from 0; ``eta_s`` is None until a rate is known;
    ``queue_position`` is 1 for the next job to start, None when not queued; ``test_acc`` is the
    last evaluation's; ``traceback`` is set when the state is "failed"; ``warning`` when a finished
    run collapsed (``trainer.Outcome.warning``); ``notes`` are a reopened run's files that were
    refused (``RunReader.notes``; never written to status.json)."""

    state: str
    message: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    queue_position: int | None = None
    test_acc: float | None = None
    traceback: str = ""
    warning: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _JobControl(Control):
    """The trainer's view of its job: pause and stop flags, progress reports, CPU thread share."""

    def __init__(self, job: "Job") -> None:
        self.job = job

    def wait_if_paused(self) -> float:
        job = self.job
        if not job._pause.is_set() or job._stop.is_set():
            return 0.0
        start = time.perf_counter()
        job._set_state("paused", f"paused at step {job._status.step}; {PAUSED_SLOT_NOTE}")
        while job._pause.is_set() and not job._stop.is_set():
            time.sleep(0.05)
            if time.perf_counter() - job._last_write > PAUSED_HEARTBEAT_S:
                job._write_status()  # a heartbeat: status.json stays fresh, so the run does not look dead
        job._set_state("running", "")
        return time.perf_counter() - start

    def should_stop(self) -> bool:
        return self.job._stop.is_set()

    def on_progress(self, step: int, epoch: int, total_steps: int, elapsed_s: float, test_acc: float | None = None) -> None:
        self.job._progress(step, epoch, total_steps, elapsed_s, test_acc)

    def num_threads(self) -> int | None:
        manager = self.job.manager
        return manager.thread_share() if manager is not None else None


class Job:
    """A training run in the background. Made by ``JobManager.submit`` (or ``kdviz.engine.start``)."""

    resume_plan = None  # a resumed job's ``resume.ResumePlan`` (where it continues, records dropped)

    def __init__(self, config: TrainConfig, manager: "JobManager | None" = None, resume_path: str | Path | None = None) -> None:
        self.config = config.validate()
        self.manager = manager
        self._resume = resume_path is not None
        self._folder = RunFolder(resume_path) if self._resume else RunFolder.create(config)
        self.path: Path = self._folder.path
        self.store: LiveStore | RunReader = LiveStore()
        self._lock = threading.Lock()
        self._pause, self._stop, self._done = threading.Event(), threading.Event(), threading.Event()
        self._status = JobStatus("queued", "waiting for a free slot")
        self._thread: threading.Thread | None = None
        self._submitted = False
        self._stop_reason = ""
        self._last_write = 0.0
        self._rate_origin: tuple[float, int] | None = None
        self._write_status()

    @classmethod
    def reopened(cls, path: str | Path) -> "Job":
        """A job object for a run already on disk (finished, say): status from status.json, data
        from a ``RunReader``; pause/stop do nothing."""
        job = cls.__new__(cls)
        job.path, job.manager, job._resume = Path(path), None, False
        job.store = RunReader(path)
        job.config = job.store.config
        job._lock = threading.Lock()
        job._pause, job._stop, job._done = threading.Event(), threading.Event(), threading.Event()
        saved = read_status(path)
        known = set(JobStatus.__dataclass_fields__) - {"state", "notes"}
        job._status = JobStatus(**{k: v for k, v in saved.items() if k in known}, state=saved.get("state", "unknown"))
        job._thread, job._folder = None, None
        job._submitted, job._stop_reason = False, ""
        if job._status.done:  # "interrupted" included: nobody writes it, so wait() must not block
            job._done.set()
        return job

    # ---- control (any thread) -------------------------------------------------------------
    def status(self) -> JobStatus:
        with self._lock:
            s = JobStatus(**asdict(self._status))
        s.notes = list(getattr(self.store, "notes", None) or [])
        if s.state == "queued" and self.manager is not None:
            s.queue_position = self.manager.queue_position(self)
            paused = self.manager.paused_holders() if s.queue_position is not None else []
            if paused:
                s.message = f"{s.message}; {len(paused)} of the {self.manager.max_concurrent} run slots " \
                            f"held by paused run(s) {', '.join(paused)}: resume or stop them to free a slot"
        return s

    def resubmit_refusal(self) -> str:
        """Why this job may not be submitted (again), or "" if it may: a job trains once, in its folder."""
        if not (self._submitted or self.done or self._thread is not None):
            return ""
        state = self.status().state
        return (f"job {self.name} was already submitted (state {state!r}); a job trains once, into its own run "
                f"folder {self.path}. To continue it, resume it (kdviz.engine.resume({str(self.path)!r}) or "
                f"`kdviz resume {self.path}`); to train its config again, call start(job.config), which makes a new run folder")

    def pause(self) -> None:
        """Pause before the next step (a queued job pauses as soon as it starts)."""
        if not self.done:
            self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def stop(self, reason: str = "") -> None:
        """Stop after the current step, saving a checkpoint; a queued job leaves the queue.
        ``reason`` (e.g. "the process exited") is added to the final status message."""
        if self.done:
            return
        with self._lock:
            self._stop_reason = self._stop_reason or reason
        self._stop.set()
        if self.manager is not None and self.manager.cancel(self):
            self._finish("stopped", "stopped before it started" + (f": {reason}" if reason else ""))

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job ends (or ``timeout`` seconds pass); return its status."""
        self._done.wait(timeout)
        return self.status()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def name(self) -> str:
        return self.path.name

    # ---- the thread -----------------------------------------------------------------------
    def _launch(self) -> None:
        """Start the training thread (the manager calls this when a slot is free), once."""
        if self._thread is not None:
            raise RuntimeError(f"job {self.name} was already launched")
        self._set_state("running", "starting")
        self._thread = threading.Thread(target=self._run, name=f"kdviz-job-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            trainer = Trainer(self.config, self._folder, self.store, control=_JobControl(self), resume=self._resume)
            outcome = trainer.run()
            message = outcome.message
            if outcome.state == "stopped" and self._stop_reason:
                message = f"{message} ({self._stop_reason})"
            self._finish(outcome.state, message, warning=outcome.warning)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape the job's thread
            self._finish("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc())

    def _finish(self, state: str, message: str, tb: str = "", warning: str = "") -> None:
        with self._lock:
            if self._status.done:
                return
            self._status.state, self._status.message, self._status.traceback = state, message, tb
            self._status.warning = warning
            self._status.eta_s = 0.0 if state == "finished" else None
        try:
            self._write_status(force=True)
        finally:  # whatever happens to the status file, the job ends and its slot is freed
            self._done.set()
            if self.manager is not None:
                self.manager._job_ended(self)

    def _join_thread(self, timeout: float | None) -> bool:
        """Wait for the training thread to end; True if it has (or never started)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return thread is None or not thread.is_alive()
        thread.join(timeout)
        return not thread.is_alive()

    def _abandon(self) -> None:
        """The thread did not stop in time (the process is exiting): mark the run stopped anyway.
        The run folder then refuses the thread's later writes (``RunFolderClosed``), so its
        checkpoint and records stay as this status describes them."""
        step, why = self.status().step, self._stop_reason or "stop requested"
        self._finish("stopped", f"stopped at step {step} without waiting for the step to end ({why}); "
                                "the last checkpoint is kept (resume it to continue)")

    def _set_state(self, state: str, message: str) -> None:
        with self._lock:
            if self._status.done:
                return
            self._status.state, self._status.message = state, message
        self._write_status(force=True)

    def _progress(self, step: int, epoch: int, total_steps: int, elapsed_s: float, test_acc: float | None) -> None:
        now = time.perf_counter()
        with self._lock:
            s = self._status
            s.step, s.epoch, s.total_steps, s.elapsed_s = step, epoch, total_steps, round(elapsed_s, 3)
            s.test_acc = test_acc
            if s.message == "starting":
                s.message = ""
            if self._rate_origin is None:
                self._rate_origin = (elapsed_s, step)
            t0, step0 = self._rate_origin
            if step > step0 and elapsed_s > t0:
                s.eta_s = round((elapsed_s - t0) / (step - step0) * (total_steps - step), 1)
        if now - self._last_write >= STATUS_WRITE_INTERVAL_S:
            self._write_status()

    def _write_status(self, force: bool = False) -> None:
        if self._folder is None:
            return
        self._last_write = time.perf_counter()
        status = self.status().to_dict()
        status.pop("notes", None)
        status.update(name=self.name, path=str(self.path), updated=time.time())
        try:
            self._folder.write_status(status)
        except OSError:  # a full disk must not kill training; the live store still has everything
            pass
        except RunFolderClosed:  # the final status is written: a late progress report changes nothing
            pass

    def __repr__(self) -> str:
        s = self._status
        return f"Job({self.name!r}, state={s.state!r}, step={s.step}/{s.total_steps})"
