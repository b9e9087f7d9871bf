"""Measured CPU inference latency and peak memory of a model's deployable forms (``formats.py``).

Why measure: users of pruning and quantization tools most often report a compressed model that "is not
smaller or faster" (issue 17). Bytes on disk say nothing about time: a CSR matrix at 90 % sparsity is
4x smaller than the dense one, yet torch's CPU sparse kernels are usually slower than a dense GEMM for
layers of a few hundred units. So every number here is measured on this machine, now.

Latency. For each batch size, after ``warmup`` forwards of every form, ``runs`` rounds each time one
forward of every form, interleaved (form A, B, C, D, then D, C, B, A, ...) so a burst of load from
other processes hits all forms alike (the paired design of ``bench/_paired.py``). Reported: median
and interquartile range (Q1..Q3) in milliseconds, under ``torch.inference_mode`` with a fixed thread
count (restored afterwards).

Memory. ``model_bytes``: what the form stores (``formats.stored_bytes``). ``peak_working_bytes``: the
highest sum of tensor bytes allocated and not yet freed during one forward at the largest batch, from
torch's profiler (allocations attributed to each op, frees as ``[memory]`` events, replayed in time
order; the profiler sees every thread, so a training job running beside it adds to the number). ``tracemalloc`` cannot see torch's C++ allocator, and the process's max RSS
(``resource.getrusage``) mixes every model the process ever ran, so it is reported once, beside.

Predictions. Each form's argmax on the measured inputs is compared with its source's
(``DeployForm.source``): ``agreement`` (share equal) and ``max_logit_diff``.
"""
from __future__ import annotations

import resource
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from .formats import DeployForm, deploy_forms, semi_structured_on_cpu, stored_bytes

BATCHES = (1, 256)
_PROFILER = threading.Lock()  # torch allows one profiler at a time in a process


@dataclass(frozen=True)
class Timing:
    """Median and quartiles of one form's forward time at one batch size, in milliseconds."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    runs: int


@dataclass(frozen=True)
class FormResult:
    """One deployable form: latency per batch size, bytes, peak working memory, and its agreement."""

    name: str
    note: str
    timings: dict[int, Timing]
    model_bytes: int
    peak_working_bytes: int
    agreement: float
    max_logit_diff: float


@dataclass(frozen=True)
class LatencyReport:
    """Every form measured in one run, with the conditions of the measurement."""

    forms: list[FormResult]
    threads: int
    batches: tuple[int, ...]
    semi_structured: str | None  # None: ran on CPU; else torch's reason
    max_rss_bytes: int
    notes: list[str] = field(default_factory=list)

    def form(self, name: str) -> FormResult:
        for f in self.forms:
            if f.name == name:
                return f
        raise ValueError(f"no form {name!r} in this report (forms: {[f.name for f in self.forms]})")

    def ratio(self, name: str, batch: int, against: str = "dense") -> float:
        """Median latency of ``name`` over that of ``against`` at ``batch`` (< 1: faster)."""
        return self.form(name).timings[batch].median_ms / self.form(against).timings[batch].median_ms


@contextmanager
def fixed_threads(threads: int):
    """``torch.set_num_threads(threads)`` for the block, restored after."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def interleaved_timings(models: Sequence[nn.Module], inputs: torch.Tensor, runs: int, warmup: int) -> list[Timing]:
    """Per model, the forward time on ``inputs`` over ``runs`` interleaved rounds after ``warmup`` rounds;
    odd rounds run the models in reverse order."""
    samples: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for m in models:
                m(inputs)
        for r in range(runs):
            order = range(len(models)) if r % 2 == 0 else reversed(range(len(models)))
            for i in order:
                t0 = time.perf_counter()
                models[i](inputs)
                samples[i].append((time.perf_counter() - t0) * 1e3)
    out = []
    for s in samples:
        q1, med, q3 = _quartiles(s)
        out.append(Timing(med, q1, q3, len(s)))
    return out


