"""``DeepCompressionJob``: the Deep Compression pipeline in a background thread.

``deep_compression`` trains for a while (pruning rounds, retraining, centroid fine-tuning), so a
page or a notebook starts it here and keeps drawing: ``status()`` gives the stage and its progress,
``stages()`` the finished stages so far, ``stop()`` asks it to end between two chunks of steps and
``wait()`` blocks until it has. The thread never calls UI code; readers poll.
"""
from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..data import DatasetBundle
from .pipeline import DeepCompressionConfig, DeepCompressionResult, PipelineStopped, Stage, deep_compression

STAGE_COUNT = 4  # dense, pruned, quantized, Huffman
FINAL_STATES = ("finished", "stopped", "failed")


@dataclass(frozen=True)
class PipelineStatus:
    """Where the pipeline is: ``state`` (running, finished, stopped, failed), the current stage
    and its progress in [0, 1], overall progress in [0, 1], a message and the elapsed seconds."""

    state: str
    stage: str
    stage_fraction: float
    fraction: float
    message: str
    elapsed_s: float

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES


class DeepCompressionJob:
    """Runs ``deep_compression(model, data, config)`` in a daemon thread (the model is copied).

    ``threads`` sets torch's CPU threads inside the worker (1 suits a small MLP on a busy machine).
    """

    def __init__(self, model: nn.Module, data: DatasetBundle, config: DeepCompressionConfig | None = None,
                 threads: int | None = 1, name: str = "deep-compression") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
        if not isinstance(data, DatasetBundle):
            raise TypeError(f"data must be a DatasetBundle, got {type(data).__name__}")
        self.config = (config or DeepCompressionConfig()).validate()
        self.name, self.threads = name, threads
        self.result = DeepCompressionResult()
        self._model, self._data = copy.deepcopy(model), data
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._state, self._stage, self._stage_fraction, self._message = "queued", "dense", 0.0, "waiting to start"
        self._started = self._ended = None
        self._thread = threading.Thread(target=self._run, name=f"kdviz-{name}", daemon=True)

    def start(self) -> "DeepCompressionJob":
        """Start the worker thread (once); returns self."""
        with self._lock:
            if self._started is None:
                self._started = time.monotonic()
                self._state, self._message = "running", "measuring the dense model"
                self._thread.start()
        return self

    def _progress(self, stage: str, fraction: float) -> None:
        with self._lock:
            self._stage, self._stage_fraction = stage, float(fraction)
            self._message = f"{stage}: {fraction:.0%}"

    def _run(self) -> None:
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            deep_compression(self._model, self._data, self.config, on_progress=self._progress,
                             should_stop=self._stop.is_set, result=self.result)
            state, message = "finished", self._summary()
        except PipelineStopped:
            state, message = "stopped", f"stopped after {len(self.result.stages)} of {STAGE_COUNT} stages"
        except Exception as exc:  # noqa: BLE001 - reported through status(), never raised in a UI thread
            state, message = "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._state, self._message, self._ended = state, message, time.monotonic()

    def _summary(self) -> str:
        s = self.result.stages
        return (f"{s[0].nbytes / 1e3:.1f} KB -> {s[-1].nbytes / 1e3:.1f} KB ({s[0].nbytes / s[-1].nbytes:.1f}x), "
                f"test error {100 * s[0].error:.2f}% -> {100 * s[-1].error:.2f}%")

    def stages(self) -> list[Stage]:
        """The stages finished so far (a copy)."""
        return list(self.result.stages)

    def status(self) -> PipelineStatus:
        with self._lock:
            finished = len(self.result.stages)
            inside = self._stage_fraction if self._state == "running" and finished < STAGE_COUNT else 0.0
            fraction = 1.0 if self._state == "finished" else min(1.0, (finished + inside) / STAGE_COUNT)
            end = self._ended if self._ended is not None else time.monotonic()
            elapsed = end - self._started if self._started is not None else 0.0
            return PipelineStatus(self._state, self._stage, self._stage_fraction, fraction, self._message, elapsed)

    @property
    def done(self) -> bool:
        return self.status().done

    def stop(self) -> None:
        """Ask the pipeline to stop between two chunks of steps; returns at once."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> PipelineStatus:
        """Block until the pipeline ends (or ``timeout`` seconds pass); returns the status."""
        if self._started is not None:
            self._thread.join(timeout)
        return self.status()


__all__ = ["DeepCompressionJob", "PipelineStatus", "STAGE_COUNT"]
