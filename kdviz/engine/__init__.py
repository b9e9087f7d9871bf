"""The training engine: background jobs that stream live metrics and snapshots, run folders, a CLI.

>>> from kdviz.engine import TrainConfig, start
>>> job = start(TrainConfig(dataset="digits", model="mlp", epochs=2))  # doctest: +SKIP

See docs/architecture.md: a ``Job`` trains in a daemon thread and publishes to its ``LiveStore``
(``job.store``) and its run folder; ``open_run(path)`` reads a folder with the same API. When the
process ends (the script returns, SIGTERM, SIGHUP) its jobs stop cleanly and their runs say "stopped"
(``engine/shutdown.py``).
"""
from .api import find_finished_run, open_run, resume, start, train_teacher_cached
from .config import TrainConfig
from .hooks import HOOKS, StepBatch, TrainContext, TrainingHook, hook_labels, hook_options, labels_of_hook
from .job import FINAL_STATES, Job, JobStatus
from .losses import LOSSES, BaseLoss
from .manager import JobManager, default_manager
from .optim import LR_SCHEDULES, OPTIMIZERS
from .run_folder import load_checkpoint
from .run_reader import RunReader, list_runs
from .store import LiveStore, Snapshot
from .teacher_cache import load_teacher, load_trained_model
from .trainer import Trainer

__all__ = [
    "FINAL_STATES", "HOOKS", "Job", "JobManager", "JobStatus", "LR_SCHEDULES", "LiveStore", "LOSSES", "BaseLoss",
    "OPTIMIZERS", "RunReader", "Snapshot", "StepBatch", "TrainConfig", "TrainContext", "Trainer",
    "TrainingHook", "default_manager", "hook_labels", "hook_options", "labels_of_hook", "find_finished_run", "list_runs", "load_checkpoint",
    "load_teacher", "load_trained_model", "open_run", "resume", "start", "train_teacher_cached",
]
