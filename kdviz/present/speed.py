"""Speed on this CPU: the measured latency and memory of a finished run's deployable forms, for any page.

``speed_report(run)`` loads a finished run's model (a ``Job``, ``RunReader``, run folder or a model),
builds its dense, shrunk, sparse CSR, dynamic int8 and static int8 forms (``kdviz.deploy.formats``), measures them on the
run's own test images (``kdviz.deploy.latency``: median and IQR of interleaved runs, batch 1 and 256,
one thread) and returns a ``SpeedReport``: the figure, the table and a caption written from the
numbers, saying plainly where a form saves bytes but not time on this CPU.

A model that was pruned already (a pruning run) is measured as it is: its sparse form keeps the run's
own zeros (the per-layer share of exact zeros is the sparsity asked for, so the magnitude cut takes
exactly those weights). A dense model is pruned here to ``default_sparsity`` by magnitude. A
weight-shared model (a k-means run: its checkpoint's effective weights, ``kdviz.engine.model_state``)
gets one more row, ``codebook``: b-bit indices and a codebook per layer as stored, run as what it is
at inference on this CPU, dense float32 after decoding (``kdviz.deploy.formats.CodebookModel``).

Measuring takes seconds, so pages call ``measure_in_background``: the work runs in a thread, one per
(run folder, settings) in this process; a page polls ``task.done`` and draws ``task.result`` or
``task.error`` (a sentence, never a traceback). A finished measurement is kept and reused.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import load_dataset
from ..deploy.latency import BATCHES, LatencyReport, latency_report, prime_profiler
from ..engine import load_trained_model
from ..figures.speed import FormSpeed, bytes_but_not_time, speed_bars
from ..palette import OKABE_ITO, ROLE_COLORS
from ..prune.masks import prunable_weights
from .runs import as_run_view

FORM_COLOURS = {"dense": ROLE_COLORS["baseline"], "shrunk": OKABE_ITO["bluish green"],
                "sparse": ROLE_COLORS["pruned"], "int8": ROLE_COLORS["quantized"], "int8 static": OKABE_ITO["blue"],
                "codebook": OKABE_ITO["reddish purple"]}
PRUNED_ALREADY = 0.01  # a model with more than 1 % exact zeros in its weights was pruned: keep its own mask


@dataclass(frozen=True)
class SpeedReport:
    """What the "Speed on this CPU" section shows, built once from one measurement."""

    report: LatencyReport
    source: str
    sparsity_note: str

    def forms(self) -> list[FormSpeed]:
        return [FormSpeed(f.name, {b: (t.q1_ms, t.median_ms, t.q3_ms) for b, t in f.timings.items()},
                          f.model_bytes, f.peak_working_bytes) for f in self.report.forms]

    def figure(self):
        return speed_bars(self.forms(), FORM_COLOURS, self.report.batches)

    def statements(self) -> list[str]:
        """Sentences from the numbers: which form saves bytes but not time, which is faster."""
        return bytes_but_not_time(self.forms())

    def caption(self) -> str:
        semi = ("2:4 semi-structured sparse kernels: not available on this CPU "
                f"(torch says: {self.report.semi_structured})" if self.report.semi_structured
                else "2:4 semi-structured sparse kernels ran on this CPU")
        runs = self.report.forms[0].timings[self.report.batches[0]].runs
        left_out = "".join(f" {note}." for note in self.report.notes)
        return (" ".join(self.statements()) + left_out + f" Measured now on this machine: median of {runs} interleaved runs per "
                f"form and batch, {self.report.threads} thread(s); {self.sparsity_note}. {semi}.")

    def rows(self) -> list[dict[str, Any]]:
        """One row per form for a table: latency (median [IQR]) per batch, ratio to dense, bytes, memory, agreement."""
        out = []
        for f in self.report.forms:
            row: dict[str, Any] = {"form": f.name, "what": f.note}
            for b, t in f.timings.items():
                row[f"batch {b} (ms)"] = f"{t.median_ms:.3f} [{t.q1_ms:.3f}-{t.q3_ms:.3f}]"
                row[f"batch {b} / dense"] = round(self.report.ratio(f.name, b), 3)
            row["stored (KiB)"] = round(f.model_bytes / 1024, 1)
            row["peak working memory, largest batch (KiB)"] = round(f.peak_working_bytes / 1024, 1)
            row["same prediction as its source"] = f"{f.agreement:.1%}"
            out.append(row)
        return out


def own_sparsity(model: nn.Module) -> dict[str, float]:
    """Per prunable weight, the share of exact zeros (a pruned run's own sparsity)."""
    return {n: float((p.detach() == 0).float().mean()) for n, p in prunable_weights(model).items()}


def _model_and_images(source: Any, max_images: int) -> tuple[nn.Module, torch.Tensor, str]:
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], nn.Module):
        model, images = source
        return model.eval(), images[:max_images], "a model"
    view = as_run_view(source)
    if view.path is None:
        raise ValueError("speed is measured on a finished run with a folder (its last checkpoint)")
    if view.status().get("state") != "finished":
        raise ValueError(f"run {view.label!r} has not finished ({view.status().get('state')}); measure it once it has")
    config = view.config
    bundle = load_dataset(config.dataset, root=config.data_root)
    return load_trained_model(view.path).eval(), bundle.test_images[:max_images], view.label