_PRIMED = False


def prime_profiler() -> None:
    """Start and stop torch's profiler once, now, on this thread (call it from the main thread before
    measuring in a background thread): kineto initialises on its first use, and when that happens outside
    the thread that registered it, it prints "External init callback must run in same thread as
    registerClient" to the process's stderr (into a notebook's output). Later uses from any thread are quiet."""
    global _PRIMED
    from torch.profiler import ProfilerActivity, profile

    with _PROFILER:
        if _PRIMED:
            return
        with profile(activities=[ProfilerActivity.CPU]):
            pass
        _PRIMED = True


def peak_working_bytes(model: nn.Module, inputs: torch.Tensor) -> int:
    """Highest bytes of tensors alive at once during one forward (torch profiler's memory events)."""
    from torch.profiler import ProfilerActivity, profile

    with _PROFILER, torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(inputs)
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    alive = peak = 0
    for e in events:
        change = e.cpu_memory_usage if e.name == "[memory]" else e.self_cpu_memory_usage
        alive += change
        peak = max(peak, alive)
    return int(peak)


def prediction_check(form: DeployForm, inputs: torch.Tensor) -> tuple[float, float]:
    """(share of argmax equal to the source's, max |logit difference|) on ``inputs``."""
    with torch.inference_mode():
        got, want = form.model(inputs).float(), form.source(inputs).float()
    return float((got.argmax(1) == want.argmax(1)).float().mean()), float((got - want).abs().max())


def _batch(images: torch.Tensor, size: int) -> torch.Tensor:
    reps = -(-size // images.shape[0])
    return images.repeat(reps, *([1] * (images.dim() - 1)))[:size].contiguous()


def measure_forms(forms: Sequence[DeployForm], images: torch.Tensor, batches: Sequence[int] = BATCHES,
                  runs: int = 50, warmup: int = 5, threads: int = 1, notes: Sequence[str] = ()) -> LatencyReport:
    """Time every form at every batch size (interleaved), measure memory and check predictions;
    ``notes`` (forms left out and why) travel with the report."""
    if int(runs) < 3 or int(warmup) < 0:
        raise ValueError(f"need runs >= 3 and warmup >= 0, got runs={runs!r}, warmup={warmup!r}")
    if images.dim() < 2 or images.shape[0] < 1:
        raise ValueError(f"images must be a batch (N, ...) with N >= 1, got shape {tuple(images.shape)}")
    models = [f.model for f in forms]
    with fixed_threads(threads):
        timings = {b: interleaved_timings(models, _batch(images, b), int(runs), int(warmup)) for b in batches}
        largest = _batch(images, max(batches))
        results = []
        for i, form in enumerate(forms):
            agreement, diff = prediction_check(form, largest)
            results.append(FormResult(form.name, form.note, {b: timings[b][i] for b in batches},
                                      stored_bytes(form.model), peak_working_bytes(form.model, largest), agreement, diff))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return LatencyReport(results, threads, tuple(batches), semi_structured_on_cpu(), rss, list(notes))


def latency_report(model: nn.Module, images: torch.Tensor, sparsity: float | Mapping[str, float] = 0.9,
                   shrink: float = 0.5, batches: Sequence[int] = BATCHES, runs: int = 50, warmup: int = 5,
                   threads: int = 1) -> LatencyReport:
    """Build the dense, shrunk, sparse, int8 and static int8 forms of ``model`` (static int8 calibrated on
    ``images``) and measure them on ``images`` (N, C, H, W) repeated to each batch size. See the module
    docstring for what is measured and how; forms that could not be built are named in ``notes``."""
    skipped: dict[str, str] = {}
    forms = deploy_forms(model, sparsity, shrink, calibration=images, skipped=skipped)
    notes = [f"{name} left out: {reason}" for name, reason in skipped.items()]
    return measure_forms(forms, images, batches, runs, warmup, threads, notes)