def speed_report(source: Any, default_sparsity: float = 0.9, shrink: float = 0.5, runs: int = 30, warmup: int = 3,
                 threads: int = 1, batches: tuple[int, ...] = BATCHES, max_images: int = 256) -> SpeedReport:
    """Measure a finished run (``Job``, ``RunReader``, run folder) or ``(model, images)`` now (blocking:
    seconds). See the module docstring."""
    model, images, label = _model_and_images(source, max_images)
    zeros = own_sparsity(model)
    total = sum(p.numel() for p in prunable_weights(model).values())
    overall = sum(zeros[n] * p.numel() for n, p in prunable_weights(model).items()) / max(1, total)
    if overall > PRUNED_ALREADY:
        sparsity: float | Mapping[str, float] = {n: min(s, 0.999) for n, s in zeros.items()}
        note = f"sparse form: this model's own zeros ({overall:.0%} of its weights)"
    else:
        sparsity, note = default_sparsity, f"sparse form: pruned here by magnitude to {default_sparsity:.0%} per layer"
    report = latency_report(model, images, sparsity, shrink, batches, runs, warmup, threads)
    note += f"; shrunk form: {shrink:.0%} of units removed"
    if any(f.name == "codebook" for f in report.forms):
        note += ("; codebook form: this model's shared weights stored as indices into a codebook, decoded to "
                 "dense float32 when loaded, so it computes exactly as the dense form does: it saves bytes, not time")
    return SpeedReport(report, label, note)


_LOADABLE: dict[str, str | None] = {}


def unmeasurable_reason(source: Any) -> str | None:
    """None when ``source`` (a run) is finished and its checkpoint loads as a plain model; else why not
    (e.g. a k-means run saved before checkpoints kept effective weights: its parametrised weights do
    not load). Remembered per finished run folder, so a page may ask on every rerun."""
    view = as_run_view(source)
    if view.path is None or view.status().get("state") != "finished":
        return "not a finished run"
    key = str(Path(view.path).resolve())
    if key not in _LOADABLE:
        try:
            load_trained_model(view.path)
            _LOADABLE[key] = None
        except (ValueError, OSError, RuntimeError, KeyError) as exc:
            _LOADABLE[key] = str(exc).splitlines()[0]
    return _LOADABLE[key]


class SpeedTask:
    """One measurement running in a background thread: ``done``, then ``result`` or ``error``."""

    def __init__(self, source: Any, options: dict[str, Any]) -> None:
        if threading.current_thread() is threading.main_thread():
            prime_profiler()  # else kineto's first use in the thread prints an error line into a notebook
        self.result: SpeedReport | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, args=(source, options), daemon=True, name="kdviz-speed")
        self._thread.start()

    def _run(self, source: Any, options: dict[str, Any]) -> None:
        try:
            self.result = speed_report(source, **options)
        except Exception as exc:  # noqa: BLE001 - a thread's failure must reach the page as a sentence
            self.error = f"Could not measure the speed: {exc}" if isinstance(exc, (ValueError, OSError)) \
                else f"Could not measure the speed: {type(exc).__name__}: {exc}"

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


_TASKS: dict[tuple, SpeedTask] = {}
_LOCK = threading.Lock()


def _key(source: Any, options: dict[str, Any]) -> tuple:
    view = as_run_view(source)
    if view.path is None:
        raise ValueError("speed is measured on a finished run with a folder (its last checkpoint)")
    return (str(Path(view.path).resolve()), tuple(sorted(options.items())))


def measure_in_background(source: Any, **options: Any) -> SpeedTask:
    """The measurement of ``source`` (a finished run) with ``options`` (``speed_report``'s): started now
    in a thread, or the one already running or finished in this process (a failed one is retried)."""
    key = _key(source, options)
    with _LOCK:
        task = _TASKS.get(key)
        if task is None or (task.done and task.error is not None):
            task = _TASKS[key] = SpeedTask(source, options)
        return task


def measured(source: Any, **options: Any) -> SpeedTask | None:
    """The measurement already started for ``source`` and ``options`` in this process, or None."""
    try:
        key = _key(source, options)
    except (ValueError, TypeError):
        return None
    with _LOCK:
        return _TASKS.get(key)
